"""Model and checkpoint files.

A *model file* holds what inference needs: ``{"format": "pumba-model", "version": 1, "architecture": {...},
"input_size": int, "fov_mm": float, "state_dict": {...}, "meta": {...}}``. Weights may be stored in float16 to
halve the file; they are loaded as float32. A *training checkpoint* adds the optimiser, scheduler and step.
"""

from __future__ import annotations

from pathlib import Path

import torch

from pumba.io import InputError, atomic_output
from pumba.model.unet import UNet3D

MODEL_FORMAT = "pumba-model"
CHECKPOINT_FORMAT = "pumba-checkpoint"
VERSION = 1


def save_model(
    model: UNet3D, path: str | Path, input_size: int, fov_mm: float, meta: dict, half: bool = False
) -> None:
    """Write a model file atomically; ``half`` stores the weights as float16."""
    state = {
        k: (v.half() if half and v.is_floating_point() else v).cpu() for k, v in model.state_dict().items()
    }
    payload = {
        "format": MODEL_FORMAT,
        "version": VERSION,
        "architecture": model.architecture(),
        "input_size": int(input_size),
        "fov_mm": float(fov_mm),
        "state_dict": state,
        "meta": meta,
    }
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)


def _read(path: Path, *expected: str) -> dict:
    """The payload of a file whose format tag is one of ``expected``; InputError naming the file otherwise."""
    what = "/".join(expected)
    if not path.is_file():
        raise InputError(f"{path}: no such {what} file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(
            f"{path}: not a readable {what} file (corrupt or truncated? {_one_line(exc)})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") not in expected:
        kinds = " nor a ".join(f"{e} file" for e in expected)
        raise InputError(f"{path}: not a {kinds} (format tag missing or different)")
    if payload.get("version") != VERSION:
        raise InputError(
            f"{path}: {payload['format']} version {payload.get('version')} is not supported ({VERSION})"
        )
    return payload


def _one_line(exc: BaseException, limit: int = 160) -> str:
    """An exception's type and message on one line (torch's span several), cut at ``limit`` characters."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return (text[: limit - 3] + "...") if len(text) > limit else text


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[UNet3D, dict]:
    """Rebuild the network from a model file (or a training checkpoint) in eval mode.

    Returns the model and the file's fields other than the weights (``input_size``, ``fov_mm``, ``meta``).
    Raises InputError naming the file when it is missing, corrupt, of another kind, or its weights do not fit
    its architecture.
    """
    path = Path(path)
    payload = _read(path, CHECKPOINT_FORMAT, MODEL_FORMAT)
    try:
        model = UNet3D(**payload["architecture"])
        state = {k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
        model.load_state_dict(state)
        info = {k: v for k, v in payload.items() if k not in ("state_dict", "optimizer", "scheduler")}
        info["input_size"], info["fov_mm"] = int(info["input_size"]), float(info["fov_mm"])
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        # another architecture's weights, or a damaged description: the file cannot make this network
        raise InputError(f"{path}: weights do not fit the stored architecture ({_one_line(exc)})") from None
    model.eval().to(device)
    return model, info


def save_checkpoint(path: str | Path, payload: dict) -> None:
    """Write a training checkpoint atomically (``payload`` holds model/optimiser state, step, config)."""
    with atomic_output(path) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, "version": VERSION, **payload}, tmp)


def load_checkpoint(path: str | Path) -> dict:
    """Read a training checkpoint; a corrupt or foreign file raises InputError naming it."""
    return _read(Path(path), CHECKPOINT_FORMAT)
