"""Binary morphology on batched masks and the 3-class training target.

Masks are bool or {0, 1} tensors (B, S, S, S) with axis order (x, y, z) = dims (D, H, W). Morphology
is a max/min over shifted copies of the mask: exact, and cheap at these structuring-element sizes.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as nnf

from pumba.classes import BACKGROUND, BOUNDARY, INTERIOR

CROSS = ((0, 0, 0), (1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1))


def ball_offsets(radius: int) -> list[tuple[int, int, int]]:
    """Integer offsets (voxels) of a Euclidean ball, |o|^2 <= radius^2 (radius 1: the 6-cross)."""
    span = range(-radius, radius + 1)
    return [o for o in itertools.product(span, span, span) if sum(v * v for v in o) <= radius * radius]


def _shifted_reduce(
    mask: torch.Tensor, offsets: list[tuple[int, int, int]], border: str, combine: str
) -> torch.Tensor:
    """OR ("any") or AND ("all") of mask(p + o) over offsets o; outside the grid per ``border``.

    border: "false" or "true" (a constant outside the grid) or "edge" (the nearest grid voxel).
    """
    size = mask.shape[1:]
    r = max(max(abs(v) for v in o) for o in offsets)
    if r == 0:
        return mask.clone()
    m = mask.bool()[:, None]
    if border == "edge":
        padded = nnf.pad(m.to(torch.float32), (r,) * 6, mode="replicate").bool()[:, 0]
    else:
        padded = nnf.pad(m, (r,) * 6, value=border == "true")[:, 0]
    out = None
    for dx, dy, dz in offsets:
        view = padded[
            :,
            r + dx : r + dx + size[0],
            r + dy : r + dy + size[1],
            r + dz : r + dz + size[2],
        ]
        if out is None:
            out = view.clone()
        elif combine == "any":
            out |= view
        else:
            out &= view
    return out


def binary_closing(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Closing (dilation then erosion) by a ball of ``radius`` voxels; bool (B, S, S, S).

    As scikit-image does, the dilation treats outside the grid as False and the erosion as True, so
    the closing never removes voxels at the grid's edge.
    """
    if radius <= 0:
        return mask.bool()
    ball = ball_offsets(radius)
    dilated = _shifted_reduce(mask, ball, border="false", combine="any")
    return _shifted_reduce(dilated, ball, border="true", combine="all")


def thick_boundary(mask: torch.Tensor) -> torch.Tensor:
    """Voxels whose 6-neighbourhood (self included) holds mask and non-mask: both sides of the edge.

    Outside the grid copies the nearest voxel, so the grid's faces are no boundary by themselves
    (scikit-image's ``find_boundaries(mode="thick", connectivity=1)``). Returns bool (B, S, S, S).
    """
    offsets = list(CROSS)
    any_in = _shifted_reduce(mask, offsets, border="edge", combine="any")
    all_in = _shifted_reduce(mask, offsets, border="edge", combine="all")
    return any_in & ~all_in


def make_target(mask: torch.Tensor, boundary_class: bool = True) -> torch.Tensor:
    """Class target int64 (B, S, S, S) from a brain mask (B, S, S, S) in {0, 1} (:mod:`pumba.classes`).

    0 background, 1 interior (mask minus its thick boundary), 2 boundary (:func:`thick_boundary`:
    the voxels on either side of the mask's edge, 6-connectivity). The classes partition the grid.
    ``boundary_class`` false (the ablation of the boundary class): two classes, 0 background and 1 the
    whole mask.
    """
    m = mask.bool()
    target = torch.full(m.shape, BACKGROUND, dtype=torch.int64, device=m.device)
    if not boundary_class:
        target[m] = INTERIOR
        return target
    boundary = thick_boundary(m)
    target[m & ~boundary] = INTERIOR
    target[boundary] = BOUNDARY
    return target
