"""PFSRNet's progressive discriminator: Kim, Kim, Kwon and Kim, "Progressive Face
Super-Resolution via Attention to Facial Landmark", BMVC 2019 (arXiv:1908.08239); the generator
is :mod:`srkit.archs.pfsrnet`.

It grows with the generator: stage 1 judges 32 x 32 images, stage 2 64 x 64, stage 3 128 x 128.
Per stage a 1 x 1 from-RGB convolution (to ``width / 2``, ``/ 4``, ``/ 8`` maps: 256, 128, 64 in
the authors' ``model.py``) and a down block (two 3 x 3 equalised-learning-rate convolutions with
LeakyReLU 0.2 that double the width, then 2 x 2 average pooling); the image enters at its
stage's from-RGB and goes down through that stage's block and the coarser ones to 16 x 16 x
``width``. While a stage fades in (``alpha < 1``) the block's output is mixed with the coarser
stage's from-RGB of the 2 x 2-average-pooled image, ``(1 - alpha) * skip + alpha * block``. Then
the minibatch standard deviation (one extra map: the mean over features and positions of the
per-feature standard deviation over the batch, as in progressive GANs), a 3 x 3 equalised
convolution ``width + 1 -> width``, global average pooling, dense ``width -> dense -> 1``. The
output is a WGAN-GP critic score per image, shape ``(N, 1)``: no sigmoid.

``forward(x, stage=None, alpha=1.0)``: ``stage`` defaults to the one that reads ``x``'s size
(32, 64 or 128; other sizes are refused), so the plain ``d(x)`` of srkit's GAN task judges
128 x 128 HR crops at the full stage. 8,065,537 parameters at the authors' sizes (width 512,
dense 2048), their layer list counted; ``width=64, dense=256`` (:data:`CPU_OPTIONS`, 127,425
parameters) is a CPU-size variant.

Deviations from the authors' code (none changes a parameter): the minibatch standard deviation
is taken over the 16 x 16 features, as in progressive GANs, where the authors take it over the
input pixels; and a LeakyReLU 0.2 follows the last convolution and the first dense layer, where
the authors' two dense layers follow each other without one (a single linear map).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from srkit.archs.common import DiscriminatorSpec
from srkit.archs.pfsrnet import REFERENCE, STAGES, EqualizedConv2d, check_stage

CPU_OPTIONS = {"width": 64, "dense": 256}  # 127,425 parameters
SIDES = {16 * 2**stage: stage for stage in range(1, STAGES + 1)}  # 32: 1, 64: 2, 128: 3


class DownBlock(nn.Module):
    """Two 3 x 3 equalised convolutions (``cin -> cout -> cout``, LeakyReLU 0.2), average pool 2."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            EqualizedConv2d(cin, cout),
            nn.LeakyReLU(0.2),
            EqualizedConv2d(cout, cout),
            nn.LeakyReLU(0.2),
            nn.AvgPool2d(2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def minibatch_stddev(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``x`` with one more channel: the batch standard deviation averaged over all features."""
    std = torch.sqrt(x.var(dim=0, unbiased=False) + eps).mean()
    return torch.cat([x, std.expand(x.shape[0], 1, *x.shape[2:])], dim=1)


class PFSRDiscriminator(nn.Module):
    def __init__(self, width: int = 512, dense: int = 2048, channels: int = 3) -> None:
        super().__init__()
        if width < 8 or width % 8:
            raise ValueError(f"pfsrnet_d: width must be a positive multiple of 8, got {width}")
        widths = [width >> i for i in range(STAGES + 1)]  # 512, 256, 128, 64
        self.from_rgb = nn.ModuleList(nn.Conv2d(channels, widths[i + 1], 1) for i in range(STAGES))
        self.blocks = nn.ModuleList(DownBlock(widths[i + 1], widths[i]) for i in range(STAGES))
        self.final = nn.Sequential(EqualizedConv2d(width + 1, width), nn.LeakyReLU(0.2))
        self.classifier = nn.Sequential(
            nn.Linear(width, dense), nn.LeakyReLU(0.2), nn.Linear(dense, 1)
        )

    def forward(
        self, x: torch.Tensor, stage: int | None = None, alpha: float = 1.0
    ) -> torch.Tensor:
        height, width = x.shape[-2:]
        if height != width or height not in SIDES:
            raise ValueError(
                f"pfsrnet_d takes 32 x 32, 64 x 64 or 128 x 128 images (stages 1, 2, 3), got "
                f"{height} x {width}"
            )
        if stage is None:
            stage = SIDES[height]
        check_stage("pfsrnet_d", stage, alpha)
        if SIDES[height] != stage:
            side = 16 * 2**stage
            got = f"{height} x {width}"
            raise ValueError(f"pfsrnet_d: stage {stage} reads {side} x {side} images, got {got}")
        h = self.blocks[stage - 1](self.from_rgb[stage - 1](x))
        if stage > 1 and alpha < 1.0:
            skip = self.from_rgb[stage - 2](F.avg_pool2d(x, 2))
            h = (1.0 - alpha) * skip + alpha * h
        for index in reversed(range(stage - 1)):
            h = self.blocks[index](h)
        h = self.final(minibatch_stddev(h))
        return self.classifier(h.mean(dim=(2, 3)))


SPECS = (
    DiscriminatorSpec(
        name="pfsrnet_d",
        cls=PFSRDiscriminator,
        defaults={"width": 512, "dense": 2048, "channels": 3},
        reference=REFERENCE,
        description="PFSRNet's progressive critic: per-stage from-RGB, down blocks 64..512, "
        "minibatch stddev, fade-in; 32/64/128 inputs, WGAN-GP score (no sigmoid)",
        input_size=128,
        published_params=8_065_537,
        params_source="the authors' model.py Discriminator (DeokyunKim/Progressive-Face-Super-"
        "Resolution) counted layer by layer: 1,792 from-RGB, 4,646,656 down blocks, 2,364,416 "
        "last convolution, 1,052,673 dense",
    ),
)
