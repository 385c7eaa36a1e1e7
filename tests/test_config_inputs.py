"""The files a training config reads (pumba.model.config.config_inputs): the training rule's inputs, so that
editing a base or swapping an init model retrains."""

from __future__ import annotations

from pathlib import Path

import pytest

from pumba.io import InputError
from pumba.model.config import config_inputs

REPO = Path(__file__).resolve().parents[1]


def test_a_config_with_a_base_chain_and_an_init_model(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "root.yaml").write_text("steps: 10\n")
    (tmp_path / "sub" / "mid.yaml").write_text("base: ../root.yaml\nlr: 0.001\n")
    top = tmp_path / "sub" / "top.yaml"
    top.write_text("base: mid.yaml\ninit: models/start.pt\n")
    files = config_inputs(top)
    assert files == [
        top,
        (tmp_path / "sub" / "mid.yaml").resolve(),
        (tmp_path / "root.yaml").resolve(),
        Path("models/start.pt"),
    ]


def test_the_v2_release_config_reads_its_bases_and_pumba_v1():
    files = config_inputs(REPO / "config" / "v2" / "coarse.yaml")
    assert files[1:3] == [REPO / "config" / "release.yaml", REPO / "config" / "train" / "default.yaml"]
    assert files[-1] == Path("pumba/weights/pumba-v1.pt")
    assert config_inputs(REPO / "config" / "train" / "default.yaml") == [
        REPO / "config" / "train" / "default.yaml"
    ]


def test_a_looping_base_chain_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(InputError, match="loops back"):
        config_inputs(tmp_path / "a.yaml")
