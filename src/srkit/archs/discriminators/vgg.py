"""SRGAN's discriminator: Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a
Generative Adversarial Network", CVPR 2017 (arXiv:1609.04802), figure 4.

Eight 3 x 3 convolutions with 64, 64, 128, 128, 256, 256, 512, 512 filters, the even ones with
stride 2 (128 -> 8 pixels), each followed by batch norm (all but the first) and LeakyReLU 0.2;
then dense 1024, LeakyReLU, dense 1. The paper ends with a sigmoid; this module returns the logit
(the adversarial losses take logits). It reads 128 x 128 RGB crops in [0, 1]. The convolutions
followed by batch norm have no bias (it would be cancelled by the norm's mean). 38.2M parameters,
33.6M of them in the first dense layer.
"""

from __future__ import annotations

import torch
from torch import nn

from srkit.archs.common import DiscriminatorSpec, Reference

WIDTHS = (1, 1, 2, 2, 4, 4, 8, 8)  # x features, per convolution; odd positions have stride 2


class SRGANDiscriminator(nn.Module):
    def __init__(
        self, features: int = 64, dense: int = 1024, input_size: int = 128, channels: int = 3
    ) -> None:
        super().__init__()
        if input_size % 16:
            raise ValueError(f"srgan_vgg: input_size must be a multiple of 16, got {input_size}")
        self.input_size = input_size
        layers: list[nn.Module] = []
        cin = channels
        for index, width in enumerate(WIDTHS):
            cout = width * features
            stride = 2 if index % 2 else 1
            if index == 0:
                layers += [nn.Conv2d(cin, cout, 3, stride, 1)]
            else:
                layers += [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)]
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            cin = cout
        self.features = nn.Sequential(*layers)
        side = input_size // 16
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(cin * side * side, dense),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(dense, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            raise ValueError(
                f"srgan_vgg takes {self.input_size} x {self.input_size} inputs, got "
                f"{x.shape[-2]} x {x.shape[-1]} (set its input_size option to the HR patch)"
            )
        return self.classifier(self.features(x))


SPECS = (
    DiscriminatorSpec(
        name="srgan_vgg",
        cls=SRGANDiscriminator,
        defaults={"features": 64, "dense": 1024, "input_size": 128, "channels": 3},
        reference=Reference(
            "Ledig et al.",
            "Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial Network",
            "CVPR",
            2017,
            "https://arxiv.org/abs/1609.04802",
        ),
        description="SRGAN's VGG-style discriminator: 8 convs 64..512 with BN, dense 1024",
        input_size=128,
        published_params=38_243_713,
        params_source="the paper's layer list (figure 4) counted: 4,683,520 in the convolutions "
        "(one bias), 3,712 in batch norms, 33,556,481 in the two dense layers",
    ),
)
