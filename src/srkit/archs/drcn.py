"""DRCN: Kim, Lee, Lee, "Deeply-Recursive Convolutional Network for Image Super-Resolution",
CVPR 2016 (arXiv:1511.04491).

On the bicubic-upscaled Y channel: an embedding net (two 3 x 3 convolutions, 256 filters), an
inference net that applies *one* 3 x 3 convolution (256 -> 256) ``recursions`` = 16 times, and a
reconstruction net (two 3 x 3 convolutions) shared by every recursion. Recursive supervision:
every intermediate feature map H_d is reconstructed into a prediction y_d = R(H_d) + x (skip
connection), and the output is the learned weighted average sum_d w_d y_d. ``forward`` returns
that output; ``forward(x, return_all=True)`` also returns the intermediate predictions for the
recursive-supervision loss. 1,775K parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from srkit.archs.common import Y01, ArchSpec, Reference, bicubic_upscale, check_scale, conv

SCALES = (2, 3, 4)


class DRCN(nn.Module):
    def __init__(
        self, scale: int = 2, recursions: int = 16, features: int = 256, channels: int = 1
    ) -> None:
        super().__init__()
        check_scale("drcn", scale, SCALES)
        self.scale = scale
        self.recursions = recursions
        self.embed = nn.Sequential(
            conv(channels, features), nn.ReLU(inplace=True), conv(features, features),
            nn.ReLU(inplace=True),
        )  # fmt: skip
        self.recursive = conv(features, features)
        self.reconstruct = nn.Sequential(
            conv(features, features), nn.ReLU(inplace=True), conv(features, channels)
        )
        self.weights = nn.Parameter(torch.full((recursions,), 1.0 / recursions))
        self.relu = nn.ReLU()

    def forward(
        self, x: torch.Tensor, return_all: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        x = bicubic_upscale(x, self.scale)
        h = self.embed(x)
        preds = []
        for _ in range(self.recursions):
            h = self.relu(self.recursive(h))
            preds.append(self.reconstruct(h) + x)
        out = sum(w * p for w, p in zip(self.weights, preds, strict=True))
        return (out, preds) if return_all else out


SPECS = (
    ArchSpec(
        name="drcn",
        cls=DRCN,
        defaults={"recursions": 16, "features": 256, "channels": 1},
        scales=SCALES,
        convention=Y01,
        reference=Reference(
            "Kim, Lee, Lee",
            "Deeply-Recursive Convolutional Network for Image Super-Resolution",
            "CVPR",
            2016,
            "https://arxiv.org/abs/1511.04491",
        ),
        published_params={2: 1_775_000, 3: 1_775_000, 4: 1_775_000},
        params_source="1,775K, as listed for DRCN in the DRRN (Tai et al., CVPR 2017) and "
        "MS-LapSRN (Lai et al., TPAMI 2018) comparisons",
        description="one conv recursed 16 times with recursive supervision and skip connection",
    ),
)
