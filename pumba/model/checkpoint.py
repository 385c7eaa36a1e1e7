"""Model and checkpoint files.

A *model file* holds what inference needs: ``{"format": "pumba-model", "version": 1, "architecture": {...},
"input_size": int, "fov_mm": float, "stage": "coarse" | "fine", "grid_size": int, "boundary_class": bool,
"state_dict": {...}, "meta": {...}}``. Weights may be stored in float16 to halve the file; they are loaded as
float32. A *training checkpoint* adds the optimiser, scheduler and step. ``stage`` and ``grid_size`` (the grid
over the whole field of view: ``input_size`` for the whole-head model, twice the coarse grid for the fine
stage, which sees crops of it) are absent from files older than the cascade: those are whole-head models.
``boundary_class`` is false for a whole-head model trained without the boundary class
(:class:`pumba.model.config.TrainConfig`), true otherwise, and absent from older files (true).

A *cascade* is a whole-head model file with the fine stage's payload under ``"refine"``
(:func:`save_cascade`); :func:`load_model` returns its fine network in ``info["refine"]``.
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
    model: UNet3D,
    path: str | Path,
    input_size: int,
    fov_mm: float,
    meta: dict,
    half: bool = False,
    stage: str = "coarse",
    grid_size: int | None = None,
    boundary_class: bool = True,
) -> None:
    """Write a model file atomically; ``half`` stores the weights as float16. ``grid_size`` defaults to
    ``input_size`` (a whole-head model); ``boundary_class`` false marks a model trained without it."""
    payload = {
        "format": MODEL_FORMAT,
        "version": VERSION,
        **_network(model, input_size, fov_mm, stage, grid_size or input_size, half, boundary_class),
        "meta": meta,
    }
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)


def _network(
    model: UNet3D,
    input_size: int,
    fov_mm: float,
    stage: str,
    grid_size: int,
    half: bool,
    boundary_class: bool = True,
) -> dict:
    """The fields that rebuild one network: architecture, grid, label classes and weights."""
    state = {
        k: (v.half() if half and v.is_floating_point() else v).cpu() for k, v in model.state_dict().items()
    }
    return {
        "architecture": model.architecture(),
        "input_size": int(input_size),
        "fov_mm": float(fov_mm),
        "stage": stage,
        "grid_size": int(grid_size),
        "boundary_class": bool(boundary_class),
        "state_dict": state,
    }


def check_cascade(coarse: str | Path, c_info: dict, fine: str | Path, f_info: dict) -> None:
    """InputError unless the whole-head model ``coarse`` and the fine stage ``fine`` (their :func:`load_model`
    infos) make a cascade: a single-stage whole-head model, and a fine grid twice its grid over the same field
    of view."""
    if "refine" in c_info:
        raise InputError(f"{coarse}: already a two-stage model")
    if f_info["grid_size"] != 2 * c_info["grid_size"] or f_info["fov_mm"] != c_info["fov_mm"]:
        raise InputError(
            f"{fine}: its grid ({f_info['grid_size']}^3 over {f_info['fov_mm']} mm) is not twice the coarse "
            f"model's ({c_info['grid_size']}^3 over {c_info['fov_mm']} mm)"
        )


def save_cascade(coarse: str | Path, fine: str | Path, path: str | Path, half: bool = True) -> None:
    """One model file of the two-stage cascade: the whole-head model ``coarse`` with the fine stage ``fine``
    under ``"refine"`` (weights in float16 when ``half``). InputError when the two do not fit together."""
    c_model, c_info = load_model(coarse)
    f_model, f_info = load_model(fine, stage="fine")
    check_cascade(coarse, c_info, fine, f_info)
    payload = {
        "format": MODEL_FORMAT,
        "version": VERSION,
        **_network(
            c_model,
            c_info["input_size"],
            c_info["fov_mm"],
            "coarse",
            c_info["grid_size"],
            half,
            c_info["boundary_class"],
        ),
        "meta": {**c_info.get("meta", {}), "coarse_file": str(coarse), "fine_file": str(fine)},
        "refine": {
            **_network(f_model, f_info["input_size"], f_info["fov_mm"], "fine", f_info["grid_size"], half),
            "meta": f_info.get("meta", {}),
        },
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


def load_model(
    path: str | Path, device: str | torch.device = "cpu", stage: str | None = "coarse"
) -> tuple[UNet3D, dict]:
    """Rebuild the network from a model file (or a training checkpoint) in eval mode.

    Returns the model and the file's fields other than the weights (``input_size``, ``fov_mm``, ``stage``,
    ``grid_size``, ``boundary_class``, ``meta``); a cascade's fine network is ``info["refine"]`` = (model, its
    info). ``stage`` is the kind of file expected: a whole-head model (or cascade) that can strip a scan, or
    a fine stage alone (None: either).
    Raises InputError naming the file when it is missing, corrupt, of another kind or stage, or its weights do
    not fit its architecture.
    """
    path = Path(path)
    payload = _read(path, CHECKPOINT_FORMAT, MODEL_FORMAT)
    model, info = _rebuild(path, payload, device)
    if stage is not None and info["stage"] != stage:
        hint = " (combine it with a whole-head model: pumba cascade)" if info["stage"] == "fine" else ""
        raise InputError(f"{path}: a {info['stage']}-stage model, expected a {stage}-stage one{hint}")
    if isinstance(payload.get("refine"), dict):
        info["refine"] = _rebuild(path, payload["refine"], device)
    return model, info


def _rebuild(path: Path, payload: dict, device: str | torch.device) -> tuple[UNet3D, dict]:
    """One network and its fields from a payload; InputError naming the file when they do not fit."""
    try:
        model = UNet3D(**payload["architecture"])
        state = {k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
        model.load_state_dict(state)
        skip = ("state_dict", "optimizer", "scheduler", "refine")
        info = {k: v for k, v in payload.items() if k not in skip}
        info["input_size"], info["fov_mm"] = int(info["input_size"]), float(info["fov_mm"])
        info["stage"] = str(info.get("stage", "coarse"))
        info["grid_size"] = int(info.get("grid_size", info["input_size"]))
        info["boundary_class"] = bool(info.get("boundary_class", True))
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
