"""Surface-distance metric: the 95th-percentile Hausdorff distance (HD95) in mm."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

_FACES = ndimage.generate_binary_structure(3, 1)


def surface(mask: np.ndarray) -> np.ndarray:
    """Surface of a 3-D mask: the mask voxels with at least one 6-neighbour outside the mask.

    Voxels on the array's border count as surface (the world beyond the grid is background).
    """
    mask = np.asarray(mask, dtype=bool)
    return mask & ~ndimage.binary_erosion(mask, structure=_FACES, border_value=0)


def _directed_distances(
    from_surface: np.ndarray, to_surface: np.ndarray, spacing: Sequence[float]
) -> np.ndarray:
    """Distance (mm) from each voxel of ``from_surface`` to the nearest voxel of ``to_surface``."""
    dist_to = ndimage.distance_transform_edt(~to_surface, sampling=spacing)
    return dist_to[from_surface]


def hd95(pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float]) -> float:
    """Symmetric 95th-percentile Hausdorff distance between two 3-D masks, in mm.

    Surfaces are the voxels of each mask with a 6-neighbour outside it (see :func:`surface`).
    For every surface voxel of the prediction we take the Euclidean distance (mm, with the voxel
    sizes ``spacing`` along the array axes i, j, k) to the nearest reference surface voxel, and
    vice versa; the result is the larger of the two directional 95th percentiles (numpy's
    linear interpolation).

    Empty masks: both empty -> 0.0; exactly one empty -> nan (the distance is undefined; tables
    report it as missing and it counts as a failure of this metric, not of the run).

    Args:
        pred, ref: boolean (or 0/1) arrays of equal shape (I, J, K).
        spacing: voxel sizes in mm along (I, J, K), from the image header.
    """
    pred = np.asarray(pred, dtype=bool)
    ref = np.asarray(ref, dtype=bool)
    if pred.shape != ref.shape or pred.ndim != 3:
        raise ValueError(f"need two 3-D masks of equal shape, got {pred.shape} and {ref.shape}")
    spacing = tuple(float(s) for s in spacing)
    has_pred, has_ref = bool(pred.any()), bool(ref.any())
    if not has_pred and not has_ref:
        return 0.0
    if has_pred != has_ref:
        return float("nan")
    # Crop to the union's bounding box with a one-voxel margin of background: distances between
    # the surfaces do not change, and the distance transforms get much cheaper.
    union = pred | ref
    box = ndimage.find_objects(union.astype(np.uint8))[0]
    box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
    pred_s, ref_s = surface(pred)[box], surface(ref)[box]
    d_pred = _directed_distances(pred_s, ref_s, spacing)
    d_ref = _directed_distances(ref_s, pred_s, spacing)
    return float(max(np.percentile(d_pred, 95), np.percentile(d_ref, 95)))
