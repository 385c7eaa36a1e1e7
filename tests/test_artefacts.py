"""Tests of the generator extensions: each artefact on hand-made inputs, each switch in the generator
(the label never changes with an intensity artefact; geometry scales with the zoom; determinism)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from pumba.synth import SynthConfig, draw_params, generate
from pumba.synth import artefacts as art

SMALL = SynthConfig(size=64)
SEEDS = [11, 12, 13]


def _neutral(**kw) -> art.ArtefactParams:
    base = dict(
        bias=torch.zeros(4, 4, 4),
        gamma=1.0,
        blur_sigma=torch.zeros(3),
        slice_axis=0,
        slice_factor=1,
        noise_std=0.0,
        noise_seed=0,
        normalise=False,
    )
    base.update(kw)
    return art.ArtefactParams(**base)


def test_neutral_artefacts_return_the_image_unchanged() -> None:
    image = torch.rand(1, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(art.apply(image, _neutral()), image)


def test_default_config_draws_neutral_artefacts_and_no_lesions() -> None:
    p = draw_params(5, SMALL)
    assert not p.artefacts.bias.any() and p.artefacts.gamma == 1.0 and p.artefacts.noise_std == 0.0
    assert p.artefacts.slice_factor == 1 and not (p.artefacts.blur_sigma > 0).any()
    assert p.lesion_centres.shape == (0, 3)


def test_bias_field_is_smooth_positive_and_has_the_drawn_spread() -> None:
    log_field = torch.randn(4, 4, 4, generator=torch.Generator().manual_seed(1)) * 0.3
    field = art.bias_field(log_field, 32)
    assert field.shape == (1, 32, 32, 32) and bool((field > 0).all())
    # the corners are control points: exact values there
    assert torch.allclose(field[0, 0, 0, 0].log(), log_field[0, 0, 0], atol=1e-5)
    # trilinear between control points 31/3 voxels apart: a step between neighbours is at most the largest
    # step between neighbouring control points over that distance
    largest = float(log_field.diff(dim=0).abs().max())
    assert float(field.log().diff(dim=1).abs().max()) <= largest / (31 / 3) + 1e-5


def test_gaussian_kernel_is_normalised_and_blur_keeps_a_constant_image() -> None:
    for sigma in (0.5, 1.0, 2.5):
        k = art.gaussian_kernel(sigma)
        assert abs(float(k.sum()) - 1) < 1e-6 and k.numel() % 2 == 1
    flat = torch.full((1, 12, 12, 12), 0.4)
    assert torch.allclose(art.gaussian_blur(flat, torch.tensor([1.0, 2.0, 0.0])), flat)


def test_blur_reduces_white_noise_variance_as_theory_says() -> None:
    noise = torch.randn(1, 48, 48, 48, generator=torch.Generator().manual_seed(2))
    sigma = 2.0
    blurred = art.gaussian_blur(noise, torch.tensor([sigma, 0.0, 0.0]))
    # variance of white noise after a normalised kernel k is sum(k^2) (about 1 / (2 sqrt(pi) sigma))
    expected = float((art.gaussian_kernel(sigma) ** 2).sum())
    assert abs(float(blurred[:, 8:-8].var()) - expected) < 0.1 * expected
    # only along that axis: an image constant along axis 0 passes unchanged
    plane = noise[:, :1].expand_as(noise).contiguous()
    assert torch.allclose(art.gaussian_blur(plane, torch.tensor([sigma, 0.0, 0.0])), plane, atol=1e-5)


def test_thick_slices_remove_through_plane_detail_only() -> None:
    image = torch.rand(1, 32, 32, 32, generator=torch.Generator().manual_seed(3))
    thick = art.thick_slices(image, axis=2, factor=4)
    assert thick.shape == image.shape
    through = float(thick.diff(dim=3).abs().mean())
    in_plane = float(thick.diff(dim=1).abs().mean())
    assert through < 0.3 * in_plane
    # a slab's mean is kept (partial volume): compare coarse averages
    coarse = torch.nn.functional.avg_pool3d(image[None], (1, 1, 4))
    coarse_thick = torch.nn.functional.avg_pool3d(thick[None], (1, 1, 4))
    assert float((coarse - coarse_thick).abs().mean()) < 0.08
    assert torch.equal(art.thick_slices(image, 0, 1), image)


def test_noise_has_the_drawn_standard_deviation_and_is_seeded() -> None:
    grey = torch.full((1, 32, 32, 32), 0.5)
    p = _neutral(noise_std=0.05, noise_seed=7)
    a, b = art.apply(grey, p), art.apply(grey, p)
    assert torch.equal(a, b)
    assert abs(float((a - grey).std()) - 0.05) < 0.003


def test_percentile_normalise_maps_1st_and_99th_percentiles_to_0_and_1() -> None:
    image = torch.linspace(0.2, 0.7, 40**3).reshape(1, 40, 40, 40)
    out = art.percentile_normalise(image)
    values = out.reshape(-1)
    assert float(values.min()) == 0.0 and float(values.max()) == 1.0
    assert abs(float(values.median()) - 0.5) < 0.01


@pytest.mark.parametrize(
    "switch",
    [
        {"bias_std": 0.4},
        {"gamma_std": 0.3},
        {"blur_sigma": (0.5, 1.5)},
        {"thick_slice_prob": 1.0},
        {"noise_std": (0.02, 0.05)},
        {"normalise": True},
    ],
)
def test_intensity_extensions_change_the_image_not_the_label(switch: dict) -> None:
    plain_image, plain_mask = generate(SEEDS, SMALL)
    image, mask = generate(SEEDS, dataclasses.replace(SMALL, **switch))
    assert torch.equal(mask, plain_mask)
    assert not torch.equal(image, plain_image)
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    again, _ = generate(SEEDS, dataclasses.replace(SMALL, **switch))
    assert torch.equal(image, again)  # seeded: bit for bit


def test_one_extension_leaves_the_others_draws_unchanged() -> None:
    both = dataclasses.replace(SMALL, bias_std=0.3, noise_std=(0.05, 0.05))
    only_noise = dataclasses.replace(SMALL, noise_std=(0.05, 0.05))
    a, b = draw_params(9, both).artefacts, draw_params(9, only_noise).artefacts
    assert a.noise_std == b.noise_std and a.noise_seed == b.noise_seed
    assert torch.equal(a.blur_sigma, b.blur_sigma) and a.slice_axis == b.slice_axis


def test_lesions_lie_inside_the_brain_and_keep_the_label() -> None:
    cfg = dataclasses.replace(SMALL, lesions=(3, 4), lesion_diameter=(10, 16))
    plain_image, plain_mask = generate(SEEDS, SMALL)
    image, mask = generate(SEEDS, cfg)
    assert torch.equal(mask, plain_mask)
    changed = (image != plain_image)[:, 0]
    assert changed.any()
    # a lesion only repaints brain voxels (the mask is closed after warping, so allow its rim)
    outside = changed & ~torch.nn.functional.max_pool3d(mask[:, None].float(), 5, 1, 2)[:, 0].bool()
    assert int(outside.sum()) == 0
    assert all(draw_params(s, cfg).lesion_centres.shape == (3, 3) for s in SEEDS)


def test_zoom_scales_the_brain_volume_by_its_cube() -> None:
    seeds = list(range(20, 28))
    _, full = generate(seeds, SMALL)
    _, half = generate(seeds, dataclasses.replace(SMALL, zoom=(0.6, 0.6)))
    ratio = half.float().sum(dim=(1, 2, 3)) / full.float().sum(dim=(1, 2, 3))
    assert np.allclose(ratio.numpy(), 0.6**3, rtol=0.2)


def test_extension_settings_are_validated() -> None:
    for bad in ({"zoom": [0.0, 1.0]}, {"thick_slice_prob": 1.5}, {"bias_std": -1.0}, {"lesions": [2, 2]}):
        with pytest.raises(ValueError):
            SynthConfig.from_dict(bad)


def test_whole_batch_at_once_as_on_a_gpu_equals_the_cpu_chunks(monkeypatch) -> None:
    """On CUDA the generator takes the whole batch in one pass (no chunks); the CPU can run that path too."""
    from pumba.synth import generator

    cfg = dataclasses.replace(SMALL, zoom=(0.6, 1.05), lesions=(0, 4), gamma_std=0.25, bias_std=0.3)
    monkeypatch.setattr(generator, "CPU_CHUNK_VOXELS", cfg.size**3)  # one sample per pass
    chunked = generate(SEEDS, cfg)
    monkeypatch.setattr(generator, "CPU_CHUNK_VOXELS", 2**40)
    whole = generate(SEEDS, cfg)
    assert torch.equal(chunked[0], whole[0]) and torch.equal(chunked[1], whole[1])
