"""Voxel-overlap metrics between a predicted and a reference binary mask on the same grid.

All functions take boolean (or 0/1) arrays of equal shape. Rules for empty masks, which every
table in the benchmark follows:

* Dice: both masks empty -> 1.0 (perfect agreement on "no brain"); exactly one empty -> 0.0.
* Sensitivity is undefined (nan) when the reference is empty; specificity is undefined (nan)
  when the reference covers the whole grid (no negative voxels).
* Volume difference in percent is undefined (nan) when the reference is empty.
"""

from __future__ import annotations

import numpy as np


def _pair(pred: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=bool)
    ref = np.asarray(ref, dtype=bool)
    if pred.shape != ref.shape:
        raise ValueError(f"mask shapes differ: prediction {pred.shape}, reference {ref.shape}")
    return pred, ref


def dice(pred: np.ndarray, ref: np.ndarray) -> float:
    """Dice coefficient 2|P∩R| / (|P| + |R|), in [0, 1].

    Both masks empty -> 1.0; exactly one empty -> 0.0.
    """
    pred, ref = _pair(pred, ref)
    total = int(pred.sum()) + int(ref.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(pred, ref).sum()) / total


def sensitivity(pred: np.ndarray, ref: np.ndarray) -> float:
    """Fraction of reference voxels that the prediction covers, TP / (TP + FN), in [0, 1].

    nan when the reference is empty (nothing to detect).
    """
    pred, ref = _pair(pred, ref)
    positives = int(ref.sum())
    if positives == 0:
        return float("nan")
    return int(np.logical_and(pred, ref).sum()) / positives


def specificity(pred: np.ndarray, ref: np.ndarray) -> float:
    """Fraction of non-reference voxels the prediction leaves out, TN / (TN + FP), in [0, 1].

    It depends on the field of view (a large background inflates it towards 1). nan when the
    reference covers every voxel.
    """
    pred, ref = _pair(pred, ref)
    negatives = int((~ref).sum())
    if negatives == 0:
        return float("nan")
    return int(np.logical_and(~pred, ~ref).sum()) / negatives


def volume_ml(mask: np.ndarray, voxel_volume_mm3: float) -> float:
    """Volume of a mask in millilitres (1 ml = 1000 mm^3)."""
    return int(np.count_nonzero(mask)) * float(voxel_volume_mm3) / 1000.0


def volume_difference(pred: np.ndarray, ref: np.ndarray, voxel_volume_mm3: float) -> tuple[float, float]:
    """Signed volume difference prediction - reference.

    Returns:
        (difference in ml, difference in percent of the reference volume). Positive means the
        prediction is larger. The percentage is nan when the reference is empty.
    """
    pred, ref = _pair(pred, ref)
    v_pred = volume_ml(pred, voxel_volume_mm3)
    v_ref = volume_ml(ref, voxel_volume_mm3)
    diff = v_pred - v_ref
    pct = 100.0 * diff / v_ref if v_ref > 0 else float("nan")
    return diff, pct
