"""PFSRNet: Kim, Kim, Kwon and Kim, "Progressive Face Super-Resolution via Attention to Facial
Landmark", BMVC 2019 (arXiv:1908.08239); the generator. Its progressive discriminator is
:mod:`srkit.archs.discriminators.pfsrnet`.

8x face SR of aligned 16 x 16 crops (CelebA, 178 x 178 centre crops resized to 128) in three
stages, 16 -> 32 -> 64 -> 128. A head (3 x 3 convolution to ``width`` maps, BN, ReLU), then per
stage: ``blocks`` residual blocks (two 3 x 3 equalised-learning-rate convolutions, each followed
by BN and ReLU, plus the skip), and a 4 x 4 stride-2 transposed convolution that doubles the size
and halves the width (+ BN, ReLU). Stage widths ``width``, ``width / 2``, ``width / 4`` (512,
256, 128 in the authors' ``model.py``, github.com/DeokyunKim/Progressive-Face-Super-Resolution);
the three stages end at ``width / 2``, ``/ 4``, ``/ 8`` maps and each has its own 1 x 1 to-RGB
convolution. ``forward(x, stage, alpha)`` runs stages ``1 .. stage`` (output ``2**stage`` times
the input); with ``alpha < 1`` (fade-in while a stage is being grown) the output is
``(1 - alpha) * nearest_x2(previous stage's RGB) + alpha * this stage's RGB``. The defaults
(``stage=3, alpha=1``) give the full 128 x 128 output, which is what the upscaler runs.

At the authors' configuration (``width=512, blocks=1``) this is 8,969,097 parameters, the authors'
``Generator`` counted layer by layer (the same tensor shapes), i.e. the 8.97M of their code; 4.72M
of them are in the first residual block, 2.10M in the first transposed convolution. ``width=64``
(stages of 64 / 32 / 16 maps, :data:`CPU_OPTIONS`) is a CPU-size variant of the same structure
(142,713).

Deviations: the authors train on [-1, 1] images (``Normalize(0.5, 0.5)``); srkit's network reads and
returns RGB in [0, 1], like its other archs. The spec declares the fixed 16 x 16 input
(``InputConvention.input_size``: the upscaler never tiles it and refuses other sizes); the module
itself is fully convolutional and runs on any size. ``task: face`` (:mod:`srkit.faces.task`)
trains it progressively (``face.progressive: [start2, start3]``, ``face.fade``); the facial
attention loss (landmark heatmaps) is a training loss, not part of this module.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from srkit.archs.common import ArchSpec, InputConvention, Reference, check_scale

SCALES = (8,)
STAGES = 3
CPU_OPTIONS = {"width": 64}  # stages of 64 / 32 / 16 maps: 142,713 parameters
FACE_16 = InputConvention("rgb", 1.0, None, input_size=(16, 16))

REFERENCE = Reference(
    "Kim et al.",
    "Progressive Face Super-Resolution via Attention to Facial Landmark",
    "BMVC",
    2019,
    "https://arxiv.org/abs/1908.08239",
)


class EqualizedConv2d(nn.Conv2d):
    """A convolution with the equalised learning rate of progressive GANs (Karras et al. 2018).

    The stored weight is initialised from N(0, 1) (bias 0) and multiplied by He's constant
    ``sqrt(2 / fan_in)`` at every call, so that all layers learn at the same speed under Adam.
    Its parameters are exactly those of ``nn.Conv2d``.
    """

    def __init__(self, cin: int, cout: int, k: int = 3, padding: int | None = None) -> None:
        super().__init__(cin, cout, k, padding=k // 2 if padding is None else padding)
        nn.init.normal_(self.weight)
        nn.init.zeros_(self.bias)
        self.gain = math.sqrt(2.0 / (cin * k * k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.gain, self.bias)


class ResidualBlock(nn.Module):
    """conv-BN-ReLU-conv-BN-ReLU plus the skip (the authors' ``ResBlock``: ReLU before the sum)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            EqualizedConv2d(features, features),
            nn.BatchNorm2d(features),
            nn.ReLU(inplace=True),
            EqualizedConv2d(features, features),
            nn.BatchNorm2d(features),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Stage(nn.Module):
    """``blocks`` residual blocks at ``features`` maps, then a transposed-convolution x2 to
    ``features // 2`` maps (+ BN, ReLU)."""

    def __init__(self, features: int, blocks: int) -> None:
        super().__init__()
        out = features // 2
        self.blocks = nn.Sequential(*(ResidualBlock(features) for _ in range(blocks)))
        self.up = nn.Sequential(
            nn.ConvTranspose2d(features, out, 4, stride=2, padding=1),
            nn.BatchNorm2d(out),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.blocks(x))


def check_stage(name: str, stage: int, alpha: float) -> None:
    if stage not in range(1, STAGES + 1):
        raise ValueError(f"{name}: stage must be 1, 2 or 3, got {stage}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"{name}: alpha must be in [0, 1], got {alpha}")


class PFSRNet(nn.Module):
    progressive_stages = STAGES  # forward(x, stage, alpha) grows the output (task: face)

    def __init__(self, scale: int = 8, width: int = 512, blocks: int = 1, channels: int = 3):
        super().__init__()
        check_scale("pfsrnet", scale, SCALES)
        if width < 8 or width % 8:
            raise ValueError(f"pfsrnet: width must be a positive multiple of 8, got {width}")
        if blocks < 1:
            raise ValueError(f"pfsrnet: blocks must be >= 1, got {blocks}")
        self.scale = scale
        widths = [width >> i for i in range(STAGES + 1)]  # 512, 256, 128, 64
        self.head = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
        )
        self.stages = nn.ModuleList(Stage(widths[i], blocks) for i in range(STAGES))
        self.to_rgb = nn.ModuleList(nn.Conv2d(widths[i + 1], channels, 1) for i in range(STAGES))

    def forward(self, x: torch.Tensor, stage: int = STAGES, alpha: float = 1.0) -> torch.Tensor:
        """Stages ``1 .. stage`` (output ``2**stage`` x the input), the last faded in by
        ``alpha`` over the nearest-neighbour x2 of the previous stage's RGB."""
        check_stage("pfsrnet", stage, alpha)
        previous = self.head(x)
        for index in range(stage - 1):
            previous = self.stages[index](previous)
        rgb = self.to_rgb[stage - 1](self.stages[stage - 1](previous))
        if stage > 1 and alpha < 1.0:
            skip = F.interpolate(self.to_rgb[stage - 2](previous), scale_factor=2, mode="nearest")
            rgb = (1.0 - alpha) * skip + alpha * rgb
        return rgb


SPECS = (
    ArchSpec(
        name="pfsrnet",
        cls=PFSRNet,
        defaults={"width": 512, "blocks": 1, "channels": 3},
        scales=SCALES,
        convention=FACE_16,
        reference=REFERENCE,
        published_params={8: 8_969_097},
        params_source="the authors' model.py Generator (DeokyunKim/Progressive-Face-Super-"
        "Resolution) counted layer by layer: 8.97M",
        description="progressive 8x face SR of 16 x 16 aligned crops: three residual + "
        "transposed-conv stages (512/256/128 ch) with per-stage to-RGB and fade-in",
    ),
)
