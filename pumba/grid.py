"""One voxel grid or two: the benchmark's single test of "this mask lies on that image's grid".

Two volumes share a grid when they have the same 3-D shape (I, J, K) and their voxel-to-world matrices
(4x4 affines, voxel indices to mm) put every voxel centre of that grid at the same place in the world, to
within :data:`GRID_TOLERANCE_MM`. The distance is measured where it matters, on the grid itself: the largest
distance in mm between where the two affines place one voxel centre, over all voxels of the grid. The
difference of two affines is affine, so that largest distance is reached at one of the grid's eight corners,
and an error in the 3x3 part (mm per voxel) counts times the number of voxels it is multiplied by: on a
256-voxel axis a 1e-5 mm error in a voxel size moves the far corner by 2.55e-3 mm, which comparing the
matrices entry by entry at the translation's tolerance (1e-3 mm) would let through.

Used by data preparation (a reference mask against its image), the metrics (a prediction against its
reference) and the montage figure (every mask against the image). :func:`moved_grid` and
:func:`mask_onto` put one head on another grid and a mask back (the oblique-grid tests and benchmark).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import nibabel as nib
import numpy as np

from pumba.io import InputError, Volume

GRID_TOLERANCE_MM = 1e-3
"""Largest distance (mm) between where two affines place the same voxel centre of a grid for the grids to be
one. Header round trips are far below it: NIfTI (sform, qform) and MGH store the affine as float32, a
relative rounding of 6e-8, which moves a voxel of a 512-voxel, 0.5 mm grid with its origin 250 mm away by
about 3e-5 mm; the benchmark's prepared masks and every method's mask in results/ sit exactly on their
image's grid (0 mm), the largest difference between a source dataset's mask and its image is 1.7e-6 mm
(tcga-glioma). Any real misplacement is far above it: the smallest voxels the benchmark sees are 0.125 mm
(the mouse slab), of which 1e-3 mm is 0.8 %; a wrong header (the SHERM mouse mask's 0.12 mm isotropic
voxels) is off by 12.9 mm."""


def _corners(shape: tuple[int, int, int]) -> np.ndarray:
    """Homogeneous voxel coordinates (4, 8) of the centres of a grid's eight corner voxels."""
    ends = [(0, max(int(n) - 1, 0)) for n in shape]
    return np.array([[*corner, 1.0] for corner in itertools.product(*ends)], dtype=np.float64).T


def _shape3(shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3:
        raise ValueError(f"a grid's shape has three axes (I, J, K), not {shape}")
    return shape


def grid_offset_mm(shape: Sequence[int], affine_a: np.ndarray, affine_b: np.ndarray) -> float:
    """The largest distance (mm) between where ``affine_a`` and ``affine_b`` put one voxel centre of a grid
    of ``shape`` (I, J, K): the largest over its eight corners (the difference of two affines is affine)."""
    diff = np.asarray(affine_a, dtype=np.float64)[:3] - np.asarray(affine_b, dtype=np.float64)[:3]
    return float(np.sqrt(((diff @ _corners(_shape3(shape))) ** 2).sum(axis=0)).max())


def same_grid(
    shape_a: Sequence[int], affine_a: np.ndarray, shape_b: Sequence[int], affine_b: np.ndarray
) -> bool:
    """True if the grids have the same 3-D shape and their affines place every voxel centre within
    :data:`GRID_TOLERANCE_MM` of each other (:func:`grid_offset_mm`). Shapes of different lengths are
    different grids; equal shapes must have three axes (ValueError otherwise)."""
    shape_a, shape_b = tuple(int(n) for n in shape_a), tuple(int(n) for n in shape_b)
    return shape_a == shape_b and grid_offset_mm(shape_a, affine_a, affine_b) <= GRID_TOLERANCE_MM


def _describe(volume: Volume) -> str:
    return (
        f"shape {volume.data.shape}, voxel sizes {tuple(float(z) for z in np.round(volume.zooms, 4))} mm, "
        f"origin {tuple(float(o) for o in np.round(volume.affine[:3, 3], 3))}"
    )


def check_same_grid(
    volume: Volume, reference: Volume, what: str = "mask", reference_what: str = "image", hint: str = ""
) -> None:
    """Raise InputError unless ``volume`` lies on ``reference``'s grid (:func:`same_grid`).

    The message is one line naming both files: ``<volume>: <what> grid (shape, voxel sizes, origin) does not
    match the <reference_what> <reference> (...): <how>[; <hint>]``.
    """
    shape, ref_shape = volume.data.shape, reference.data.shape
    if same_grid(shape, volume.affine, ref_shape, reference.affine):
        return
    if tuple(shape) != tuple(ref_shape):
        how = "the shapes differ"
    else:
        offset = grid_offset_mm(shape, volume.affine, reference.affine)
        how = f"voxel centres up to {offset:.3g} mm apart (tolerance {GRID_TOLERANCE_MM:g} mm)"
    raise InputError(
        f"{volume.path}: {what} grid ({_describe(volume)}) does not match the {reference_what} "
        f"{reference.path} ({_describe(reference)}): {how}" + (f"; {hint}" if hint else "")
    )


def moved_grid(image: nib.Nifti1Image, linear: np.ndarray) -> nib.Nifti1Image:
    """The same head in the world on ``image``'s grid moved by ``linear`` (3x3: a turn, a shear) about the
    field of view's centre: same shape, the affine moved, the intensities resampled trilinearly (float32;
    zero where the moved grid sees beyond the old one)."""
    from scipy import ndimage

    data = np.asarray(image.dataobj, dtype=np.float32)
    centre = (image.affine @ np.append((np.array(data.shape) - 1) / 2, 1.0))[:3]
    move = np.eye(4)
    move[:3, :3] = linear
    move[:3, 3] = centre - linear @ centre
    affine = move @ image.affine
    to_old = np.linalg.inv(image.affine) @ affine
    moved = ndimage.affine_transform(data, to_old[:3, :3], to_old[:3, 3], output_shape=data.shape, order=1)
    return nib.Nifti1Image(moved, affine)


def mask_onto(mask: np.ndarray, affine: np.ndarray, image: nib.Nifti1Image) -> np.ndarray:
    """A mask (I, J, K) on the grid of ``affine`` resampled onto ``image``'s grid: trilinear, then > 0.5
    (bool)."""
    from scipy import ndimage

    to_mask = np.linalg.inv(affine) @ image.affine
    back = ndimage.affine_transform(
        np.asarray(mask, dtype=np.float32), to_mask[:3, :3], to_mask[:3, 3], output_shape=image.shape, order=1
    )
    return back > 0.5
