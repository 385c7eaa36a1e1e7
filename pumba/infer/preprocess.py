"""Intensity normalisation and the two geometry modes that bring a scan onto the network's grid.

``transform`` (human-sized heads): resample in world space to ``fov_mm / size`` mm isotropic voxels on a
``size^3`` grid aligned with the world (RAS) axes and centred on the head:
the geometry of the synthetic world.
``resize``: stretch the whole field of view, axis by axis, to ``size^3``. It does not read the voxel sizes, so
it works whatever the species and whatever the header says (rodent headers are often scaled 10x so that
human tools accept them). ``auto`` picks ``resize`` when the head fills the field of view (its bounding box
spans at least ``HEAD_FILLS_FOV`` of it along every axis), as it does in almost every scan, of any species,
and as the synthetic heads fill theirs; and when the field of view is too small for a human head
(``RESIZE_BELOW_MM``). It picks ``transform`` for a head small in a large field of view (neck, shoulders, a
wide localiser), which ``resize`` would shrink.

Both give a 4x4 matrix ``grid_to_input`` that maps network-grid voxel indices to input voxel indices, used to
go there (resampling the image) and back (resampling the prediction onto the input's grid).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from pumba.infer.postprocess import bounding_box
from pumba.io import InputError, Volume

RESIZE_BELOW_MM = 150.0
"""A field of view whose largest extent is below this (mm) cannot hold a human head: resize it."""
HEAD_FILLS_FOV = 0.5
"""``auto`` resizes when the head's bounding box spans at least this fraction of the field of view."""
HEAD_LEVEL = 0.1
"""Head voxels: above this fraction of the normalised intensity range (1st-99th percentile)."""

MODES = ("auto", "transform", "resize")


@dataclass(frozen=True)
class Geometry:
    """How the network grid sits in the input.

    Attributes:
        mode: 'transform' or 'resize'.
        size: network grid edge in voxels.
        grid_to_input: 4x4 matrix, network voxel index (homogeneous) -> input voxel index.
        input_shape: shape (I, J, K) of the input.
    """

    mode: str
    size: int
    grid_to_input: np.ndarray
    input_shape: tuple[int, int, int]


def normalise(data: np.ndarray, path: object = "image") -> np.ndarray:
    """Scale to [0, 1] between the 1st and 99th percentiles of the finite voxels, clipped.

    Returns a new float32 array of ``data``'s shape (any real dtype in; ``data`` is not modified).
    Non-finite voxels (NaN, Inf) become 0. Raises InputError when nothing is left to strip: an image that
    is all non-finite, all zero or constant. Memory: about two float32 copies of ``data`` at the peak.
    """
    data = np.asarray(data)
    if data.dtype != np.float32:
        data = data.astype(np.float32)
    finite = np.isfinite(data)
    all_finite = bool(finite.all())
    if not all_finite and not finite.any():
        raise InputError(f"{path}: every voxel is NaN or Inf; nothing to strip")
    # a private flat copy that np.percentile may partition in place (no second copy)
    values = np.array(data, order="C").reshape(-1) if all_finite else data[finite]
    lo, hi = (np.float32(v) for v in np.percentile(values, [1, 99], overwrite_input=True))
    if not hi - lo > 0:
        lo, hi = values.min(), values.max()
    del values
    if not hi - lo > 0:
        what = "all zero" if hi == 0 else f"constant ({hi:g})"
        raise InputError(f"{path}: image is {what}; nothing to strip")
    out = np.array(data, order="C")
    if not all_finite:
        out[np.logical_not(finite, out=finite)] = lo
    del finite
    # in place and in float32: a 512^3 input costs 512 MiB per copy
    out -= lo
    out /= hi - lo
    np.clip(out, 0.0, 1.0, out=out)
    return out


def field_of_view_mm(volume: Volume) -> np.ndarray:
    """Extent of the field of view along each voxel axis, in mm."""
    return np.asarray(volume.data.shape) * volume.zooms


def head_extent(normalised: np.ndarray) -> np.ndarray:
    """Fraction of the field of view that the head's bounding box spans along each voxel axis (0 if no head).

    ``normalised`` is the image from :func:`normalise`; head voxels are those above ``HEAD_LEVEL``.
    """
    box = bounding_box(normalised > HEAD_LEVEL)
    if box is None:
        return np.zeros(normalised.ndim)
    return np.array([(b.stop - b.start) / n for b, n in zip(box, normalised.shape, strict=True)])


def choose_mode(volume: Volume, mode: str = "auto", normalised: np.ndarray | None = None) -> str:
    """Resolve ``auto`` to 'transform' or 'resize' (see the module's docstring).

    ``normalised`` (the :func:`normalise`-d data of ``volume``) lets ``auto`` see how much of the field of
    view the head fills; without it only the field of view's size decides.
    """
    if mode not in MODES:
        raise InputError(f"--mode {mode}: expected one of {', '.join(MODES)}")
    if mode != "auto":
        return mode
    if field_of_view_mm(volume).max() < RESIZE_BELOW_MM:
        return "resize"
    if normalised is not None and head_extent(normalised).min() >= HEAD_FILLS_FOV:
        return "resize"
    return "transform"


def plan_geometry(volume: Volume, normalised: np.ndarray, size: int, fov_mm: float, mode: str) -> Geometry:
    """The network grid for ``volume`` in ``mode`` ('transform' or 'resize')."""
    shape = np.asarray(volume.data.shape, dtype=float)
    if mode == "resize":
        scale = shape / size
        m = np.eye(4)
        m[:3, :3] = np.diag(scale)
        # voxel centres: grid index g covers input [g*scale, (g+1)*scale) -> centre at (g + 0.5)*scale - 0.5
        m[:3, 3] = 0.5 * scale - 0.5
        return Geometry("resize", size, m, tuple(volume.data.shape))
    voxel = fov_mm / size
    centre_world = volume.affine @ np.append(_head_centre(normalised), 1.0)
    grid_to_world = np.eye(4)
    grid_to_world[:3, :3] = np.eye(3) * voxel
    grid_to_world[:3, 3] = centre_world[:3] - voxel * (size - 1) / 2
    m = np.linalg.inv(volume.affine) @ grid_to_world
    return Geometry("transform", size, m, tuple(volume.data.shape))


def _head_centre(normalised: np.ndarray) -> np.ndarray:
    """Voxel coordinates of the centre of the head's bounding box (voxels above 10 % of the range)."""
    fg = normalised > HEAD_LEVEL
    box = bounding_box(fg) if np.count_nonzero(fg) >= 10 else None
    if box is None:
        return (np.asarray(normalised.shape) - 1) / 2
    return np.array([(b.start + b.stop - 1) / 2 for b in box], dtype=float)


def to_grid(normalised: np.ndarray, geometry: Geometry, overwrite: bool = False) -> np.ndarray:
    """Resample the normalised image onto the network grid (trilinear, anti-aliased when shrinking).

    Returns float32 (size, size, size) in [0, 1]; outside the input is 0. ``overwrite`` lets the
    anti-aliasing filter work in place in ``normalised`` (float32), saving one full-size copy.
    """
    m = geometry.grid_to_input
    # input voxels per grid voxel along each input axis: smooth before sampling to avoid aliasing
    step = np.sqrt((m[:3, :3] ** 2).sum(axis=1))
    sigma = np.where(step > 1, 0.42 * step, 0.0)
    src = normalised
    if np.any(sigma > 0):
        in_place = overwrite and normalised.dtype == np.float32
        src = ndimage.gaussian_filter(normalised, sigma, output=normalised if in_place else None)
    out = ndimage.affine_transform(
        src,
        m[:3, :3],
        offset=m[:3, 3],
        output_shape=(geometry.size,) * 3,
        order=1,
        mode=_edge_mode(geometry),
        cval=0.0,
    )
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _edge_mode(geometry: Geometry) -> str:
    """How resampling treats points past the outermost voxel centres.

    In ``resize`` mode the grid and the input span the same field of view, but their outermost voxel
    centres differ by half a voxel: 'nearest' gives those points the edge's value (scipy's 'constant'
    would give 0 and lose a brain that touches the field of view's edge). In ``transform`` mode the grid
    extends past the input (and the reverse): outside is background, 0.
    """
    return "nearest" if geometry.mode == "resize" else "constant"


def to_input(grid_values: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Resample a float map on the network grid back onto the input's grid (trilinear), float32."""
    inv = np.linalg.inv(geometry.grid_to_input)
    return ndimage.affine_transform(
        grid_values.astype(np.float32),
        inv[:3, :3],
        offset=inv[:3, 3],
        output_shape=geometry.input_shape,
        order=1,
        mode=_edge_mode(geometry),
        cval=0.0,
    )


SLAB_VOXELS = 1 << 23
"""Voxels per slab of :func:`mask_to_input` (32 MiB of float32)."""


def mask_to_input(grid_mask: np.ndarray, geometry: Geometry) -> np.ndarray:
    """A binary mask on the network grid resampled onto the input's grid: trilinear, then > 0.5 (bool).

    The same as ``to_input(grid_mask) > 0.5``, computed in slabs along the first input axis so that the
    float map never exists at full size (512 MiB for a 512^3 input).
    """
    inv = np.linalg.inv(geometry.grid_to_input)
    values = np.asarray(grid_mask, dtype=np.float32)
    shape = geometry.input_shape
    out = np.empty(shape, dtype=bool)
    depth = max(1, SLAB_VOXELS // (shape[1] * shape[2]))
    for start in range(0, shape[0], depth):
        stop = min(start + depth, shape[0])
        # output voxel (start + a, j, k) of the whole map is voxel (a, j, k) of this slab
        offset = inv[:3, 3] + inv[:3, 0] * start
        part = ndimage.affine_transform(
            values,
            inv[:3, :3],
            offset=offset,
            output_shape=(stop - start, *shape[1:]),
            order=1,
            mode=_edge_mode(geometry),
            cval=0.0,
        )
        np.greater(part, 0.5, out=out[start:stop])
    return out
