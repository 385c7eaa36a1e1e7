"""Soft Dice loss on the interior and boundary classes (method notes: 1 - (Dice_interior + Dice_boundary))."""

from __future__ import annotations

import torch

INTERIOR, BOUNDARY = 1, 2


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
