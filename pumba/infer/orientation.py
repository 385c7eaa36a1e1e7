"""Reordering a volume to the closest canonical (RAS+) voxel order by flips and axis permutations, and back.

Running the whole pipeline on the canonical array makes the result independent of how the scan was stored:
the same head saved LPS, LIA or RAS gives the same mask voxel for voxel, in both geometry modes (``resize``
stretches array axes, so it needs the axes in a known order). Flips and permutations move voxels without
interpolating them, so the round trip is exact. Oblique scans keep their obliquity: only the voxel axis
closest to each world axis is chosen (nibabel's ``io_orientation``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from nibabel.orientations import apply_orientation, inv_ornt_aff, io_orientation, ornt_transform

from pumba.io import Volume

_RAS = np.array([[0, 1], [1, 1], [2, 1]], dtype=float)


@dataclass(frozen=True)
class Reorientation:
    """How a volume was reordered into RAS+.

    Attributes:
        ornt: nibabel orientation array (3, 2): for each input axis, the RAS axis it becomes and a flip sign.
    """

    ornt: np.ndarray

    @property
    def identity(self) -> bool:
        """Whether the input is already stored in RAS+ voxel order."""
        return bool(np.array_equal(self.ornt, _RAS))

    def back(self, canonical: np.ndarray) -> np.ndarray:
        """An array on the canonical grid, reordered onto the input's voxel grid (a view where possible)."""
        if self.identity:
            return canonical
        return apply_orientation(canonical, ornt_transform(_RAS, self.ornt))


def to_canonical(volume: Volume) -> tuple[Volume, Reorientation]:
    """``volume`` with its data reordered (flips and transposes: views, no copy) to the closest RAS+ order.

    The returned volume's affine maps its new voxel indices to the same world points as before, so
    world-space geometry is unchanged; ``image`` and ``path`` are kept (errors still name the input file).
    """
    ornt = io_orientation(volume.affine)
    if np.isnan(ornt).any():  # an axis io_orientation cannot attribute (near-degenerate affine): keep as is
        ornt = _RAS.copy()
    how = Reorientation(ornt)
    if how.identity:
        return volume, how
    data = apply_orientation(volume.data, ornt)
    affine = volume.affine @ inv_ornt_aff(ornt, volume.data.shape)
    return replace(volume, data=data, affine=affine), how
