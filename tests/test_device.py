"""pumba.device.resolve_device: the one reading of --device, shared by training and inference."""

from __future__ import annotations

import pytest
import torch

import pumba.infer.strip
import pumba.model.train
from pumba.device import resolve_device
from pumba.io import InputError


def test_training_and_inference_resolve_devices_alike() -> None:
    assert pumba.model.train.resolve_device is resolve_device
    assert pumba.infer.strip.resolve_device is resolve_device


@pytest.mark.parametrize("cuda", [False, True])
def test_auto_is_cuda_when_there_is_one(monkeypatch, cuda: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert resolve_device("auto") == torch.device("cuda" if cuda else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


def test_cuda_without_cuda_is_an_input_error(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("cuda", "cuda:1"):
        with pytest.raises(InputError, match=rf"^--device {name}: CUDA is not available on this machine$"):
            resolve_device(name)


def test_cuda_with_cuda(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("cuda") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)


@pytest.mark.parametrize("name", ["gpu", "mps", "CPU", ""])
def test_other_names_are_input_errors(name: str) -> None:
    with pytest.raises(InputError, match=rf"^--device {name}: expected cpu, cuda or auto$"):
        resolve_device(name)
