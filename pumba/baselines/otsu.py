"""Otsu threshold + morphology: the simplest skull-stripping floor, and shared morphology helpers.

Recipe (:func:`otsu_mask`): threshold at Otsu's level; keep the largest 6-connected component;
fill holes; erode by a 2 mm ball (in world mm, whatever the voxel sizes) to cut thin bridges
between scalp and brain; keep the largest component again; dilate back by the same ball, inside
the filled foreground; fill holes. It keeps the scalp wherever the scalp touches the brain over
more than ~4 mm: it is a floor, not a method.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

EROSION_MM = 2.0


def erode_mm(mask: np.ndarray, zooms: Sequence[float], radius_mm: float) -> np.ndarray:
    """Erosion by a ball of ``radius_mm`` in world mm: the voxels whose nearest background voxel is
    farther than the radius (Euclidean distance between voxel centres, voxel sizes ``zooms``).

    The world beyond the array counts as foreground, so a brain cut by the field of view is not
    eaten from the cut. Computed with a distance transform, so large radii in voxels stay cheap.
    """
    if mask.all():  # no background anywhere: nothing to erode from
        return mask.copy()
    return ndimage.distance_transform_edt(mask, sampling=zooms) > radius_mm


def dilate_mm(mask: np.ndarray, zooms: Sequence[float], radius_mm: float) -> np.ndarray:
    """Dilation by a ball of ``radius_mm`` in world mm (voxels within the radius of the mask)."""
    if not mask.any():
        return mask.copy()
    return ndimage.distance_transform_edt(~mask, sampling=zooms) <= radius_mm


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 6-connected component of a boolean mask (an empty mask is returned as is)."""
    labels, count = ndimage.label(mask)
    if count <= 1:
        return labels > 0
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill background cavities not connected to the array's border (3-D, 6-connectivity)."""
    return ndimage.binary_fill_holes(mask)


def open_largest(mask: np.ndarray, zooms: Sequence[float], radius_mm: float) -> np.ndarray:
    """Erode by a ``radius_mm`` ball, keep the largest component, dilate back inside ``mask``.

    This cuts away parts joined to the main body by necks thinner than ~2 x radius. When the
    erosion leaves nothing, the mask's largest component is returned instead. Holes are filled.
    """
    core = erode_mm(mask, zooms, radius_mm)
    if not core.any():
        return fill_holes(largest_component(mask))
    core = largest_component(core)
    return fill_holes(dilate_mm(core, zooms, radius_mm) & mask)


def otsu_threshold(data: np.ndarray) -> float:
    """Otsu's threshold (256-bin histogram) over the finite voxels of ``data``."""
    from skimage.filters import threshold_otsu

    values = data[np.isfinite(data)]
    if values.size == 0 or values.min() == values.max():
        raise ValueError("image is constant or has no finite values; nothing to threshold")
    return float(threshold_otsu(values))


def otsu_mask(data: np.ndarray, zooms: Sequence[float], erosion_mm: float = EROSION_MM) -> np.ndarray:
    """Brain mask of a head image by Otsu thresholding and morphology (see the module docstring).

    Args:
        data: intensities, shape (I, J, K), any range; non-finite voxels count as background.
        zooms: voxel sizes in mm along (I, J, K).
        erosion_mm: radius in mm of the erosion that separates scalp from brain.

    Returns:
        Boolean mask, shape (I, J, K).
    """
    foreground = np.nan_to_num(data, nan=-np.inf) > otsu_threshold(data)
    head = fill_holes(largest_component(foreground))
    return open_largest(head, zooms, erosion_mm)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pumba.baselines.otsu -i IMAGE -o MASK``."""
    from pumba.baselines.main import baseline_main

    return baseline_main("otsu", lambda vol: otsu_mask(vol.data, vol.zooms), argv)


if __name__ == "__main__":
    raise SystemExit(main())
