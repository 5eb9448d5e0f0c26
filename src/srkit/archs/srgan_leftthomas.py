"""The SRGAN generator of leftthomas/SRGAN (github.com/leftthomas/SRGAN), the most used PyTorch
SRGAN, after Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network", CVPR 2017 (arXiv:1609.04802).

A smaller SRResNet: 9 x 9 head convolution (64 filters) + PReLU; 5 residual blocks
(conv-BN-PReLU-conv-BN + skip); a 3 x 3 convolution + PReLU (the repository's older model.py,
whose ``netG_epoch_4_100.pth`` is released; its later model.py puts batch norm there:
``tail_bn``) added to the head's output; pixel-shuffle x2 blocks (conv to 256 maps, shuffle,
PReLU); a 9 x 9 output convolution and ``(tanh(x) + 1) / 2``. RGB in [0, 1] in and out.
0.73M parameters at x4. It differs from :mod:`srkit.archs.srresnet` (16 blocks, batch norm and no
activation after the body, a linear output), so its own module; the detector reads the
authors' key names (``block1.0.weight``, ``block8.0.conv.weight``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from srkit.archs.common import RGB01, ArchSpec, Reference, check_scale, conv
from srkit.archs.detection import Detected, DetectionError, KeyDetector, StateDict, indices

SCALES = (2, 4, 8)


class ResidualBlock(nn.Module):
    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = conv(features, features)
        self.bn1 = nn.BatchNorm2d(features)
        self.prelu = nn.PReLU()
        self.conv2 = conv(features, features)
        self.bn2 = nn.BatchNorm2d(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn2(self.conv2(self.prelu(self.bn1(self.conv1(x)))))


class UpsampleBlock(nn.Module):
    def __init__(self, features: int, factor: int = 2) -> None:
        super().__init__()
        self.conv = conv(features, features * factor * factor)
        self.pixel_shuffle = nn.PixelShuffle(factor)
        self.prelu = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prelu(self.pixel_shuffle(self.conv(x)))


class SRGANLeftthomas(nn.Module):
    def __init__(
        self, scale: int = 4, blocks: int = 5, features: int = 64, tail_bn: bool = False
    ) -> None:
        super().__init__()
        check_scale("srgan_leftthomas", scale, SCALES)
        self.scale = scale
        self.head = nn.Sequential(conv(3, features, 9), nn.PReLU())
        self.body = nn.Sequential(*(ResidualBlock(features) for _ in range(blocks)))
        self.body_tail = nn.Sequential(
            conv(features, features), nn.BatchNorm2d(features) if tail_bn else nn.PReLU()
        )
        stages = int(math.log2(scale))
        self.upsample = nn.Sequential(*(UpsampleBlock(features) for _ in range(stages)))
        self.tail = conv(features, 3, 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        h = h + self.body_tail(self.body(h))
        return (torch.tanh(self.tail(self.upsample(h))) + 1) / 2


# --- the authors' checkpoints ---------------------------------------------------------------


def detect(state: StateDict, where: str) -> Detected | None:
    """leftthomas/SRGAN's ``netG``: ``block1`` head, ``block2..`` residual blocks, the body's
    last conv, then ``block<N>`` = upsamplers + output conv."""
    if "block1.0.weight" not in state or "block1.1.weight" not in state:
        return None
    residual = indices(state, r"block(\d+)\.conv1\.weight$")
    if not residual:
        return None
    blocks = len(residual)
    if residual != list(range(2, blocks + 2)):
        raise DetectionError(
            f"{where}: residual blocks {residual} are not block2..block{blocks + 1}"
        )
    tail, last = f"block{blocks + 2}", f"block{blocks + 3}"
    stages = indices(state, rf"{last}\.(\d+)\.conv\.weight$")
    if f"{tail}.0.weight" not in state or not stages:
        return None
    upsampler = state[f"{last}.0.conv.weight"]
    features = int(state["block1.0.weight"].shape[0])
    if upsampler.shape[0] != 4 * features:
        raise DetectionError(
            f"{where}: upsamplers have {upsampler.shape[0]} output channels, srkit reads x2 "
            f"pixel-shuffle stages ({4 * features})"
        )
    out = len(stages)
    rules: dict[str, str] = {"block1.": "head."}
    for i, index in enumerate(residual):
        rules[f"block{index}."] = f"body.{i}."
    rules[f"{tail}."] = "body_tail."
    for stage in range(out):
        rules[f"{last}.{stage}."] = f"upsample.{stage}."
    rules[f"{last}.{out}."] = "tail."
    mapped: StateDict = {}
    for key, value in state.items():
        prefix = next((p for p in rules if key.startswith(p)), None)
        mapped[rules[prefix] + key[len(prefix) :] if prefix else key] = value
    for key in [k for k in mapped if k.endswith(".running_mean")]:
        # files from torch < 0.4.1 have no batch-norm step counter (unused in eval mode)
        counter = key.replace(".running_mean", ".num_batches_tracked")
        mapped.setdefault(counter, torch.tensor(0, dtype=torch.long))
    scale = 2**out
    if scale not in SCALES:
        raise DetectionError(f"{where}: {out} x2 upsamplers (x{scale}); srkit reads x2, x4, x8")
    options = {
        "blocks": blocks,
        "features": features,
        "tail_bn": f"{tail}.1.running_mean" in state,
    }
    return Detected("srgan_leftthomas", options, scale, (scale,), mapped, RGB01)


DETECTOR = KeyDetector(
    "srgan_leftthomas", "block1.0.weight, block2.conv1.weight, block8.0.conv.weight", detect
)

SPECS = (
    ArchSpec(
        name="srgan_leftthomas",
        cls=SRGANLeftthomas,
        defaults={"blocks": 5, "features": 64, "tail_bn": False},
        scales=SCALES,
        convention=RGB01,
        reference=Reference(
            "Ledig et al.",
            "Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial Network",
            "CVPR",
            2017,
            "https://arxiv.org/abs/1609.04802",
        ),
        published_params={4: 734_092},
        params_source="leftthomas/SRGAN's released netG_epoch_4_100.pth (x4): 734,092 parameters "
        "in the file (0.74M); the paper's SRResNet is larger (srresnet)",
        description="leftthomas/SRGAN generator: 5 residual blocks with BN, tanh output",
        detector=DETECTOR,
    ),
)
