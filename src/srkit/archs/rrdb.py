"""RRDBNet: Wang et al., "ESRGAN: Enhanced Super-Resolution Generative Adversarial Networks",
ECCV Workshops 2018 (arXiv:1809.00219).

23 residual-in-residual dense blocks (each three 5-layer residual dense blocks with growth 32,
residual scaling 0.2, leaky ReLU 0.2), a trunk convolution with a long skip, then two
nearest-neighbour x2 upsamplings each followed by a 3 x 3 conv, an HR conv and the output conv.
RGB in [0, 1]; 16.7M parameters. x2 follows BasicSR/Real-ESRGAN: the input is pixel-unshuffled
by 2 first (12 input channels; odd sizes are reflect-padded) and the x4 body is reused.
Module names follow BasicSR.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from srkit.archs.common import RGB01, ArchSpec, Reference, check_scale, conv
from srkit.archs.detection import Detected, DetectionError, KeyDetector, StateDict, indices, rename

SCALES = (2, 4)


class ResidualDenseBlock(nn.Module):
    def __init__(self, features: int = 64, growth: int = 32) -> None:
        super().__init__()
        self.conv1 = conv(features, growth)
        self.conv2 = conv(features + growth, growth)
        self.conv3 = conv(features + 2 * growth, growth)
        self.conv4 = conv(features + 3 * growth, growth)
        self.conv5 = conv(features + 4 * growth, features)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x + 0.2 * x5


class RRDB(nn.Module):
    def __init__(self, features: int, growth: int) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(features, growth)
        self.rdb2 = ResidualDenseBlock(features, growth)
        self.rdb3 = ResidualDenseBlock(features, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.2 * self.rdb3(self.rdb2(self.rdb1(x)))


class RRDBNet(nn.Module):
    def __init__(
        self,
        scale: int = 4,
        blocks: int = 23,
        features: int = 64,
        growth: int = 32,
        channels: int = 3,
    ) -> None:
        super().__init__()
        check_scale("rrdb", scale, SCALES)
        self.scale = scale
        in_ch = channels * (4 if scale == 2 else 1)
        self.conv_first = conv(in_ch, features)
        self.body = nn.Sequential(*(RRDB(features, growth) for _ in range(blocks)))
        self.conv_body = conv(features, features)
        self.conv_up1 = conv(features, features)
        self.conv_up2 = conv(features, features)
        self.conv_hr = conv(features, features)
        self.conv_last = conv(features, channels)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if self.scale == 2:  # odd sizes: reflect-pad to even first, crop after (as Real-ESRGAN)
            x = F.pad(x, (0, w % 2, 0, h % 2), mode="reflect") if (h % 2 or w % 2) else x
            x = F.pixel_unshuffle(x, 2)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        out = self.conv_last(self.lrelu(self.conv_hr(feat)))
        return out[..., : h * self.scale, : w * self.scale]


# --- the authors' checkpoints ---------------------------------------------------------------


def detect(state: StateDict, where: str) -> Detected | None:
    """ESRGAN's original files (``RRDB_trunk``) and BasicSR's RRDBNet (srkit's names)."""
    old = "RRDB_trunk.0.RDB1.conv1.weight" in state
    if not old and "body.0.rdb1.conv1.weight" not in state:
        return None
    if old:
        state = rename(
            state,
            [
                (r"^RRDB_trunk\.(\d+)\.RDB(\d)\.", r"body.\1.rdb\2."),
                (r"^trunk_conv\.", "conv_body."),
                (r"^upconv1\.", "conv_up1."),
                (r"^upconv2\.", "conv_up2."),
                (r"^HRconv\.", "conv_hr."),
            ],
        )
    features, in_ch = state["conv_first.weight"].shape[:2]
    out_ch = int(state["conv_last.weight"].shape[0])
    if in_ch == out_ch:
        scale = 4
    elif in_ch == 4 * out_ch:
        scale = 2
    else:
        raise DetectionError(
            f"{where}: RRDBNet with {in_ch} input and {out_ch} output channels (x1 or unknown "
            "pixel-unshuffle variant); srkit supports x4 (3 -> 3) and x2 (12 -> 3)"
        )
    opts = {
        "blocks": len(indices(state, r"body\.(\d+)\.")),
        "features": int(features),
        "growth": int(state["body.0.rdb1.conv1.weight"].shape[0]),
        "channels": out_ch,
    }
    return Detected("rrdb", opts, scale, (scale,), state, RGB01)


DETECTOR = KeyDetector("rrdb", "RRDB_trunk.0.RDB1.conv1.weight or body.0.rdb1.conv1.weight", detect)

SPECS = (
    ArchSpec(
        name="rrdb",
        cls=RRDBNet,
        defaults={"blocks": 23, "features": 64, "growth": 32, "channels": 3},
        scales=SCALES,
        convention=RGB01,
        reference=Reference(
            "Wang et al.",
            "ESRGAN: Enhanced Super-Resolution Generative Adversarial Networks",
            "ECCVW",
            2018,
            "https://arxiv.org/abs/1809.00219",
        ),
        published_params={4: 16_697_987},
        params_source="RRDBNet (ESRGAN / RRDB_PSNR x4, 23 blocks): 16,697,987 parameters as "
        "reported for the released ESRGAN generator (16.7M)",
        description="ESRGAN generator: 23 residual-in-residual dense blocks",
        detector=DETECTOR,
    ),
)
