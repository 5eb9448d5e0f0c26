"""A2N: Chen, Gu, Zhang, "Attention in Attention Network for Image Super-Resolution",
arXiv:2104.09497, 2021.

16 attention-in-attention blocks (AAB, 40 features): a 1 x 1 conv + leaky ReLU, then an attention
branch (pixel attention: 3 x 3 conv, leaky ReLU, 1 x 1 conv, sigmoid, multiplying a 3 x 3 conv
of the input, then a 3 x 3 conv) and a non-attention branch (3 x 3 conv) mixed by the attention
dropout module (global pooling, two linear layers, softmax with temperature 30 over the two
branches), leaky ReLU, 1 x 1 conv, residual. Reconstruction: nearest-neighbour upsampling, conv to
24 features, pixel attention, conv (twice x2 for x4), output conv, plus the bilinearly upscaled
input. RGB in [0, 255] (the authors trained in the EDSR framework), no mean shift. 1.04M.
Module names follow the authors' code, so their checkpoints load by key.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from srkit.archs.common import RGB255, ArchSpec, Reference, check_scale, conv
from srkit.archs.detection import Detected, KeyDetector, StateDict, indices

SCALES = (2, 3, 4)


class PixelAttention(nn.Module):
    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(features, features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.conv(x))


class AttentionBranch(nn.Module):
    def __init__(self, features: int) -> None:
        super().__init__()
        self.k1 = conv(features, features, 3, bias=False)
        self.k2 = nn.Conv2d(features, features, 1)
        self.k3 = conv(features, features, 3, bias=False)
        self.k4 = conv(features, features, 3, bias=False)
        self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.sigmoid(self.k2(self.lrelu(self.k1(x))))
        return self.k4(self.k3(x) * y)


class AAB(nn.Module):
    def __init__(self, features: int, reduction: int = 4, temperature: float = 30.0) -> None:
        super().__init__()
        self.temperature = temperature
        self.conv_first = nn.Conv2d(features, features, 1, bias=False)
        self.conv_last = nn.Conv2d(features, features, 1, bias=False)
        self.lrelu = nn.LeakyReLU(0.2)
        self.ADM = nn.Sequential(
            nn.Linear(features, features // reduction, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(features // reduction, 2, bias=False),
        )
        self.attention = AttentionBranch(features)
        self.non_attention = conv(features, features, 3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        h = self.lrelu(self.conv_first(x))
        w = F.softmax(self.ADM(h.mean(dim=(2, 3))) / self.temperature, dim=1)
        h = self.attention(h) * w[:, 0].view(n, 1, 1, 1) + self.non_attention(h) * w[:, 1].view(
            n, 1, 1, 1
        )
        return x + self.conv_last(self.lrelu(h))


class A2N(nn.Module):
    def __init__(
        self,
        scale: int = 2,
        blocks: int = 16,
        features: int = 40,
        up_features: int = 24,
        channels: int = 3,
    ) -> None:
        super().__init__()
        check_scale("a2n", scale, SCALES)
        self.scale = scale
        self.conv_first = conv(channels, features)
        self.AAB_trunk = nn.Sequential(*(AAB(features) for _ in range(blocks)))
        self.trunk_conv = conv(features, features)
        self.upconv1 = conv(features, up_features)
        self.att1 = PixelAttention(up_features)
        self.HRconv1 = conv(up_features, up_features)
        if scale == 4:
            self.upconv2 = conv(up_features, up_features)
            self.att2 = PixelAttention(up_features)
            self.HRconv2 = conv(up_features, up_features)
        self.conv_last = conv(up_features, channels)
        self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fea = self.conv_first(x)
        fea = fea + self.trunk_conv(self.AAB_trunk(fea))
        first = 2 if self.scale == 4 else self.scale
        fea = self.upconv1(F.interpolate(fea, scale_factor=first, mode="nearest"))
        fea = self.lrelu(self.HRconv1(self.lrelu(self.att1(fea))))
        if self.scale == 4:
            fea = self.upconv2(F.interpolate(fea, scale_factor=2, mode="nearest"))
            fea = self.lrelu(self.HRconv2(self.lrelu(self.att2(fea))))
        out = self.conv_last(fea)
        return out + F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)


# --- the authors' checkpoints ---------------------------------------------------------------


def detect(state: StateDict, where: str) -> Detected | None:
    """The authors' A2N files (haoyuc/A2N); srkit's module names are theirs."""
    if "AAB_trunk.0.ADM.0.weight" not in state:
        return None
    features, channels = state["conv_first.weight"].shape[:2]
    opts = {
        "blocks": len(indices(state, r"AAB_trunk\.(\d+)\.")),
        "features": int(features),
        "up_features": int(state["upconv1.weight"].shape[0]),
        "channels": int(channels),
    }
    if "upconv2.weight" in state:
        return Detected("a2n", opts, 4, (4,), dict(state), RGB255)
    # x2 and x3 files have identical tensors: the scale must come from the caller or file name.
    return Detected("a2n", opts, None, (2, 3), dict(state), RGB255)


DETECTOR = KeyDetector("a2n", "AAB_trunk.0.ADM.0.weight", detect)

SPECS = (
    ArchSpec(
        name="a2n",
        cls=A2N,
        defaults={"blocks": 16, "features": 40, "up_features": 24, "channels": 3},
        scales=SCALES,
        convention=RGB255,
        reference=Reference(
            "Chen, Gu, Zhang",
            "Attention in Attention Network for Image Super-Resolution",
            "arXiv:2104.09497",
            2021,
            "https://arxiv.org/abs/2104.09497",
        ),
        published_params={2: 1_036_000, 3: 1_036_000, 4: 1_047_000},
        params_source="A2N paper: 1.04M (x2/x3 1,036K; x4 adds a second upsampling stage)",
        description="attention-in-attention blocks with attention dropout, NN upsampling + PA",
        detector=DETECTOR,
    ),
)
