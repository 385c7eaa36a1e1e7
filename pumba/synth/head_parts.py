"""The shapes real heads have and the reference generator lacks: generator extensions of the anatomy.

Four switches of :class:`pumba.synth.SynthConfig`, each off at its default and drawn from its own random
stream (switching one on leaves every other draw of a sample unchanged):

- **neck** (``neck_prob``): the head moves up in the field of view and a neck and shoulders of soft tissue
  fill the space below it, with an airway, a vertebral column, its CSF canal and a cord continuous with the
  brain's lower pole. The cord is labelled brain down to a random level below the brain and non-brain under
  it, as a reference mask stops the brainstem somewhere near the foramen magnum.
- **lobes** (``lobes``): the brain is the union of a shrunken central ellipsoid and a few overlapping
  ellipsoids of their own sizes and aspect ratios (bulbs in front, a cerebellum behind, flat wide or long
  brains), kept a gap inside the skull's inner ellipsoid, which stays convex (a skull that followed each lobe
  filled the clefts between lobes with brain-like skull tissue, which taught a network that brain-like tissue
  beyond a thin dark cleft is not brain: real cortex beyond a sulcus; validation Dice fell to 0.82, the model
  card); ``head_aspect`` stretches the whole head per axis (long rodent heads, flat primate ones).
- **muscle** (``muscle_prob``): thick blobs of brain-like intensity (temporal muscle, scalp fat) hug the
  outside of a thin skull layer, inside and outside the head ellipsoid.
- **CSF** (``csf_prob``): one CSF intensity per sample, dark or bright (T1/FLAIR or T2; bright CSF is brighter
  than every brain block, :func:`brain_under_csf`, as in a T2 scan), in a layer around the
  brain (labelled non-brain, as the reference masks leave extra-cerebral CSF out), and inside the brain in a
  midline fissure, sulci at its surface and a pair of ventricles, up to atrophied size (labelled brain, as
  every reference mask here fills the ventricles).

Lengths are drawn in voxels of the 128^3 reference grid (2 mm) and multiplied by the sample's scale ``f``
(grid size / 128 times zoom). Axis order (x, y, z) = tensor dims (D, H, W); +z is superior (inference reorders
every scan to RAS), +y anterior. Centres and radii are float32 CPU tensors in voxels of the S^3 grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from pumba.synth import shapes

if TYPE_CHECKING:
    from pumba.synth.generator import SynthConfig

# Intensity table entries the extensions add after the reference's, per sample: the neck's n^3 blocks, then
# one entry each for the vertebral column, the airway, CSF and muscle.
SPINE, AIRWAY, CSF, MUSCLE = range(4)
N_SINGLE = 4
BRIGHT_CSF = 0.7
"""Bright (T2-like) CSF is drawn in [BRIGHT_CSF, 1]; dark (T1, FLAIR) CSF in [0, 0.2], below every brain
block."""
CSF_CONTRAST = 0.2
"""Under bright CSF the brain's blocks are compressed to [mu lo, CSF - CSF_CONTRAST]: as in a T2 scan, CSF is
brighter than any brain tissue, so the edge between the brain and the CSF around it is always visible."""


@dataclass(frozen=True)
class HeadParts:
    """One sample's extension draws (voxels of the S^3 grid; empty (0, 3) tensors where a part is absent).

    Attributes:
        shift: (3,) translation of the whole head (skull, brain and everything in it) to make room for a neck.
        aspect: (3,) factor on the head's diameters per axis.
        core_scale: (3,) factor on the central brain ellipsoid's radii (1 without lobes).
        lobe_centres, lobe_radii: (K, 3) the extra brain ellipsoids, relative to the brain centre.
        lobe_gap: the lobes stop this many voxels inside the skull's inner ellipsoid.
        neck: whether the sample has a neck; the columns below are relative to the shifted head centre
            (neck, airway) or brain centre (cord, canal, spine): (x, y) centre, z top, and (x, y) radii.
        neck_column, neck_radii; body_centre, body_radii: shoulders (an ellipsoid); airway (x, y, z top),
        radius. cord (x, y, z top); cord_radius, canal_radius, spine_radius; cord_cut: voxels below the
            brain's lower pole where the cord stops being brain.
        muscle_centres, muscle_radii: (M, 3) muscle blobs (relative to the head centre); skull_layer: voxels
            of skull kept between the skull's inner surface and the muscle.
        csf: whether the sample has CSF spaces; csf_layer: thickness of the layer around the brain;
            sulci_centres,
            sulci_radii: (N, 3) relative to the brain centre; ventricle_centres, ventricle_radii: (2, 3)
            likewise; fissure_width, fissure_bottom: the midline fissure's width and its lowest z relative to
            the brain centre.
        mu, sigma: (n^3 + 4,) intensity table entries: neck blocks, spine, airway, CSF, muscle.
    """

    shift: torch.Tensor
    aspect: torch.Tensor
    core_scale: torch.Tensor
    lobe_centres: torch.Tensor
    lobe_radii: torch.Tensor
    lobe_gap: float
    neck: bool
    neck_column: torch.Tensor
    neck_radii: torch.Tensor
    body_centre: torch.Tensor
    body_radii: torch.Tensor
    airway: torch.Tensor
    airway_radius: float
    cord: torch.Tensor
    cord_radius: float
    canal_radius: float
    spine_radius: float
    cord_cut: float
    muscle_centres: torch.Tensor
    muscle_radii: torch.Tensor
    skull_layer: float
    csf: bool
    csf_layer: float
    sulci_centres: torch.Tensor
    sulci_radii: torch.Tensor
    ventricle_centres: torch.Tensor
    ventricle_radii: torch.Tensor
    fissure_width: float
    fissure_bottom: float
    mu: torch.Tensor
    sigma: torch.Tensor


class _Draws:
    """Uniform draws from one seeded stream."""

    def __init__(self, seed: int) -> None:
        self.g = torch.Generator().manual_seed(seed)

    def u(self, rng: tuple[float, float], n: int = 1) -> torch.Tensor:
        return rng[0] + (rng[1] - rng[0]) * torch.rand(n, generator=self.g)

    def ints(self, rng: tuple[int, int], n: int = 1) -> torch.Tensor:
        return torch.randint(rng[0], rng[1], (n,), generator=self.g).float()

    def coin(self, p: float) -> bool:
        return float(torch.rand(1, generator=self.g)) < p

    def direction(self, min_z: float = -1.0) -> torch.Tensor:
        """A random unit vector with z >= ``min_z``."""
        d = torch.randn(3, generator=self.g)
        d = d / d.norm().clamp(min=1e-6)
        d[2] = d[2].clamp(min=min_z)
        return d / d.norm().clamp(min=1e-6)


def _rows(rows: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(rows) if rows else torch.zeros((0, 3))


@dataclass(frozen=True)
class Shape:
    """The draws that change the head's and the brain's diameters, made before the rest of the anatomy: the
    head's aspect (3,), the central brain ellipsoid's scale (3,), the number of lobes, and the lobes stream
    (its later draws place the lobes)."""

    aspect: torch.Tensor
    core_scale: torch.Tensor
    n_lobes: int
    draws: _Draws


def draw_shape(seed: int, cfg: SynthConfig) -> Shape:
    """The :class:`Shape` of one sample, from the lobes stream ``seed``."""
    d = _Draws(seed)
    aspect = d.u(cfg.head_aspect, 3)
    n = int(d.ints(cfg.lobes))
    core = d.u(cfg.lobe_core, 3) if n else torch.ones(3)
    return Shape(aspect, core, n, d)


def draw_parts(
    shape: Shape,
    seeds: tuple[int, int, int],
    cfg: SynthConfig,
    f: float,
    head_radii: torch.Tensor,
    brain_radii: torch.Tensor,
    brain_mu: float,
    room: float,
) -> HeadParts:
    """Every other extension draw of one sample.

    Args:
        shape: the sample's :class:`Shape` (its stream places the lobes).
        seeds: the seeds of the neck, muscle and CSF streams.
        cfg: the generator settings (the extensions' fields of :class:`pumba.synth.SynthConfig`).
        f: the sample's scale (grid voxels per reference voxel, zoom included).
        head_radii, brain_radii: (3,) the head's and the central brain ellipsoid's radii (grid voxels).
        brain_mu: the mean intensity of the brain's blocks (muscle is drawn around it).
        room: grid voxels above the top of the head: a neck moves the head up by at most this much, so the
            crown stays in the field of view.
    """
    lobes = shape.draws
    lobe_c, lobe_r = [], []
    whole = brain_radii / shape.core_scale  # the brain's radii before the central ellipsoid shrank
    for _ in range(shape.n_lobes):
        # a lobe's centre at 0.5-1 of the central ellipsoid's half-axes in a random direction; its radii are
        # its own fractions of the whole brain's, so the union reaches out to the skull in places
        reach = lobes.u((0.5, 1.0))
        lobe_c.append(lobes.direction() * reach * brain_radii)
        lobe_r.append(lobes.u(cfg.lobe_radius, 3) * whole)
    # as wide as the reference generator's gap between brain and skull (brain_gap / 2 per side): a band the
    # eye (and the network) sees the brain's edge by
    lobe_gap = float(lobes.u((2.0, 10.0))) * f

    neck = _Draws(seeds[0])
    has_neck = neck.coin(cfg.neck_prob)
    up = min(float(neck.ints(cfg.neck_shift)) * f, room)
    rx, ry, rz = head_radii.tolist()
    neck_radii = torch.cat([neck.u((0.35, 0.55)) * rx, neck.u((0.45, 0.7)) * ry])
    neck_column = torch.tensor([0.0, -float(neck.u((0.0, 0.25))) * ry, 0.0])
    body_centre = torch.tensor([0.0, -0.1 * ry, -rz - float(neck.u((10.0, 40.0))) * f])
    body_radii = torch.cat([neck.u((1.1, 1.6)) * rx, neck.u((0.5, 0.8)) * ry, neck.u((15.0, 30.0)) * f])
    airway = torch.tensor(
        [
            0.0,
            neck_column[1] + float(neck.u((0.2, 0.5))) * float(neck_radii[1]),
            -float(neck.u((0.3, 0.6))) * rz,
        ]
    )
    airway_radius = float(neck.u((2.0, 6.0))) * f
    bx, by, bz = brain_radii.tolist()
    cord = torch.tensor([0.0, -float(neck.u((0.05, 0.3))) * by, 0.0])
    cord_radius = float(neck.ints(cfg.cord_radius)) * f
    canal_radius = cord_radius + float(neck.u((1.0, 3.0))) * f
    spine_radius = canal_radius + float(neck.u((3.0, 8.0))) * f
    cord_cut = float(neck.ints(cfg.cord_cut)) * f
    neck_mu = neck.u(cfg.mu, cfg.block_divisions**3 + 1)  # neck blocks, then the vertebral column
    neck_sigma = neck.u(cfg.sigma, cfg.block_divisions**3 + 1)
    airway_mu, airway_sigma = neck.u((0.0, 0.1)), neck.u((0.0, 0.03))

    muscle = _Draws(seeds[1])
    has_muscle = muscle.coin(cfg.muscle_prob)
    n_muscle = int(muscle.ints(cfg.muscle_blobs))
    muscle_c, muscle_r = [], []
    for _ in range(n_muscle):
        muscle_c.append(muscle.direction(min_z=-0.3) * head_radii)
        muscle_r.append(muscle.ints(cfg.muscle_radius, 3) * f)
    skull_layer = float(muscle.u((2.0, 6.0))) * f
    muscle_mu = (brain_mu + 0.1 * torch.randn(1, generator=muscle.g)).clamp(0.0, 1.0)
    muscle_sigma = muscle.u((0.0, 0.1))

    csf = _Draws(seeds[2])
    has_csf = csf.coin(cfg.csf_prob)
    layer = float(csf.ints(cfg.csf_layer)) * f
    sulci_c, sulci_r = [], []
    for _ in range(int(csf.ints(cfg.csf_sulci))):
        sulci_c.append(csf.direction(min_z=-0.5) * csf.u((0.85, 1.0)) * brain_radii)
        sulci_r.append(csf.u((1.5, 4.0), 3) * f)
    size = csf.u(cfg.ventricle_size)
    half = torch.cat([size * bx * 0.6, size * by * 1.4, size * bz]).clamp(max=0.6 * brain_radii)
    lateral = float(csf.u((0.08, 0.2))) * bx + float(half[0]) * 0.5
    centre_y, centre_z = float(csf.u((-0.15, 0.15))) * by, float(csf.u((0.0, 0.2))) * bz
    ventricle_c = torch.tensor([[-lateral, centre_y, centre_z], [lateral, centre_y, centre_z]])
    ventricle_r = torch.stack([half, half])
    fissure_width = float(csf.u((0.5, 2.5))) * f
    fissure_bottom = float(csf.u((-0.2, 0.4))) * bz
    dark = csf.coin(0.5)
    csf_mu = csf.u((0.0, 0.2)) if dark else csf.u((BRIGHT_CSF, 1.0))
    csf_sigma = csf.u((0.0, 0.05))

    empty = torch.zeros((0, 3))
    return HeadParts(
        shift=torch.tensor([0.0, 0.0, up if has_neck else 0.0]),
        aspect=shape.aspect,
        core_scale=shape.core_scale,
        lobe_centres=_rows(lobe_c),
        lobe_radii=_rows(lobe_r),
        lobe_gap=lobe_gap,
        neck=has_neck,
        neck_column=neck_column,
        neck_radii=neck_radii,
        body_centre=body_centre,
        body_radii=body_radii,
        airway=airway,
        airway_radius=airway_radius,
        cord=cord,
        cord_radius=cord_radius,
        canal_radius=canal_radius,
        spine_radius=spine_radius,
        cord_cut=cord_cut,
        muscle_centres=_rows(muscle_c) if has_muscle else empty,
        muscle_radii=_rows(muscle_r) if has_muscle else empty,
        skull_layer=skull_layer,
        csf=has_csf,
        csf_layer=layer,
        sulci_centres=_rows(sulci_c),
        sulci_radii=_rows(sulci_r),
        ventricle_centres=ventricle_c,
        ventricle_radii=ventricle_r,
        fissure_width=fissure_width,
        fissure_bottom=fissure_bottom,
        mu=torch.cat([neck_mu, airway_mu, csf_mu, muscle_mu]),
        sigma=torch.cat([neck_sigma, airway_sigma, csf_sigma, muscle_sigma]),
    )


def _paint(
    blocks: torch.Tensor, region: torch.Tensor, window: shapes.Window, index: int | torch.Tensor
) -> None:
    """Set ``blocks`` (S, S, S) to ``index`` (a scalar or a tensor of the window's shape) where ``region``."""
    view = blocks[shapes.window_slices(window)]
    view.copy_(torch.where(region, index, view))


def _ellipsoids(centres: torch.Tensor, radii: torch.Tensor, size: int, device: torch.device) -> torch.Tensor:
    """The union of ellipsoids (K, 3) on the whole grid, each evaluated in its own window; bool (S, S, S)."""
    out = torch.zeros((size,) * 3, dtype=torch.bool, device=device)
    for c, r in zip(centres, radii, strict=True):
        window = shapes.bounding_window(c, r, size)
        if window is not None:
            out[shapes.window_slices(window)] |= shapes.ellipsoid(
                c[None].to(device), r[None].to(device), window
            )[0]
    return out


def brain_union(
    p: HeadParts,
    brain_centre: torch.Tensor,
    brain_radii: torch.Tensor,
    skull_radii: torch.Tensor,
    skull_inner: torch.Tensor,
) -> torch.Tensor:
    """The brain label before deformation: the central ellipsoid within the skull's inside ``skull_inner``
    (bool (S, S, S)), and the lobes within that inside shrunk by ``lobe_gap`` voxels (the skull's inner
    ellipsoid, centred on the brain, with radii ``skull_radii`` less the gap), so that a lobe reaching the
    skull still leaves a gap of CSF-dark background between them, as the reference generator's brain has;
    bool (S, S, S). ``brain_radii`` are the central ellipsoid's (``core_scale`` applied)."""
    size, device = skull_inner.shape[0], skull_inner.device
    core = _ellipsoids(brain_centre[None], brain_radii[None], size, device) & skull_inner
    shrunk = (skull_radii - p.lobe_gap).clamp(min=0.5)
    within = _ellipsoids(brain_centre[None], shrunk[None], size, device)
    return core | (_ellipsoids(brain_centre + p.lobe_centres, p.lobe_radii, size, device) & within)


def _grown(
    p: HeadParts, brain_centre: torch.Tensor, brain_radii: torch.Tensor, grow: float, within: torch.Tensor
) -> torch.Tensor:
    """The brain's ellipsoids (central one and lobes) with every radius grown by ``grow`` voxels, within
    ``within`` (S, S, S); bool (S, S, S)."""
    centres = torch.cat([brain_centre[None], brain_centre + p.lobe_centres])
    radii = torch.cat([brain_radii[None], p.lobe_radii]) + grow
    return _ellipsoids(centres, radii, within.shape[0], within.device) & within


def paint_outside(
    blocks: torch.Tensor,
    p: HeadParts,
    head_centre: torch.Tensor,
    skull_centre: torch.Tensor,
    skull_radii: torch.Tensor,
    skull_inner: torch.Tensor,
    base: int,
    divisions: int,
) -> None:
    """Muscle and the neck, painted into one sample's block map (S, S, S) in place, outside the skull's
    inside.

    ``base`` is the table index of the extensions' first entry (:data:`SPINE` etc. follow the neck's blocks).
    """
    size, device = blocks.shape[0], blocks.device
    n3 = divisions**3
    single = base + n3
    full = shapes.full_window(size)
    if len(p.muscle_centres):
        kept_skull = shapes.ellipsoid(
            skull_centre[None].to(device), (skull_radii + p.skull_layer)[None].to(device), full
        )[0]
        muscle = _ellipsoids(head_centre + p.muscle_centres, p.muscle_radii, size, device) & ~kept_skull
        _paint(blocks, muscle, full, single + MUSCLE)
    if not p.neck:
        return
    outside = ~skull_inner
    column = torch.cat([head_centre[:2] + p.neck_column[:2], head_centre[2:]])
    neck = shapes.column(column[None].to(device), p.neck_radii[None].to(device), full)[0]
    neck |= _ellipsoids((head_centre + p.body_centre)[None], p.body_radii[None], size, device)
    lower = torch.cat([column[:2] - p.neck_radii, torch.tensor([-0.5])])
    extent = torch.cat([2 * p.neck_radii, column[2:] + 0.5])
    neck_blocks = shapes.block_index(lower[None].to(device), extent[None].to(device), divisions, full)[0]
    _paint(blocks, neck & outside, full, neck_blocks + base)
    airway = torch.cat([head_centre[:2] + p.airway[:2], head_centre[2:] + p.airway[2:]])
    radius = torch.full((1, 2), p.airway_radius, device=device)
    _paint(
        blocks,
        shapes.column(airway[None].to(device), radius, full)[0] & neck & outside,
        full,
        single + AIRWAY,
    )


def paint_cord(
    blocks: torch.Tensor,
    p: HeadParts,
    brain_centre: torch.Tensor,
    skull_inner: torch.Tensor,
    brain_index: torch.Tensor,
    base: int,
    divisions: int,
) -> torch.Tensor:
    """The vertebral column, its CSF canal and the cord, painted in place (the cord with the brain's block
    indices ``brain_index``, (S, S, S)); returns the cord (bool (S, S, S)) from the brain centre down."""
    size, device = blocks.shape[0], blocks.device
    full = shapes.full_window(size)
    single = base + divisions**3
    top = (brain_centre + p.cord)[None].to(device)

    def column(radius: float) -> torch.Tensor:
        return shapes.column(top, torch.full((1, 2), radius, device=device), full)[0]

    _paint(blocks, column(p.spine_radius) & ~skull_inner, full, single + SPINE)
    _paint(blocks, column(p.canal_radius), full, single + CSF)
    cord = column(p.cord_radius)
    _paint(blocks, cord, full, brain_index)
    return cord


def cord_label(
    cord: torch.Tensor, p: HeadParts, brain_centre: torch.Tensor, brain_radii: torch.Tensor
) -> torch.Tensor:
    """The part of the cord labelled brain: above ``cord_cut`` voxels below the brain's lower pole."""
    cut = float(brain_centre[2] - brain_radii[2]) - p.cord_cut
    z = torch.arange(cord.shape[2], dtype=torch.float32, device=cord.device)
    return cord & (z >= cut)[None, None, :]


def csf_around(
    p: HeadParts, brain_centre: torch.Tensor, brain_radii: torch.Tensor, skull_inner: torch.Tensor
) -> torch.Tensor:
    """The CSF layer's region: the brain's ellipsoids grown by ``csf_layer`` voxels, inside the skull (the
    brain, painted over it, keeps its own intensities); bool (S, S, S)."""
    return _grown(p, brain_centre, brain_radii, p.csf_layer, skull_inner)


def csf_inside(p: HeadParts, brain_centre: torch.Tensor, brain: torch.Tensor) -> torch.Tensor:
    """CSF spaces inside the brain (ventricles, sulci, the midline fissure above ``fissure_bottom``), within
    ``brain`` (S, S, S); bool (S, S, S)."""
    size, device = brain.shape[0], brain.device
    spaces = _ellipsoids(brain_centre + p.ventricle_centres, p.ventricle_radii, size, device)
    spaces |= _ellipsoids(brain_centre + p.sulci_centres, p.sulci_radii, size, device)
    axis = torch.arange(size, dtype=torch.float32, device=device)
    # at least one voxel wide: the brain centre lies between voxels, so a narrower slab would select none
    slab = (axis - float(brain_centre[0])).abs() <= max(p.fissure_width, 1.0) / 2
    above = axis >= float(brain_centre[2]) + p.fissure_bottom
    spaces |= slab[:, None, None] & above[None, None, :]
    return spaces & brain


def brain_under_csf(
    brain_mu: torch.Tensor, p: HeadParts, n3: int, drawn: tuple[float, float]
) -> torch.Tensor:
    """The brain blocks' mean intensities ``brain_mu`` (n^3,), drawn uniform in ``drawn`` (lo, hi), mapped
    linearly onto [lo, CSF - :data:`CSF_CONTRAST`] when the sample has bright CSF, so that CSF is brighter
    than any brain block (``n3`` = the n^3 entries of the neck's blocks that come first in ``p.mu``);
    unchanged otherwise."""
    csf_mu = float(p.mu[n3 + CSF])
    lo, hi = drawn
    top = csf_mu - CSF_CONTRAST
    if not p.csf or csf_mu < BRIGHT_CSF or hi <= lo or top >= hi:
        return brain_mu
    return lo + (brain_mu - lo) * max(top - lo, 0.0) / (hi - lo)
