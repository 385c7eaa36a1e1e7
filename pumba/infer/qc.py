"""A quality score for a brain mask without a reference: does this mask need a look?

The score rates any brain mask of a scan (ours or another method's) from what our model and the mask say,
never from a reference. It runs our model on the image (:func:`pumba.infer.strip.predict_brain`, with the
brain probability on the input's grid and the 8 test-time flips' probabilities on the network grid) and
compares. Its terms, each in [0, 1] with 1 = no sign of trouble:

``agreement``
    Dice between the mask and our model's brain probability cut at 0.5, on the input's grid. Low when the
    mask and the model disagree: one of them is wrong.
``flip_agreement``
    Mean Dice between each test-time flip's brain mask and the mean's (network grid). Low when the model
    itself is unsure what the brain is in this image (an odd contrast, a damaged scan, a flipped header).
``shape``
    The share of the mask in its largest 26-connected component times the share left when its holes are
    filled: 1 for a solid mask, low for a mask in pieces or full of holes.
``volume``
    Whether the mask's volume is a plausible share of the head's (the head: voxels above
    :data:`pumba.infer.preprocess.HEAD_LEVEL` of the normalised image, holes filled): 1 between
    :data:`VOLUME_SHARE` 's bounds, falling linearly (in log share) to 0 a factor :data:`VOLUME_SLACK` beyond.

``score`` = agreement x flip_agreement x shape x volume, clipped to [0, 1]: a product, so that one clear sign
of trouble is enough to lower it. ``flag`` is ``score < threshold``, :data:`QC_THRESHOLD` unless the caller
chooses another. The threshold was chosen on the pooled validation set of ``pumba qc validate`` (every method
and scan of the default run, damaged copies of each scan and early-training models), the value that best
separates masks of Dice < 0.90 from the rest (Youden's J); docs/qc.md has the table, its command and how well
the score ranks masks (Spearman) and separates the bad ones (AUC).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from pumba.infer.postprocess import bounding_box, largest_component
from pumba.infer.preprocess import HEAD_LEVEL, normalise
from pumba.metrics.overlap import dice

QC_THRESHOLD = 0.82
"""A mask whose score is below this is flagged for a look (chosen on ``pumba qc validate``'s pooled set)."""
BAD_DICE = 0.90
"""What the validation calls a bad mask: Dice with the reference below this."""
VOLUME_SHARE = (0.05, 0.75)
"""Plausible bounds of brain volume over head volume (the head's voxels above the normalised image's
``HEAD_LEVEL``, holes filled): from a mouse or a head with neck and shoulders to a brain filling a tight field
of view. Wide on purpose: the score is for any species."""
VOLUME_SLACK = 3.0
"""The volume term falls to 0 at a share this many times below (above) :data:`VOLUME_SHARE` 's lower (upper)
bound."""


@dataclass(frozen=True)
class QCResult:
    """A mask's quality score and its terms (each in [0, 1], 1 = no sign of trouble; see the module's
    docstring), whether it is flagged, and two numbers to read beside them: the mask's volume and its
    share of the head's volume."""

    score: float
    flag: bool
    agreement: float
    flip_agreement: float
    shape: float
    volume: float
    brain_ml: float
    brain_share: float

    def sidecar(self) -> dict:
        """The JSON object of a sidecar's ``"QC"``: score and flag first, then the terms (rounded)."""
        out: dict = {"score": round(self.score, 4), "flag": bool(self.flag)}
        for key, value in asdict(self).items():
            if key not in out:
                out[key] = round(float(value), 4)
        out["threshold"] = QC_THRESHOLD
        return out


def flip_agreement(flips: Sequence[np.ndarray]) -> float:
    """Mean Dice between each flipped pass's brain mask (probability > 0.5) and the mean probability's, on
    the network grid; 1 for fewer than two passes (no test-time flips: nothing to compare)."""
    if len(flips) < 2:
        return 1.0
    mean = np.mean(np.stack(flips), axis=0) > 0.5
    return float(np.mean([dice(f > 0.5, mean) for f in flips]))


def shape_term(mask: np.ndarray) -> float:
    """The share of the mask in its largest 26-connected component times the share of the hole-filled mask
    that the mask holds (1 for one solid piece; 0 for an empty mask)."""
    box = bounding_box(mask)
    if box is None:
        return 0.0
    part = mask[box]
    n = int(np.count_nonzero(part))
    biggest = largest_component(part)
    filled = int(np.count_nonzero(ndimage.binary_fill_holes(biggest)))
    return float(np.count_nonzero(biggest) / n * np.count_nonzero(biggest) / max(filled, 1))


def head_voxels(data: np.ndarray, path: object = "image") -> int:
    """Voxels of the head: the normalised image (:func:`pumba.infer.preprocess.normalise`) above
    :data:`pumba.infer.preprocess.HEAD_LEVEL`, its largest 26-connected component with holes filled."""
    head = normalise(data, path) > HEAD_LEVEL
    box = bounding_box(head)
    if box is None:
        return 0
    return int(np.count_nonzero(ndimage.binary_fill_holes(largest_component(head[box]))))


def volume_term(share: float) -> float:
    """1 for a brain share of the head within :data:`VOLUME_SHARE`, falling linearly in log share to 0 at
    a factor :data:`VOLUME_SLACK` beyond either bound."""
    lo, hi = VOLUME_SHARE
    if share <= 0:
        return 0.0
    if share < lo:
        return max(0.0, 1.0 - math.log(lo / share) / math.log(VOLUME_SLACK))
    if share > hi:
        return max(0.0, 1.0 - math.log(share / hi) / math.log(VOLUME_SLACK))
    return 1.0


def qc_from_prediction(
    data: np.ndarray,
    mask: np.ndarray,
    prob: np.ndarray,
    flips: Sequence[np.ndarray],
    voxel_ml: float,
    threshold: float = QC_THRESHOLD,
    path: object = "image",
) -> QCResult:
    """The quality score of ``mask`` (bool, on the grid of ``data``, axes (I, J, K)) from our model's brain
    probability ``prob`` on that grid and the test-time flips' probabilities ``flips`` on the network grid
    (:class:`pumba.infer.strip.Prediction`). ``data``: the image's grey values (any real dtype), for the
    head's volume; ``voxel_ml``: one voxel's volume in ml."""
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != data.shape or prob.shape != data.shape:
        raise ValueError(
            f"mask {mask.shape}, probability {prob.shape} and image {data.shape} differ in shape"
        )
    agreement = dice(mask, prob > 0.5)
    flips_term = flip_agreement(flips)
    shape = shape_term(mask)
    n = int(np.count_nonzero(mask))
    head = head_voxels(data, path)
    share = n / head if head else 0.0
    vol = volume_term(share)
    score = float(np.clip(agreement * flips_term * shape * vol, 0.0, 1.0))
    return QCResult(
        score=score,
        flag=bool(score < threshold),
        agreement=agreement,
        flip_agreement=flips_term,
        shape=shape,
        volume=vol,
        brain_ml=n * voxel_ml,
        brain_share=share,
    )
