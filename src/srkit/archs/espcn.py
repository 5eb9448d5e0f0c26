"""ESPCN: Shi, Caballero, Huszar, Totz, Aitken, Bishop, Rueckert, Wang, "Real-Time Single Image
and Video Super-Resolution Using an Efficient Sub-Pixel Convolutional Neural Network",
CVPR 2016 (arXiv:1609.05158).

Three layers in LR space on the Y channel, (f1, n1) = (5, 64), (f2, n2) = (3, 32), f3 = 3 with
``scale^2`` output channels, tanh activations (as in the paper), then a periodic shuffle
(pixel shuffle) to HR.
"""

from __future__ import annotations

import torch
from torch import nn

from srkit.archs.common import Y01, ArchSpec, Reference, check_scale, conv

SCALES = (2, 3, 4, 8)


class ESPCN(nn.Module):
    def __init__(self, scale: int = 3, n1: int = 64, n2: int = 32, channels: int = 1) -> None:
        super().__init__()
        check_scale("espcn", scale, SCALES)
        self.scale = scale
        self.conv1 = conv(channels, n1, 5)
        self.conv2 = conv(n1, n2, 3)
        self.conv3 = conv(n2, channels * scale * scale, 3)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(self.conv1(x))
        x = torch.tanh(self.conv2(x))
        return self.shuffle(self.conv3(x))


SPECS = (
    ArchSpec(
        name="espcn",
        cls=ESPCN,
        defaults={"n1": 64, "n2": 32, "channels": 1},
        scales=SCALES,
        convention=Y01,
        reference=Reference(
            "Shi et al.",
            "Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel "
            "Convolutional Neural Network",
            "CVPR",
            2016,
            "https://arxiv.org/abs/1609.05158",
        ),
        published_params={3: 22_624},
        params_counted="weights",
        params_source="ESPCN paper gives the layers (5x5x64, 3x3x32, 3x3x r^2) but no "
        "total; 22,624 weights at x3 is that configuration's count (no independent figure)",
        description="3-layer CNN in LR space with a sub-pixel (pixel-shuffle) output, tanh",
    ),
)
