"""Skull stripping of one scan: read, reorder to RAS, normalise, resample onto the network grid, predict,
post-process, map back onto the input's grid, write the mask (and optionally the stripped image)
atomically.

Before any work, :func:`strip` refuses an image with nothing head-like in it (too few voxels along two axes,
or only a handful of voxels that differ from the background), and afterwards one whose mask is empty; it
warns on a slab (few slices, or a thin field of view). See :func:`head_problems`."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from pumba.device import resolve_device  # noqa: F401  (the one resolver, re-exported: tests/test_device.py)
from pumba.infer.cascade import refine
from pumba.infer.orientation import to_canonical
from pumba.infer.postprocess import finish_on_input, postprocess
from pumba.infer.predict import brain_probability, predict
from pumba.infer.preprocess import choose_mode, mask_to_input, normalise, plan_geometry, to_grid, to_input
from pumba.io import (
    InputError,
    Volume,
    atomic_outputs,
    check_output_file,
    load_volume,
    save_like,
    suffix_of,
)

DEFAULT_WEIGHTS = "pumba-v2.pt"

MIN_HEAD_VOXELS = 16
"""An image needs at least this many voxels along two of its axes to hold a head worth stripping."""
MIN_STANDOUT_VOXELS = 64
"""An image needs at least this many voxels that differ from its background value (its minimum, or on a
bright background its maximum) to hold anything head-like."""
SLAB_SLICES = 8
"""Fewer voxels than this along an axis: a slab, not a whole head (warned)."""
SLAB_EXTENT = 0.25
"""A field of view thinner than this fraction of its largest extent (mm) along an axis: a slab (warned)."""


def default_model_path() -> Path:
    """The release weights shipped with the package (``pumba/weights/pumba-v2.pt``: pumba-v2's whole-head
    model with the cascade's fine stage; ``pumba-v1.pt`` stays loadable by ``--model``)."""
    path = Path(str(resources.files("pumba") / "weights" / DEFAULT_WEIGHTS))
    if not path.is_file():
        raise InputError(f"{path}: no default weights are installed; pass --model CHECKPOINT")
    return path


@dataclass(frozen=True)
class StripResult:
    """What :func:`strip` did: the mode used, brain volume in ml, seconds taken, warnings (one line each,
    naming the file) about an input it stripped but doubts, such as a slab, and the quality score."""

    mode: str
    brain_ml: float
    seconds: float
    warnings: tuple[str, ...] = ()
    qc: object = None
    """The mask's quality score (:class:`pumba.infer.qc.QCResult`), None when not computed."""


def head_problems(volume: Volume) -> list[str]:
    """Warnings about an image that may not be a whole head (one line each, naming the file): a slab, with
    fewer than :data:`SLAB_SLICES` voxels along an axis or a field of view thinner than :data:`SLAB_EXTENT` of
    its largest extent.

    Raises:
        InputError: nothing head-like to strip: fewer than :data:`MIN_HEAD_VOXELS` voxels along two axes
            (an 8 x 8 x 8 image), or fewer than :data:`MIN_STANDOUT_VOXELS` voxels that differ from the
            background (a single bright voxel).
    """
    path, shape = volume.path, volume.data.shape
    size = " x ".join(str(n) for n in shape)
    if sorted(shape)[-2] < MIN_HEAD_VOXELS:
        raise InputError(
            f"{path}: image is {size} voxels, too small to hold a head (need at least {MIN_HEAD_VOXELS} "
            "voxels along two axes); nothing to strip"
        )
    data = volume.data
    lo, hi = np.fmin.reduce(data, axis=None), np.fmax.reduce(data, axis=None)
    if np.isfinite(lo) and np.isfinite(hi) and hi > lo:  # else normalise() says what is wrong
        standout = int(min(np.count_nonzero(data > lo), np.count_nonzero(data < hi)))
        if standout < MIN_STANDOUT_VOXELS:
            voxels = "1 voxel differs" if standout == 1 else f"{standout} voxels differ"
            raise InputError(
                f"{path}: only {voxels} from the background, nothing head-like; nothing to strip"
            )
    extent = np.asarray(shape) * volume.zooms
    warnings = []
    for axis, (n, mm) in enumerate(zip(shape, extent, strict=True)):
        if n < SLAB_SLICES or mm < SLAB_EXTENT * extent.max():
            warnings.append(
                f"{path}: a slab, not a whole head ({n} slices, {mm:.0f} mm along voxel axis {'ijk'[axis]}, "
                f"{extent.max():.0f} mm across); the network was trained on whole heads: check the mask"
            )
            break
    return warnings


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. a SLURM or taskset allocation)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@dataclass
class Prediction:
    """What the model says about one volume, on the input's grid and in its voxel order (I, J, K).

    Attributes:
        mask: the solid brain mask (bool), before any ``--border``.
        mode: the geometry used, 'transform' or 'resize'.
        prob: brain probability (float32 in [0, 1]) when asked for, else None: a cascade's fine-stage
            probability (the mask is its 0.5 level made solid), or the whole-head model's interior plus
            half its boundary class (:func:`pumba.infer.predict.brain_probability`).
        flips: with test-time flips and when asked for, each of the 8 flipped passes' brain probability on
            the whole-head model's grid (float32 (S, S, S), flipped back); else empty.
    """

    mask: np.ndarray
    mode: str
    prob: np.ndarray | None = None
    flips: tuple[np.ndarray, ...] = ()


def brain_mask(
    volume: Volume,
    model,
    info: dict,
    mode: str = "auto",
    postprocessing: str = "tight",
    device: torch.device | str = "cpu",
    tta: bool = True,
) -> tuple[np.ndarray, str]:
    """Boolean brain mask on ``volume``'s grid and the geometry mode used (:func:`predict_brain`'s mask and
    mode)."""
    out = predict_brain(volume, model, info, mode, postprocessing, device, tta)
    return out.mask, out.mode


def predict_brain(
    volume: Volume,
    model,
    info: dict,
    mode: str = "auto",
    postprocessing: str = "tight",
    device: torch.device | str = "cpu",
    tta: bool = True,
    with_prob: bool = False,
    with_flips: bool = False,
) -> Prediction:
    """The brain mask of ``volume`` on its grid, and optionally the brain probability there and each test-time
    flip's brain probability on the network grid (:class:`Prediction`).

    The data are first reordered to the closest RAS+ voxel order (flips and transposes only), so the result
    does not depend on how the scan was stored; the outputs are reordered back onto the input's grid.
    ``tta`` averages the coarse network's output over the 8 flips of its input (the fine stage runs once).

    With a cascade (``info["refine"]``, :mod:`pumba.infer.cascade`) the coarse mask is the prior of the fine
    stage, whose brain probability on the twice finer grid is mapped back and cut at 0.5. The mask is solid
    either way (:func:`pumba.infer.postprocess.finish_on_input`). ``with_prob`` costs one float32 map of the
    input's size (64 MiB for 256^3); the mask is the same with or without it.
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
    flips: list[np.ndarray] | None = [] if with_flips and tta else None
    grid_prob = predict(model, grid_image, torch.device(device), tta, flips)
    grid_mask = postprocess(grid_prob, postprocessing, info["boundary_class"])
    flips_kept = tuple(flips or ())
    if not grid_mask.any():
        empty = np.zeros(volume.data.shape, bool)
        return Prediction(
            empty, resolved, np.zeros(volume.data.shape, np.float32) if with_prob else None, flips_kept
        )
    soft = brain_probability(grid_prob)
    del grid_prob
    if refine_with is not None:
        prob = refine(refine_with[0], fine_image, grid_mask, torch.device(device))
        grid_mask, soft, geometry = prob, prob, fine_geometry
    mask = finish_on_input(mask_to_input(grid_mask, geometry), canonical.zooms)
    prob_on_input = None
    if with_prob:
        prob_on_input = np.ascontiguousarray(reorientation.back(np.clip(to_input(soft, geometry), 0.0, 1.0)))
    return Prediction(np.ascontiguousarray(reorientation.back(mask)), resolved, prob_on_input, flips_kept)


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
    *,
    prob_path: str | Path | None = None,
    border_mm: float = 0.0,
    sidecar_path: str | Path | None = None,
    qc: bool = True,
    qc_threshold: float | None = None,
    stripper=None,
    extra_sidecar: dict | None = None,
    side_files: dict | None = None,
) -> StripResult:
    """Write the brain mask of ``image_path`` to ``mask_path`` (uint8 {0,1}) on the input's grid with the
    input's affine, the input times the mask to ``stripped_path`` (float32, or float64 for grey values
    beyond float32's range; NaN and Inf become 0) and the brain probability to ``prob_path`` (float32 in
    [0, 1]) if given; ``border_mm`` grows (> 0) or shrinks (< 0) the mask by a distance in mm
    (:func:`pumba.infer.postprocess.apply_border`); ``qc`` scores the mask (:mod:`pumba.infer.qc`);
    ``sidecar_path`` gets a JSON record of the run (input and its sha256, tool, version, weights' sha256,
    every setting, the geometry, the brain volume, the QC score and flag; ``extra_sidecar``'s keys first);
    ``side_files`` (path -> JSON object) are written just before it (a BIDS sidecar for each other image).

    The input is only read. The images are written to temporary files beside them and renamed only when all
    of them are written: an existing output is replaced whole or left as it was, and a SIGTERM or SIGINT
    while they are written leaves neither (:func:`pumba.io.atomic_outputs`); the sidecar is written last, so
    a sidecar means the run completed. ``stripper`` (a :class:`pumba.infer.api.Stripper`) reuses a loaded
    model; without it one is made from ``model_path``, ``mode``, ``device``, ``postprocessing``, ``threads``
    (default: the cores this process may use, :func:`available_cores`), ``tta`` and ``qc_threshold``.

    Raises:
        InputError: an unusable input or output path (before any work), nothing head-like in the image
            (:func:`head_problems`), or no brain found (an empty mask); nothing is written then.
    """
    from pumba.infer.api import Stripper
    from pumba.io import file_digest

    t0 = time.perf_counter()
    image_path = Path(image_path)
    outputs = [Path(p) for p in (mask_path, stripped_path, prob_path) if p is not None]
    if not outputs:
        raise InputError(f"{image_path}: give a mask output (-m), a stripped output (-o) and/or --prob")
    _check_outputs(outputs, image_path)
    if sidecar_path is not None:
        check_output_file(sidecar_path)
    if threads is not None and threads < 1:
        raise InputError(f"--threads {threads}: need at least one thread")
    if not np.isfinite(border_mm):
        raise InputError(f"--border {border_mm}: expected a finite distance in mm")
    volume = load_volume(image_path, fit_float32=True)
    head_problems(volume)  # refuse what cannot be stripped before the model is loaded
    if stripper is None:
        from pumba.infer.qc import QC_THRESHOLD

        stripper = Stripper(
            model_path,
            mode=mode,
            postprocess=postprocessing,
            device=device,
            threads=threads,
            tta=tta,
            qc_threshold=QC_THRESHOLD if qc_threshold is None else qc_threshold,
        )
    out = stripper.strip(volume, prob=prob_path is not None, border_mm=border_mm, qc=qc)
    warnings = list(out.warnings)
    mask = out.mask_array
    with atomic_outputs(outputs) as temporaries:
        tmp = dict(zip(outputs, temporaries, strict=True))
        if mask_path is not None:
            save_like(mask.astype(np.uint8), volume, tmp[Path(mask_path)], dtype=np.uint8)
        if prob_path is not None:
            save_like(np.asarray(out.prob.dataobj), volume, tmp[Path(prob_path)], dtype=np.float32)
        if stripped_path is not None:
            stripped, dtype, note = stripped_grey_values(volume, mask, Path(stripped_path))
            warnings += [note] if note else []
            save_like(stripped, volume, tmp[Path(stripped_path)], dtype=dtype)
    seconds = time.perf_counter() - t0
    result = StripResult(out.mode, out.brain_ml, seconds, tuple(warnings), out.qc)
    if sidecar_path is not None:
        import json

        from pumba.io import write_text_atomic

        record = dict(extra_sidecar or {})
        record.update(
            {
                "Input": {"path": str(image_path), "sha256": file_digest(image_path)},
                "GeneratedBy": stripper.provenance,
                "Settings": {**stripper.settings, "border_mm": float(border_mm), "qc": bool(qc)},
                "Geometry": geometry_record(out.mode, stripper.info),
                "Outputs": {
                    k: str(v)
                    for k, v in (("mask", mask_path), ("stripped", stripped_path), ("prob", prob_path))
                    if v is not None
                },
                "BrainVolume_ml": round(out.brain_ml, 3),
                "QC": out.qc.sidecar() if out.qc is not None else None,
                "Warnings": warnings,
                "Seconds": round(seconds, 3),
            }
        )
        for path, content in (side_files or {}).items():
            write_text_atomic(path, json.dumps(content, indent=2) + "\n")
        write_text_atomic(sidecar_path, json.dumps(record, indent=2) + "\n")
    return result


def geometry_record(mode: str, info: dict) -> dict:
    """The geometry a run used, for a sidecar: the mode and the network grid(s) (voxels per edge; in
    'transform' mode also the field of view and voxel size in mm; in 'resize' the field of view is the
    input's)."""
    record: dict = {"mode": mode, "grid": int(info["input_size"])}
    refine_with = info.get("refine")
    if refine_with is not None:
        record["fine_grid"] = int(refine_with[1]["grid_size"])
    if mode == "transform":
        record["fov_mm"] = float(info["fov_mm"])
        record["voxel_mm"] = float(info["fov_mm"]) / int(info["input_size"])
        if refine_with is not None:
            record["fine_voxel_mm"] = float(info["fov_mm"]) / int(refine_with[1]["grid_size"])
    return record


def stripped_grey_values(volume: Volume, mask: np.ndarray, path: Path) -> tuple[np.ndarray, type, str]:
    """The input's grey values, zeroed outside the brain and where not finite, the dtype to write them in and
    a warning ('' if none). float32, in place in one full-size copy. A volume read with a scale
    (:attr:`pumba.io.Volume.scale`: grey values beyond float32's range) gets the file's own values, read
    again in float64, and keeps float64 where float32 cannot hold them (MGH has no float64: the scaled
    float32 values then, with a warning)."""
    if volume.scale == 1.0:
        stripped = np.array(volume.data, dtype=np.float32)
        np.nan_to_num(stripped, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        stripped[~mask] = 0
        return stripped, np.float32, ""
    grey = np.asarray(volume.image.dataobj, dtype=np.float64).reshape(volume.data.shape)
    np.nan_to_num(grey, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    grey[~mask] = 0
    magnitude = np.abs(grey[grey != 0])
    info = np.finfo(np.float32)
    if magnitude.size == 0 or (magnitude.min() >= info.tiny and magnitude.max() <= info.max):
        return grey.astype(np.float32), np.float32, ""
    if suffix_of(path) in (".nii.gz", ".nii"):
        return grey, np.float64, ""
    grey *= volume.scale
    note = f"{path}: grey values beyond float32 written times {volume.scale:g} (MGH has no float64)"
    return grey.astype(np.float32), np.float32, note


def _check_outputs(outputs: list[Path], image: Path) -> None:
    """Refuse, before the work, outputs that cannot be written: an unknown format, a directory, the input
    itself, a missing or read-only folder, a name longer than the file system allows."""
    for out in outputs:
        if not suffix_of(out):
            raise InputError(f"{out}: unknown output format; use .nii.gz, .nii, .mgz or .mgh")
        check_output_file(out)  # first (a name too long cannot even be looked up); refuses a directory too
        if _same_file(out, image):
            raise InputError(f"{out}: output would overwrite the input; choose another name")
    if len(outputs) == 2 and _same_file(*outputs):
        raise InputError(f"{outputs[1]}: the mask (-m) and the stripped image (-o) must be different files")


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (through links too); paths that do not exist yet compare by name."""
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()
