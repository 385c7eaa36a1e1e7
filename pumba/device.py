"""Which torch device to run on: the one reading of ``--device`` for training and inference alike.

``pumba train`` and ``pumba strip`` (and :func:`pumba.infer.strip.strip`, :class:`pumba.model.train.Trainer`)
take a device name and resolve it here, so both accept the same names and fail the same way.
"""

from __future__ import annotations

import torch

from pumba.io import InputError


def resolve_device(device: str) -> torch.device:
    """The torch device named by ``device``: 'cpu', 'cuda' (or 'cuda:N') or 'auto' (CUDA when available,
    else the CPU).

    Raises:
        InputError: CUDA asked for on a machine without it, or another name (one line naming ``--device``).
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {device}: CUDA is not available on this machine")
    if device != "cpu" and not device.startswith("cuda"):
        raise InputError(f"--device {device}: expected cpu, cuda or auto")
    return torch.device(device)
