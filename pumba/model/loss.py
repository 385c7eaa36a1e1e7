"""Losses: soft Dice on the interior and boundary classes (method notes: 1 - (Dice_interior + Dice_boundary))
for the whole-head model, soft Dice of the brain alone for its ablation without the boundary class, soft Dice
of the brain overall and near its edge for the fine stage of the cascade."""

from __future__ import annotations

import torch

from pumba.classes import BOUNDARY, BRAIN, INTERIOR


def soft_dice(prob: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Soft Dice of a probability map and a binary target, both (B, D, H, W), pooled over the batch.

    ``smooth`` is added to numerator and denominator (1 in the reference), so two empty maps give 1.
    """
    prob = prob.float()
    target = target.float()
    inter = (prob * target).sum()
    return (2 * inter + smooth) / (prob.sum() + target.sum() + smooth)


def pumba_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> tuple[torch.Tensor, dict]:
    """Loss of logits (B, 3, D, H, W) against an int64 class map (B, D, H, W) with 0 background,
    1 interior, 2 boundary.

    Returns ``1 - (Dice_interior + Dice_boundary) / 2`` (the reference's sum, halved so that the loss lies in
    [0, 1]; the gradient direction is the same) and a dict of the two Dice values as floats.
    """
    prob = torch.softmax(logits.float(), dim=1)
    d_int = soft_dice(prob[:, INTERIOR], target == INTERIOR, smooth)
    d_bnd = soft_dice(prob[:, BOUNDARY], target == BOUNDARY, smooth)
    loss = 1.0 - 0.5 * (d_int + d_bnd)
    return loss, {"dice_interior": float(d_int.detach()), "dice_boundary": float(d_bnd.detach())}


def brain_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> tuple[torch.Tensor, dict]:
    """Loss of the ablation without the boundary class: logits (B, 3, D, H, W) against a two-class map
    (B, D, H, W) of 0 background and 1 brain (:func:`pumba.synth.make_target` with ``boundary_class``
    false).

    ``1 - Dice_brain``, the soft Dice of the interior channel (here the whole brain) with the brain; the
    boundary channel is never a target, so the softmax drives it to zero. Returns the loss and a dict of
    the Dice value as a float.
    """
    prob = torch.softmax(logits.float(), dim=1)
    d_brain = soft_dice(prob[:, INTERIOR], target == INTERIOR, smooth)
    return 1.0 - d_brain, {"dice_brain": float(d_brain.detach())}


def edge_band(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Voxels within ``radius`` voxels (a cube) of the edge of a binary mask (B, D, H, W): bool, same
    shape."""
    m = mask.float()[:, None]
    k = 2 * radius + 1
    grown = torch.nn.functional.max_pool3d(m, k, 1, radius)
    shrunk = -torch.nn.functional.max_pool3d(-m, k, 1, radius)
    return (grown != shrunk)[:, 0]


def refine_loss(
    logits: torch.Tensor, mask: torch.Tensor, band: int = 2, smooth: float = 1.0
) -> tuple[torch.Tensor, dict]:
    """Loss of the fine stage: logits (B, 2, D, H, W) against a brain mask (B, D, H, W) in {0, 1}.

    ``1 - (Dice_brain + Dice_edge) / 2``: the soft Dice of the brain class, and the same within ``band``
    voxels of the mask's edge (where the fine stage has its work to do; far from the edge the coarse prior
    already tells). Returns the loss and a dict of the two Dice values as floats.
    """
    prob = torch.softmax(logits.float(), dim=1)[:, BRAIN]
    target = mask.bool()
    near = edge_band(target, band)
    d_brain = soft_dice(prob, target, smooth)
    d_edge = soft_dice(prob * near, target & near, smooth)
    loss = 1.0 - 0.5 * (d_brain + d_edge)
    return loss, {"dice_brain": float(d_brain.detach()), "dice_edge": float(d_edge.detach())}
