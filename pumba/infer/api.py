"""The Python API for pipelines: load the model once, strip many images in memory (nibabel in, nibabel out).

Example::

    import nibabel as nib
    from pumba.infer.api import Stripper

    stripper = Stripper()                      # the shipped weights, on a GPU when there is one
    for path in ["sub-01_T1w.nii.gz", "sub-02_T1w.nii.gz"]:
        result = stripper.strip(nib.load(path), prob=True, border_mm=1.0)
        nib.save(result.mask, path.replace("_T1w", "_desc-brain_mask"))
        print(path, result.brain_ml, result.qc.score, result.qc.flag)
    stripper.qc(nib.load("t1.nii.gz"), nib.load("other_tools_mask.nii.gz"))   # score any method's mask

``pumba strip`` (one scan or many) and ``pumba bids`` are built on :class:`Stripper`. Images are (I, J, K)
in their own voxel order; outputs are on the input's grid with the input's affine (and, for NIfTI, its
header's codes).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from pumba import __version__
from pumba.device import resolve_device
from pumba.infer import strip as _strip
from pumba.infer.postprocess import POSTPROCESS, apply_border
from pumba.infer.preprocess import MODES
from pumba.infer.qc import QC_THRESHOLD, QCResult, qc_from_prediction
from pumba.infer.strip import available_cores, default_model_path, head_problems, stripped_grey_values
from pumba.io import InputError, Volume, check_affine, file_digest, load_volume
from pumba.model.checkpoint import load_model

IN_MEMORY = Path("<in-memory image>")
"""The name errors give an image that came from no file."""


def volume_from_image(
    image: nib.spatialimages.SpatialImage | Volume | str | Path, name: str | Path | None = None
) -> Volume:
    """A :class:`pumba.io.Volume` from a nibabel image in memory (or a file name, read by
    :func:`pumba.io.load_volume`, or a Volume, returned as it is), with the checks a file gets: 3-D (a 4-D
    image of one frame is squeezed), integer or float grey values, a usable affine. ``name`` names the image
    in errors (default: its file name when nibabel knows one, else ``<in-memory image>``)."""
    if isinstance(image, Volume):
        return image
    if isinstance(image, str | Path):
        return load_volume(image, fit_float32=True)
    if name is None:
        known = image.get_filename() if hasattr(image, "get_filename") else None
        name = known or IN_MEMORY
    path = Path(name)
    shape = tuple(image.shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) == 4:
        raise InputError(f"{path}: 4-D image with {shape[3]} frames; extract one frame first")
    if len(shape) != 3 or min(shape) < 2:
        raise InputError(f"{path}: expected a 3-D image, got shape {tuple(image.shape)}")
    dtype = np.dtype(image.get_data_dtype())
    if dtype.kind not in "iuf":
        raise InputError(
            f"{path}: voxel data type {dtype} is not supported; need integer or float grey values"
        )
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        wide = np.asarray(image.dataobj).reshape(shape)
        top = np.nanmax(np.abs(wide[np.isfinite(wide)])) if np.isfinite(wide).any() else 0.0
        scale = 1.0
        if wide.dtype.itemsize > 4 and top > 0 and not (2.0**-100 <= top <= 2.0**100):
            scale = float(2.0 ** -math.floor(math.log2(top)))  # grey values beyond float32: a power of two
        data = (wide * scale if scale != 1.0 else wide).astype(np.float32)
    affine = np.asarray(image.affine, dtype=np.float64)
    check_affine(affine, path)
    return Volume(data=data, affine=affine, image=image, path=path, scale=scale)


@dataclass(frozen=True)
class StripOutput:
    """What :meth:`Stripper.strip` gives for one image (all on the input's grid, with its affine).

    Attributes:
        mask: uint8 {0, 1} image of the brain, after the border (if any).
        prob: float32 brain probability in [0, 1], when asked for (else None).
        stripped: the input's grey values times the mask (float32, or float64 for grey values beyond float32's
            range; NaN and Inf become 0), when asked for.
        mode: the geometry used ('transform' or 'resize').
        brain_ml: the mask's volume in ml.
        qc: the quality score of the mask before the border (:mod:`pumba.infer.qc`), None when not asked for.
        seconds: wall seconds of the work.
        warnings: one line each about an input stripped but doubted (a slab).
        mask_array: the mask as a bool array (I, J, K), for further work without a copy.
    """

    mask: nib.spatialimages.SpatialImage
    prob: nib.spatialimages.SpatialImage | None
    stripped: nib.spatialimages.SpatialImage | None
    mode: str
    brain_ml: float
    qc: QCResult | None
    seconds: float
    warnings: tuple[str, ...] = ()
    mask_array: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]


class Stripper:
    """Our brain extractor with its model loaded once, for many images.

    Args:
        model: model file (default: the shipped weights, :func:`pumba.infer.strip.default_model_path`).
        mode: geometry, 'auto', 'transform' or 'resize' (:mod:`pumba.infer.preprocess`).
        postprocess: 'tight' or 'pumba' (:mod:`pumba.infer.postprocess`).
        device: 'cpu', 'cuda' or 'auto'.
        threads: torch's CPU threads (default: the cores this process may use).
        tta: average the whole-head model over the 8 flips of its input.
        qc_threshold: the quality score below which a mask is flagged.

    Raises:
        InputError: an unusable model file or setting.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        mode: str = "auto",
        postprocess: str = "tight",
        device: str = "auto",
        threads: int | None = None,
        tta: bool = True,
        qc_threshold: float = QC_THRESHOLD,
    ) -> None:
        if mode not in MODES:
            raise InputError(f"--mode {mode}: expected one of {', '.join(MODES)}")
        if postprocess not in POSTPROCESS:
            raise InputError(f"--postprocess {postprocess}: expected one of {', '.join(POSTPROCESS)}")
        if threads is not None and threads < 1:
            raise InputError(f"--threads {threads}: need at least one thread")
        if not 0.0 <= qc_threshold <= 1.0:
            raise InputError(f"--qc-threshold {qc_threshold}: expected a value in [0, 1]")
        self.threads = threads or available_cores()
        torch.set_num_threads(self.threads)
        self.device = resolve_device(device)
        self.model_path = Path(model) if model is not None else default_model_path()
        self.network, self.info = load_model(self.model_path, self.device)
        self.weights_sha256 = file_digest(self.model_path)
        self.mode, self.postprocess, self.tta, self.qc_threshold = mode, postprocess, tta, qc_threshold

    @property
    def settings(self) -> dict:
        """Every setting that changes the mask (and the score's threshold), for a sidecar or a record."""
        return {
            "model": str(self.model_path),
            "mode": self.mode,
            "postprocess": self.postprocess,
            "tta": self.tta,
            "device": str(self.device.type),
            "qc_threshold": self.qc_threshold,
        }

    @property
    def provenance(self) -> dict:
        """The tool and weights behind a mask: name, version, the weights' file and sha256."""
        return {
            "Name": "pumba",
            "Version": __version__,
            "Weights": str(self.model_path),
            "WeightsSHA256": self.weights_sha256,
        }

    def predict(self, image, with_prob: bool = True, with_flips: bool = True):
        """Our model on one image (a nibabel image, a file name or a Volume): a
        :class:`pumba.infer.strip.Prediction` (mask before any border, brain probability, flips)."""
        volume = volume_from_image(image)
        return _strip.predict_brain(
            volume,
            self.network,
            self.info,
            self.mode,
            self.postprocess,
            self.device,
            self.tta,
            with_prob=with_prob,
            with_flips=with_flips,
        )

    def strip(
        self,
        image,
        *,
        prob: bool = False,
        stripped: bool = False,
        border_mm: float = 0.0,
        qc: bool = True,
    ) -> StripOutput:
        """Strip one image (a nibabel image in memory, a file name or a :class:`pumba.io.Volume`).

        ``prob`` adds the brain probability map, ``stripped`` the input times the mask; ``border_mm`` grows
        (> 0) or shrinks (< 0) the mask by that distance in mm (:func:`pumba.infer.postprocess.apply_border`);
        ``qc`` scores the mask before the border (costs one float32 map of the input's size).

        Raises:
            InputError: an unusable image (:func:`pumba.infer.strip.head_problems`), or no brain found.
        """
        t0 = time.perf_counter()
        volume = volume_from_image(image)
        warnings = head_problems(volume)
        out = self.predict(volume, with_prob=prob or qc, with_flips=qc)
        if not out.mask.any():
            raise InputError(f"{volume.path}: no brain found (the mask is empty); nothing to strip")
        score = None
        if qc:
            score = qc_from_prediction(
                volume.data, out.mask, out.prob, out.flips, volume.voxel_ml, self.qc_threshold, volume.path
            )
        mask = apply_border(out.mask, volume.zooms, border_mm) if border_mm else out.mask
        if not mask.any():
            raise InputError(
                f"{volume.path}: the border of {border_mm:g} mm leaves no brain; nothing to strip"
            )
        stripped_image = None
        if stripped:
            kind = "image.mgz" if isinstance(volume.image, nib.MGHImage) else "image.nii.gz"
            grey, dtype, note = stripped_grey_values(volume, mask, Path(kind))
            warnings += [note] if note else []
            stripped_image = like(grey, volume, dtype)
        prob_image = like(out.prob, volume, np.float32) if prob and out.prob is not None else None
        return StripOutput(
            mask=like(mask.astype(np.uint8), volume, np.uint8),
            prob=prob_image,
            stripped=stripped_image,
            mode=out.mode,
            brain_ml=float(np.count_nonzero(mask) * volume.voxel_ml),
            qc=score,
            seconds=time.perf_counter() - t0,
            warnings=tuple(warnings),
            mask_array=mask,
        )

    def qc(self, image, mask) -> QCResult:
        """The quality score of any method's ``mask`` of ``image`` (nibabel images, file names or Volumes, on
        one grid): our model runs on the image (:mod:`pumba.infer.qc`).

        Raises:
            InputError: the mask's grid differs from the image's, or an unusable image.
        """
        volume = volume_from_image(image)
        mask_volume = volume_from_image(mask)
        if mask_volume.data.shape != volume.data.shape or not np.allclose(
            mask_volume.affine, volume.affine, atol=1e-3
        ):
            raise InputError(f"{mask_volume.path}: the mask is not on the grid of {volume.path}")
        out = self.predict(volume)
        return qc_from_prediction(
            volume.data,
            mask_volume.data > 0,
            out.prob,
            out.flips,
            volume.voxel_ml,
            self.qc_threshold,
            volume.path,
        )


def like(data: np.ndarray, volume: Volume, dtype: type) -> nib.spatialimages.SpatialImage:
    """A nibabel image of ``data`` on ``volume``'s grid with its affine: NIfTI (1 or 2, with the input's
    header and its qform/sform codes, no intensity scaling) for a NIfTI input, MGH for an MGH one, else
    NIfTI-1."""
    arr = np.asarray(data, dtype=dtype)
    src = volume.image
    if isinstance(src, nib.MGHImage):
        return nib.MGHImage(arr, volume.affine)
    header = src.header if isinstance(src, nib.Nifti1Image) else None
    kind = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
    out = kind(arr, volume.affine, header=None if header is None else header.copy())
    out.set_data_dtype(arr.dtype)
    out.header.set_slope_inter(1, 0)
    qcode = int(header["qform_code"]) or 1 if header is not None else 1
    scode = int(header["sform_code"]) or 1 if header is not None else 1
    out.set_qform(volume.affine, code=qcode)
    out.set_sform(volume.affine, code=scode)
    return out
