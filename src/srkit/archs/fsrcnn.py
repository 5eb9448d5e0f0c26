"""FSRCNN: Dong, Loy, Tang, "Accelerating the Super-Resolution Convolutional Neural Network",
ECCV 2016 (arXiv:1608.00367).

Works on the LR Y channel: feature extraction Conv(5, d), shrinking Conv(1, s), m mapping layers
Conv(3, s), expanding Conv(1, d), each followed by a PReLU, then a 9 x 9 deconvolution with
stride ``scale``. FSRCNN(56, 12, 4) has 12,464 weights (the paper's complexity formula
``d(25 + s + 81) + s(d + 9 m s)``; biases and PReLU slopes not counted).
"""

from __future__ import annotations

import torch
from torch import nn

from srkit.archs.common import check_scale, conv

SCALES = (2, 3, 4)


class FSRCNN(nn.Module):
    def __init__(
        self, scale: int = 3, d: int = 56, s: int = 12, m: int = 4, channels: int = 1
    ) -> None:
        super().__init__()
        check_scale("fsrcnn", scale, SCALES)
        self.scale = scale
        layers: list[nn.Module] = [conv(channels, d, 5), nn.PReLU(d), conv(d, s, 1), nn.PReLU(s)]
        for _ in range(m):
            layers += [conv(s, s, 3), nn.PReLU(s)]
        layers += [conv(s, d, 1), nn.PReLU(d)]
        self.body = nn.Sequential(*layers)
        # output = (H - 1) * scale - 2 * 4 + 9 + (scale - 1) = H * scale
        self.deconv = nn.ConvTranspose2d(
            d, channels, 9, stride=scale, padding=4, output_padding=scale - 1
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.body(x))
