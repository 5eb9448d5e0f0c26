"""RLFN: Kong, Li, Liu, Wang, Wang, Shi, "Residual Local Feature Network for Efficient
Super-Resolution", CVPR Workshops 2022 (arXiv:2205.07514).

6 residual local feature blocks: three 3 x 3 convs with leaky ReLU (0.05) and a local skip, a
1 x 1 conv, and enhanced spatial attention (ESA: 1 x 1 reduction to 16 channels, strided 3 x 3
conv, 7 x 7 / 3 max pooling, 3 x 3 conv, bilinear upsampling back, plus a 1 x 1 branch, 1 x 1
expansion, sigmoid gate). A 3 x 3 conv with a long skip and a pixel-shuffle upsampler. RLFN uses
52 features, RLFN-S 48. RGB in [0, 255] for the released weights (they only reproduce the paper
in that range). Inputs must be at least 15 x 15 (ESA's strided conv + 7 x 7
pooling). 527K / 543K (RLFN x2 / x4), 302K / 317K (RLFN-S x2 / x4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from srkit.archs.common import RGB255, ArchSpec, Reference, check_scale, conv
from srkit.archs.detection import Detected, KeyDetector, StateDict, indices, rename, shuffle_scale

SCALES = (2, 3, 4)


class ESA(nn.Module):
    def __init__(self, features: int, esa_channels: int = 16) -> None:
        super().__init__()
        f = esa_channels
        self.conv1 = nn.Conv2d(features, f, 1)
        self.conv_f = nn.Conv2d(f, f, 1)
        self.conv2 = nn.Conv2d(f, f, 3, stride=2, padding=0)
        self.conv3 = nn.Conv2d(f, f, 3, padding=1)
        self.conv4 = nn.Conv2d(f, features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < 15:
            size = tuple(x.shape[-2:])
            raise ValueError(f"RLFN's spatial attention needs inputs >= 15 x 15, got {size}")
        c1 = self.conv1(x)
        m = F.max_pool2d(self.conv2(c1), kernel_size=7, stride=3)
        m = F.interpolate(self.conv3(m), size=x.shape[2:], mode="bilinear", align_corners=False)
        return x * torch.sigmoid(self.conv4(m + self.conv_f(c1)))


class RLFB(nn.Module):
    def __init__(self, features: int, esa_channels: int = 16) -> None:
        super().__init__()
        self.c1_r = conv(features, features)
        self.c2_r = conv(features, features)
        self.c3_r = conv(features, features)
        self.c5 = conv(features, features, 1)
        self.esa = ESA(features, esa_channels)
        self.act = nn.LeakyReLU(0.05, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.c1_r(x))
        out = self.act(self.c2_r(out))
        out = self.act(self.c3_r(out))
        return self.esa(self.c5(out + x))


class RLFN(nn.Module):
    def __init__(
        self,
        scale: int = 4,
        blocks: int = 6,
        features: int = 52,
        esa_channels: int = 16,
        channels: int = 3,
    ) -> None:
        super().__init__()
        check_scale("rlfn", scale, SCALES)
        self.scale = scale
        self.conv_1 = conv(channels, features)
        self.blocks = nn.ModuleList(RLFB(features, esa_channels) for _ in range(blocks))
        self.conv_2 = conv(features, features)
        self.upsampler = nn.Sequential(
            conv(features, channels * scale * scale), nn.PixelShuffle(scale)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fea = self.conv_1(x)
        h = fea
        for block in self.blocks:
            h = block(h)
        return self.upsampler(self.conv_2(h) + fea)


# --- the authors' checkpoints ---------------------------------------------------------------


def detect(state: StateDict, where: str) -> Detected | None:
    """The authors' RLFN / RLFN-S files (bytedance/RLFN): ``block_1..``, ``conv_1``, ESA."""
    if "conv_1.weight" not in state or "block_1.esa.conv_f.weight" not in state:
        return None
    features, channels = state["conv_1.weight"].shape[:2]
    blocks = len(indices(state, r"block_(\d+)\."))
    esa = int(state["block_1.esa.conv1.weight"].shape[0])
    scale = shuffle_scale(state["upsampler.0.weight"].shape[0], channels, where)
    mapped = rename(state, [(r"^block_(\d+)\.", lambda m: f"blocks.{int(m.group(1)) - 1}.")])
    arch = "rlfn_s" if features == 48 else "rlfn"
    opts = {"blocks": blocks, "features": int(features), "esa_channels": esa}
    opts["channels"] = int(channels)
    # The released RLFN files reproduce the paper with inputs in [0, 255] (see the README of the
    # shared weights); the repo's demo feeds [0, 1].
    return Detected(arch, opts, scale, (scale,), mapped, RGB255)


DETECTOR = KeyDetector("rlfn", "conv_1.weight, block_1.esa.conv_f.weight", detect)

REFERENCE = Reference(
    "Kong, Li, Liu, Wang, Wang, Shi",
    "Residual Local Feature Network for Efficient Super-Resolution",
    "CVPRW",
    2022,
    "https://arxiv.org/abs/2205.07514",
)


SPECS = (
    ArchSpec(
        name="rlfn",
        cls=RLFN,
        defaults={"blocks": 6, "features": 52, "esa_channels": 16, "channels": 3},
        scales=SCALES,
        convention=RGB255,
        reference=REFERENCE,
        published_params={2: 527_000, 4: 543_000},
        params_source="RLFN paper, comparison table: RLFN 527K (x2), 543K (x4); the released "
        "rlfn_x2.pth / rlfn_x4.pth hold 526,856 / 543,740",
        description="6 residual local feature blocks with enhanced spatial attention (52 ch)",
        detector=DETECTOR,
    ),
    ArchSpec(
        name="rlfn_s",
        cls=RLFN,
        defaults={"blocks": 6, "features": 48, "esa_channels": 16, "channels": 3},
        scales=SCALES,
        convention=RGB255,
        reference=REFERENCE,
        published_params={2: 454_620, 4: 470_208},
        params_source="tensor count of the authors' released RLFN-S checkpoints "
        "(bytedance/RLFN model_zoo/rlfn_s_x2.pth, rlfn_s_x4.pth); no per-scale figure found "
        "in the paper",
        description="RLFN-S: the 48-channel RLFN",
        detector=DETECTOR,
    ),
)
