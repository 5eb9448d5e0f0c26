"""SRResNet: Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network", CVPR 2017 (arXiv:1609.04802); the SRGAN generator.

9 x 9 head convolution (64 filters) + PReLU; 16 residual blocks (conv-BN-PReLU-conv-BN + skip);
conv-BN with a long skip; pixel-shuffle upsampling blocks (conv to 256 maps, shuffle x2, PReLU;
two for x4); 9 x 9 output convolution. RGB in [0, 1] in and out (the paper scales its HR
targets to [-1, 1]; srkit keeps [0, 1]). About 1.5M parameters at x4.
"""

from __future__ import annotations

import torch
from torch import nn

from srkit.archs.common import RGB01, ArchSpec, Reference, check_scale, conv, pixel_shuffle_stages

SCALES = (2, 3, 4, 8)


class ResidualBlockBN(nn.Module):
    def __init__(self, features: int, batch_norm: bool = True) -> None:
        super().__init__()
        norm = (lambda: nn.BatchNorm2d(features)) if batch_norm else nn.Identity
        self.body = nn.Sequential(
            conv(features, features), norm(), nn.PReLU(), conv(features, features), norm()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    def __init__(
        self,
        scale: int = 4,
        blocks: int = 16,
        features: int = 64,
        batch_norm: bool = True,
        channels: int = 3,
    ) -> None:
        super().__init__()
        check_scale("srresnet", scale, SCALES)
        self.scale = scale
        self.head = nn.Sequential(conv(channels, features, 9), nn.PReLU())
        self.body = nn.Sequential(*(ResidualBlockBN(features, batch_norm) for _ in range(blocks)))
        self.body_tail = nn.Sequential(
            conv(features, features),
            nn.BatchNorm2d(features) if batch_norm else nn.Identity(),
        )
        ups: list[nn.Module] = []
        for s in pixel_shuffle_stages(scale):
            ups += [conv(features, features * s * s), nn.PixelShuffle(s), nn.PReLU()]
        self.upsample = nn.Sequential(*ups)
        self.tail = conv(features, channels, 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        h = h + self.body_tail(self.body(h))
        return self.tail(self.upsample(h))


SPECS = (
    ArchSpec(
        name="srresnet",
        cls=SRResNet,
        defaults={"blocks": 16, "features": 64, "batch_norm": True, "channels": 3},
        scales=SCALES,
        convention=RGB01,
        reference=Reference(
            "Ledig et al.",
            "Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial Network",
            "CVPR",
            2017,
            "https://arxiv.org/abs/1609.04802",
        ),
        published_params={4: 1_550_000},
        params_source="SRGAN generator (16 blocks, BN) x4: commonly cited as 1.5M; taken as "
        "1.55M (3 significant figures) for the 2% check; the paper prints no count",
        description="SRGAN generator: 16 residual blocks with BN, pixel-shuffle upsampling",
    ),
)
