"""Intensity normalisation and the two geometry modes that bring a scan onto the network's grid.

``transform`` (human-sized heads): resample in world space to ``fov_mm / size`` mm isotropic voxels on a
``size^3`` grid aligned with the world (RAS) axes and centred on the head:
the geometry of the synthetic world.
``resize``: stretch the field of view, axis by axis, to ``size^3``: a grid aligned with the world axes, as
long along each as the field of view is along the voxel axis closest to it, centred where the field of view
is. For a scan whose voxel axes are the world's (after :mod:`pumba.infer.orientation` reorders them) that is
the field of view itself; for an oblique or sheared one it is the same box turned square to the world, so that
the mask does not depend on how the head sits on the voxel grid. It reads the voxel sizes only to know the
grid's directions in the world: a header scaled 10x (rodent headers often are, so that human tools accept
them) changes nothing, and it works whatever the species.

``auto`` picks ``resize`` when the head fills the field of view (its bounding box spans at least
``HEAD_FILLS_FOV`` of it along every world axis), as it does in almost every scan, of any species, and as the
synthetic heads fill theirs; and when the field of view is too small for a human head (``RESIZE_BELOW_MM``).
It picks ``transform`` for a head small in a large field of view (neck, shoulders, a wide localiser), which
``resize`` would shrink.

Both give a 4x4 matrix ``grid_to_input`` that maps network-grid voxel indices to input voxel indices, used to
go there (resampling the image) and back (resampling the prediction onto the input's grid). What both read of
the head, its extent and its centre, is measured along the world axes too (:func:`head_box_world`).
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


def head_box_world(volume: Volume, normalised: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The world (mm) bounding box of the head's voxel centres along the world axes: (low, high) corners.

    Head voxels are those of ``normalised`` (:func:`normalise` of ``volume``'s data) above ``HEAD_LEVEL``;
    None when there are fewer than 10. Exact for any affine: the extremes of the world coordinates are
    found among the head's outer voxels (the head less its erosion). For a volume whose voxel axes are the
    world's, it is the voxel bounding box mapped to the world.
    """
    head = normalised > HEAD_LEVEL
    box = bounding_box(head) if np.count_nonzero(head) >= 10 else None
    if box is None:
        return None
    part = head[box]
    outer = part & ~ndimage.binary_erosion(part, border_value=0)
    index = np.argwhere(outer) + np.array([b.start for b in box])
    world = index @ volume.affine[:3, :3].T + volume.affine[:3, 3]
    return world.min(axis=0), world.max(axis=0)


def along_world_axes(volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    """The field of view's length (mm) and the voxel size (mm) along each world axis (R, A, S): those of the
    voxel axis closest to it (nibabel's ``io_orientation``; after :mod:`pumba.infer.orientation` reorders
    a volume, voxel axis i is the one closest to world axis i)."""
    from nibabel.orientations import io_orientation

    ornt = io_orientation(volume.affine)
    world_axis = ornt[:, 0]
    if np.isnan(world_axis).any():  # an axis io_orientation cannot attribute: keep the voxel order
        world_axis = np.arange(3.0)
    lengths, zooms = np.empty(3), np.empty(3)
    lengths[world_axis.astype(int)] = field_of_view_mm(volume)
    zooms[world_axis.astype(int)] = volume.zooms
    return lengths, zooms


def head_extent(volume: Volume, normalised: np.ndarray) -> np.ndarray:
    """Fraction of the field of view that the head's bounding box spans along each world axis (0 if no head).

    Along world axis i: the head's world extent plus one voxel, over the field of view's length along the
    voxel axis closest to it (for a volume whose voxel axes are the world's: the voxels the head's bounding
    box spans over the voxels there are). ``normalised`` is :func:`normalise` of ``volume``'s data.
    """
    box = head_box_world(volume, normalised)
    if box is None:
        return np.zeros(normalised.ndim)
    low, high = box
    lengths, zooms = along_world_axes(volume)
    return (high - low + zooms) / lengths


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
    if normalised is not None and head_extent(volume, normalised).min() >= HEAD_FILLS_FOV:
        return "resize"
    return "transform"


def plan_geometry(volume: Volume, normalised: np.ndarray, size: int, fov_mm: float, mode: str) -> Geometry:
    """The network grid for ``volume`` in ``mode`` ('transform' or 'resize'), square to the world axes.

    ``resize``: voxels of (field of view's length along each axis) / ``size`` mm, centred on the field of
    view's centre; for a volume whose voxel axes are the world's, grid index g covers input voxels
    [g*scale, (g+1)*scale) with scale = shape / size. ``transform``: ``fov_mm / size`` mm isotropic voxels
    centred on the head's world bounding box (on the field of view's centre when no head is found).
    """
    fov_centre = volume.affine @ np.append((np.asarray(volume.data.shape) - 1) / 2, 1.0)
    if mode == "resize":
        spacing = along_world_axes(volume)[0] / size
        centre = fov_centre[:3]
    else:
        spacing = np.full(3, fov_mm / size)
        box = head_box_world(volume, normalised)
        centre = fov_centre[:3] if box is None else (box[0] + box[1]) / 2
    grid_to_world = np.eye(4)
    grid_to_world[:3, :3] = np.diag(spacing)
    grid_to_world[:3, 3] = centre - spacing * (size - 1) / 2
    m = np.linalg.inv(volume.affine) @ grid_to_world
    return Geometry(mode, size, m, tuple(volume.data.shape))


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
    _zero_beyond_the_edge(out, geometry, m[:3, :3], m[:3, 3], normalised.shape)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _edge_mode(geometry: Geometry) -> str:
    """How resampling treats points past the outermost voxel centres.

    In ``resize`` mode the grid and the input span the same field of view, but their outermost voxel
    centres differ by half a voxel: 'nearest' gives those points the edge's value (scipy's 'constant'
    would give 0 and lose a brain that touches the field of view's edge). In ``transform`` mode the grid
    extends past the input (and the reverse): outside is background, 0.
    """
    return "nearest" if geometry.mode == "resize" else "constant"


def _zero_beyond_the_edge(
    values: np.ndarray,
    geometry: Geometry,
    matrix: np.ndarray,
    offset: np.ndarray,
    source_shape: tuple[int, ...],
) -> None:
    """Set to 0, in place, the points of a ``resize`` resampling that fall beyond the source's edge.

    'nearest' (:func:`_edge_mode`) is meant for the half voxel between the outermost voxel centres and the
    edge of the field of view. When the grid is oblique to the input (``resize`` of an oblique scan squares
    its box to the world), whole corners of the network grid lie outside the scan; there the edge's value
    would be smeared out: they are background. (The way back keeps 'nearest': an input voxel in a corner
    outside the box takes the nearest grid value, so a brain touching the field of view's edge keeps it.)
    ``values`` (axes of the output) were sampled at ``matrix @ p + offset`` of the source; points more than
    half a voxel outside ``[0, n - 1]`` along a source axis become 0. A resampling along the source's own
    axes has no such point, and nothing is computed.
    """
    if geometry.mode != "resize" or np.allclose(matrix - np.diag(np.diag(matrix)), 0.0, atol=1e-9):
        return
    axes = [np.arange(n, dtype=np.float32) for n in values.shape]
    outside = np.zeros(values.shape, dtype=bool)
    for k, n in enumerate(source_shape):
        coordinate = np.float32(offset[k])
        for j, axis in enumerate(axes):
            shape = [1] * values.ndim
            shape[j] = -1
            coordinate = coordinate + np.float32(matrix[k, j]) * axis.reshape(shape)
        outside |= (coordinate < -0.5) | (coordinate > n - 0.5)
    values[outside] = 0


def to_input(grid_values: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Resample a float map on the network grid back onto the input's grid (trilinear), float32."""
    inv = np.linalg.inv(geometry.grid_to_input)
    out = ndimage.affine_transform(
        grid_values.astype(np.float32),
        inv[:3, :3],
        offset=inv[:3, 3],
        output_shape=geometry.input_shape,
        order=1,
        mode=_edge_mode(geometry),
        cval=0.0,
    )
    return out


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
