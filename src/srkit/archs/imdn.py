"""IMDN: Hui, Gao, Yang, Wang, "Lightweight Image Super-Resolution with Information
Multi-distillation Network", ACM Multimedia 2019 (arXiv:1909.11856).

6 information multi-distillation blocks (64 features): three 3 x 3 convs each split off a quarter
of their channels (distillation rate 0.25) and pass on the rest, a fourth conv yields the last
quarter; the four distilled parts are concatenated, re-weighted by contrast-aware channel
attention (CCA: per-channel standard deviation + mean, 1 x 1 convs with reduction 16, sigmoid),
fused by a 1 x 1 conv and added to the block input. The block outputs are concatenated, fused by
a 1 x 1 conv + leaky ReLU (0.05), a 3 x 3 conv with a long skip, then a 3 x 3 conv to
``3 * scale^2`` channels and a pixel shuffle. RGB in [0, 1]; 694K (x2) / 703K (x3) / 715K (x4).
"""

from __future__ import annotations

import torch
from torch import nn

from srkit.archs.common import RGB01, ArchSpec, Reference, check_scale, conv
from srkit.archs.detection import Detected, KeyDetector, StateDict, indices, rename, shuffle_scale

SCALES = (2, 3, 4)


class ContrastChannelAttention(nn.Module):
    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True).sqrt()
        return x * self.conv_du(std + mean)


class IMDB(nn.Module):
    def __init__(self, features: int = 64, distillation_rate: float = 0.25) -> None:
        super().__init__()
        self.distilled = int(features * distillation_rate)
        self.remaining = features - self.distilled
        self.c1 = conv(features, features)
        self.c2 = conv(self.remaining, features)
        self.c3 = conv(self.remaining, features)
        self.c4 = conv(self.remaining, self.distilled)
        self.c5 = conv(self.distilled * 4, features, 1)
        self.cca = ContrastChannelAttention(self.distilled * 4)
        self.act = nn.LeakyReLU(0.05, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        split = (self.distilled, self.remaining)
        d1, r1 = torch.split(self.act(self.c1(x)), split, dim=1)
        d2, r2 = torch.split(self.act(self.c2(r1)), split, dim=1)
        d3, r3 = torch.split(self.act(self.c3(r2)), split, dim=1)
        d4 = self.c4(r3)
        return x + self.c5(self.cca(torch.cat((d1, d2, d3, d4), 1)))


class IMDN(nn.Module):
    def __init__(
        self, scale: int = 4, blocks: int = 6, features: int = 64, channels: int = 3
    ) -> None:
        super().__init__()
        check_scale("imdn", scale, SCALES)
        self.scale = scale
        self.fea_conv = conv(channels, features)
        self.blocks = nn.ModuleList(IMDB(features) for _ in range(blocks))
        self.fuse = nn.Sequential(
            conv(features * blocks, features, 1), nn.LeakyReLU(0.05, inplace=True)
        )
        self.lr_conv = conv(features, features)
        self.upsampler = nn.Sequential(
            conv(features, channels * scale * scale), nn.PixelShuffle(scale)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fea = self.fea_conv(x)
        outs = []
        h = fea
        for block in self.blocks:
            h = block(h)
            outs.append(h)
        h = self.lr_conv(self.fuse(torch.cat(outs, 1))) + fea
        return self.upsampler(h)


# --- the authors' checkpoints ---------------------------------------------------------------


def detect(state: StateDict, where: str) -> Detected | None:
    """The authors' IMDN files (Zheng-Hui/IMDN): ``IMDB1..``, ``fea_conv``, ``LR_conv``, ``c``."""
    if "fea_conv.weight" not in state or "IMDB1.c1.weight" not in state:
        return None
    features, channels = state["fea_conv.weight"].shape[:2]
    blocks = len(indices(state, r"IMDB(\d+)\."))
    scale = shuffle_scale(state["upsampler.0.weight"].shape[0], channels, where)
    mapped = rename(
        state,
        [
            (r"^IMDB(\d+)\.", lambda m: f"blocks.{int(m.group(1)) - 1}."),
            (r"^c\.0\.", "fuse.0."),
            (r"^LR_conv\.", "lr_conv."),
        ],
    )
    opts = {"blocks": blocks, "features": int(features), "channels": int(channels)}
    return Detected("imdn", opts, scale, (scale,), mapped, RGB01)


DETECTOR = KeyDetector("imdn", "fea_conv.weight, IMDB1.c1.weight", detect)

SPECS = (
    ArchSpec(
        name="imdn",
        cls=IMDN,
        defaults={"blocks": 6, "features": 64, "channels": 3},
        scales=SCALES,
        convention=RGB01,
        reference=Reference(
            "Hui, Gao, Yang, Wang",
            "Lightweight Image Super-Resolution with Information Multi-distillation Network",
            "ACM MM",
            2019,
            "https://arxiv.org/abs/1909.11856",
        ),
        published_params={2: 694_000, 3: 703_000, 4: 715_000},
        params_source="IMDN paper, comparison with lightweight models: "
        "694K / 703K / 715K for x2 / x3 / x4",
        description="6 information multi-distillation blocks with contrast-aware attention",
        detector=DETECTOR,
    ),
)
