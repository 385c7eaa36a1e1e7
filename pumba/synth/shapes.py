"""Ellipsoids and block partitions on a cubic voxel grid, batched.

Conventions: a grid has ``size`` voxels per axis; voxel centres sit at integer coordinates 0..size-1;
axis order (x, y, z) = tensor dims (D, H, W). Centres and radii are (B, 3) float tensors in voxels, one
row per sample. Masks are bool tensors (B, size, size, size).
"""

from __future__ import annotations

import torch


def axis_coords(size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Voxel-centre coordinates 0..size-1 along one axis, float32 (size,)."""
    return torch.arange(size, dtype=torch.float32, device=device)


def _per_axis(values: torch.Tensor, axis: int) -> torch.Tensor:
    """Reshape (B, size) values along ``axis`` (0, 1, 2) to broadcast over a (B, S, S, S) grid."""
    shape = [values.shape[0], 1, 1, 1]
    shape[axis + 1] = values.shape[1]
    return values.reshape(shape)


def ellipsoid(centres: torch.Tensor, radii: torch.Tensor, size: int) -> torch.Tensor:
    """Axis-aligned solid ellipsoids: voxels with sum(((x - c) / r)^2) <= 1.

    Args:
        centres: (B, 3) centres in voxels (may lie off the grid).
        radii: (B, 3) semi-axes in voxels, > 0.
        size: grid size S.

    Returns:
        bool (B, S, S, S).
    """
    coords = axis_coords(size, centres.device)
    # One 1-D term per axis, broadcast-summed: 2 adds per voxel instead of a 3-D coordinate grid.
    terms = ((coords[None, None, :] - centres[:, :, None]) / radii[:, :, None]) ** 2  # (B, 3, S)
    total = _per_axis(terms[:, 0], 0) + _per_axis(terms[:, 1], 1) + _per_axis(terms[:, 2], 2)
    return total <= 1.0


def block_index(lower: torch.Tensor, extent: torch.Tensor, divisions: int, size: int) -> torch.Tensor:
    """Index of the block each voxel falls in when a box is cut into divisions^3 equal blocks.

    The box spans [lower, lower + extent) per axis (voxels); voxels outside it are clamped to the
    nearest block, so the index is defined everywhere and callers mask it.

    Args:
        lower: (B, 3) box corner in voxels.
        extent: (B, 3) box side lengths in voxels, > 0.
        divisions: blocks per axis (n).
        size: grid size S.

    Returns:
        int64 (B, S, S, S) in [0, n^3): (ix * n + iy) * n + iz.
    """
    coords = axis_coords(size, lower.device)
    scaled = (coords[None, None, :] - lower[:, :, None]) / extent[:, :, None] * divisions
    per_axis = scaled.floor().clamp(0, divisions - 1).long()  # (B, 3, S)
    n = divisions
    return (
        _per_axis(per_axis[:, 0] * (n * n), 0)
        + _per_axis(per_axis[:, 1] * n, 1)
        + _per_axis(per_axis[:, 2], 2)
    )


def ellipsoid_blocks(
    centres: torch.Tensor, radii: torch.Tensor, divisions: int, size: int
) -> torch.Tensor:
    """Block index over each ellipsoid's bounding box (see :func:`block_index`), int64 (B, S, S, S)."""
    return block_index(centres - radii, 2 * radii, divisions, size)


def grid_blocks(batch: int, divisions: int, size: int, device: torch.device | str) -> torch.Tensor:
    """Block index over the whole grid (voxel edges -0.5..S-0.5), int64 (B, S, S, S)."""
    lower = torch.full((batch, 3), -0.5, device=device)
    extent = torch.full((batch, 3), float(size), device=device)
    return block_index(lower, extent, divisions, size)
