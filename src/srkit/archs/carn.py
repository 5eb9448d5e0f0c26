"""CARN-M: Ahn, Kang, Sohn, "Fast, Accurate, and Lightweight Super-Resolution with Cascading
Residual Network", ECCV 2018 (arXiv:1803.08664).

The mobile variant: an entry conv (64 features), three cascading blocks with global cascading
(concatenate + 1 x 1 conv after each), each block applying one *shared* efficient residual block
(two 3 x 3 group convs, groups = 4, ReLU, a 1 x 1 conv, residual, ReLU) three times with local
cascading; pixel-shuffle upsampling with group convs, and an exit conv. The paper trains one
multi-scale model (x2/x3/x4 upsamplers in one network, 412K parameters); ``multi_scale=False``
keeps only this scale's upsampler. RGB in [0, 1] with the DIV2K mean subtracted.
"""

from __future__ import annotations

import torch
from torch import nn

from srkit.archs.common import (
    DIV2K_MEAN,
    ArchSpec,
    InputConvention,
    Reference,
    check_scale,
    conv,
    pixel_shuffle_stages,
)
from srkit.archs.detection import (
    Detected,
    DetectionError,
    KeyDetector,
    Rule,
    StateDict,
    drop,
    mean_shift,
    rename,
)

SCALES = (2, 3, 4)


class EResidualBlock(nn.Module):
    def __init__(self, features: int, groups: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv(features, features, 3, groups=groups),
            nn.ReLU(inplace=True),
            conv(features, features, 3, groups=groups),
            nn.ReLU(inplace=True),
            conv(features, features, 1),
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + x)


def _fuse(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(conv(cin, cout, 1), nn.ReLU(inplace=True))


class CascadingBlock(nn.Module):
    def __init__(self, features: int, groups: int) -> None:
        super().__init__()
        self.res = EResidualBlock(features, groups)
        self.c1 = _fuse(features * 2, features)
        self.c2 = _fuse(features * 3, features)
        self.c3 = _fuse(features * 4, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x
        o = x
        for fuse in (self.c1, self.c2, self.c3):
            c = torch.cat((c, self.res(o)), 1)
            o = fuse(c)
        return o


class Upsample(nn.Sequential):
    def __init__(self, features: int, scale: int, groups: int) -> None:
        layers: list[nn.Module] = []
        for s in pixel_shuffle_stages(scale):
            layers += [
                conv(features, features * s * s, 3, groups=groups),
                nn.ReLU(inplace=True),
                nn.PixelShuffle(s),
            ]
        super().__init__(*layers)


class CARNM(nn.Module):
    def __init__(
        self,
        scale: int = 2,
        features: int = 64,
        groups: int = 4,
        multi_scale: bool = True,
        channels: int = 3,
    ) -> None:
        super().__init__()
        check_scale("carn_m", scale, SCALES)
        self.scale = scale
        self.entry = conv(channels, features)
        self.blocks = nn.ModuleList(CascadingBlock(features, groups) for _ in range(3))
        self.c1 = _fuse(features * 2, features)
        self.c2 = _fuse(features * 3, features)
        self.c3 = _fuse(features * 4, features)
        up_scales = SCALES if multi_scale else (scale,)
        self.upsample = nn.ModuleDict({f"x{s}": Upsample(features, s, groups) for s in up_scales})
        self.exit = conv(features, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = o = self.entry(x)
        for block, fuse in zip(self.blocks, (self.c1, self.c2, self.c3), strict=True):
            c = torch.cat((c, block(o)), 1)
            o = fuse(c)
        return self.exit(self.upsample[f"x{self.scale}"](o))


# --- the authors' checkpoints ---------------------------------------------------------------


def detect(state: StateDict, where: str) -> Detected | None:
    """The authors' CARN-M files (nmhkahn/CARN-pytorch), multi-scale or single-scale."""
    if "entry.weight" not in state or "b1.b1.body.0.weight" not in state:
        return None
    if "b1.b2.body.0.weight" in state:
        raise DetectionError(
            f"{where}: this is a CARN (non-mobile) checkpoint (blocks b1.b1, b1.b2, b1.b3); "
            "srkit implements CARN-M (one shared efficient residual block per cascading block)"
        )
    features, channels = state["entry.weight"].shape[:2]
    groups = int(features // state["b1.b1.body.0.weight"].shape[1])
    value_range, mean = 1.0, DIV2K_MEAN
    if "sub_mean.shifter.weight" in state:
        value_range, mean = mean_shift(state, "sub_mean.shifter.", -1, where)
        add_range, add_mean = mean_shift(state, "add_mean.shifter.", 1, where)
        if (add_range, add_mean) != (value_range, mean):
            raise DetectionError(f"{where}: sub_mean and add_mean disagree ({mean} vs {add_mean})")
    state = drop(state, ("sub_mean.", "add_mean."))
    multi = "upsample.up2.body.0.weight" in state
    rules: list[Rule] = [
        (r"^b(\d)\.b1\.body\.", lambda m: f"blocks.{int(m.group(1)) - 1}.res.body."),
        (r"^b(\d)\.c(\d)\.body\.0\.", lambda m: f"blocks.{int(m.group(1)) - 1}.c{m.group(2)}.0."),
        (r"^c(\d)\.body\.0\.", lambda m: f"c{m.group(1)}.0."),
        (r"^upsample\.up(\d)\.body\.", lambda m: f"upsample.x{m.group(1)}."),
    ]
    scale: int | None = None
    if not multi:
        if "upsample.up.body.0.weight" not in state:
            return None
        up = state["upsample.up.body.0.weight"].shape[0] // features
        scale = 3 if up == 9 else 4 if "upsample.up.body.3.weight" in state else 2
        rules.append((r"^upsample\.up\.body\.", f"upsample.x{scale}."))
    mapped = rename(state, rules)
    opts = {
        "features": int(features),
        "groups": groups,
        "multi_scale": multi,
        "channels": int(channels),
    }
    conv = InputConvention("rgb", value_range, mean)
    return Detected("carn_m", opts, scale, (2, 3, 4) if multi else (scale,), mapped, conv)


DETECTOR = KeyDetector("carn_m", "entry.weight, b1.b1.body.0.weight", detect)

CARN_CONVENTION = InputConvention("rgb", 1.0, DIV2K_MEAN)

SPECS = (
    ArchSpec(
        name="carn_m",
        cls=CARNM,
        defaults={"features": 64, "groups": 4, "multi_scale": True, "channels": 3},
        scales=SCALES,
        convention=CARN_CONVENTION,
        reference=Reference(
            "Ahn, Kang, Sohn",
            "Fast, Accurate, and Lightweight Super-Resolution with Cascading Residual Network",
            "ECCV",
            2018,
            "https://arxiv.org/abs/1803.08664",
        ),
        published_params={2: 412_000, 3: 412_000, 4: 412_000},
        params_source="CARN paper, model comparison: CARN-M 412K (one multi-scale model)",
        description="mobile CARN: shared efficient residual blocks, group conv 4, multi-scale",
        detector=DETECTOR,
    ),
)
