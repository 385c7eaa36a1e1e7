"""Tests of the synthetic generator (pumba.synth): anatomy statistics, each step on hand-made cases,
determinism, and ``pumba generate``."""

from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import pytest
import torch
import yaml
from scipy import ndimage
from skimage.morphology import ball
from skimage.morphology import closing as sk_closing
from skimage.segmentation import find_boundaries

from pumba.cli import main
from pumba.synth import (
    SynthConfig,
    augment,
    deform,
    draw_params,
    generate,
    intensity,
    labels,
    make_target,
    sample_displacement,
    sample_seed,
    shapes,
)
from pumba.synth.generator import anatomy

CPU = torch.device("cpu")
SMALL = SynthConfig(size=64)


@pytest.fixture(scope="module")
def batch64() -> tuple[torch.Tensor, torch.Tensor]:
    return generate(list(range(12)), SMALL)


# --- configuration and seeds ------------------------------------------------------------------


def test_config_round_trips_through_yaml_and_rejects_unknown_keys() -> None:
    cfg = SynthConfig(size=96, brain_gap=((1, 2), (3, 4), (5, 6)), svf_scale=0.2)
    assert SynthConfig.from_dict(yaml.safe_load(yaml.safe_dump(cfg.to_dict()))) == cfg
    assert SynthConfig.from_dict({}) == SynthConfig()
    with pytest.raises(ValueError, match="head_diametre"):
        SynthConfig.from_dict({"head_diametre": [1, 2]})
    with pytest.raises(ValueError, match="n_extra"):
        SynthConfig.from_dict({"n_extra": 2.5})
    with pytest.raises(ValueError, match="skull_thickness"):
        SynthConfig(skull_thickness=(10, 10))


def test_sample_seeds_are_distinct_and_stable() -> None:
    seeds = [sample_seed(3, i) for i in range(1000)]
    assert len(set(seeds)) == 1000
    assert seeds[:5] == [sample_seed(3, i) for i in range(5)]
    assert sample_seed(3, 0) != sample_seed(4, 0)
    assert all(0 <= s < 2**63 for s in seeds)


# --- steps 1-5: shapes and intensities ----------------------------------------------------------


def test_ellipsoid_volume_and_windows() -> None:
    size = 48
    c, r = torch.tensor([[23.3, 24.0, 22.7]]), torch.tensor([[15.0, 10.0, 7.5]])
    full = shapes.ellipsoid(c, r, shapes.full_window(size))
    expected = 4 / 3 * math.pi * 15 * 10 * 7.5
    assert abs(full.sum().item() - expected) / expected < 0.02
    window = shapes.bounding_window(c[0], r[0], size)
    inside = shapes.ellipsoid(c, r, window)
    # The window holds all of it and agrees voxel for voxel.
    assert inside.sum() == full.sum()
    assert torch.equal(full[(0, *shapes.window_slices(window))], inside[0])


def test_block_index_splits_a_box_into_equal_octants() -> None:
    size = 32
    blocks = shapes.grid_blocks(1, 2, size, CPU)
    counts = torch.bincount(blocks.flatten().long(), minlength=8)
    assert counts.tolist() == [16**3] * 8
    assert blocks[0, 0, 0, 31] == 1 and blocks[0, 31, 0, 0] == 4 and blocks[0, 31, 31, 31] == 7
    c, r = torch.tensor([[15.5, 15.5, 15.5]]), torch.tensor([[12.0, 12.0, 12.0]])
    ball_blocks = shapes.ellipsoid_blocks(c, r, 2, shapes.full_window(size))
    inside = shapes.ellipsoid(c, r, shapes.full_window(size))
    counts = torch.bincount(ball_blocks[inside].long(), minlength=8)
    assert counts.min() == counts.max()  # a centred ball splits symmetrically


def test_anatomy_tissue_fractions_and_background_statistics() -> None:
    params = [draw_params(s, SMALL) for s in range(8)]
    blocks, brain, _ = anatomy(params, SMALL, CPU)
    n3 = SMALL.block_divisions**3
    voxels = 64**3
    background = (blocks < n3).sum((1, 2, 3)) / voxels
    shell = ((blocks >= n3) & (blocks < 2 * n3)).sum((1, 2, 3)) / voxels
    brain_fraction = brain.sum((1, 2, 3)) / voxels
    # Head ~ pi/6 * (122/128)^3 = 45 % of the grid; brain ellipsoids of 40-120 voxels diameter.
    assert ((brain_fraction > 0.02) & (brain_fraction < 0.45)).all()
    assert ((shell > 0.05) & (shell < 0.45)).all()
    assert ((background > 0.45) & (background < 0.85)).all()
    assert torch.equal(blocks >= (SMALL.n_extra + 2) * n3, brain)
    # Background voxels ~ clip(N(0.1, 0.1), 0, 1): mean 0.1 Phi(1) + 0.1 phi(1) = 0.1083.
    mu = torch.stack([p.mu for p in params])
    sigma = torch.stack([p.sigma for p in params])
    noise = torch.randn(blocks.shape, generator=torch.Generator().manual_seed(0))
    image = intensity.block_image(blocks, mu, sigma, noise)
    assert image.min() >= 0 and image.max() <= 1
    bg = image[blocks < n3]
    expected = 0.1 * (0.5 * (1 + math.erf(1 / math.sqrt(2)))) + 0.1 * math.exp(-0.5) / math.sqrt(2 * math.pi)
    assert abs(bg.mean().item() - expected) < 0.002
    assert (bg == 0).float().mean().item() == pytest.approx(0.1587, abs=0.005)  # P(N < 0)


def test_block_image_follows_each_blocks_table_entry() -> None:
    blocks = torch.tensor([[[[0, 1], [2, 2]]]]).expand(1, 2, 2, 2).contiguous()
    mu = torch.tensor([[0.1, 0.5, 0.9]])
    sigma = torch.tensor([[0.0, 0.1, 0.2]])
    noise = torch.full(blocks.shape, 1.0)
    image = intensity.block_image(blocks, mu, sigma, noise)
    assert torch.allclose(image[0, 0, 0], torch.tensor([0.1, 0.6]))
    assert torch.allclose(image[0, 0, 1], torch.tensor([1.0, 1.0]))  # 0.9 + 0.2 clipped to 1


# --- step 6: holes ------------------------------------------------------------------------------


def test_holes_are_zero_in_the_image_and_brain_in_the_label() -> None:
    params = [draw_params(s, SMALL) for s in range(6)]
    blocks, brain, holes = anatomy(params, SMALL, CPU)
    assert holes.any((1, 2, 3)).all()
    assert not (holes & ~brain).any()  # holes lie inside the brain: the label stays brain there
    mu = torch.stack([p.mu for p in params])
    sigma = torch.stack([p.sigma for p in params])
    noise = torch.randn(blocks.shape, generator=torch.Generator().manual_seed(1))
    before = intensity.block_image(blocks, mu, sigma, noise)
    after = intensity.zero_holes(before, holes)
    assert (after[holes] == 0).all()
    assert torch.equal(after[~holes], before[~holes])
    # 2-4 holes per sample (they may touch and merge, or be a single voxel at 64^3).
    for b, p in enumerate(params):
        assert 2 <= len(p.hole_centres) <= 4
        assert 1 <= ndimage.label(holes[b].numpy())[1] <= 4


def test_hole_offsets_are_drawn_per_axis() -> None:
    centre = (128 - 1) / 2
    offsets = torch.cat([draw_params(s, SynthConfig()).hole_centres - centre for s in range(50)])
    # The reference reused the x offset on every axis; ours differ (and take both signs).
    differs = (offsets[:, 0] != offsets[:, 1]) | (offsets[:, 1] != offsets[:, 2])
    assert differs.float().mean() > 0.9
    assert (offsets < 0).any(0).all() and (offsets > 0).any(0).all()
    assert np.corrcoef(offsets[:, 0], offsets[:, 2])[0, 1] < 0.5


# --- steps 7-8: deformation and rotation ---------------------------------------------------------


def test_constant_velocity_integrates_to_a_translation() -> None:
    velocity = torch.zeros(1, 3, 8, 8, 8)
    velocity[:, 0], velocity[:, 2] = 0.3, -0.1
    disp = deform.integrate_velocity(velocity, steps=7)
    assert torch.allclose(disp, velocity, atol=1e-6)


def test_svf_displacement_is_smooth_bounded_and_invertible() -> None:
    disp = sample_displacement(list(range(8)), SMALL)
    assert disp.shape == (8, 3, 64, 64, 64)
    magnitude = disp.norm(dim=1).flatten(1)
    largest_128 = magnitude.max(1).values * 2  # in voxels of the 128^3 reference grid
    assert ((largest_128 > 2) & (largest_128 < 10)).all()
    assert magnitude.mean() * 2 > 0.5
    jac = deform.jacobian_determinant(disp)
    assert jac.min() > 0.1  # no folding anywhere
    # Continuous and smooth: neighbours move alike, far less than the displacement itself (white
    # noise would give a ratio above 1).
    for axis in (2, 3, 4):
        step = disp.diff(dim=axis).abs()
        assert step.max() < 1.0 and step.mean() < 0.3 * disp.abs().mean()
    # Scaling and squaring: the strength the reference takes literally does fold space.
    strong = sample_displacement([0, 1], SynthConfig(size=64, svf_scale=1.0))
    assert deform.jacobian_determinant(strong).min() < 0


def test_rotation_by_90_degrees_matches_rot90_and_identity_is_exact() -> None:
    volume = torch.rand(1, 1, 9, 9, 9, generator=torch.Generator().manual_seed(0))
    zero = torch.zeros(1, 3, 9, 9, 9)
    identity = deform.sampling_grid(zero, torch.eye(3)[None])
    assert torch.allclose(deform.warp(volume, identity, "bilinear"), volume, atol=1e-6)
    grid = deform.sampling_grid(zero, deform.rotation_matrix((90.0, 0.0, 0.0))[None])
    rotated = deform.warp(volume, grid, "nearest")
    # out(p) = in(R^T p): a quarter turn in the (x, y) plane about the centre.
    assert torch.equal(rotated, torch.rot90(volume, 1, dims=(2, 3)))


def test_nearest_resampling_keeps_labels_binary_unlike_trilinear() -> None:
    params = [draw_params(3, SMALL)]
    _, brain, _ = anatomy(params, SMALL, CPU)
    disp = sample_displacement([3], SMALL)
    grid = deform.sampling_grid(disp, params[0].rotation[None])
    nearest = deform.warp(brain[:, None].float(), grid, "nearest")
    linear = deform.warp(brain[:, None].float(), grid, "bilinear")
    assert set(nearest.unique().tolist()) == {0.0, 1.0}
    assert ((linear > 0.01) & (linear < 0.99)).sum() > 100
    # Both see the same object: the label is not shrunk or shifted by nearest sampling.
    assert abs(nearest.sum() - linear.sum()) / linear.sum() < 0.01


# --- step 9: labels -----------------------------------------------------------------------------


def test_make_target_on_a_hand_made_cube() -> None:
    mask = torch.zeros(1, 12, 12, 12, dtype=torch.uint8)
    mask[0, 4:8, 4:8, 4:8] = 1
    target = make_target(mask)[0]
    assert target.dtype == torch.int64
    interior = torch.zeros(12, 12, 12, dtype=torch.bool)
    interior[5:7, 5:7, 5:7] = True
    assert torch.equal(target == 1, interior)
    # Boundary: the cube's 56 surface voxels plus the 6 x 16 outside voxels facing its faces
    # (6-connectivity: no edge or corner neighbours).
    boundary = target == 2
    assert boundary.sum() == 56 + 96
    assert boundary[3, 5, 5] and boundary[4, 4, 4] and not boundary[3, 3, 5] and not boundary[3, 3, 3]
    # A partition: mask = interior + inner boundary; background never touches the mask.
    assert torch.equal(mask[0].bool(), (target == 1) | (boundary & mask[0].bool()))
    assert not ((target == 0) & mask[0].bool()).any()


def test_morphology_matches_scikit_image() -> None:
    rng = np.random.default_rng(0)
    blobs = ndimage.gaussian_filter(rng.random((2, 40, 40, 40)), (0, 2, 2, 2)) > 0.5
    mask = torch.from_numpy(blobs)
    closed = labels.binary_closing(mask, 2).numpy()
    boundary = labels.thick_boundary(mask).numpy()
    for b in range(2):
        assert np.array_equal(closed[b], sk_closing(blobs[b], ball(2)))
        assert np.array_equal(boundary[b], find_boundaries(blobs[b], connectivity=1, mode="thick"))
    assert closed.sum() > blobs.sum()


# --- the whole generator ------------------------------------------------------------------------


def test_generated_heads_have_plausible_statistics(batch64) -> None:
    image, mask = batch64
    assert image.shape == (12, 1, 64, 64, 64) and image.dtype == torch.float32
    assert mask.shape == (12, 64, 64, 64) and mask.dtype == torch.uint8
    assert image.min() >= 0 and image.max() <= 1
    assert set(mask.unique().tolist()) == {0, 1}
    brain = mask.float().mean((1, 2, 3))
    assert ((brain > 0.03) & (brain < 0.4)).all()
    assert 0.08 < brain.mean() < 0.22
    target = make_target(mask)
    fractions = torch.stack([(target == k).float().mean() for k in range(3)])
    assert 0.55 < fractions[0] < 0.95 and 0.03 < fractions[1] < 0.35 and 0.01 < fractions[2] < 0.1
    # The brain mask is one solid piece: no fragments after deformation, rotation and closing.
    for b in range(12):
        filled = ndimage.binary_fill_holes(mask[b].numpy())
        assert ndimage.label(mask[b].numpy())[1] == 1 and filled.sum() == mask[b].sum()
    # Brighter inside the head than in the far corners (rotated-in zeros and background noise).
    corners = image[:, 0, :6, :6, :6].mean()
    assert corners < 0.15 and image[:, 0][mask.bool()].mean() > 0.35


def test_determinism_and_batch_independence(batch64) -> None:
    image, mask = batch64
    again, mask_again = generate([5, 2], SMALL)
    assert torch.equal(again[0], image[5]) and torch.equal(again[1], image[2])
    assert torch.equal(mask_again[0], mask[5])
    assert not torch.equal(image[0], image[1])
    assert (image[0] - image[1]).abs().mean() > 0.05


def test_sizes_draw_the_same_anatomy() -> None:
    _, small = generate([11], SMALL)
    _, large = generate([11], SynthConfig(size=128))
    assert abs(small.float().mean() - large.float().mean()) < 0.01
    pooled = torch.nn.functional.avg_pool3d(large[:, None].float(), 2)[:, 0] > 0.5
    dice = 2 * (pooled & small.bool()).sum() / (pooled.sum() + small.sum())
    assert dice > 0.95


def test_augment_flips_and_rolls_image_and_target_alike() -> None:
    size = 64
    image = torch.zeros(16, 1, size, size, size)
    image[:, 0, 20, 30, 40] = 1.0
    target = image[:, 0].long() * 2
    seeds = list(range(16))
    out_image, out_target = augment(image, target, seeds, SMALL)
    assert torch.equal(out_target, out_image[:, 0].long() * 2)
    again, _ = augment(image, target, seeds, SMALL)
    assert torch.equal(again, out_image)
    positions = torch.stack([torch.nonzero(out_image[b, 0])[0] for b in range(16)])
    original = torch.tensor([20, 30, 40])
    flipped = size - 1 - original
    roll = 5  # 10 voxels at 128^3
    near_original = (positions - original).abs() <= roll
    near_flipped = (positions - flipped).abs() <= roll
    assert (near_original | near_flipped).all()
    assert near_flipped.any() and near_original.any()
    assert len({tuple(p.tolist()) for p in positions}) > 10
    no_flip = SynthConfig(size=size, flip=False)
    positions, _ = augment(image, target, seeds, no_flip)
    found = torch.stack([torch.nonzero(positions[b, 0])[0] for b in range(16)])
    assert ((found - original).abs() <= roll).all()


def test_generate_cli_writes_identical_files(tmp_path) -> None:
    config = tmp_path / "synth.yaml"
    config.write_text("n_extra: 3\nsize: 32\n")
    args = ["generate", "--n", "3", "--seed", "5", "--config", str(config)]
    assert main([*args, "--out", str(tmp_path / "a"), "--batch", "2"]) == 0
    assert main([*args, "--out", str(tmp_path / "b"), "--batch", "3"]) == 0
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == [f"synth_{i:04d}_{kind}.nii.gz" for i in range(3) for kind in ("image", "label")]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    image = nib.load(tmp_path / "a" / "synth_0001_image.nii.gz")
    label = nib.load(tmp_path / "a" / "synth_0001_label.nii.gz")
    assert image.shape == (32, 32, 32) and image.get_data_dtype() == np.float32
    assert label.get_data_dtype() == np.uint8
    assert set(np.unique(np.asarray(label.dataobj))) == {0, 1, 2}
    assert np.allclose(np.diag(image.affine)[:3], 8.0)
    assert np.allclose(image.affine @ [15.5, 15.5, 15.5, 1], [0, 0, 0, 1])
    # Sample 1 of the run is generate() of sample_seed(5, 1) with the YAML's config.
    expected, _ = generate([sample_seed(5, 1)], SynthConfig(size=32, n_extra=3))
    assert np.array_equal(np.asarray(image.dataobj), expected[0, 0].numpy())


def test_generate_cli_reports_user_errors(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("sizee: 32\n")
    assert main(["generate", "--n", "1", "--seed", "0", "--out", str(tmp_path), "--config", str(bad)]) == 2
    assert "sizee" in capsys.readouterr().err
    assert main(["generate", "--n", "0", "--seed", "0", "--out", str(tmp_path)]) == 2
