"""Acquisition artefacts applied to a synthetic image after deformation: the generator extensions.

Each function takes one image (1, S, S, S) float32 in [0, 1] (axis order (x, y, z) = dims (D, H, W), voxels
of the S^3 grid) and the parameters one sample drew, and returns a new image; none of them changes the brain
label. They are applied in the order of :func:`apply` and each is off when its parameter is neutral (a
flat bias field, gamma 1, zero blur, one-voxel slices, zero noise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as nnf

NORMALISE_PERCENTILES = (0.01, 0.99)
"""The quantiles that inference maps to 0 and 1 (:func:`pumba.infer.preprocess.normalise`)."""
NORMALISE_STRIDE = 7
"""Every 7th voxel enters the quantiles (the same values on CPU and GPU, a fraction of the sort)."""


@dataclass(frozen=True)
class ArtefactParams:
    """One sample's artefact draws (CPU tensors and numbers).

    Attributes:
        bias: (g, g, g) log-intensity of the bias field at its control points (all 0: no field).
        gamma: exponent applied to the image (1: none).
        blur_sigma: (3,) Gaussian blur standard deviation per axis, voxels of the S^3 grid (0: none).
        slice_axis, slice_factor: thick slices along ``slice_axis`` made of ``slice_factor`` voxels
            (factor 1: none).
        noise_std: standard deviation of additive Gaussian noise (0: none).
        noise_seed: seed of that noise.
        normalise: rescale between the 1st and 99th percentiles as inference does.
    """

    bias: torch.Tensor
    gamma: float
    blur_sigma: torch.Tensor
    slice_axis: int
    slice_factor: int
    noise_std: float
    noise_seed: int
    normalise: bool


def bias_field(log_field: torch.Tensor, size: int) -> torch.Tensor:
    """Smooth multiplicative field exp(upsampled ``log_field``) (1, S, S, S) from (g, g, g) control points."""
    up = nnf.interpolate(log_field[None, None], size=(size,) * 3, mode="trilinear", align_corners=True)
    return up[0].exp()


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """Normalised 1-D Gaussian of standard deviation ``sigma`` voxels, truncated at 3 sigma (odd length)."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(image: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur of (1, S, S, S) with per-axis ``sigma`` (3,) voxels; edges replicate."""
    out = image[None]
    for axis, s in enumerate(sigma.tolist()):
        if s <= 0:
            continue
        k = gaussian_kernel(s).to(image.device)
        r = (k.numel() - 1) // 2
        shape = [1, 1, 1, 1, 1]
        shape[2 + axis] = k.numel()
        pad = [0] * 6
        pad[2 * (2 - axis)] = pad[2 * (2 - axis) + 1] = r  # F.pad lists the last dim first
        out = nnf.conv3d(nnf.pad(out, pad, mode="replicate"), k.view(shape))
    return out[0]


def thick_slices(image: torch.Tensor, axis: int, factor: int) -> torch.Tensor:
    """Simulate slices ``factor`` voxels thick along ``axis``: average each slab, then interpolate back
    linearly to the S^3 grid (partial volume plus the loss of through-plane detail)."""
    if factor <= 1:
        return image
    size = image.shape[1 + axis]
    kernel = [1, 1, 1]
    kernel[axis] = factor
    coarse = nnf.avg_pool3d(image[None], kernel, stride=kernel, ceil_mode=True)
    # back to S along that axis only; trilinear with the other axes unchanged is linear along one axis
    target = list(image.shape[1:])
    target[axis] = size
    return nnf.interpolate(coarse, size=tuple(target), mode="trilinear", align_corners=False)[0]


def percentile_normalise(image: torch.Tensor) -> torch.Tensor:
    """Map the 1st and 99th percentiles (of every ``NORMALISE_STRIDE``-th voxel) to 0 and 1, clipped."""
    values = image.reshape(-1)[::NORMALISE_STRIDE]
    q = torch.quantile(values, torch.tensor(NORMALISE_PERCENTILES, device=image.device))
    lo, hi = float(q[0]), float(q[1])
    if not hi - lo > 0:
        return image
    return ((image - lo) / (hi - lo)).clamp_(0.0, 1.0)


def apply(image: torch.Tensor, p: ArtefactParams) -> torch.Tensor:
    """All artefacts of one sample, in acquisition order: bias field, gamma (contrast), blur, thick slices,
    noise; then the inference normalisation if ``p.normalise``. Returns (1, S, S, S) in [0, 1]."""
    size = image.shape[-1]
    if bool(p.bias.any()):
        image = (image * bias_field(p.bias.to(image.device), size)).clamp_(0.0, 1.0)
    if p.gamma != 1.0:
        image = image.pow(p.gamma)
    if bool((p.blur_sigma > 0).any()):
        image = gaussian_blur(image, p.blur_sigma)
    image = thick_slices(image, p.slice_axis, p.slice_factor)
    if p.noise_std > 0:
        g = torch.Generator(device=image.device).manual_seed(p.noise_seed)
        noise = torch.randn(image.shape, generator=g, device=image.device)
        image = (image + p.noise_std * noise).clamp_(0.0, 1.0)
    if p.normalise:
        image = percentile_normalise(image)
    return image
