"""Skull stripping of one scan: read, normalise, resample onto the network grid, predict, post-process,
map back onto the input's grid, write the mask (and optionally the stripped image) atomically."""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from pumba.infer.postprocess import finish_on_input, postprocess
from pumba.infer.predict import predict
from pumba.infer.preprocess import choose_mode, normalise, plan_geometry, to_grid, to_input
from pumba.io import InputError, Volume, load_volume, save_like, suffix_of
from pumba.model.checkpoint import load_model
from pumba.model.train import resolve_device

DEFAULT_WEIGHTS = "pumba-default.pt"


def default_model_path() -> Path:
    """The weights shipped with the package (``pumba/weights/pumba-default.pt``)."""
    path = Path(str(resources.files("pumba") / "weights" / DEFAULT_WEIGHTS))
    if not path.is_file():
        raise InputError(f"{path}: no default weights are installed; pass --model CHECKPOINT")
    return path


@dataclass(frozen=True)
class StripResult:
    """What :func:`strip` did: the mode used, brain volume in ml and seconds taken."""

    mode: str
    brain_ml: float
    seconds: float


def brain_mask(
    volume: Volume,
    model,
    info: dict,
    mode: str = "auto",
    postprocessing: str = "tight",
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, str]:
    """Boolean brain mask on ``volume``'s grid and the geometry mode used."""
    image = normalise(volume.data, volume.path)
    resolved = choose_mode(volume, mode)
    geometry = plan_geometry(volume, image, int(info["input_size"]), float(info["fov_mm"]), resolved)
    prob = predict(model, to_grid(image, geometry), torch.device(device))
    grid_mask = postprocess(prob, postprocessing)
    if not grid_mask.any():
        return np.zeros(volume.data.shape, bool), resolved
    return finish_on_input(to_input(grid_mask.astype(np.float32), geometry)), resolved


def strip(
    image_path: str | Path,
    mask_path: str | Path | None,
    stripped_path: str | Path | None = None,
    model_path: str | Path | None = None,
    mode: str = "auto",
    device: str = "auto",
    postprocessing: str = "tight",
    threads: int | None = None,
) -> StripResult:
    """Write the brain mask of ``image_path`` to ``mask_path`` (uint8 {0,1}) on the input's grid with the
    input's affine, and the input times the mask to ``stripped_path`` if given. The input is only read."""
    t0 = time.perf_counter()
    if mask_path is None and stripped_path is None:
        raise InputError(f"{image_path}: give a mask output (-m) and/or a stripped output (-o)")
    for out in (mask_path, stripped_path):
        if out is not None:
            _check_output(Path(out), Path(image_path))
    if threads:
        torch.set_num_threads(int(threads))
    volume = load_volume(image_path)
    dev = resolve_device(device)
    model, info = load_model(model_path or default_model_path(), dev)
    mask, resolved = brain_mask(volume, model, info, mode, postprocessing, dev)
    if mask_path is not None:
        save_like(mask.astype(np.uint8), volume, mask_path, dtype=np.uint8)
    if stripped_path is not None:
        stripped = np.where(mask, np.nan_to_num(volume.data), 0).astype(np.float32)
        save_like(stripped, volume, stripped_path, dtype=np.float32)
    brain_ml = float(mask.sum() * np.prod(volume.zooms) / 1000.0)
    return StripResult(resolved, brain_ml, time.perf_counter() - t0)


def _check_output(out: Path, image: Path) -> None:
    if not suffix_of(out):
        raise InputError(f"{out}: unknown output format; use .nii.gz, .nii, .mgz or .mgh")
    if out.exists() and image.exists() and out.resolve() == image.resolve():
        raise InputError(f"{out}: output would overwrite the input")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{out}: output directory {parent} does not exist")
