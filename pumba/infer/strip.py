"""Skull stripping of one scan: read, reorder to RAS, normalise, resample onto the network grid, predict,
post-process, map back onto the input's grid, write the mask (and optionally the stripped image)
atomically."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from pumba.infer.cascade import refine
from pumba.infer.orientation import to_canonical
from pumba.infer.postprocess import finish_on_input, postprocess
from pumba.infer.predict import predict
from pumba.infer.preprocess import choose_mode, mask_to_input, normalise, plan_geometry, to_grid
from pumba.io import InputError, Volume, atomic_output, load_volume, save_like, suffix_of
from pumba.model.checkpoint import load_model
from pumba.model.train import resolve_device

DEFAULT_WEIGHTS = "pumba-v1-cascade.pt"


def default_model_path() -> Path:
    """The release weights shipped with the package (``pumba/weights/pumba-v1-cascade.pt``: pumba-v1's
    whole-head model with the cascade's fine stage; ``pumba-v1.pt`` alone stays loadable by ``--model``)."""
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


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. a SLURM or taskset allocation)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def brain_mask(
    volume: Volume,
    model,
    info: dict,
    mode: str = "auto",
    postprocessing: str = "tight",
    device: torch.device | str = "cpu",
    tta: bool = True,
) -> tuple[np.ndarray, str]:
    """Boolean brain mask on ``volume``'s grid and the geometry mode used.

    The data are first reordered to the closest RAS+ voxel order (flips and transposes only), so the result
    does not depend on how the scan was stored; the mask is reordered back onto the input's grid. ``tta``
    averages the coarse network's output over the 8 flips of its input (the fine stage runs once).

    With a cascade (``info["refine"]``, :mod:`pumba.infer.cascade`) the coarse mask is the prior of the fine
    stage, whose brain probability on the twice finer grid is mapped back and cut at 0.5. The mask is solid
    either way (:func:`pumba.infer.postprocess.finish_on_input`).
    """
    canonical, reorientation = to_canonical(volume)
    image = normalise(canonical.data, volume.path)
    resolved = choose_mode(canonical, mode, image)
    fov = float(info["fov_mm"])
    refine_with = info.get("refine")
    fine_image = fine_geometry = None
    if refine_with is not None:
        fine_geometry = plan_geometry(canonical, image, int(refine_with[1]["grid_size"]), fov, resolved)
        fine_image = to_grid(image, fine_geometry)
    geometry = plan_geometry(canonical, image, int(info["input_size"]), fov, resolved)
    grid_image = to_grid(image, geometry, overwrite=True)
    del image
    grid_mask = postprocess(predict(model, grid_image, torch.device(device), tta), postprocessing)
    if not grid_mask.any():
        return np.zeros(volume.data.shape, bool), resolved
    if refine_with is not None:
        prob = refine(refine_with[0], fine_image, grid_mask, torch.device(device))
        grid_mask, geometry = prob, fine_geometry
    mask = finish_on_input(mask_to_input(grid_mask, geometry), canonical.zooms)
    return np.ascontiguousarray(reorientation.back(mask)), resolved


def strip(
    image_path: str | Path,
    mask_path: str | Path | None,
    stripped_path: str | Path | None = None,
    model_path: str | Path | None = None,
    mode: str = "auto",
    device: str = "auto",
    postprocessing: str = "tight",
    threads: int | None = None,
    tta: bool = True,
) -> StripResult:
    """Write the brain mask of ``image_path`` to ``mask_path`` (uint8 {0,1}) on the input's grid with the
    input's affine, and the input times the mask to ``stripped_path`` (float32; NaN and Inf become 0)
    if given.

    The input is only read. Outputs are written to temporary files beside them and renamed only when all
    of them are written: an existing output is replaced whole or left as it was. ``threads`` (default: the
    cores this process may use, :func:`available_cores`) sets torch's CPU threads; ``tta`` averages over the 8
    flips of the network's input.
    """
    t0 = time.perf_counter()
    image_path = Path(image_path)
    outputs = [Path(p) for p in (mask_path, stripped_path) if p is not None]
    if not outputs:
        raise InputError(f"{image_path}: give a mask output (-m) and/or a stripped output (-o)")
    _check_outputs(outputs, image_path)
    if threads is not None and threads < 1:
        raise InputError(f"--threads {threads}: need at least one thread")
    torch.set_num_threads(threads or available_cores())
    volume = load_volume(image_path)
    dev = resolve_device(device)
    model, info = load_model(model_path or default_model_path(), dev)
    mask, resolved = brain_mask(volume, model, info, mode, postprocessing, dev, tta)
    with contextlib.ExitStack() as renames:
        if mask_path is not None:
            tmp = renames.enter_context(atomic_output(mask_path))
            save_like(mask.astype(np.uint8), volume, tmp, dtype=np.uint8)
        if stripped_path is not None:
            # the input's copy, zeroed outside the brain and where not finite, in place (one full-size copy)
            stripped = np.array(volume.data, dtype=np.float32)
            np.nan_to_num(stripped, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
            stripped[~mask] = 0
            tmp = renames.enter_context(atomic_output(stripped_path))
            save_like(stripped, volume, tmp, dtype=np.float32)
    brain_ml = float(mask.sum() * np.prod(volume.zooms) / 1000.0)
    return StripResult(resolved, brain_ml, time.perf_counter() - t0)


def _check_outputs(outputs: list[Path], image: Path) -> None:
    for out in outputs:
        if not suffix_of(out):
            raise InputError(f"{out}: unknown output format; use .nii.gz, .nii, .mgz or .mgh")
        if out.is_dir():
            raise InputError(f"{out}: is a directory; give an output file name")
        if _same_file(out, image):
            raise InputError(f"{out}: output would overwrite the input; choose another name")
        parent = out.parent if str(out.parent) else Path(".")
        if not parent.is_dir():
            raise InputError(f"{out}: output directory {parent} does not exist")
        if not os.access(parent, os.W_OK):  # before the work, not after it
            raise InputError(f"{out}: output directory {parent} is not writable")
    if len(outputs) == 2 and _same_file(*outputs):
        raise InputError(f"{outputs[1]}: the mask (-m) and the stripped image (-o) must be different files")


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (through links too); paths that do not exist yet compare by name."""
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()
