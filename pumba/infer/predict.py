"""Running the network on one volume on the network grid."""

from __future__ import annotations

import numpy as np
import torch

from pumba.model.unet import UNet3D


def predict(model: UNet3D, grid_image: np.ndarray, device: torch.device) -> np.ndarray:
    """Class probabilities (3, S, S, S) float32 of a normalised image (S, S, S) in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(grid_image))[None, None].to(device)
    x = x.contiguous(memory_format=torch.channels_last_3d)
    with torch.inference_mode():
        logits = model.to(memory_format=torch.channels_last_3d)(x)
        prob = torch.softmax(logits.float(), dim=1)[0]
    return prob.cpu().numpy()
