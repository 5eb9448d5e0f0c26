"""LapSRN: Lai, Huang, Ahuja, Yang, "Deep Laplacian Pyramid Networks for Fast and Accurate
Super-Resolution", CVPR 2017 (arXiv:1704.03915).

A progressive x2 pyramid on the Y channel. Each level has a feature-extraction branch (``depth``
3 x 3 convolutions, 64 filters, leaky ReLU 0.2, then a x2 transposed convolution) whose upsampled
features feed the next level and a 3 x 3 convolution that predicts the level's residual, and an
image-reconstruction branch that upsamples the previous level's image with a learnable 4 x 4
transposed convolution (bilinear init) and adds the residual. x2 has one level, x4 two, x8 three.
The authors' released x2/x4 models use depth 10 (812K parameters for x4, the count the paper's
comparison reports), their x8 model depth 5.

The feature upsampling mirrors the released MatConvNet models exactly: a 3 x 3 transposed
convolution with stride 2 whose last output row and column are cropped.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from srkit.archs.common import Y01, ArchSpec, Reference, check_scale, conv

SCALES = (2, 4, 8)


def bilinear_kernel(size: int = 4) -> torch.Tensor:
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    og = torch.arange(size, dtype=torch.float32)
    k = 1 - (og - center).abs() / factor
    return k[:, None] * k[None, :]


class LapSRNLevel(nn.Module):
    def __init__(self, depth: int, features: int, channels: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers += [conv(features, features), nn.LeakyReLU(0.2, inplace=True)]
        self.body = nn.Sequential(*layers)
        self.up = nn.ConvTranspose2d(features, features, 3, stride=2)
        self.act = nn.LeakyReLU(0.2, inplace=True)
        self.residual = conv(features, channels)
        self.img_up = nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1, bias=False)
        with torch.no_grad():
            self.img_up.weight.zero_()
            for c in range(channels):
                self.img_up.weight[c, c] = bilinear_kernel(4)

    def forward(self, feat: torch.Tensor, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat = self.act(self.up(self.body(feat))[..., :-1, :-1])
        return feat, self.img_up(img) + self.residual(feat)


class LapSRN(nn.Module):
    def __init__(
        self, scale: int = 4, depth: int = 10, features: int = 64, channels: int = 1
    ) -> None:
        super().__init__()
        check_scale("lapsrn", scale, SCALES)
        self.scale = scale
        self.input_conv = conv(channels, features)
        self.act = nn.LeakyReLU(0.2, inplace=True)
        n_levels = int(math.log2(scale))
        self.levels = nn.ModuleList(LapSRNLevel(depth, features, channels) for _ in range(n_levels))

    def forward(
        self, x: torch.Tensor, return_all: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        feat = self.act(self.input_conv(x))
        img = x
        outs = []
        for level in self.levels:
            feat, img = level(feat, img)
            outs.append(img)
        return (img, outs) if return_all else img


SPECS = (
    ArchSpec(
        name="lapsrn",
        cls=LapSRN,
        defaults={"depth": 10, "features": 64, "channels": 1},
        scales=SCALES,
        convention=Y01,
        reference=Reference(
            "Lai, Huang, Ahuja, Yang",
            "Deep Laplacian Pyramid Networks for Fast and Accurate Super-Resolution",
            "CVPR",
            2017,
            "https://arxiv.org/abs/1704.03915",
        ),
        published_params={4: 812_000},
        params_source="812K for LapSRN (x4, depth 10), MS-LapSRN paper (Lai et al., TPAMI 2018) "
        "parameter comparison",
        description="progressive x2 Laplacian pyramid, feature + image branches per level",
    ),
)
