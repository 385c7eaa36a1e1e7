"""pumba.grid: one test of "same voxel grid" (shape, and every voxel centre within GRID_TOLERANCE_MM)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from pumba.grid import GRID_TOLERANCE_MM, check_same_grid, grid_offset_mm, same_grid
from pumba.io import InputError, load_volume, save_array

SHAPE = (160, 192, 144)


def oblique_affine() -> np.ndarray:
    """A 1.2 x 0.9 x 1.1 mm grid rotated about two axes, origin far from the world's (float64 entries)."""
    a, b = np.deg2rad(12.3), np.deg2rad(-7.9)
    rot_x = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rot_z = np.array([[np.cos(b), -np.sin(b), 0], [np.sin(b), np.cos(b), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rot_z @ rot_x @ np.diag([1.2, 0.9, 1.1])
    affine[:3, 3] = (-97.123456789, -131.987654321, -73.456789123)
    return affine


def test_equal_grids_are_the_same() -> None:
    affine = oblique_affine()
    assert same_grid(SHAPE, affine, SHAPE, affine.copy())
    assert grid_offset_mm(SHAPE, affine, affine) == 0.0


def test_a_shift_beyond_the_tolerance_is_another_grid() -> None:
    affine = oblique_affine()
    shifted = affine.copy()
    shifted[1, 3] += 2 * GRID_TOLERANCE_MM
    assert not same_grid(SHAPE, affine, SHAPE, shifted)
    assert grid_offset_mm(SHAPE, affine, shifted) == pytest.approx(2 * GRID_TOLERANCE_MM)
    shifted[1, 3] = affine[1, 3] + GRID_TOLERANCE_MM / 2
    assert same_grid(SHAPE, affine, SHAPE, shifted)


def test_a_voxel_size_error_counts_at_the_far_corner() -> None:
    """1e-5 mm on one voxel size is nothing entry by entry, but the 192nd voxel moves by 1.9e-3 mm."""
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    stretched = affine.copy()
    stretched[1, 1] += 1e-5
    assert grid_offset_mm(SHAPE, affine, stretched) == pytest.approx(191 * 1e-5)
    assert not same_grid(SHAPE, affine, SHAPE, stretched)
    assert same_grid((8, 8, 8), affine, (8, 8, 8), stretched)  # 7e-5 mm on a small grid


def test_different_shapes_are_different_grids() -> None:
    affine = oblique_affine()
    assert not same_grid(SHAPE, affine, (160, 192, 143), affine)
    assert not same_grid(SHAPE, affine, (192, 160, 144), affine)
    assert not same_grid(SHAPE, affine, SHAPE[:2], affine)  # e.g. a broken 2-D mask of a 3-D image
    with pytest.raises(ValueError, match="three axes"):
        same_grid((*SHAPE, 1), affine, (*SHAPE, 1), affine)


def test_a_float32_rounded_affine_is_the_same_grid(tmp_path) -> None:
    affine = oblique_affine()
    rounded = affine.astype(np.float32).astype(np.float64)
    assert not np.array_equal(rounded, affine)
    assert same_grid(SHAPE, affine, SHAPE, rounded)
    big = (512, 512, 512)  # the docstring's worst case: 0.5 mm voxels, origin 250 mm away
    worst = np.diag([0.5, 0.5, 0.5, 1.0])
    worst[:3, 3] = -250.0 + 1e-4 * np.arange(3)
    worst[:3, :3] += 1e-7
    assert grid_offset_mm(big, worst, worst.astype(np.float32)) < GRID_TOLERANCE_MM / 10
    # and through files: NIfTI stores the sform (and the qform's quaternion) as float32, MGZ too
    data = np.zeros((16, 12, 10), np.uint8)
    data[4:9, 3:8, 2:6] = 1
    for name in ("a.nii.gz", "a.mgz"):
        save_array(data, affine, tmp_path / name)
        back = load_volume(tmp_path / name)
        assert same_grid(data.shape, affine, back.data.shape, back.affine)
    qform_only = nib.Nifti1Image(data, affine)
    qform_only.set_sform(None, code=0)
    qform_only.set_qform(affine, code=1)
    nib.save(qform_only, tmp_path / "q.nii.gz")
    assert same_grid(data.shape, affine, data.shape, nib.load(tmp_path / "q.nii.gz").affine)


def test_check_same_grid_names_both_files_on_one_line(tmp_path) -> None:
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    data = np.zeros((10, 10, 8), np.uint8)
    save_array(data, affine, tmp_path / "image.nii.gz")
    save_array(data, affine, tmp_path / "same.nii.gz")
    moved = affine.copy()
    moved[0, 3] = 0.5
    save_array(data, moved, tmp_path / "moved.nii.gz")
    save_array(np.zeros((10, 10, 9), np.uint8), affine, tmp_path / "taller.nii.gz")
    image = load_volume(tmp_path / "image.nii.gz")
    check_same_grid(load_volume(tmp_path / "same.nii.gz"), image)
    with pytest.raises(InputError) as err:
        check_same_grid(load_volume(tmp_path / "moved.nii.gz"), image, hint="a hint")
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{tmp_path / 'moved.nii.gz'}: mask grid (")
    assert f"does not match the image {tmp_path / 'image.nii.gz'} (" in message
    assert "voxel centres up to 0.5 mm apart" in message and message.endswith("; a hint")
    with pytest.raises(
        InputError, match=r"taller\.nii\.gz: prediction grid .* reference .*: the shapes differ$"
    ):
        check_same_grid(load_volume(tmp_path / "taller.nii.gz"), image, "prediction", "reference")


def test_a_head_moved_onto_another_grid_and_its_mask_back():
    from scipy.spatial.transform import Rotation

    from pumba.grid import mask_onto, moved_grid
    from pumba.metrics.overlap import dice

    data = np.zeros((40, 40, 40), np.float32)
    data[10:30, 12:28, 14:26] = 1.0
    image = nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0]))
    same = moved_grid(image, np.eye(3))
    assert np.allclose(same.affine, image.affine) and np.allclose(same.get_fdata(), data)
    turned = moved_grid(image, Rotation.from_euler("x", 30, degrees=True).as_matrix())
    assert not np.allclose(turned.affine, image.affine)
    # the block keeps its place in the world: on the turned grid it is another set of voxels, and back on
    # the first grid it is the block again (to what trilinear resampling twice costs at its edges)
    assert dice(turned.get_fdata() > 0.5, data > 0.5) < 0.9
    assert dice(mask_onto(turned.get_fdata() > 0.5, turned.affine, image), data > 0.5) > 0.95
