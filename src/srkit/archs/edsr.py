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

from srkit.archs.common import (
    DIV2K_MEAN,
    ArchSpec,
    InputConvention,
    Reference,
    check_scale,
    conv,
    pixel_shuffle_stages,
)
from srkit.archs.detection import Detected, KeyDetector, StateDict, drop, indices, mean_shift

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


# --- the authors' checkpoints ---------------------------------------------------------------


def detect(state: StateDict, where: str) -> Detected | None:
    """The official EDSR / EDSR-baseline files (sanghyun-son/EDSR-PyTorch)."""
    if not {"head.0.weight", "body.0.body.0.weight", "tail.0.0.weight"} <= set(state):
        return None
    features, channels = state["head.0.weight"].shape[:2]
    blocks = len(indices(state, r"body\.(\d+)\.body\.0\.weight"))
    up = state["tail.0.0.weight"].shape[0] // features
    scale = 3 if up == 9 else 4 if "tail.0.2.weight" in state else 2
    value_range, mean = 255.0, DIV2K_MEAN
    if "sub_mean.weight" in state:
        value_range, mean = mean_shift(state, "sub_mean.", -1, where)
    mapped = drop(state, ("sub_mean.", "add_mean."))
    # Residual scaling is not stored in the weights: the paper uses 0.1 for the 256-feature EDSR
    # and none for the 64-feature baseline.
    arch = "edsr" if features == 256 else "edsr_baseline"
    opts = {
        "blocks": blocks,
        "features": int(features),
        "res_scale": 0.1 if features == 256 else 1.0,
        "channels": int(channels),
    }
    conv = InputConvention("rgb", value_range, mean)
    return Detected(arch, opts, scale, (scale,), mapped, conv)


DETECTOR = KeyDetector("edsr", "head.0.weight, body.0.body.0.weight, tail.0.0.weight", detect)

EDSR_CONVENTION = InputConvention("rgb", 255.0, DIV2K_MEAN)

REFERENCE = Reference(
    "Lim, Son, Kim, Nah, Lee",
    "Enhanced Deep Residual Networks for Single Image Super-Resolution",
    "CVPRW",
    2017,
    "https://arxiv.org/abs/1707.02921",
)


SPECS = (
    ArchSpec(
        name="edsr_baseline",
        cls=EDSR,
        defaults={"blocks": 16, "features": 64, "res_scale": 1.0, "channels": 3},
        scales=SCALES,
        convention=EDSR_CONVENTION,
        reference=REFERENCE,
        published_params={2: 1_370_000, 3: 1_550_000, 4: 1_520_000},
        params_source="EDSR-PyTorch README model table (sanghyun-son/EDSR-PyTorch): "
        "EDSR_baseline x2 1.37M, x3 1.55M, x4 1.52M",
        description="EDSR baseline: 16 residual blocks, 64 features, no residual scaling",
        detector=DETECTOR,
    ),
    ArchSpec(
        name="edsr",
        cls=EDSR,
        defaults={"blocks": 32, "features": 256, "res_scale": 0.1, "channels": 3},
        scales=SCALES,
        convention=EDSR_CONVENTION,
        reference=REFERENCE,
        published_params={2: 40_700_000, 3: 43_700_000, 4: 43_100_000},
        params_source="EDSR-PyTorch README model table: EDSR x2 40.7M, x3 43.7M, x4 43.1M "
        "(paper: 43M)",
        description="EDSR: 32 residual blocks, 256 features, residual scaling 0.1",
        detector=DETECTOR,
    ),
)
