"""D-DBPN: Haris, Shakhnarovich, Ukita, "Deep Back-Projection Networks For Super-Resolution",
CVPR 2018 (arXiv:1803.02735).

Dense deep back-projection network: initial feature extraction (3 x 3 conv to n0 = 256, 1 x 1
conv to nR = 64, PReLU), then ``stages`` = 7 up-projection and 6 down-projection units that
alternate; each unit is an iterative error-feedback chain (deconv -> conv -> deconv of the error,
or the mirror for down), and in the dense variant each unit after the first reads the
concatenation of all earlier units' outputs of the other resolution through a 1 x 1
convolution. The HR outputs of all up units are concatenated and reconstructed by a 3 x 3 conv.
Projection kernels: x2 6 x 6 stride 2, x4 8 x 8 stride 4, x8 12 x 12 stride 8 (padding 2).
RGB in [0, 1]. About 10.4M parameters at x4.
"""

from __future__ import annotations

import torch
from torch import nn

from srkit.archs.common import RGB01, ArchSpec, Reference, check_scale

SCALES = (2, 4, 8)
KERNELS = {2: (6, 2, 2), 4: (8, 4, 2), 8: (12, 8, 2)}


def _conv(cin: int, cout: int, k: int, s: int, p: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, p), nn.PReLU())


def _deconv(cin: int, cout: int, k: int, s: int, p: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, k, s, p), nn.PReLU())


class Projection(nn.Module):
    """Up projection (``up=True``: LR -> HR) or down projection (HR -> LR)."""

    def __init__(self, features: int, scale: int, up: bool, n_inputs: int = 1) -> None:
        super().__init__()
        k, s, p = KERNELS[scale]
        self.bottleneck = _conv(features * n_inputs, features, 1, 1, 0) if n_inputs > 1 else None
        there, back = (_deconv, _conv) if up else (_conv, _deconv)
        self.step1 = there(features, features, k, s, p)
        self.step2 = back(features, features, k, s, p)
        self.step3 = there(features, features, k, s, p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bottleneck is not None:
            x = self.bottleneck(x)
        y0 = self.step1(x)
        x1 = self.step2(y0)
        return y0 + self.step3(x1 - x)


class DBPN(nn.Module):
    def __init__(
        self,
        scale: int = 4,
        stages: int = 7,
        features: int = 64,
        init_features: int = 256,
        channels: int = 3,
    ) -> None:
        super().__init__()
        check_scale("dbpn", scale, SCALES)
        self.scale = scale
        self.head = nn.Sequential(
            _conv(channels, init_features, 3, 1, 1), _conv(init_features, features, 1, 1, 0)
        )
        self.ups = nn.ModuleList(
            Projection(features, scale, up=True, n_inputs=max(1, i)) for i in range(stages)
        )
        self.downs = nn.ModuleList(
            Projection(features, scale, up=False, n_inputs=i + 1) for i in range(stages - 1)
        )
        self.tail = nn.Conv2d(stages * features, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        low: list[torch.Tensor] = []  # outputs of the down units, l1, l2, ...
        high: list[torch.Tensor] = []  # outputs of the up units, h1, h2, ...
        for i, up in enumerate(self.ups):
            high.append(up(torch.cat(low[::-1], 1) if low else x))
            if i < len(self.downs):
                low.append(self.downs[i](torch.cat(high[::-1], 1)))
        return self.tail(torch.cat(high[::-1], 1))


SPECS = (
    ArchSpec(
        name="dbpn",
        cls=DBPN,
        defaults={"stages": 7, "features": 64, "init_features": 256, "channels": 3},
        scales=SCALES,
        convention=RGB01,
        reference=Reference(
            "Haris, Shakhnarovich, Ukita",
            "Deep Back-Projection Networks For Super-Resolution",
            "CVPR",
            2018,
            "https://arxiv.org/abs/1803.02735",
        ),
        published_params={4: 10_400_000},
        params_source="D-DBPN x4 (T = 7): ~10.4M, the size commonly cited for it (not checked "
        "against the paper's own table here)",
        description="dense deep back-projection: 7 up / 6 down projection units",
    ),
)
