"""Ellipsoids and block partitions on a cubic voxel grid, batched.

Conventions: voxel centres sit at integer coordinates 0..size-1; axis order (x, y, z) = tensor dims
(D, H, W). Centres and radii are (B, 3) float tensors in voxels, one row per sample. A function
evaluates either the whole size^3 grid or a window of it (``start``, ``shape``: voxel index of the
window's first corner and its extent per axis), shared by the batch; outputs are (B, *shape).
"""

from __future__ import annotations

import math

import torch

Window = tuple[tuple[int, int, int], tuple[int, int, int]]


def _axes(window: Window, device: torch.device | str) -> list[torch.Tensor]:
    """Voxel-centre coordinates of the window along x, y, z (float32 1-D tensors)."""
    start, shape = window
    return [
        torch.arange(s, s + n, dtype=torch.float32, device=device) for s, n in zip(start, shape, strict=True)
    ]


def _broadcast_sum(terms: list[torch.Tensor]) -> torch.Tensor:
    """Sum per-axis (B, L_a) terms into a (B, Lx, Ly, Lz) grid: two adds per voxel."""
    # (x + y) is a small (B, Lx, Ly, 1) plane: only the final add allocates a full grid.
    return terms[0][:, :, None, None] + terms[1][:, None, :, None] + terms[2][:, None, None, :]


def full_window(size: int) -> Window:
    """The window covering the whole size^3 grid."""
    return (0, 0, 0), (size, size, size)


def bounding_window(centre: torch.Tensor, radii: torch.Tensor, size: int) -> Window | None:
    """Smallest window holding an ellipsoid (centre, radii: (3,) voxels), one voxel of margin for
    rounding, clipped to the grid; None if it misses the grid."""
    lo = [max(0, math.floor(c - r) - 1) for c, r in zip(centre.tolist(), radii.tolist(), strict=True)]
    hi = [min(size, math.ceil(c + r) + 2) for c, r in zip(centre.tolist(), radii.tolist(), strict=True)]
    if any(h <= low for low, h in zip(lo, hi, strict=True)):
        return None
    return (lo[0], lo[1], lo[2]), (hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2])


def window_slices(window: Window) -> tuple[slice, slice, slice]:
    """Index slices of the window along x, y, z."""
    start, shape = window
    return tuple(slice(s, s + n) for s, n in zip(start, shape, strict=True))  # type: ignore[return-value]


def ellipsoid(centres: torch.Tensor, radii: torch.Tensor, window: Window) -> torch.Tensor:
    """Axis-aligned solid ellipsoids: voxels with sum(((x - c) / r)^2) <= 1.

    Args:
        centres: (B, 3) centres in voxels (may lie off the grid).
        radii: (B, 3) semi-axes in voxels, > 0.
        window: region evaluated (:func:`full_window` for the whole grid).

    Returns:
        bool (B, *window shape).
    """
    axes = _axes(window, centres.device)
    terms = [((axes[a][None, :] - centres[:, a, None]) / radii[:, a, None]) ** 2 for a in range(3)]
    return _broadcast_sum(terms) <= 1.0


def column(tops: torch.Tensor, radii: torch.Tensor, window: Window) -> torch.Tensor:
    """Elliptic cylinders along z, open downwards: voxels with ((x - cx) / rx)^2 + ((y - cy) / ry)^2 <= 1 and
    z <= the top.

    Args:
        tops: (B, 3) the axis's (x, y) and the top's z, in voxels.
        radii: (B, 2) semi-axes along x and y in voxels, > 0.
        window: region evaluated.

    Returns:
        bool (B, *window shape).
    """
    axes = _axes(window, tops.device)
    terms = [((axes[a][None, :] - tops[:, a, None]) / radii[:, a, None]) ** 2 for a in range(2)]
    below = axes[2][None, :] <= tops[:, 2, None]
    terms.append(torch.where(below, 0.0, torch.inf))
    return _broadcast_sum(terms) <= 1.0


def block_index(lower: torch.Tensor, extent: torch.Tensor, divisions: int, window: Window) -> torch.Tensor:
    """Index of the block each voxel falls in when a box is cut into divisions^3 equal blocks.

    The box spans [lower, lower + extent) per axis (voxels); voxels outside it are clamped to the
    nearest block, so the index is defined everywhere and callers mask it.

    Args:
        lower: (B, 3) box corner in voxels.
        extent: (B, 3) box side lengths in voxels, > 0.
        divisions: blocks per axis (n).
        window: region evaluated.

    Returns:
        int32 (B, *window shape) in [0, n^3): (ix * n + iy) * n + iz.
    """
    axes = _axes(window, lower.device)
    n = divisions
    weights = (n * n, n, 1)
    terms = [
        ((axes[a][None, :] - lower[:, a, None]) / extent[:, a, None] * n)
        .floor()
        .clamp(0, n - 1)
        .to(torch.int32)
        * weights[a]
        for a in range(3)
    ]
    return _broadcast_sum(terms)


def ellipsoid_blocks(
    centres: torch.Tensor, radii: torch.Tensor, divisions: int, window: Window
) -> torch.Tensor:
    """Block index over each ellipsoid's bounding box (:func:`block_index`), int32."""
    return block_index(centres - radii, 2 * radii, divisions, window)


def grid_blocks(batch: int, divisions: int, size: int, device: torch.device | str) -> torch.Tensor:
    """Block index over the whole grid (voxel edges -0.5..S-0.5), int32 (B, S, S, S)."""
    lower = torch.full((batch, 3), -0.5, device=device)
    extent = torch.full((batch, 3), float(size), device=device)
    return block_index(lower, extent, divisions, full_window(size))
