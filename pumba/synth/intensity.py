"""Piecewise-constant random intensities: every voxel gets N(mu, sigma) of the block it belongs to.

A block map is an integer tensor (B, S, S, S) of indices into per-sample tables ``mu`` and ``sigma``
(B, K); intensities are unitless, clipped to [0, 1]. Axis order (x, y, z) = dims (D, H, W).
"""

from __future__ import annotations

import torch


def block_image(
    blocks: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """Per-voxel intensity mu[block] + sigma[block] * noise, clipped to [0, 1].

    Args:
        blocks: integer (B, S, S, S) indices into the tables.
        mu, sigma: float32 (B, K) per-block mean and standard deviation.
        noise: float32 (B, S, S, S) standard normal draws.

    Returns:
        float32 (B, S, S, S) in [0, 1].
    """
    flat = blocks.reshape(blocks.shape[0], -1).long()
    mean = torch.gather(mu, 1, flat).view_as(noise)
    std = torch.gather(sigma, 1, flat).view_as(noise)
    return mean.add_(std.mul_(noise)).clamp_(0.0, 1.0)


def zero_holes(image: torch.Tensor, holes: torch.Tensor) -> torch.Tensor:
    """Set the image to 0 inside ``holes`` (hypo-intense lesions); image and holes (B, S, S, S)."""
    return image.masked_fill(holes, 0.0)
