"""RepAN: srkit's flagship efficient SR network (Re-Parameterised self-gated Attention Network).

Our own design, learning from four papers:

* RLFN (Kong et al., CVPRW 2022, arXiv:2205.07514): few, plain 3x3 convolutions in residual
  blocks beat heavier feature-distillation designs on real hardware;
* IMDN (Hui et al., ACM MM 2019, arXiv:1909.11856): fuse early and late features with a 1x1
  convolution before the reconstruction;
* ECBSR (Zhang et al., ACM MM 2021) and RepVGG (Ding et al., CVPR 2021): train with extra
  linear branches, infer with one convolution (structural re-parameterisation);
* SPAN (Wan et al., CVPRW 2024, arXiv:2405.00706): parameter-free attention computed from the
  block's own features, no extra layers.

Layout (``features`` = 48, ``blocks`` = 6): a 3x3 head; ``blocks`` residual blocks, each two
re-parameterisable 3x3 convolutions with a LeakyReLU between and a parameter-free self-gate
``h * sigmoid(h)`` on the residual; a 1x1 fusion of the head and body features; a 3x3 tail with a
long skip; a 3x3 convolution to ``3 * scale^2`` channels plus the LR image repeated ``scale^2``
times (a nearest-neighbour anchor, so the network learns only the residual); pixel shuffle.

Every layer of the deployed network is a plain 3x3 (or 1x1) convolution, which oneDNN, ONNX
Runtime and OpenVINO run at full speed. RGB in [0, 1]. About 0.28M parameters at x2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from srkit.archs.common import RGB01, ArchSpec, Reference, check_scale

SCALES = (2, 3, 4)


class RepConv3x3(nn.Conv2d):
    """A 3x3 convolution trained with a parallel 1x1 branch, fused into one 3x3 for inference.

    Both branches are linear, so the forward pass convolves once with ``w3 + pad(w1)``: the
    training cost is one convolution, only the parameterisation (and thus the optimisation)
    differs. The 1x1 branch starts at zero so that weights transferred from a fused network
    (e.g. x2 -> x4 initialisation) reproduce it exactly.
    """

    def __init__(self, cin: int, cout: int, fused: bool = False) -> None:
        super().__init__(cin, cout, 3, padding=1)  # a Conv2d: MAC counters and exporters see it
        self.fused = fused
        if not fused:
            self.weight_1x1 = nn.Parameter(torch.zeros(cout, cin, 1, 1))
            self.bias_1x1 = nn.Parameter(torch.zeros(cout))

    def merged(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.fused:
            return self.weight, self.bias
        return self.weight + F.pad(self.weight_1x1, (1, 1, 1, 1)), self.bias + self.bias_1x1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.merged()
        return F.conv2d(x, weight, bias, padding=1)

    @torch.no_grad()
    def fuse(self) -> None:
        if self.fused:
            return
        weight, bias = self.merged()
        self.weight.copy_(weight)
        self.bias.copy_(bias)
        del self.weight_1x1, self.bias_1x1
        self.fused = True


def fuse_all(net: nn.Module) -> nn.Module:
    """Fuse every :class:`RepConv3x3` of ``net`` in place; returns ``net``."""
    for module in net.modules():
        if isinstance(module, RepConv3x3):
            module.fuse()
    return net


class GatedBlock(nn.Module):
    """x + g(h), h = conv(lrelu(conv(x))), g(h) = h * sigmoid(h): the gate is parameter-free."""

    def __init__(self, features: int, fused: bool) -> None:
        super().__init__()
        self.conv1 = RepConv3x3(features, features, fused)
        self.conv2 = RepConv3x3(features, features, fused)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.leaky_relu(self.conv1(x), 0.05))
        return x + h * torch.sigmoid(h)


class RepAN(nn.Module):
    def __init__(
        self,
        scale: int = 4,
        features: int = 48,
        blocks: int = 6,
        channels: int = 3,
        fused: bool = False,
    ) -> None:
        super().__init__()
        check_scale("repan", scale, SCALES)
        self.scale = scale
        self.channels = channels
        self.head = RepConv3x3(channels, features, fused)
        self.body = nn.Sequential(*(GatedBlock(features, fused) for _ in range(blocks)))
        self.fusion = nn.Conv2d(2 * features, features, 1)
        self.tail = RepConv3x3(features, features, fused)
        self.upsample = RepConv3x3(features, channels * scale * scale, fused)
        self.shuffle = nn.PixelShuffle(scale)

    @property
    def fused(self) -> bool:
        return self.head.fused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.head(x)
        body = self.fusion(torch.cat([feat, self.body(feat)], dim=1))
        out = self.upsample(self.tail(body) + feat)
        anchor = x.repeat_interleave(self.scale * self.scale, dim=1)
        return self.shuffle(out + anchor)

    def fuse(self) -> RepAN:
        """Fold the training branches into plain convolutions (in place; same outputs)."""
        return fuse_all(self)


class RepANPair(nn.Module):
    """Two RepAN networks on the same input, their outputs blended: ``(1 - mix) * first(x) +
    mix * second(x)``.

    This is ESRGAN's image interpolation (Wang et al., ECCV Workshops 2018, arXiv:1809.00219,
    section 3.4): a GAN-trained network (``first``) pulled toward the PSNR-trained network it was
    fine-tuned from (``second``) in pixel space, where network interpolation blends the weights
    into one network instead. It costs two networks' compute; both keep their own texture and
    smoothness, where a weight blend of a short fine-tune averages the two into one network that
    has less of either. Written by an image-space blend stage of a recipe
    (:mod:`srkit.train.blend`), never trained. RGB in [0, 1].
    """

    def __init__(
        self,
        scale: int = 4,
        features: int = 48,
        blocks: int = 6,
        channels: int = 3,
        fused: bool = False,
        mix: float = 0.5,
    ) -> None:
        super().__init__()
        if not 0.0 <= float(mix) <= 1.0:
            raise ValueError(f"repan_pair: mix must be in [0, 1], got {mix}")
        self.scale = scale
        self.mix = float(mix)
        self.first = RepAN(scale, features, blocks, channels, fused)
        self.second = RepAN(scale, features, blocks, channels, fused)

    @property
    def fused(self) -> bool:
        return self.first.fused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (1.0 - self.mix) * self.first(x) + self.mix * self.second(x)

    def fuse(self) -> RepANPair:
        """Fold the training branches into plain convolutions (in place; same outputs)."""
        return fuse_all(self)


FACE_SCALES = (2, 4, 8)


class UpStage(nn.Module):
    """x2: a re-parameterisable 3x3 to ``4 * cout`` channels, pixel shuffle, LeakyReLU, then a
    gated block at the new resolution (detail is drawn there, not in the LR trunk alone)."""

    def __init__(self, cin: int, cout: int, fused: bool) -> None:
        super().__init__()
        self.expand = RepConv3x3(cin, 4 * cout, fused)
        self.shuffle = nn.PixelShuffle(2)
        self.block = GatedBlock(cout, fused)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(F.leaky_relu(self.shuffle(self.expand(x)), 0.05))


class RepANFace(nn.Module):
    """RepAN for aligned faces at x2/x4/x8 (srkit's own): the RepAN trunk at LR, then one
    :class:`UpStage` per factor of 2, a 3x3 to RGB and a
    bilinear anchor of the LR, so the network learns the residual. A whole 16x16 face is
    inside the trunk's receptive field, so the upsampling stages spend their convolutions on
    drawing detail at 32, 64 and 128 pixels, where a single pixel shuffle (RepAN) cannot.
    ``up_features`` are the widths of the x2 stages of an x8 network, the last one at full
    resolution; an x4 network uses the last two, an x2 the last one (the cost of a stage grows
    with its resolution, so the width shrinks as it does). Plain 3x3/1x1 convolutions after
    :meth:`fuse`. RGB in [0, 1]; any input size.
    """

    def __init__(
        self,
        scale: int = 8,
        features: int = 48,
        blocks: int = 6,
        up_features: tuple[int, ...] | list[int] = (32, 24, 16),
        channels: int = 3,
        fused: bool = False,
    ) -> None:
        super().__init__()
        check_scale("repan_face", scale, FACE_SCALES)
        self.scale = scale
        self.head = RepConv3x3(channels, features, fused)
        self.body = nn.Sequential(*(GatedBlock(features, fused) for _ in range(blocks)))
        self.fusion = nn.Conv2d(2 * features, features, 1)
        octaves = scale.bit_length() - 1
        widths = [int(w) for w in up_features][-octaves:]
        if len(widths) != octaves or min(widths) < 1:
            raise ValueError(f"repan_face x{scale}: up_features needs {octaves} widths >= 1")
        stages, cin = [], features
        for width in widths:
            stages.append(UpStage(cin, width, fused))
            cin = width
        self.up = nn.Sequential(*stages)
        self.to_rgb = RepConv3x3(cin, channels, fused)

    @property
    def fused(self) -> bool:
        return self.head.fused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.head(x)
        body = self.fusion(torch.cat([feat, self.body(feat)], dim=1)) + feat
        anchor = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return self.to_rgb(self.up(body)) + anchor

    def fuse(self) -> RepANFace:
        """Fold the training branches into plain convolutions (in place; same outputs)."""
        return fuse_all(self)


SPECS = (
    ArchSpec(
        name="repan",
        cls=RepAN,
        defaults={"features": 48, "blocks": 6, "channels": 3, "fused": False},
        scales=SCALES,
        convention=RGB01,
        reference=Reference(
            "srkit",
            "RepAN: re-parameterised self-gated attention network (srkit's flagship)",
            "srkit",
            2026,
        ),
        published_params={2: 281_388, 3: 287_883, 4: 296_976},
        params_source="srkit's own design (src/srkit/archs/repan.py), counted in the fused "
        "inference form it ships in; training adds zero-initialised 1x1 branches (+11%)",
        paper_options={"fused": True},
        description="srkit's flagship: 6 gated residual blocks of re-parameterisable 3x3 "
        "convolutions (48 ch), fused to plain convolutions for inference",
        image_blend="repan_pair",
    ),
    ArchSpec(
        name="repan_pair",
        cls=RepANPair,
        defaults={"features": 48, "blocks": 6, "channels": 3, "fused": False, "mix": 0.5},
        scales=SCALES,
        convention=RGB01,
        reference=Reference(
            "Wang et al.",
            "ESRGAN (image interpolation, section 3.4), applied to two RepAN networks",
            "ECCV Workshops",
            2018,
            "https://arxiv.org/abs/1809.00219",
        ),
        published_params={2: 2 * 281_388, 3: 2 * 287_883, 4: 2 * 296_976},
        params_source="two fused RepAN networks (src/srkit/archs/repan.py)",
        paper_options={"fused": True},
        description="two RepAN networks whose outputs are blended (a perceptual model and the "
        "PSNR model it was fine-tuned from), written by an image-space blend stage",
    ),
    ArchSpec(
        name="repan_face",
        cls=RepANFace,
        defaults={
            "features": 48,
            "blocks": 6,
            "up_features": [32, 24, 16],
            "channels": 3,
            "fused": False,
        },
        scales=FACE_SCALES,
        convention=RGB01,
        reference=Reference(
            "srkit",
            "RepAN-Face: RepAN's trunk with one gated x2 stage per octave, for aligned faces",
            "srkit",
            2026,
        ),
        published_params={2: 288_195, 4: 326_355, 8: 386_451},
        params_source="srkit's own design (src/srkit/archs/repan.py), counted in the fused "
        "inference form it ships in",
        paper_options={"fused": True},
        description="srkit's face network: RepAN trunk (6 gated blocks, 48 ch) at LR, then a "
        "gated x2 stage per octave (32/24/16 ch), fused to plain convolutions for inference",
    ),
)
