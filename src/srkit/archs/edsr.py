"""EDSR: Lim, Son, Kim, Nah, Lee, "Enhanced Deep Residual Networks for Single Image
Super-Resolution", CVPRW 2017 (arXiv:1707.02921).

Residual blocks without batch norm (conv-ReLU-conv, output scaled by ``res_scale``), a long skip,
and a pixel-shuffle upsampler. EDSR: 32 blocks, 256 features, residual scaling 0.1 (43M at x4);
the baseline: 16 blocks, 64 features, no scaling (1.5M at x4). RGB in [0, 255] with the DIV2K
mean subtracted (the official code's MeanShift layers are part of the input convention here).
Module names follow the official EDSR-PyTorch code, so its checkpoints load by key.
"""

from __future__ import annotations

import torch
from torch import nn

from srkit.archs.common import check_scale, conv, pixel_shuffle_stages

SCALES = (2, 3, 4)


class ResBlock(nn.Module):
    def __init__(self, features: int, res_scale: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv(features, features), nn.ReLU(inplace=True), conv(features, features)
        )
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


class Upsampler(nn.Sequential):
    def __init__(self, scale: int, features: int) -> None:
        layers: list[nn.Module] = []
        for s in pixel_shuffle_stages(scale):
            layers += [conv(features, features * s * s), nn.PixelShuffle(s)]
        super().__init__(*layers)


class EDSR(nn.Module):
    def __init__(
        self,
        scale: int = 2,
        blocks: int = 32,
        features: int = 256,
        res_scale: float = 0.1,
        channels: int = 3,
    ) -> None:
        super().__init__()
        check_scale("edsr", scale, SCALES)
        self.scale = scale
        self.head = nn.Sequential(conv(channels, features))
        body: list[nn.Module] = [ResBlock(features, res_scale) for _ in range(blocks)]
        body.append(conv(features, features))
        self.body = nn.Sequential(*body)
        self.tail = nn.Sequential(Upsampler(scale, features), conv(features, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        x = x + self.body(x)
        return self.tail(x)
