"""Paired comparisons of every method against ours: Wilcoxon signed-rank tests with a Holm correction.

A comparison pairs the two methods' values on the subjects where both ran successfully and both have a value
(a failed run has no Dice or HD95 to pair; the failures are counted beside the test). The two-sided exact
Wilcoxon test of n pairs cannot give p < 0.05 below :data:`MIN_PAIRS` = 6 pairs (its smallest p is
2 / 2^n = 0.0625 at n = 5), so with fewer pairs no test is run and the result says "n too small".
Holm's step-down correction is over the methods compared with ours on one dataset and one metric (one
family per dataset and metric).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_PAIRS = 6
"""Fewest pairs for which a two-sided Wilcoxon signed-rank test can reach p < 0.05."""
TOO_SMALL = "n too small"


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order; NaN entries stay NaN and are not counted.

    With m finite p-values sorted p_(1) <= ... <= p_(m), the adjusted value of p_(i) is
    max_{j <= i} min(1, (m - j + 1) p_(j)).
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, math.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = len(finite)
    if m == 0:
        return out.tolist()
    order = finite[np.argsort(p[finite], kind="stable")]
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[idx]))
        out[idx] = running
    return out.tolist()


@dataclass(frozen=True)
class Paired:
    """One paired test of a method against ours on one dataset and metric.

    Attributes:
        n_pairs: subjects where both ran and both have a value.
        p: two-sided Wilcoxon signed-rank p-value (NaN when not tested).
        note: '' when tested; 'n too small' below MIN_PAIRS pairs; 'identical' when every pair is equal.
        median_diff: median of (method - ours) over the pairs (NaN without pairs).
    """

    n_pairs: int
    p: float
    note: str
    median_diff: float


def paired_wilcoxon(method: Sequence[float], ours: Sequence[float]) -> Paired:
    """Two-sided Wilcoxon signed-rank test of paired values (NaN pairs dropped first).

    The exact distribution is used for small n without ties or zeros, as scipy chooses ('auto').
    """
    from scipy.stats import wilcoxon

    a, b = np.asarray(method, dtype=float), np.asarray(ours, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = int(a.size)
    diff = float(np.median(a - b)) if n else math.nan
    if n < MIN_PAIRS:
        return Paired(n, math.nan, TOO_SMALL, diff)
    if np.all(a == b):
        return Paired(n, 1.0, "identical", diff)
    return Paired(n, float(wilcoxon(a, b, alternative="two-sided").pvalue), "", diff)
