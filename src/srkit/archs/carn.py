"""CARN-M: Ahn, Kang, Sohn, "Fast, Accurate, and Lightweight Super-Resolution with Cascading
Residual Network", ECCV 2018 (arXiv:1803.08664).

The mobile variant: an entry conv (64 features), three cascading blocks with global cascading
(concatenate + 1 x 1 conv after each), each block applying one *shared* efficient residual block
(two 3 x 3 group convs, groups = 4, ReLU, a 1 x 1 conv, residual, ReLU) three times with local
cascading; pixel-shuffle upsampling with group convs, and an exit conv. The paper trains one
multi-scale model (x2/x3/x4 upsamplers in one network, 412K parameters); ``multi_scale=False``
keeps only this scale's upsampler. RGB in [0, 1] with the DIV2K mean subtracted.
"""

from __future__ import annotations

import torch
from torch import nn

from srkit.archs.common import check_scale, conv, pixel_shuffle_stages

SCALES = (2, 3, 4)


class EResidualBlock(nn.Module):
    def __init__(self, features: int, groups: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv(features, features, 3, groups=groups),
            nn.ReLU(inplace=True),
            conv(features, features, 3, groups=groups),
            nn.ReLU(inplace=True),
            conv(features, features, 1),
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + x)


def _fuse(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(conv(cin, cout, 1), nn.ReLU(inplace=True))


class CascadingBlock(nn.Module):
    def __init__(self, features: int, groups: int) -> None:
        super().__init__()
        self.res = EResidualBlock(features, groups)
        self.c1 = _fuse(features * 2, features)
        self.c2 = _fuse(features * 3, features)
        self.c3 = _fuse(features * 4, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x
        o = x
        for fuse in (self.c1, self.c2, self.c3):
            c = torch.cat((c, self.res(o)), 1)
            o = fuse(c)
        return o


class Upsample(nn.Sequential):
    def __init__(self, features: int, scale: int, groups: int) -> None:
        layers: list[nn.Module] = []
        for s in pixel_shuffle_stages(scale):
            layers += [
                conv(features, features * s * s, 3, groups=groups),
                nn.ReLU(inplace=True),
                nn.PixelShuffle(s),
            ]
        super().__init__(*layers)


class CARNM(nn.Module):
    def __init__(
        self,
        scale: int = 2,
        features: int = 64,
        groups: int = 4,
        multi_scale: bool = True,
        channels: int = 3,
    ) -> None:
        super().__init__()
        check_scale("carn_m", scale, SCALES)
        self.scale = scale
        self.entry = conv(channels, features)
        self.blocks = nn.ModuleList(CascadingBlock(features, groups) for _ in range(3))
        self.c1 = _fuse(features * 2, features)
        self.c2 = _fuse(features * 3, features)
        self.c3 = _fuse(features * 4, features)
        up_scales = SCALES if multi_scale else (scale,)
        self.upsample = nn.ModuleDict({f"x{s}": Upsample(features, s, groups) for s in up_scales})
        self.exit = conv(features, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = o = self.entry(x)
        for block, fuse in zip(self.blocks, (self.c1, self.c2, self.c3), strict=True):
            c = torch.cat((c, block(o)), 1)
            o = fuse(c)
        return self.exit(self.upsample[f"x{self.scale}"](o))
