"""Gaussian-mixture intensity clustering: a second skull-stripping floor (seeded).

Recipe (:func:`gmm_mask`):

1. Normalise intensities to [0, 1] between the 1st and 99th percentiles (clipped).
2. Head = largest component of the voxels above half Otsu's level, holes filled. (At Otsu's level
   itself dark CSF and skull would fall out of the head.)
3. Fit a 4-component 1-D Gaussian mixture (scikit-learn, ``random_state=seed``) to at most
   100,000 head voxels drawn with the seeded generator; label every head voxel.
4. Brain candidates = head voxels of every class but the darkest one, which on T1-like contrast
   holds skull, CSF and air. Erode by a 3 mm ball, keep the largest component, dilate back
   inside the candidates, fill holes (:func:`pumba.baselines.otsu.open_largest`).

It assumes T1-like contrast (dark skull and CSF); on other contrasts it is a floor that fails.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pumba.baselines.otsu import fill_holes, largest_component, open_largest, otsu_threshold

N_COMPONENTS = 4
EROSION_MM = 3.0
MAX_FIT_VOXELS = 100_000


def normalise(data: np.ndarray) -> np.ndarray:
    """Intensities mapped to [0, 1] between the 1st and 99th percentiles (clipped); nan -> 0."""
    finite = np.isfinite(data)
    lo, hi = np.percentile(data[finite], [1, 99])
    if hi <= lo:
        raise ValueError("image has no intensity range between its 1st and 99th percentiles")
    out = np.clip((np.where(finite, data, lo) - lo) / (hi - lo), 0.0, 1.0)
    return out.astype(np.float32)


def intensity_classes(values: np.ndarray, seed: int, n_components: int = N_COMPONENTS) -> np.ndarray:
    """Class of each value, 0 (darkest mean) .. n_components - 1 (brightest), by a fitted GMM.

    The mixture is fitted on at most MAX_FIT_VOXELS values drawn with ``seed``, then applied to all.
    """
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(seed)
    sample = values
    if values.size > MAX_FIT_VOXELS:
        sample = values[rng.choice(values.size, MAX_FIT_VOXELS, replace=False)]
    gmm = GaussianMixture(n_components, random_state=seed).fit(sample[:, None])
    rank = np.empty(n_components, dtype=np.int64)
    rank[np.argsort(gmm.means_.ravel())] = np.arange(n_components)
    return rank[gmm.predict(values[:, None])]


def gmm_mask(
    data: np.ndarray,
    zooms: Sequence[float],
    seed: int = 0,
    n_components: int = N_COMPONENTS,
    erosion_mm: float = EROSION_MM,
) -> np.ndarray:
    """Brain mask of a head image by intensity clustering (see the module docstring).

    Args:
        data: intensities, shape (I, J, K), any range.
        zooms: voxel sizes in mm along (I, J, K).
        seed: seeds the voxel sample and the mixture's initialisation.
        n_components: number of intensity classes.
        erosion_mm: radius in mm of the erosion that cuts scalp from brain.

    Returns:
        Boolean mask, shape (I, J, K).
    """
    x = normalise(data)
    head = fill_holes(largest_component(x > 0.5 * otsu_threshold(x)))
    classes = intensity_classes(x[head], seed, n_components)
    candidates = np.zeros_like(head)
    candidates[head] = classes > 0
    return open_largest(candidates, zooms, erosion_mm)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pumba.baselines.gmm -i IMAGE -o MASK [--seed N]``."""
    from pumba.baselines.main import baseline_main

    return baseline_main("gmm", lambda vol, seed: gmm_mask(vol.data, vol.zooms, seed=seed), argv)


if __name__ == "__main__":
    raise SystemExit(main())
