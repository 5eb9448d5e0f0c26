"""VDSR: Kim, Lee, Lee, "Accurate Image Super-Resolution Using Very Deep Convolutional Networks",
CVPR 2016 (arXiv:1511.04587).

20 layers of 3 x 3 convolutions with 64 filters (ReLU after all but the last) predicting the
residual between the bicubic-upscaled Y channel and the HR Y channel. One model serves x2/x3/x4
(the paper trains a single multi-scale network); the bicubic upscaling happens inside.
"""

from __future__ import annotations

import torch
from torch import nn

from srkit.archs.common import Y01, ArchSpec, Reference, bicubic_upscale, check_scale, conv

SCALES = (2, 3, 4)


class VDSR(nn.Module):
    def __init__(
        self, scale: int = 2, depth: int = 20, features: int = 64, channels: int = 1
    ) -> None:
        super().__init__()
        check_scale("vdsr", scale, SCALES)
        if depth < 2:
            raise ValueError(f"vdsr depth must be >= 2, got {depth}")
        self.scale = scale
        layers: list[nn.Module] = [conv(channels, features), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [conv(features, features), nn.ReLU(inplace=True)]
        layers.append(conv(features, channels))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = bicubic_upscale(x, self.scale)
        return x + self.body(x)


SPECS = (
    ArchSpec(
        name="vdsr",
        cls=VDSR,
        defaults={"depth": 20, "features": 64, "channels": 1},
        scales=SCALES,
        convention=Y01,
        reference=Reference(
            "Kim, Lee, Lee",
            "Accurate Image Super-Resolution Using Very Deep Convolutional Networks",
            "CVPR",
            2016,
            "https://arxiv.org/abs/1511.04587",
        ),
        published_params={2: 665_000, 3: 665_000, 4: 665_000},
        params_source="665K, as listed for VDSR in the LapSRN / MS-LapSRN (Lai et al., CVPR 2017 "
        "/ TPAMI 2018) and DRRN (Tai et al., CVPR 2017) comparisons",
        description="20-layer residual CNN on the bicubic-upscaled Y channel",
    ),
)
