"""The PUMBA synthetic head generator (method notes, steps 1-9), batched in torch on CPU or CUDA.

A sample is a whole head on an S^3 grid (S = ``SynthConfig.size``; 128 in the reference, 2 mm voxels
over a 256 mm field of view): an off-centre ellipsoidal head, a skull shell of random thickness, a
centred ellipsoidal brain, five small extra-cerebral ellipsoids, 2-4 hypo-intense holes in the
brain, piecewise-constant random intensities, a smooth random diffeomorphism and a random rotation.
Axis order (x, y, z) = tensor dims (D, H, W); the grid centre is (S-1)/2 in voxels.

Every draw of sample b comes from generators seeded by ``seeds[b]`` alone, so a sample does not
depend on the batch it is generated in (bit-identical on CPU).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pumba.synth import artefacts, deform, head_parts, intensity, labels, shapes

REFERENCE_SIZE = 128
CPU_CHUNK_VOXELS = 2**21
_STREAM_PARAMS, _STREAM_NOISE, _STREAM_AUGMENT, _STREAM_EXTENSIONS, _STREAM_ARTEFACT_NOISE = 1, 2, 3, 4, 5
_STREAM_LOBES, _STREAM_NECK, _STREAM_MUSCLE, _STREAM_CSF = 6, 7, 8, 9


@dataclass(frozen=True)
class SynthConfig:
    """Generator parameters; defaults are the method notes' values.

    Lengths are in voxels of the 128^3 reference grid (2 mm voxels): when ``size`` != 128 every
    length is multiplied by size/128 after it is drawn, so a 64^3 config draws the same anatomy at
    half the resolution. Integer ranges (lo, hi) are half-open, drawn uniformly from lo..hi-1 as
    numpy's ``integers``; float ranges (lo, hi) are uniform on [lo, hi].

    Attributes:
        size: grid size S (voxels per axis).
        head_diameter: head ellipsoid diameter per axis (step 1).
        head_shift: head centre offset from the grid centre per axis, towards +x, +y, +z (step 1;
            the flip augmentation makes it symmetric). The head is shifted, not wrapped round.
        skull_thickness: per axis; the skull's inner ellipsoid has diameter head - thickness and is
            centred on the grid; the shell is the head XOR that inner ellipsoid (step 2).
        brain_gap: per axis (x, y, z) ranges; brain diameter = head - thickness - gap (step 3).
        block_divisions: each tissue is cut into n^3 blocks with their own statistics (step 4).
        mu, sigma: ranges of a block's intensity mean and standard deviation (step 4).
        background: (mean, standard deviation) of the background intensity (step 4).
        n_extra: number of small extra-cerebral ellipsoids (step 5).
        extra_diameter, extra_offset: their diameters and centre offsets (random sign) per axis.
        n_holes: number of holes in the brain, image 0 there, label brain (step 6).
        hole_diameter: hole diameters per axis; each hole's centre offset is drawn per axis within
            the brain's half-axis, with a random sign, and the hole is clipped to the brain.
        svf_grid: control points per axis of the random velocity field (step 7).
        svf_sigma: standard deviation of the velocity at the control points (voxels, unscaled).
        svf_scale: multiplier on the velocity. Measured at 128^3 over 200 samples: 1.0 (the
            reference taken literally) moves voxels by up to 25-40 voxels and folds space
            (Jacobian determinant down to -47); 0.15 gives a largest displacement per sample of
            6.1 voxels (12 mm) median, 4.9-7.4 for the 5th-95th percentiles, 8.3 at most, a mean
            displacement of 1.5 voxels, and a Jacobian determinant >= 0.29 everywhere.
        svf_integration_size: grid on which the velocity is integrated (then upsampled to S).
        integration_steps: scaling-and-squaring steps.
        rotation_deg: rotation angles about each axis drawn uniformly in +-rotation_deg (step 8).
        closing_radius: ball radius of the closing applied to the warped brain mask (step 9).
        flip: random flip per axis in :func:`augment`.
        roll: :func:`augment` rolls each axis by up to +-roll voxels.

    Extensions (each off at its default, which is the reference method; draws come from their own
    random streams, so switching one on leaves every other draw of a sample unchanged):
        zoom: every length of the scene (head, skull, brain, extras, holes, lesions, head shift,
            deformation) is multiplied by a factor drawn uniformly from this range: the head fills
            more or less of the field of view, as real scans do (a human head in 256 mm, a cropped
            animal head in its own small field of view).
        lesions: number of lesion-like blobs (integer range, half-open) painted inside the brain with an
            intensity of their own (mean uniform in [0, 1], deviation from ``sigma``); label brain.
        lesion_diameter: their diameters per axis (reference voxels).
        bias_std: standard deviation of the log bias field at ``bias_grid``^3 control points (0: none).
        gamma_std: standard deviation of log(gamma); the image is raised to gamma (0: none).
        blur_sigma: range of the Gaussian blur sigma per axis, in reference voxels (2 mm).
        thick_slice_prob: probability of thick slices along one random axis.
        thick_slice_factor: their thickness in reference voxels (integer range, half-open).
        noise_std: range of the standard deviation of additive Gaussian noise.
        normalise: rescale each image between its 1st and 99th percentiles, as inference does.

    Shapes of real heads (:mod:`pumba.synth.head_parts`; each off at its default, each from its own stream):
        neck_prob: probability of a neck: the head moves up by ``neck_shift`` voxels (integer range; at most
            until its top is 2 voxels below the grid's, so the crown stays in view) and a neck, shoulders,
            an airway, a vertebral column, its CSF canal and a cord fill the space below it; the cord
            (radius ``cord_radius`` voxels) is labelled brain down to ``cord_cut`` voxels below the brain's
            lower pole and non-brain below that.
        lobes: number of extra brain ellipsoids (integer range, half-open); with one or more the central
            ellipsoid's radii are multiplied by a factor per axis from ``lobe_core`` and each lobe's radii are
            ``lobe_radius`` times the brain's per axis; the brain label is their union inside the skull.
        head_aspect: a factor per axis on the head's diameters (uniform range): long or flat heads and brains;
            a stretched diameter stops at the grid's size less 2 voxels.
        muscle_prob: probability of ``muscle_blobs`` (integer range) blobs of brain-like intensity, radii
            ``muscle_radius`` voxels per axis, centred on the head's surface, outside a thin layer of skull.
        csf_prob: probability of CSF spaces of one dark or bright intensity: a layer ``csf_layer`` voxels
            thick around the brain (non-brain), and labelled brain: ``csf_sulci`` sulci at the brain's
            surface, a midline fissure and two ventricles whose half-axes are ``ventricle_size`` times the
            brain's.
    """

    size: int = 128
    head_diameter: tuple[int, int] = (120, 126)
    head_shift: tuple[int, int] = (0, 10)
    skull_thickness: tuple[int, int] = (5, 50)
    brain_gap: tuple[tuple[int, int], tuple[int, int], tuple[int, int]] = (
        (0, 20),
        (0, 20),
        (10, 30),
    )
    block_divisions: int = 2
    mu: tuple[float, float] = (0.4, 1.0)
    sigma: tuple[float, float] = (0.0, 0.4)
    background: tuple[float, float] = (0.1, 0.1)
    n_extra: int = 5
    extra_diameter: tuple[int, int] = (10, 30)
    extra_offset: tuple[int, int] = (20, 31)
    n_holes: tuple[int, int] = (2, 5)
    hole_diameter: tuple[int, int] = (3, 10)
    svf_grid: int = 10
    svf_sigma: tuple[int, int] = (10, 15)
    svf_scale: float = 0.15
    svf_integration_size: int = 64
    integration_steps: int = 7
    rotation_deg: float = 15.0
    closing_radius: int = 2
    flip: bool = True
    roll: int = 10
    zoom: tuple[float, float] = (1.0, 1.0)
    lesions: tuple[int, int] = (0, 1)
    lesion_diameter: tuple[int, int] = (4, 20)
    bias_std: float = 0.0
    bias_grid: int = 4
    gamma_std: float = 0.0
    blur_sigma: tuple[float, float] = (0.0, 0.0)
    thick_slice_prob: float = 0.0
    thick_slice_factor: tuple[int, int] = (2, 5)
    noise_std: tuple[float, float] = (0.0, 0.0)
    normalise: bool = False
    neck_prob: float = 0.0
    neck_shift: tuple[int, int] = (5, 30)
    cord_radius: tuple[int, int] = (3, 8)
    cord_cut: tuple[int, int] = (0, 16)
    lobes: tuple[int, int] = (0, 1)
    lobe_core: tuple[float, float] = (0.5, 0.9)
    lobe_radius: tuple[float, float] = (0.25, 0.6)
    head_aspect: tuple[float, float] = (1.0, 1.0)
    muscle_prob: float = 0.0
    muscle_blobs: tuple[int, int] = (1, 5)
    muscle_radius: tuple[int, int] = (8, 40)
    csf_prob: float = 0.0
    csf_layer: tuple[int, int] = (1, 6)
    csf_sulci: tuple[int, int] = (10, 40)
    ventricle_size: tuple[float, float] = (0.05, 0.45)

    def __post_init__(self) -> None:
        int_ranges = {
            "head_diameter": self.head_diameter,
            "head_shift": self.head_shift,
            "skull_thickness": self.skull_thickness,
            "extra_diameter": self.extra_diameter,
            "extra_offset": self.extra_offset,
            "n_holes": self.n_holes,
            "hole_diameter": self.hole_diameter,
            "svf_sigma": self.svf_sigma,
            "lesions": self.lesions,
            "lesion_diameter": self.lesion_diameter,
            "thick_slice_factor": self.thick_slice_factor,
            "neck_shift": self.neck_shift,
            "cord_radius": self.cord_radius,
            "cord_cut": self.cord_cut,
            "lobes": self.lobes,
            "muscle_blobs": self.muscle_blobs,
            "muscle_radius": self.muscle_radius,
            "csf_layer": self.csf_layer,
            "csf_sulci": self.csf_sulci,
            **{f"brain_gap[{i}]": r for i, r in enumerate(self.brain_gap)},
        }
        for name, (lo, hi) in int_ranges.items():
            if not lo < hi or lo < 0:
                raise ValueError(f"SynthConfig.{name}: need 0 <= lo < hi, got ({lo}, {hi})")
        float_ranges = {
            "mu": self.mu,
            "sigma": self.sigma,
            "blur_sigma": self.blur_sigma,
            "noise_std": self.noise_std,
            "lobe_core": self.lobe_core,
            "lobe_radius": self.lobe_radius,
            "head_aspect": self.head_aspect,
            "ventricle_size": self.ventricle_size,
        }
        for name, (lo, hi) in float_ranges.items():
            if not 0 <= lo <= hi:
                raise ValueError(f"SynthConfig.{name}: need 0 <= lo <= hi, got ({lo}, {hi})")
        checks = {
            "size": self.size >= 8,
            "block_divisions": self.block_divisions >= 1,
            "background": self.background[1] >= 0,
            "n_extra": self.n_extra >= 0,
            "head_diameter": self.head_diameter[0] >= 2,
            "extra_diameter": self.extra_diameter[0] >= 1,
            "hole_diameter": self.hole_diameter[0] >= 1,
            "svf_grid": self.svf_grid >= 2,
            "svf_scale": self.svf_scale >= 0,
            "svf_integration_size": self.svf_integration_size >= 2,
            "integration_steps": self.integration_steps >= 0,
            "rotation_deg": self.rotation_deg >= 0,
            "closing_radius": self.closing_radius >= 0,
            "roll": self.roll >= 0,
            "zoom": 0 < self.zoom[0] <= self.zoom[1],
            "lesion_diameter": self.lesion_diameter[0] >= 1,
            "bias_std": self.bias_std >= 0,
            "bias_grid": self.bias_grid >= 2,
            "gamma_std": self.gamma_std >= 0,
            "thick_slice_prob": 0 <= self.thick_slice_prob <= 1,
            "thick_slice_factor": self.thick_slice_factor[0] >= 1,
            "neck_prob": 0 <= self.neck_prob <= 1,
            "muscle_prob": 0 <= self.muscle_prob <= 1,
            "csf_prob": 0 <= self.csf_prob <= 1,
            "cord_radius": self.cord_radius[0] >= 1,
            "lobe_core": self.lobe_core[0] > 0,
            "lobe_radius": self.lobe_radius[0] > 0,
            "head_aspect": self.head_aspect[0] > 0,
            "muscle_radius": self.muscle_radius[0] >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"SynthConfig.{name}: invalid value {getattr(self, name)!r}")

    @property
    def scale(self) -> float:
        """Voxels of this grid per voxel of the 128^3 reference grid (size / 128)."""
        return self.size / REFERENCE_SIZE

    @classmethod
    def from_dict(cls, d: dict) -> SynthConfig:
        """Build from a mapping of field names (lists for tuples); unknown key -> ValueError."""
        defaults = cls()
        kwargs = {}
        for key, value in d.items():
            if key not in _FIELDS:
                raise ValueError(f"unknown SynthConfig key {key!r} (known: {', '.join(_FIELDS)})")
            kwargs[key] = _coerce(key, value, getattr(defaults, key))
        return cls(**kwargs)

    def to_dict(self) -> dict:
        """Plain mapping (tuples as lists) that :meth:`from_dict` and YAML round-trip."""
        return {f: _as_lists(getattr(self, f)) for f in _FIELDS}


_FIELDS = tuple(f.name for f in dataclasses.fields(SynthConfig))


def _coerce(key: str, value: Any, default: Any) -> Any:
    """``value`` in the structure and scalar types of ``default``; ValueError naming ``key``."""
    if isinstance(default, tuple):
        if not isinstance(value, list | tuple) or len(value) != len(default):
            raise ValueError(f"SynthConfig.{key}: expected a list of {len(default)}, got {value!r}")
        return tuple(_coerce(key, v, dv) for v, dv in zip(value, default, strict=True))
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"SynthConfig.{key}: expected true/false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"SynthConfig.{key}: expected a number, got {value!r}")
    if isinstance(default, int):
        if value != int(value):
            raise ValueError(f"SynthConfig.{key}: expected an integer, got {value!r}")
        return int(value)
    return float(value)


def _as_lists(value: Any) -> Any:
    return [_as_lists(v) for v in value] if isinstance(value, tuple) else value


def _seed_from(entropy: int, key: int) -> int:
    """A 63-bit seed derived from (entropy, key) by numpy's SeedSequence (independent streams)."""
    if entropy < 0:
        raise ValueError(f"seeds must be >= 0, got {entropy}")
    state = np.random.SeedSequence(entropy, spawn_key=(key,)).generate_state(1, np.uint64)
    return int(state[0]) & (2**63 - 1)


def sample_seed(seed: int, index: int) -> int:
    """Seed of sample ``index`` of a run seeded ``seed`` (independent of batch size)."""
    return _seed_from(seed, index)


@dataclass(frozen=True)
class SampleParams:
    """One sample's random draws, already in voxels of the S^3 grid (float32 CPU tensors).

    Centres and radii are (3,) or (K, 3); ``mu``/``sigma`` are the block tables
    ((n_extra + 3) * n^3 + L,): background, shell, extras, brain, n^3 entries each, then one entry per
    possible lesion (L = ``lesions[1] - 1``; ``lesion_centres``/``lesion_radii`` hold the drawn ones).
    ``velocity`` (3, G, G, G) in voxels; ``rotation`` (3, 3); ``noise_seed`` seeds the voxel noise.
    ``origin`` (3,) is the centre of the skull's inside and of the brain (the grid centre unless a neck moved
    the head up); ``parts`` holds the head-shape extensions' draws, whose intensity entries (``parts.mu``)
    follow the lesions' in the tables.
    """

    head_centre: torch.Tensor
    head_radii: torch.Tensor
    skull_radii: torch.Tensor
    brain_radii: torch.Tensor
    extra_centres: torch.Tensor
    extra_radii: torch.Tensor
    hole_centres: torch.Tensor
    hole_radii: torch.Tensor
    lesion_centres: torch.Tensor
    lesion_radii: torch.Tensor
    origin: torch.Tensor
    mu: torch.Tensor
    sigma: torch.Tensor
    velocity: torch.Tensor
    rotation: torch.Tensor
    noise_seed: int
    artefacts: artefacts.ArtefactParams
    parts: head_parts.HeadParts


def draw_params(seed: int, config: SynthConfig) -> SampleParams:
    """All random parameters of one sample, from ``seed`` alone (CPU, device-independent)."""
    g = torch.Generator().manual_seed(_seed_from(seed, _STREAM_PARAMS))
    ext = torch.Generator().manual_seed(_seed_from(seed, _STREAM_EXTENSIONS))
    zoom = config.zoom[0] + (config.zoom[1] - config.zoom[0]) * float(torch.rand(1, generator=ext))
    f = config.scale * zoom
    centre = (config.size - 1) / 2

    def ints(rng: tuple[int, int], n: int = 3) -> torch.Tensor:
        return torch.randint(rng[0], rng[1], (n,), generator=g).float()

    def signs(n: int = 3) -> torch.Tensor:
        return torch.randint(0, 2, (n,), generator=g).float() * 2 - 1

    def uniform(rng: tuple[float, float], n: int) -> torch.Tensor:
        return rng[0] + (rng[1] - rng[0]) * torch.rand(n, generator=g)

    shape = head_parts.draw_shape(_seed_from(seed, _STREAM_LOBES), config)
    drawn_d = ints(config.head_diameter)
    # head_aspect stretches a head no further than the grid (less 2 voxels), or its own drawn size if that is
    # larger (aspect 1 leaves every head as drawn)
    head_d = torch.minimum(drawn_d * shape.aspect, drawn_d.clamp(min=(config.size - 2) / f))
    shift = ints(config.head_shift)
    thickness = ints(config.skull_thickness)
    gap = torch.cat([ints(r, 1) for r in config.brain_gap])
    brain_d = (head_d - thickness - gap).clamp(min=1) * shape.core_scale

    extra_c, extra_r = [], []
    for _ in range(config.n_extra):
        extra_r.append(ints(config.extra_diameter) * f / 2)
        extra_c.append(centre + ints(config.extra_offset) * signs() * f)

    hole_c, hole_r = [], []
    for _ in range(int(torch.randint(*config.n_holes, (1,), generator=g))):
        d = ints(config.hole_diameter)
        # Offset drawn per axis (the reference reused the x offset for all three axes).
        max_off = torch.div(brain_d, 2, rounding_mode="floor") - torch.div(d, 2, rounding_mode="floor")
        max_off = max_off.clamp(min=1)
        off = torch.floor(torch.rand(3, generator=g) * max_off) * signs()
        hole_c.append(centre + off * f)
        hole_r.append(d * f / 2)

    n_blocks = (config.n_extra + 3) * config.block_divisions**3
    n_bg = config.block_divisions**3
    mu = uniform(config.mu, n_blocks)
    sigma = uniform(config.sigma, n_blocks)
    mu[:n_bg], sigma[:n_bg] = config.background
    lesion_c, lesion_r, lesion_mu, lesion_sigma = _draw_lesions(ext, config, brain_d, f, centre)
    mu, sigma = torch.cat([mu, lesion_mu]), torch.cat([sigma, lesion_sigma])

    svf_sigma = float(torch.randint(*config.svf_sigma, (1,), generator=g))
    velocity = torch.randn((3,) + (config.svf_grid,) * 3, generator=g) * (svf_sigma * f * config.svf_scale)
    angles = uniform((-config.rotation_deg, config.rotation_deg), 3)

    def stack(rows: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(rows) if rows else torch.zeros((0, 3))

    n3 = config.block_divisions**3
    brain_mu = float(mu[(config.n_extra + 2) * n3 : (config.n_extra + 3) * n3].mean())
    streams = tuple(_seed_from(seed, s) for s in (_STREAM_NECK, _STREAM_MUSCLE, _STREAM_CSF))
    # voxels between the top of the head and the top of the grid (less 2): how far a neck may move it up
    room = (config.size - 3) - (centre + float(shift[2]) * f + float(head_d[2]) * f / 2)
    parts = head_parts.draw_parts(
        shape, streams, config, f, head_d * f / 2, brain_d * f / 2, brain_mu, max(room, 0.0)
    )
    brain_blocks = slice((config.n_extra + 2) * n3, (config.n_extra + 3) * n3)
    mu[brain_blocks] = head_parts.brain_under_csf(mu[brain_blocks], parts, n3, config.mu)
    # a neck moves the whole head (skull, brain and all inside it) up the field of view
    move = parts.shift
    return SampleParams(
        head_centre=centre + shift * f + move,
        head_radii=head_d * f / 2,
        skull_radii=((head_d - thickness) * f / 2).clamp(min=0.5),
        brain_radii=brain_d * f / 2,
        extra_centres=stack(extra_c) + move,
        extra_radii=stack(extra_r),
        hole_centres=stack(hole_c) + move,
        hole_radii=stack(hole_r),
        lesion_centres=lesion_c + move,
        lesion_radii=lesion_r,
        origin=torch.full((3,), centre) + move,
        mu=torch.cat([mu, parts.mu]),
        sigma=torch.cat([sigma, parts.sigma]),
        velocity=velocity,
        rotation=deform.rotation_matrix(tuple(float(a) for a in angles)),
        noise_seed=_seed_from(seed, _STREAM_NOISE),
        artefacts=_draw_artefacts(ext, config, seed),
        parts=parts,
    )


def _draw_lesions(
    ext: torch.Generator, config: SynthConfig, brain_d: torch.Tensor, f: float, centre: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lesion centres and radii (n, 3) in voxels inside the brain's extent, and the intensity table
    entries (L,) of every possible lesion; every lesion's values are drawn, used or not."""
    n_max = config.lesions[1] - 1
    n = int(torch.randint(config.lesions[0], config.lesions[1], (1,), generator=ext))
    centres, radii, mus, sigmas = [], [], [], []
    for _ in range(n_max):
        d = torch.randint(config.lesion_diameter[0], config.lesion_diameter[1], (3,), generator=ext).float()
        # centre within 0.8 of the brain's half-axis, in the unit ball, so the blob is mostly inside
        direction = torch.randn(3, generator=ext)
        radius = torch.rand(1, generator=ext) ** (1 / 3)
        offset = direction / direction.norm().clamp(min=1e-6) * radius * 0.8 * brain_d / 2
        centres.append(centre + offset * f)
        radii.append(d * f / 2)
        mus.append(torch.rand(1, generator=ext))
        sigmas.append(config.sigma[0] + (config.sigma[1] - config.sigma[0]) * torch.rand(1, generator=ext))
    if n_max == 0:
        empty = torch.zeros((0, 3))
        return empty, empty, torch.zeros(0), torch.zeros(0)
    return (
        torch.stack(centres[:n]) if n else torch.zeros((0, 3)),
        torch.stack(radii[:n]) if n else torch.zeros((0, 3)),
        torch.cat(mus),
        torch.cat(sigmas),
    )


def _draw_artefacts(ext: torch.Generator, config: SynthConfig, seed: int) -> artefacts.ArtefactParams:
    """The acquisition artefacts of one sample (:mod:`pumba.synth.artefacts`), every value always drawn
    in the same order so that switching one artefact off leaves the others' draws unchanged."""
    bias = torch.randn((config.bias_grid,) * 3, generator=ext) * config.bias_std
    gamma = math.exp(float(torch.randn(1, generator=ext)) * config.gamma_std)
    lo, hi = config.blur_sigma
    blur = (lo + (hi - lo) * torch.rand(3, generator=ext)) * config.scale
    thick = float(torch.rand(1, generator=ext)) < config.thick_slice_prob
    axis = int(torch.randint(0, 3, (1,), generator=ext))
    factor = int(torch.randint(*config.thick_slice_factor, (1,), generator=ext))
    lo, hi = config.noise_std
    noise = lo + (hi - lo) * float(torch.rand(1, generator=ext))
    return artefacts.ArtefactParams(
        bias=bias,
        gamma=gamma,
        blur_sigma=blur,
        slice_axis=axis,
        slice_factor=max(1, round(factor * config.scale)) if thick else 1,
        noise_std=noise,
        noise_seed=_seed_from(seed, _STREAM_ARTEFACT_NOISE),
        normalise=config.normalise,
    )


def _displacement(params: Sequence[SampleParams], config: SynthConfig, device: torch.device) -> torch.Tensor:
    velocity = torch.stack([p.velocity for p in params]).to(device)
    integration = max(2, round(config.svf_integration_size * config.scale))
    return deform.svf_displacement(velocity, config.size, integration, config.integration_steps)


def sample_displacement(
    seeds: Sequence[int], config: SynthConfig = SynthConfig(), device: str | torch.device = "cpu"
) -> torch.Tensor:
    """The step-7 displacement field that :func:`generate` uses for these seeds.

    Returns float32 (B, 3, S, S, S) in voxels; the image is resampled at p + u(p), then rotated.
    """
    device = torch.device(device)
    return _displacement([draw_params(s, config) for s in seeds], config, device)


def anatomy(
    params: Sequence[SampleParams], config: SynthConfig, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Steps 1-6 before deformation: block map, brain mask and hole mask.

    Returns:
        blocks: int32 (B, S, S, S) indices into the samples' ``mu``/``sigma`` tables (background,
            shell, extras, brain: n^3 entries each; lesions; the head-shape extensions').
        brain: the brain label, bool (B, S, S, S) (the brain, and the cord down to its cut with a neck).
        holes: bool (B, S, S, S), inside the brain.
    """
    size, n3, div = config.size, config.block_divisions**3, config.block_divisions
    batch, full = len(params), shapes.full_window(config.size)
    base = (config.n_extra + 3) * n3 + config.lesions[1] - 1  # the head-shape extensions' table entries

    def rows(name: str) -> torch.Tensor:
        return torch.stack([getattr(p, name) for p in params]).to(device)

    origin, brain_r = rows("origin"), rows("brain_radii")
    inner = shapes.ellipsoid(origin, rows("skull_radii"), full)
    brain = shapes.ellipsoid(origin, brain_r, full)
    for b, p in enumerate(params):
        if len(p.parts.lobe_centres):  # a brain of several lobes inside the skull's (convex) inner ellipsoid
            brain[b] = head_parts.brain_union(p.parts, p.origin, p.brain_radii, p.skull_radii, inner[b])
    head = shapes.ellipsoid(rows("head_centre"), rows("head_radii"), full)
    # XOR rather than "minus": the head is off-centre and the skull's inner surface is not, so where
    # the inner ellipsoid pokes out of the head it still gets a skull around the brain.
    shell = head ^ inner
    del head
    blocks = shapes.grid_blocks(batch, config.block_divisions, size, device)
    blocks.add_(n3).masked_fill_(~shell, 0)
    del shell
    for b, p in enumerate(params):
        head_parts.paint_outside(
            blocks[b], p.parts, p.head_centre, p.origin, p.skull_radii, inner[b], base, div
        )

    # Extras and holes are small: evaluate each inside its bounding window only.
    holes = torch.zeros((batch, size, size, size), dtype=torch.bool, device=device)
    for b, p in enumerate(params):
        for k in range(config.n_extra):
            c, r = p.extra_centres[k : k + 1].to(device), p.extra_radii[k : k + 1].to(device)
            window = shapes.bounding_window(p.extra_centres[k], p.extra_radii[k], size)
            if window is None:
                continue
            inside = shapes.ellipsoid(c, r, window)[0]
            sub = shapes.ellipsoid_blocks(c, r, config.block_divisions, window)[0]
            region = blocks[(b, *shapes.window_slices(window))]
            region.copy_(torch.where(inside, sub + (k + 2) * n3, region))
        for c_cpu, r_cpu in zip(p.hole_centres, p.hole_radii, strict=True):
            window = shapes.bounding_window(c_cpu, r_cpu, size)
            if window is None:
                continue
            inside = shapes.ellipsoid(c_cpu[None].to(device), r_cpu[None].to(device), window)[0]
            holes[(b, *shapes.window_slices(window))] |= inside

    # The brain is painted last: extras show only outside it. CSF around it and the cord below it come first.
    sub = shapes.ellipsoid_blocks(origin, brain_r, config.block_divisions, full)
    sub.add_((config.n_extra + 2) * n3)
    label = brain.clone()
    for b, p in enumerate(params):
        parts = p.parts
        if parts.csf:
            around = head_parts.csf_around(parts, p.origin, p.brain_radii, inner[b])
            blocks[b].masked_fill_(around, base + n3 + head_parts.CSF)
        label[b] = brain[b]
        if parts.neck:
            cord = head_parts.paint_cord(blocks[b], parts, p.origin, inner[b], sub[b], base, div)
            label[b] |= head_parts.cord_label(cord, parts, p.origin, p.brain_radii)
    del inner
    blocks = torch.where(brain, sub, blocks)
    del sub
    # Lesions inside the brain, each one table entry after the brain's blocks; then CSF spaces inside it.
    for b, p in enumerate(params):
        for k, (c_cpu, r_cpu) in enumerate(zip(p.lesion_centres, p.lesion_radii, strict=True)):
            window = shapes.bounding_window(c_cpu, r_cpu, size)
            if window is None:
                continue
            inside = shapes.ellipsoid(c_cpu[None].to(device), r_cpu[None].to(device), window)[0]
            region = (b, *shapes.window_slices(window))
            inside &= brain[region]
            blocks[region] = torch.where(inside, (config.n_extra + 3) * n3 + k, blocks[region])
        if p.parts.csf:
            spaces = head_parts.csf_inside(p.parts, p.origin, brain[b])
            blocks[b].masked_fill_(spaces, base + n3 + head_parts.CSF)
    return blocks, label, holes & brain


def _noise(params: Sequence[SampleParams], size: int, device: torch.device) -> torch.Tensor:
    """Standard normal voxel noise (B, S, S, S), each sample from its own ``device`` generator."""
    fields = []
    for p in params:
        g = torch.Generator(device=device).manual_seed(p.noise_seed)
        fields.append(torch.randn((size,) * 3, generator=g, device=device))
    return torch.stack(fields)


def generate(
    seeds: Sequence[int], config: SynthConfig = SynthConfig(), device: str | torch.device = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthesise len(seeds) heads.

    Returns:
        image: float32 (B, 1, S, S, S) in [0, 1].
        mask: brain mask uint8 (B, S, S, S) in {0, 1}, after deformation, rotation and closing,
            before the flip/roll augmentation (:func:`augment`).
    Sample b depends only on seeds[b] (bit-identical on CPU whatever the batch). Axis order
    (x, y, z) = tensor dims (D, H, W).
    """
    if len(seeds) == 0:
        raise ValueError("generate needs at least one seed")
    device = torch.device(device)
    params = [draw_params(int(s), config) for s in seeds]
    # On CPU, work through ~2M voxels at a time: large fresh allocations are slow there (page
    # faults), and samples are independent anyway. On GPU the whole batch goes at once.
    chunk = max(1, CPU_CHUNK_VOXELS // config.size**3) if device.type == "cpu" else len(params)
    parts = [_generate(params[i : i + chunk], config, device) for i in range(0, len(params), chunk)]
    if len(parts) == 1:
        return parts[0]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def _generate(
    params: Sequence[SampleParams], config: SynthConfig, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`generate` for drawn parameters, as one batch."""
    with torch.no_grad():
        blocks, brain, holes = anatomy(params, config, device)
        mu = torch.stack([p.mu for p in params]).to(device)
        sigma = torch.stack([p.sigma for p in params]).to(device)
        image = intensity.block_image(blocks, mu, sigma, _noise(params, config.size, device))
        del blocks
        image = intensity.zero_holes(image, holes)
        rotation = torch.stack([p.rotation for p in params]).to(device)
        grid = deform.sampling_grid(_displacement(params, config, device), rotation)
        image = deform.warp(image[:, None], grid, "bilinear").clamp_(0.0, 1.0)
        image = torch.stack([artefacts.apply(image[b], p.artefacts) for b, p in enumerate(params)])
        mask = deform.warp(brain[:, None].float(), grid, "nearest")[:, 0] > 0.5
        radius = round(config.closing_radius * config.scale)
        mask = labels.binary_closing(mask, radius)
    return image, mask.to(torch.uint8)


def augment(
    image: torch.Tensor,
    target: torch.Tensor,
    seeds: Sequence[int],
    config: SynthConfig = SynthConfig(),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random flip per axis (probability 1/2 each, if ``config.flip``) and roll (wrapping) by an
    integer uniform in +-roll voxels per axis, roll = config.roll * S / 128; the same for image
    (B, C, S, S, S) and target (B, S, S, S), drawn per sample from ``seeds[b]``.
    """
    if len(seeds) != image.shape[0] or target.shape[0] != image.shape[0]:
        raise ValueError("augment needs one seed per sample and matching batch sizes")
    max_roll = round(config.roll * image.shape[-1] / REFERENCE_SIZE)
    spatial = (-3, -2, -1)
    images, targets = [], []
    for b, seed in enumerate(seeds):
        g = torch.Generator().manual_seed(_seed_from(int(seed), _STREAM_AUGMENT))
        flips = torch.rand(3, generator=g) < 0.5
        shifts = torch.randint(-max_roll, max_roll + 1, (3,), generator=g).tolist()
        dims = [d for d, f in zip(spatial, flips.tolist(), strict=True) if f and config.flip]
        img, tgt = image[b], target[b]
        if dims:
            img, tgt = img.flip(dims), tgt.flip(dims)
        images.append(img.roll(shifts, spatial))
        targets.append(tgt.roll(shifts, spatial))
    return torch.stack(images), torch.stack(targets)


def voxel_size_mm(size: int) -> float:
    """Voxel size (mm) that puts the S^3 grid over the reference 256 mm field of view."""
    return 256.0 / size


def grid_affine(size: int) -> np.ndarray:
    """Voxel-to-world affine (mm): isotropic 256/size mm voxels, centre (S-1)/2 at the origin."""
    vox = voxel_size_mm(size)
    affine = np.diag([vox, vox, vox, 1.0])
    affine[:3, 3] = -vox * (size - 1) / 2
    return affine


__all__ = [
    "SampleParams",
    "SynthConfig",
    "anatomy",
    "augment",
    "draw_params",
    "generate",
    "grid_affine",
    "sample_displacement",
    "sample_seed",
]
