"""PatchGAN: Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks"
(pix2pix), CVPR 2017 (arXiv:1611.07004), the 70 x 70 discriminator (appendix 6.1.2).

C64-C128-C256-C512 (4 x 4 convolutions; stride 2 but the last, stride 1; batch norm on all but
the first; LeakyReLU 0.2), then a 4 x 4 convolution to one logit per 70 x 70 receptive field, as
the authors' ``NLayerDiscriminator(n_layers=3)``. srkit's is unconditional (3 input channels,
the image only; pix2pix feeds input and output, 6). 2.77M parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from srkit.archs.common import DiscriminatorSpec, Reference


class PatchDiscriminator(nn.Module):
    def __init__(self, features: int = 64, layers: int = 3, channels: int = 3) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"patchgan: layers must be >= 1, got {layers}")
        body: list[nn.Module] = [
            nn.Conv2d(channels, features, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        width = features
        for index in range(1, layers + 1):
            cout = features * min(2**index, 8)
            stride = 2 if index < layers else 1
            body += [
                nn.Conv2d(width, cout, 4, stride, 1, bias=False),
                nn.BatchNorm2d(cout),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            width = cout
        body.append(nn.Conv2d(width, 1, 4, 1, 1))
        self.body = nn.Sequential(*body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


SPECS = (
    DiscriminatorSpec(
        name="patchgan",
        cls=PatchDiscriminator,
        defaults={"features": 64, "layers": 3, "channels": 3},
        reference=Reference(
            "Isola et al.",
            "Image-to-Image Translation with Conditional Adversarial Networks",
            "CVPR",
            2017,
            "https://arxiv.org/abs/1611.07004",
        ),
        description="pix2pix's 70 x 70 PatchGAN: C64-C128-C256-C512, one logit per patch",
        published_params=2_765_633,
        params_source="pix2pix's NLayerDiscriminator (ndf 64, 3 layers, batch norm) counted with "
        "3 input channels; with pix2pix's 6 it is 2,768,705, the 2.769M its code prints",
    ),
)
