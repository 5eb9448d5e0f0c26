"""Real-ESRGAN's U-Net discriminator with spectral normalisation: Wang et al., "Real-ESRGAN:
Training Real-World Blind Super-Resolution with Pure Synthetic Data", ICCV Workshops 2021
(arXiv:2107.10833), section 3.3.

A 3 x 3 input convolution, three 4 x 4 stride-2 convolutions (64 -> 128 -> 256 -> 512), three
bilinear x2 upsamplings each followed by a 3 x 3 convolution with a skip connection from the
encoder, two more 3 x 3 convolutions and a 3 x 3 output to one logit per pixel; LeakyReLU 0.2
throughout, spectral norm on every convolution but the first and the last. Module and parameter
names follow the authors' ``UNetDiscriminatorSN`` (``conv1.weight_orig``, ...). Any input whose
sides are multiples of 8; 4.38M parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from srkit.archs.common import DiscriminatorSpec, Reference


class UNetDiscriminatorSN(nn.Module):
    def __init__(self, features: int = 64, skip_connection: bool = True, channels: int = 3) -> None:
        super().__init__()
        self.skip_connection = skip_connection

        def sn_conv(cin: int, cout: int, k: int, stride: int) -> nn.Module:
            return spectral_norm(nn.Conv2d(cin, cout, k, stride, 1, bias=False))

        f = features
        self.conv0 = nn.Conv2d(channels, f, 3, 1, 1)
        self.conv1 = sn_conv(f, 2 * f, 4, 2)
        self.conv2 = sn_conv(2 * f, 4 * f, 4, 2)
        self.conv3 = sn_conv(4 * f, 8 * f, 4, 2)
        self.conv4 = sn_conv(8 * f, 4 * f, 3, 1)
        self.conv5 = sn_conv(4 * f, 2 * f, 3, 1)
        self.conv6 = sn_conv(2 * f, f, 3, 1)
        self.conv7 = sn_conv(f, f, 3, 1)
        self.conv8 = sn_conv(f, f, 3, 1)
        self.conv9 = nn.Conv2d(f, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % 8 or x.shape[-1] % 8:
            raise ValueError(
                f"unet_sn takes inputs whose sides are multiples of 8, got "
                f"{x.shape[-2]} x {x.shape[-1]}"
            )

        def act(t: torch.Tensor) -> torch.Tensor:
            return F.leaky_relu(t, 0.2)

        def up(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)

        x0 = act(self.conv0(x))
        x1 = act(self.conv1(x0))
        x2 = act(self.conv2(x1))
        x3 = act(self.conv3(x2))
        x4 = act(self.conv4(up(x3)))
        if self.skip_connection:
            x4 = x4 + x2
        x5 = act(self.conv5(up(x4)))
        if self.skip_connection:
            x5 = x5 + x1
        x6 = act(self.conv6(up(x5)))
        if self.skip_connection:
            x6 = x6 + x0
        out = act(self.conv7(x6))
        out = act(self.conv8(out))
        return self.conv9(out)


SPECS = (
    DiscriminatorSpec(
        name="unet_sn",
        cls=UNetDiscriminatorSN,
        defaults={"features": 64, "skip_connection": True, "channels": 3},
        reference=Reference(
            "Wang et al.",
            "Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure Synthetic Data",
            "ICCVW",
            2021,
            "https://arxiv.org/abs/2107.10833",
        ),
        description="Real-ESRGAN's U-Net discriminator with spectral norm, per-pixel logits",
        published_params=4_376_897,
        params_source="the authors' UNetDiscriminatorSN (num_feat 64) layer list counted "
        "(4.38M as commonly cited)",
    ),
)
