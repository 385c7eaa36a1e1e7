"""Tests of the head-shape extensions of the generator (pumba.synth.head_parts): neck and cord, lobes, muscle
and CSF spaces, each checked on the anatomy before deformation, where the geometry is exact."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from pumba.synth import SynthConfig, draw_params, generate, head_parts, shapes
from pumba.synth.generator import anatomy

CPU = torch.device("cpu")
SMALL = SynthConfig(size=64)
SEEDS = [0, 1, 2, 3]
SWITCHES = {
    "neck": {"neck_prob": 1.0},
    "lobes": {"lobes": (2, 5), "head_aspect": (0.7, 1.3)},
    "muscle": {"muscle_prob": 1.0},
    "csf": {"csf_prob": 1.0},
}


def _anatomy(cfg: SynthConfig, seeds: list[int] = SEEDS):
    params = [draw_params(s, cfg) for s in seeds]
    return params, *anatomy(params, cfg, CPU)


def _core(p) -> torch.Tensor:
    """The central brain ellipsoid of one sample, bool (S, S, S)."""
    return shapes.ellipsoid(p.origin[None], p.brain_radii[None], shapes.full_window(SMALL.size))[0]


def _base(cfg: SynthConfig) -> int:
    """Table index of the extensions' single entries (after the neck's blocks)."""
    n3 = cfg.block_divisions**3
    return (cfg.n_extra + 3) * n3 + cfg.lesions[1] - 1 + n3


def test_defaults_draw_no_head_parts() -> None:
    for seed in SEEDS:
        parts = draw_params(seed, SMALL).parts
        assert not parts.neck and not parts.csf
        assert len(parts.lobe_centres) == 0 and len(parts.muscle_centres) == 0
        assert torch.equal(parts.shift, torch.zeros(3)) and torch.equal(parts.aspect, torch.ones(3))


@pytest.mark.parametrize("name", list(SWITCHES))
def test_each_switch_changes_the_volume_and_is_seeded(name: str) -> None:
    cfg = dataclasses.replace(SMALL, **SWITCHES[name])
    plain_image, _ = generate(SEEDS, SMALL)
    image, mask = generate(SEEDS, cfg)
    assert not torch.equal(image, plain_image)
    again = generate(SEEDS, cfg)
    assert torch.equal(image, again[0]) and torch.equal(mask, again[1])  # bit for bit
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0


def test_one_switch_leaves_the_other_parts_draws_unchanged() -> None:
    for seed in SEEDS:
        only_csf = draw_params(seed, dataclasses.replace(SMALL, csf_prob=1.0))
        both = draw_params(seed, dataclasses.replace(SMALL, csf_prob=1.0, muscle_prob=1.0))
        plain = draw_params(seed, SMALL)
        assert torch.equal(only_csf.parts.ventricle_radii, both.parts.ventricle_radii)
        assert torch.equal(only_csf.parts.sulci_centres, both.parts.sulci_centres)
        assert torch.equal(plain.head_radii, both.head_radii) and torch.equal(plain.velocity, both.velocity)
        n3 = SMALL.block_divisions**3
        n_ext = n3 + head_parts.N_SINGLE  # the extensions' entries close the table
        brain = slice((SMALL.n_extra + 2) * n3, (SMALL.n_extra + 3) * n3)
        # the main table as drawn, but for the brain's blocks under bright CSF (brain_under_csf)
        expected = plain.mu[:-n_ext].clone()
        expected[brain] = head_parts.brain_under_csf(plain.mu[brain], both.parts, n3, SMALL.mu)
        assert torch.equal(expected, both.mu[:-n_ext])


def test_neck_puts_tissue_below_the_head_and_labels_the_cord_down_to_its_cut() -> None:
    # a smaller head (zoom 0.75) leaves room above it for the neck to move it up
    cfg = dataclasses.replace(SMALL, zoom=(0.75, 0.75), **SWITCHES["neck"])
    params, blocks, label, _ = _anatomy(cfg)
    _, plain_blocks, _, _ = _anatomy(dataclasses.replace(SMALL, zoom=(0.75, 0.75)))
    z = torch.arange(cfg.size, dtype=torch.float32)
    for b, p in enumerate(params):
        assert p.parts.neck and float(p.parts.shift[2]) > 0
        assert float(p.origin[2]) > (cfg.size - 1) / 2  # the head moved up
        assert float(p.head_centre[2] + p.head_radii[2]) <= cfg.size - 3 + 1e-4  # the crown stays in view
        # the bottom slice is tissue (neck or shoulders), where the plain head has only background there
        assert (blocks[b, :, :, 0] > 0).float().mean() > 0.1
        assert (plain_blocks[b, :, :, 0] > 0).float().mean() < (blocks[b, :, :, 0] > 0).float().mean()
        core = _core(p)
        below = label[b] & ~core
        lowest = float(z[label[b].any(dim=(0, 1))].min())
        cut = float(p.origin[2] - p.brain_radii[2]) - p.parts.cord_cut
        assert lowest >= cut - 1e-4  # nothing labelled brain below the cut
        assert below.any()  # the cord above it is brain
        # what is brain outside the central ellipsoid lies within the cord's radius of its axis
        axis = p.origin + p.parts.cord
        xs, ys, _ = torch.nonzero(below, as_tuple=True)
        dist = ((xs - axis[0]) ** 2 + (ys - axis[1]) ** 2).sqrt()
        assert float(dist.max()) <= p.parts.cord_radius + 1e-4
        # the cord continues as brain-like tissue below the cut: the brain's block entries, not labelled
        n3 = cfg.block_divisions**3
        brain_first = (cfg.n_extra + 2) * n3
        brain_like = (blocks[b] >= brain_first) & (blocks[b] < brain_first + n3)
        assert (brain_like & ~label[b] & (z < cut - 1)[None, None, :]).any()


def test_lobes_make_the_brain_a_union_inside_a_convex_skull() -> None:
    cfg = dataclasses.replace(SMALL, **SWITCHES["lobes"])
    params, blocks, label, _ = _anatomy(cfg)
    full = shapes.full_window(cfg.size)
    for b, p in enumerate(params):
        core = _core(p)
        assert 2 <= len(p.parts.lobe_centres) <= 4
        assert (label[b] & ~core).any()  # lobes reach out of the shrunken central ellipsoid
        assert core[label[b]].float().mean() < 1.0
        assert bool((label[b] | ~core).all())  # the central ellipsoid is brain throughout
        # a lobe stops lobe_gap voxels inside the skull's inner ellipsoid: there is always a gap between them
        shrunk = shapes.ellipsoid(p.origin[None], (p.skull_radii - p.parts.lobe_gap)[None], full)[0]
        assert not (label[b] & ~core & ~shrunk).any()
        # the skull's inside stays its ellipsoid (convex): between the brain and it lies background (block 0),
        # or extras where they reach in, never the skull's own blocks (1..n^3)
        inner = shapes.ellipsoid(p.origin[None], p.skull_radii[None], full)[0]
        n3 = cfg.block_divisions**3
        between = blocks[b][inner & ~label[b]]
        assert not bool(((between >= n3) & (between < 2 * n3)).any())
        assert float((between == 0).float().mean()) > 0.5


def test_head_aspect_stretches_the_head_per_axis() -> None:
    cfg = dataclasses.replace(SMALL, head_aspect=(0.7, 1.3))
    limit = (cfg.size - 2) / 2  # a stretched head's radius stops at the grid's half-size less a voxel
    stretched = 0
    for seed in SEEDS:
        p, plain = draw_params(seed, cfg), draw_params(seed, SMALL)
        expected = torch.minimum(plain.head_radii * p.parts.aspect, plain.head_radii.clamp(min=limit))
        assert torch.allclose(p.head_radii, expected)
        assert bool(((p.parts.aspect >= 0.7) & (p.parts.aspect <= 1.3)).all())
        stretched += int((p.head_radii > plain.head_radii + 1e-4).sum())
        assert bool((p.head_radii <= plain.head_radii.clamp(min=limit) + 1e-4).all())
    assert stretched > 0  # some axis grew, to the limit at most


def test_neck_never_pushes_the_crown_out_of_the_field_of_view() -> None:
    for zoom in (0.6, 0.9, 1.05):
        cfg = dataclasses.replace(SMALL, zoom=(zoom, zoom), neck_prob=1.0, neck_shift=(20, 60))
        for seed in range(8):
            p, plain = draw_params(seed, cfg), draw_params(seed, dataclasses.replace(cfg, neck_prob=0.0))
            top, plain_top = (float(q.head_centre[2] + q.head_radii[2]) for q in (p, plain))
            assert float(p.parts.shift[2]) >= 0
            assert top <= max(cfg.size - 3, plain_top) + 1e-4


def test_the_midline_fissure_is_at_least_one_voxel_wide() -> None:
    cfg = dataclasses.replace(SMALL, **SWITCHES["csf"])
    p = draw_params(0, cfg)
    empty = torch.zeros((0, 3))
    only_fissure = dataclasses.replace(
        p.parts,
        fissure_width=0.3,
        ventricle_centres=empty,
        ventricle_radii=empty,
        sulci_centres=empty,
        sulci_radii=empty,
    )
    brain = torch.ones((cfg.size,) * 3, dtype=torch.bool)
    spaces = head_parts.csf_inside(only_fissure, p.origin, brain)
    columns = spaces.any(dim=(1, 2))
    assert int(columns.sum()) >= 1  # at least one sagittal slice of fissure
    assert abs(float(torch.nonzero(columns).float().mean()) - float(p.origin[0])) <= 0.5  # on the midline


def test_muscle_is_brain_like_outside_a_layer_of_skull() -> None:
    cfg = dataclasses.replace(SMALL, **SWITCHES["muscle"])
    params, blocks, label, _ = _anatomy(cfg)
    index = _base(cfg) + head_parts.MUSCLE
    full = shapes.full_window(cfg.size)
    for b, p in enumerate(params):
        muscle = blocks[b] == index
        assert muscle.any()
        kept = shapes.ellipsoid(p.origin[None], (p.skull_radii + p.parts.skull_layer)[None], full)[0]
        assert not (muscle & kept).any() and not (muscle & label[b]).any()
        n3 = cfg.block_divisions**3
        brain_mu = float(p.mu[(cfg.n_extra + 2) * n3 : (cfg.n_extra + 3) * n3].mean())
        assert abs(float(p.mu[index]) - brain_mu) <= 0.45  # drawn around the brain's mean, sd 0.1


def test_csf_spaces_inside_the_brain_are_brain_and_the_layer_around_it_is_not() -> None:
    cfg = dataclasses.replace(SMALL, **SWITCHES["csf"])
    params, blocks, label, _ = _anatomy(cfg)
    _, _, plain_label, _ = _anatomy(SMALL)
    assert torch.equal(label, plain_label)  # CSF repaints, it never relabels
    index = _base(cfg) + head_parts.CSF
    for b, p in enumerate(params):
        csf = blocks[b] == index
        inside, outside = csf & label[b], csf & ~label[b]
        assert inside.any() and outside.any()
        # the ventricles: CSF at their centres, deep in the brain
        for centre in p.origin + p.parts.ventricle_centres:
            i, j, k = (round(float(v)) for v in centre)
            assert bool(label[b, i, j, k]) and int(blocks[b, i, j, k]) == index
        mu = float(p.mu[index])
        assert mu <= 0.2 or mu >= 0.7  # dark or bright
        # either way CSF contrasts with every brain block by at least 0.2
        n3 = cfg.block_divisions**3
        brain_mu = p.mu[(cfg.n_extra + 2) * n3 : (cfg.n_extra + 3) * n3]
        if mu >= 0.7:
            assert float(brain_mu.max()) <= mu - head_parts.CSF_CONTRAST + 1e-6
        else:
            assert float(brain_mu.min()) >= mu + 0.2 - 1e-6


def test_bright_csf_dims_the_brain_and_nothing_else() -> None:
    cfg = dataclasses.replace(SMALL, csf_prob=1.0)
    n3 = cfg.block_divisions**3
    brain = slice((cfg.n_extra + 2) * n3, (cfg.n_extra + 3) * n3)
    bright = 0
    for seed in range(12):
        p, plain = draw_params(seed, cfg), draw_params(seed, SMALL)
        csf_mu = float(p.mu[_base(cfg) + head_parts.CSF])
        extensions = _base(cfg) - n3  # the head-shape extensions' entries start here
        assert torch.equal(p.mu[: brain.start], plain.mu[: brain.start])  # other tissues as drawn
        assert torch.equal(p.mu[brain.stop : extensions], plain.mu[brain.stop : extensions])
        if csf_mu >= head_parts.BRIGHT_CSF:
            bright += 1
            assert bool((p.mu[brain] <= plain.mu[brain] + 1e-6).all())
            # the order of the brain's blocks is kept (a linear map)
            assert torch.equal(p.mu[brain].argsort(), plain.mu[brain].argsort())
        else:
            assert torch.equal(p.mu[brain], plain.mu[brain])
    assert 0 < bright < 12


def test_head_part_settings_are_validated() -> None:
    for bad in ({"neck_prob": 1.5}, {"lobes": [3, 2]}, {"csf_prob": -0.1}, {"head_aspect": [0.0, 1.0]}):
        with pytest.raises(ValueError):
            SynthConfig.from_dict(bad)
