"""Smooth diffeomorphic deformation (stationary velocity field) and rotation in one resampling.

Fields are (B, 3, S, S, S) tensors whose channel c is the displacement along axis c, in voxels of
the S^3 grid; axis order (x, y, z) = dims (D, H, W). Internally positions use grid_sample's
normalised coordinates ([-1, 1] from the first to the last voxel centre, align_corners=True), in
which the grid centre (S-1)/2 is 0, so a rotation about the centre is a plain matrix product.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as nnf


def identity_axes(size: int, device: torch.device | str) -> torch.Tensor:
    """Normalised coordinates of the voxel centres along one axis, float32 (size,) from -1 to 1."""
    return torch.linspace(-1.0, 1.0, size, device=device)


def _identity_grid(size: int, device: torch.device | str) -> torch.Tensor:
    """Normalised identity positions (1, 3, S, S, S), channels in (x, y, z) order."""
    t = identity_axes(size, device)
    return torch.stack(torch.meshgrid(t, t, t, indexing="ij"))[None]


def _sample_field(field: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Trilinear samples of ``field`` (B, C, N, N, N) at normalised positions (B, 3, N, N, N)."""
    # grid_sample wants the last grid dim ordered (W, H, D) = (z, y, x).
    grid = positions.permute(0, 2, 3, 4, 1).flip(-1)
    return nnf.grid_sample(field, grid, mode="bilinear", padding_mode="border", align_corners=True)


def integrate_velocity(velocity: torch.Tensor, steps: int) -> torch.Tensor:
    """Exponentiate a stationary velocity field by scaling and squaring.

    Args:
        velocity: (B, 3, N, N, N) velocity in normalised units (see module docstring).
        steps: number of squarings; the field is first divided by 2**steps.

    Returns:
        (B, 3, N, N, N) displacement u of the time-1 flow, normalised units: x -> x + u(x).
    """
    disp = velocity / (2**steps)
    identity = _identity_grid(velocity.shape[-1], velocity.device)
    for _ in range(steps):
        # phi_{2t} = phi_t o phi_t  =>  u <- u + u(x + u(x))
        disp = disp + _sample_field(disp, identity + disp)
    return disp


def svf_displacement(velocity: torch.Tensor, size: int, integration_size: int, steps: int) -> torch.Tensor:
    """Displacement of a smooth random diffeomorphism from a coarse velocity grid.

    The velocity (control points spanning the whole grid) is upsampled trilinearly to
    ``integration_size``^3, integrated there (the field is smooth, so a coarser grid loses nothing
    visible and saves time), and the displacement upsampled to ``size``^3.

    Args:
        velocity: (B, 3, G, G, G) velocity at G^3 control points, in voxels of the size^3 grid.
        size: output grid size S.
        integration_size: grid size N on which scaling and squaring runs.
        steps: scaling-and-squaring steps.

    Returns:
        float32 (B, 3, S, S, S) displacement in voxels of the S^3 grid.
    """
    to_norm = 2.0 / (size - 1)
    v = nnf.interpolate(
        velocity * to_norm, size=(integration_size,) * 3, mode="trilinear", align_corners=True
    )
    u = integrate_velocity(v, steps)
    u = nnf.interpolate(u, size=(size,) * 3, mode="trilinear", align_corners=True)
    return u.mul_(1.0 / to_norm)


def rotation_matrix(angles_deg: tuple[float, float, float]) -> torch.Tensor:
    """Rotation by angles (degrees) in the (x, y), (x, z) and (y, z) planes, composed in that order.

    Computed in float64 per sample, so a sample's matrix does not depend on batching. Returns
    float32 (3, 3).
    """
    a, b, c = (math.radians(t) for t in angles_deg)

    def plane(i: int, j: int, t: float) -> torch.Tensor:
        m = torch.eye(3, dtype=torch.float64)
        m[i, i], m[i, j], m[j, i], m[j, j] = math.cos(t), -math.sin(t), math.sin(t), math.cos(t)
        return m

    return (plane(0, 1, a) @ plane(0, 2, b) @ plane(1, 2, c)).float()


def sampling_grid(displacement: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """grid_sample positions of deformation then rotation: out(p) = in(c + R^T (p + u(p) - c)).

    Args:
        displacement: (B, 3, S, S, S) u in voxels.
        rotation: (B, 3, 3) rotation matrices R about the grid centre c = (S-1)/2.

    Returns:
        float32 (B, S, S, S, 3) normalised positions ordered (z, y, x) for ``nnf.grid_sample``.
    """
    size = displacement.shape[-1]
    t = identity_axes(size, displacement.device)
    p = [displacement[:, a] * (2.0 / (size - 1)) for a in range(3)]
    p[0].add_(t[:, None, None])
    p[1].add_(t[None, :, None])
    p[2].add_(t[None, None, :])
    grid = displacement.new_empty((*p[0].shape, 3))
    r = rotation[:, :, :, None, None, None]
    # (R^T p)_i = sum_j R[j, i] p_j, written out elementwise so no batched matmul path can change
    # a sample's rounding with the batch size; in place, since fresh memory is slow on CPU.
    for k, i in enumerate((2, 1, 0)):
        out = grid[..., k]
        torch.mul(p[0], r[:, 0, i], out=out)
        out.add_(p[1] * r[:, 1, i])
        out.add_(p[2] * r[:, 2, i])
    return grid


def warp(volume: torch.Tensor, grid: torch.Tensor, mode: str) -> torch.Tensor:
    """Resample ``volume`` (B, C, S, S, S) at ``grid`` (from :func:`sampling_grid`).

    ``mode`` is "bilinear" (trilinear, for images) or "nearest" (for labels, which stay in their
    label set). Positions outside the grid read 0.
    """
    return nnf.grid_sample(volume, grid, mode=mode, padding_mode="zeros", align_corners=True)


def jacobian_determinant(displacement: torch.Tensor) -> torch.Tensor:
    """Jacobian determinant of x -> x + u(x) by central differences (one-sided at the edges).

    Args:
        displacement: (B, 3, S, S, S) u in voxels.

    Returns:
        float32 (B, S, S, S); > 0 everywhere means the map is locally invertible (no folding).
    """
    grads = [torch.gradient(displacement[:, c], dim=(1, 2, 3)) for c in range(3)]
    j = [[grads[c][d] + (1.0 if c == d else 0.0) for d in range(3)] for c in range(3)]
    return (
        j[0][0] * (j[1][1] * j[2][2] - j[1][2] * j[2][1])
        - j[0][1] * (j[1][0] * j[2][2] - j[1][2] * j[2][0])
        + j[0][2] * (j[1][0] * j[2][1] - j[1][1] * j[2][0])
    )
