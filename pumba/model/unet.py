"""The PUMBA 3-D U-Net (method notes, "Network and training").

Input (B, C, D, H, W): C = 1 intensity channel in [0, 1] (the whole-head model; the fine stage of the cascade
adds a second channel, the coarse stage's brain prior), with D, H, W multiples of ``divisor`` (32 with five
levels). Output (B, 3, D, H, W) logits of the classes 0 background, 1 brain interior, 2 brain boundary (the
fine stage: 2 classes, background and brain); softmax gives probabilities. With the default widths the
whole-head network has 5,896,947 parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pumba.classes import N_CLASSES

PUMBA_WIDTHS = (8, 16, 32, 64, 128)
PUMBA_BOTTLENECK = 256


def _double_conv(c_in: int, c_out: int) -> list[nn.Module]:
    return [
        nn.Conv3d(c_in, c_out, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv3d(c_out, c_out, 3, padding=1),
        nn.ReLU(inplace=True),
    ]


class UNet3D(nn.Module):
    """Encoder levels of two 3^3 convolutions + ReLU followed by GroupNorm, max-pooling by 2; a bottleneck of
    two convolutions without normalisation; a decoder that upsamples (nearest, x2), concatenates the skip and
    applies two convolutions + ReLU + GroupNorm; a final 1^3 convolution to ``n_classes`` logits.

    Args:
        widths: encoder widths, one per level (the method's 8, 16, 32, 64, 128).
        bottleneck: width of the bottleneck (256).
        groups: GroupNorm groups (8).
        n_classes: output channels (:data:`pumba.classes.N_CLASSES`, 3; the fine stage: ``N_FINE_CLASSES``).
        in_channels: input channels (1).
    """

    def __init__(
        self,
        widths: Sequence[int] = PUMBA_WIDTHS,
        bottleneck: int = PUMBA_BOTTLENECK,
        groups: int = 8,
        n_classes: int = N_CLASSES,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        self.widths = tuple(int(w) for w in widths)
        self.bottleneck_width = int(bottleneck)
        self.groups = int(groups)
        self.n_classes = int(n_classes)
        self.in_channels = int(in_channels)
        self.encoder = nn.ModuleList()
        c_in = self.in_channels
        for w in self.widths:
            self.encoder.append(nn.Sequential(*_double_conv(c_in, w), nn.GroupNorm(groups, w)))
            c_in = w
        self.pool = nn.MaxPool3d(2)
        self.bottleneck = nn.Sequential(*_double_conv(c_in, self.bottleneck_width))
        self.decoder = nn.ModuleList()
        c_in = self.bottleneck_width
        for w in reversed(self.widths):
            self.decoder.append(nn.Sequential(*_double_conv(c_in + w, w), nn.GroupNorm(groups, w)))
            c_in = w
        self.head = nn.Conv3d(c_in, n_classes, 1)

    @property
    def divisor(self) -> int:
        """Input sizes must be multiples of this (one halving per encoder level)."""
        return 2 ** len(self.widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, n_classes, D, H, W) of an input (B, in_channels, D, H, W)."""
        skips = []
        for level in self.encoder:
            x = level(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for level, skip in zip(self.decoder, reversed(skips), strict=True):
            x = nn.functional.interpolate(x, scale_factor=2, mode="nearest")
            x = level(torch.cat([x, skip], dim=1))
        return self.head(x)

    def architecture(self) -> dict:
        """Constructor arguments, stored in checkpoints so a model can be rebuilt from its file."""
        return {
            "widths": list(self.widths),
            "bottleneck": self.bottleneck_width,
            "groups": self.groups,
            "n_classes": self.n_classes,
            "in_channels": self.in_channels,
        }


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
