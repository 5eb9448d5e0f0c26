"""SRCNN: Dong, Loy, He, Tang, "Image Super-Resolution Using Deep Convolutional Networks",
IEEE TPAMI 38(2), 2016 (arXiv:1501.00092); first version ECCV 2014.

Three layers on the bicubic-upscaled Y channel: patch extraction (f1 x f1, n1 filters), non-linear
mapping (f2 x f2, n2 filters), reconstruction (f3 x f3). The TPAMI paper's best trade-off is
9-5-5 with n1 = 64, n2 = 32: 57,184 weights (filter-size study; the 9-1-5 base network has 8,032).
The paper uses valid convolutions (the output shrinks by f1 + f2 + f3 - 3 pixels); srkit pads
('same') so that every model maps LR -> SR at exactly ``scale`` times the input size.
"""

from __future__ import annotations

import torch
from torch import nn

from srkit.archs.common import Y01, ArchSpec, Reference, bicubic_upscale, check_scale, conv

SCALES = (2, 3, 4)


class SRCNN(nn.Module):
    def __init__(
        self,
        scale: int = 3,
        f1: int = 9,
        f2: int = 5,
        f3: int = 5,
        n1: int = 64,
        n2: int = 32,
        channels: int = 1,
    ) -> None:
        super().__init__()
        check_scale("srcnn", scale, SCALES)
        self.scale = scale
        self.conv1 = conv(channels, n1, f1)
        self.conv2 = conv(n1, n2, f2)
        self.conv3 = conv(n2, channels, f3)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = bicubic_upscale(x, self.scale)
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        return self.conv3(x)


SPECS = (
    ArchSpec(
        name="srcnn",
        cls=SRCNN,
        defaults={"f1": 9, "f2": 5, "f3": 5, "n1": 64, "n2": 32, "channels": 1},
        scales=SCALES,
        convention=Y01,
        reference=Reference(
            "Dong, Loy, He, Tang",
            "Image Super-Resolution Using Deep Convolutional Networks",
            "IEEE TPAMI",
            2016,
            "https://arxiv.org/abs/1501.00092",
        ),
        published_params={3: 57_184},
        params_counted="weights",
        params_source="SRCNN TPAMI paper, filter-size study: 9-5-5 has 57,184 parameters "
        "(9-1-5: 8,032; 9-3-5: 24,416), weights only",
        description="3-layer CNN on the bicubic-upscaled Y channel (9-5-5)",
    ),
)
