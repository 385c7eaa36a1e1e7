"""Piecewise-constant random intensities: every voxel gets N(mu, sigma) of the block it belongs to.

A block map is an int64 tensor (B, S, S, S) of indices into per-sample tables ``mu`` and ``sigma``
(B, K); intensities are unitless, clipped to [0, 1]. Axis order (x, y, z) = dims (D, H, W).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def paint_layers(layers: Sequence[tuple[torch.Tensor, torch.Tensor]], blocks_per_layer: int) -> torch.Tensor:
    """Stack tissue layers into one block map; later layers cover earlier ones.

    Args:
        layers: (mask bool (B, S, S, S), sub-block int64 (B, S, S, S) in [0, blocks_per_layer)) pairs;
            layer t (0-based) owns table entries (t + 1) * blocks_per_layer + sub-block.
        blocks_per_layer: table entries reserved per layer (n^3 for n divisions per axis).

    Returns:
        int64 (B, S, S, S); voxels in no layer get entry 0 (the background block).
    """
    mask, sub = layers[0]
    blocks = torch.where(mask, sub + blocks_per_layer, 0)
    for t, (mask, sub) in enumerate(layers[1:], start=2):
        blocks = torch.where(mask, sub + t * blocks_per_layer, blocks)
    return blocks


def block_image(
    blocks: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """Per-voxel intensity mu[block] + sigma[block] * noise, clipped to [0, 1].

    Args:
        blocks: int64 (B, S, S, S) indices into the tables.
        mu, sigma: float32 (B, K) per-block mean and standard deviation.
        noise: float32 (B, S, S, S) standard normal draws.

    Returns:
        float32 (B, S, S, S) in [0, 1].
    """
    flat = blocks.reshape(blocks.shape[0], -1)
    mean = torch.gather(mu, 1, flat).view_as(noise)
    std = torch.gather(sigma, 1, flat).view_as(noise)
    return (mean + std * noise).clamp_(0.0, 1.0)


def zero_holes(image: torch.Tensor, holes: torch.Tensor) -> torch.Tensor:
    """Set the image to 0 inside ``holes`` (hypo-intense lesions); image and holes (B, S, S, S)."""
    return image.masked_fill(holes, 0.0)
