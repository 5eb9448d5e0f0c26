"""SRDenseNet: Tong, Li, Liu, Gao, "Image Super-Resolution Using Dense Skip Connections",
ICCV 2017.

The SRDenseNet_All variant on the Y channel: a 3 x 3 low-level convolution (128 filters), 8 dense
blocks of 8 convolutions with growth rate 16 (each block emits 8 x 16 = 128 maps), dense skip
connections (each block sees the low-level features and the outputs of all earlier blocks, and
all of them feed a 1 x 1 bottleneck to 256 maps), two stride-2 deconvolutions (256 maps) for x4
and a 3 x 3 reconstruction convolution. Inside a block the first layer reads the block input and
every later layer the concatenation of the block's earlier layers, the wiring of the public
reference implementation that matches the ~2.0M parameters reported for SRDenseNet.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from srkit.archs.common import Y01, ArchSpec, Reference, check_scale, conv

SCALES = (2, 4, 8)


class DenseBlock(nn.Module):
    def __init__(self, cin: int, layers: int, growth: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            conv(cin if i == 0 else i * growth, growth) for i in range(layers)
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [self.act(self.convs[0](x))]
        for layer in self.convs[1:]:
            outs.append(self.act(layer(torch.cat(outs, 1))))
        return torch.cat(outs, 1)


class SRDenseNet(nn.Module):
    def __init__(
        self,
        scale: int = 4,
        blocks: int = 8,
        layers: int = 8,
        growth: int = 16,
        features: int = 128,
        bottleneck: int = 256,
        channels: int = 1,
    ) -> None:
        super().__init__()
        check_scale("srdensenet", scale, SCALES)
        self.scale = scale
        self.head = nn.Sequential(conv(channels, features), nn.ReLU(inplace=True))
        width = layers * growth
        self.blocks = nn.ModuleList(
            DenseBlock(features + b * width, layers, growth) for b in range(blocks)
        )
        self.bottleneck = nn.Sequential(
            conv(features + blocks * width, bottleneck, 1), nn.ReLU(inplace=True)
        )
        ups: list[nn.Module] = []
        for _ in range(int(math.log2(scale))):
            ups += [
                nn.ConvTranspose2d(bottleneck, bottleneck, 2, stride=2, bias=False),
                nn.ReLU(inplace=True),
            ]
        self.upsample = nn.Sequential(*ups)
        self.tail = conv(bottleneck, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [self.head(x)]
        for block in self.blocks:
            feats.append(block(torch.cat(feats, 1)))
        x = self.bottleneck(torch.cat(feats, 1))
        return self.tail(self.upsample(x))


SPECS = (
    ArchSpec(
        name="srdensenet",
        cls=SRDenseNet,
        defaults={
            "blocks": 8,
            "layers": 8,
            "growth": 16,
            "features": 128,
            "bottleneck": 256,
            "channels": 1,
        },
        scales=SCALES,
        convention=Y01,
        reference=Reference(
            "Tong, Li, Liu, Gao",
            "Image Super-Resolution Using Dense Skip Connections",
            "ICCV",
            2017,
        ),
        published_params={4: 2_000_000},
        params_source="~2.0M, the figure given for SRDenseNet (x4) in later comparisons; the "
        "paper itself gives the layer configuration only",
        description="8 dense blocks (8 layers, growth 16) with dense skips, bottleneck, deconvs",
    ),
)
