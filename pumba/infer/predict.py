"""Running the network on one volume on the network grid."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from pumba.classes import BOUNDARY, INTERIOR
from pumba.model.unet import UNet3D


def flip_sets(tta: bool) -> list[tuple[int, ...]]:
    """Spatial dims of the (1, 1, S, S, S) input to flip, one tuple per forward pass: all 8 combinations of
    the three axes with test-time augmentation (the network was trained with random flips of each axis), just
    the identity without."""
    if not tta:
        return [()]
    return [
        tuple(d for d, f in zip((2, 3, 4), bits, strict=True) if f)
        for bits in itertools.product((0, 1), repeat=3)
    ]


def predict(
    model: UNet3D,
    grid_image: np.ndarray,
    device: torch.device,
    tta: bool = False,
    flips_out: list[np.ndarray] | None = None,
) -> np.ndarray:
    """Class probabilities (3, S, S, S) float32 of a normalised image (S, S, S) in [0, 1].

    With ``tta`` the probabilities are the mean over the 8 flipped copies of the input (each flipped back).
    ``flips_out``, when given, receives each pass's brain probability (:func:`brain_probability`, float32
    (S, S, S), flipped back): what the quality score compares (:mod:`pumba.infer.qc`).
    """
    x = torch.from_numpy(np.ascontiguousarray(grid_image))[None, None].to(device)
    x = x.contiguous(memory_format=torch.channels_last_3d)
    model = model.to(memory_format=torch.channels_last_3d)
    flips = flip_sets(tta)
    total = None
    with torch.inference_mode():
        for dims in flips:
            inp = x.flip(dims) if dims else x
            prob = torch.softmax(model(inp).float(), dim=1)
            prob = prob.flip(dims) if dims else prob
            if flips_out is not None:
                flips_out.append(brain_probability(prob[0].cpu().numpy()))
            total = prob if total is None else total.add_(prob)
    return (total[0] / len(flips)).cpu().numpy()


def brain_probability(prob: np.ndarray) -> np.ndarray:
    """The probability of brain (S, S, S) float32 from class probabilities (3, S, S, S): interior plus half
    the boundary class. The boundary class is the thick edge of the brain, one voxel inside it and one
    outside, so half of it is brain; the 0.5 level of this map lies where the tight reconstruction
    (:func:`pumba.infer.postprocess.postprocess`) puts the edge, to within a voxel."""
    return (prob[INTERIOR] + 0.5 * prob[BOUNDARY]).astype(np.float32)
