"""From class probabilities on the network grid to one binary brain mask.

Classes: 0 background, 1 interior, 2 boundary. The training label's boundary is the *thick* boundary of the
brain mask: one voxel inside the brain's edge and one voxel outside it. Two reconstructions:

``tight`` (default): the largest connected component of the interior class, dilated by one voxel
(6-connectivity) and hole-filled. The dilation adds back the inner half of the thick boundary, so the
result is the mask the label was made from, not one voxel larger.
``pumba`` (the reference): the largest interior component, dilated by a 5^3 cube, plus the boundary-class
voxels inside that dilation. It adds both halves of the thick boundary, so it is about one voxel larger than
the brain; at 4 mm voxels that costs several Dice points (see notes/CPU-TRAINING in the team's notes).

A model trained without the boundary class (the ablation; its model file says ``boundary_class: false``)
labels the whole brain interior: both reconstructions are then its largest interior component, hole-filled.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from pumba.classes import BOUNDARY, INTERIOR

POSTPROCESS = ("tight", "pumba")


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 26-connected component of a boolean array (all False if empty)."""
    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    if n <= 1:
        return labels > 0
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == sizes.argmax()


def postprocess(prob: np.ndarray, method: str = "tight", boundary_class: bool = True) -> np.ndarray:
    """Binary mask (bool, D, H, W) from class probabilities (3, D, H, W) on the network grid;
    ``boundary_class`` false for a model trained without it (the interior class is the whole brain)."""
    if method not in POSTPROCESS:
        raise ValueError(f"post-processing {method!r}: expected one of {POSTPROCESS}")
    cls = prob.argmax(axis=0)
    core = largest_component(cls == INTERIOR)
    if not boundary_class:
        mask = core
    elif method == "tight":
        mask = ndimage.binary_dilation(core, structure=ndimage.generate_binary_structure(3, 1))
    else:
        grown = ndimage.binary_dilation(core, structure=np.ones((5, 5, 5), bool))
        mask = core | (grown & (cls == BOUNDARY))
    return ndimage.binary_fill_holes(mask)


def bounding_box(mask: np.ndarray) -> tuple[slice, ...] | None:
    """Slices of the smallest box holding every True voxel of ``mask`` (None if there is none)."""
    box = []
    for axis in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        if hit.size == 0:
            return None
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(box)


THICK_SLICES = 2.0
"""A scan whose largest voxel edge is at least this many times its smallest has thick slices along that
axis."""


def finish_on_input(mask_on_input: np.ndarray, zooms: Sequence[float] | None = None) -> np.ndarray:
    """A solid mask from a mask resampled onto the input grid: threshold 0.5, the largest 26-connected
    component, every hole filled in 3-D; with thick slices (``zooms``, mm per voxel axis, the largest at least
    :data:`THICK_SLICES` times the smallest) also every hole within each slice across the thick axis (filled
    in
    2-D, then in 3-D again: sealing a slice can enclose a cavity). The result is one component with no hole.

    Works inside the mask's bounding box: the same result (a hole cannot touch the box's faces without
    reaching the background around it), with a fraction of the memory when the brain is small in a large
    field of view (the component labels are int32, four bytes per voxel).
    """
    mask = mask_on_input > 0.5
    box = bounding_box(mask)
    if box is None:
        return mask
    solid = ndimage.binary_fill_holes(largest_component(mask[box]))
    if zooms is not None and max(zooms) >= THICK_SLICES * min(zooms):
        axis = int(np.argmax(zooms))
        for k in range(solid.shape[axis]):
            index = tuple(k if a == axis else slice(None) for a in range(solid.ndim))
            solid[index] = ndimage.binary_fill_holes(solid[index])
        solid = ndimage.binary_fill_holes(solid)
    mask[box] = solid
    return mask


def apply_border(mask: np.ndarray, zooms: Sequence[float], border_mm: float) -> np.ndarray:
    """The mask grown (``border_mm`` > 0) or shrunk (< 0) by a distance in mm, from a Euclidean distance
    transform on the voxel grid with the voxel sizes ``zooms`` (mm along the mask's axes (I, J, K)), not by
    voxel dilation: grown, it holds every voxel whose centre is within ``border_mm`` of a brain voxel's
    centre; shrunk, every brain voxel whose centre is more than ``|border_mm|`` plus half the smallest voxel
    size from every non-brain voxel's centre (the edge lies between the last brain and the first non-brain
    centres), so that a ball of radius r becomes one of radius r + ``border_mm`` either way. The result is
    made solid again (the largest 26-connected component, holes filled in 3-D).

    Works in the mask's bounding box padded by the border (plus one voxel), so a small brain in a large field
    of view costs little memory (the distance map is float64: eight bytes per voxel of that box). A new bool
    array of ``mask``'s shape; ``mask`` is not modified; 0 mm returns a copy.
    """
    mask = np.asarray(mask, dtype=bool)
    if border_mm == 0 or not mask.any():
        return mask.copy()
    zooms = np.asarray(zooms, dtype=float)
    box = bounding_box(mask)
    pad = np.ceil(abs(border_mm) / zooms).astype(int) + 1 if border_mm > 0 else np.ones(3, int)
    lo = [max(0, b.start - int(p)) for b, p in zip(box, pad, strict=True)]
    hi = [min(n, b.stop + int(p)) for b, n, p in zip(box, mask.shape, pad, strict=True)]
    region = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    # pad by one voxel of background so that a mask touching the field of view's edge still has an outside
    part = np.pad(mask[region], 1)
    if border_mm > 0:
        grown = ndimage.distance_transform_edt(~part, sampling=zooms) <= border_mm
    else:
        grown = ndimage.distance_transform_edt(part, sampling=zooms) > -border_mm + zooms.min() / 2
    grown = grown[1:-1, 1:-1, 1:-1]
    out = np.zeros_like(mask)
    if grown.any():
        out[region] = ndimage.binary_fill_holes(largest_component(grown))
    return out
