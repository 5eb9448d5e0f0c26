"""Wavelet-SRNet: Huang, He, Sun and Tan, "Wavelet-SRNet: A Wavelet-based CNN for Multi-scale
Face Super Resolution", ICCV 2017.

The network predicts, at LR size, the Haar wavelet-packet coefficients of the HR image and a
fixed (not learned) inverse transform turns them into the image. For a scale ``2**r`` the
``r``-level full packet of an HR image has ``4**r`` coefficient maps per colour, each of the LR
size, and it is orthonormal: exactly invertible, and the same size as the HR image.

* **Embedding net** on the LR image: a 3 x 3 convolution to ``features`` maps (BN, ReLU), then
  five groups of ``res_blocks`` residual blocks at ``features * 1, 2, 4, 8, 16`` maps (64 ... 1024
  in the authors' code). A block is conv-BN-ReLU-conv, plus the skip (a 1 x 1 convolution where the
  width changes), then BN and ReLU after the sum; convolutions have no bias (BN follows).
* **Wavelet prediction net**: one branch per frequency band of the packet: branch 0 predicts
  the approximation (coefficient 0), branch ``k`` the ``3 * 4**(k - 1)`` coefficients whose
  finest high-pass split is split ``r + 1 - k`` (branch ``r``: a high-pass at the HR pixels, the
  highest frequencies), 1, 3, 12, 48 coefficients at x8. A branch is a grouped subnet, one group
  per coefficient: an interim block (``1024 -> wavelet_features`` maps per coefficient, its first
  3 x 3 and its 1 x 1 skip reading all embedding maps), a residual block to
  ``2 * wavelet_features`` per coefficient, and a 3 x 3 convolution to that coefficient's colours.
* :func:`haar_packet_inverse` reconstructs the HR image; :func:`haar_packet_forward` is the
  analysis transform that the training loss (:mod:`srkit.losses.wavelet`) applies to the HR
  target. Coefficient ``i`` of colour ``c`` is channel ``i * C + c``; coefficient 0 is the
  approximation (``2**r`` x the mean of its ``2**r x 2**r`` block).

Sizes follow the authors' code (github.com/hhb072/WaveletSRNet, ``networks.py``: ``NetSR`` with
``num_layers_res=2`` and ``wavelet_c=32``): 46,327,372 / 51,353,968 /
74,999,296 parameters at x2 / x4 / x8, that code's layers counted one by one;
44.7M of them are the embedding net. As in that code, the 1 x 1 skip of a branch's residual
block is not grouped (it mixes the coefficients of its band; 5.0M parameters of the x8 net).
``features=16, wavelet_features=8, res_blocks=1`` is a CPU-size variant of the same structure
(:data:`CPU_OPTIONS`). RGB in [0, 1] in and out, as the authors train; the paper's faces are
128 x 128 HR crops (x4: 32 -> 128, x8: 16 -> 128), but the network is fully convolutional and
takes an LR image of any size (no fixed ``input_size``). The order of the coefficients within a
band is srkit's (the authors' lives in their transform's weight file); srkit reads no foreign
checkpoints of this arch.
"""

from __future__ import annotations

import torch
from torch import nn

from srkit.archs.common import RGB01, ArchSpec, Reference, check_scale

SCALES = (2, 4, 8)
LEVELS = {2: 1, 4: 2, 8: 3}
EMBEDDING_WIDTHS = (1, 2, 4, 8, 16)  # x features, per group of residual blocks
CPU_OPTIONS = {"features": 16, "wavelet_features": 8, "res_blocks": 1}


# --- the Haar wavelet packet ----------------------------------------------------------------


def _split(x: torch.Tensor) -> torch.Tensor:
    """(N, K, C, H, W) -> (N, 4K, C, H/2, W/2): one orthonormal Haar level on every map."""
    n, k, c, h, w = x.shape
    x = x.reshape(n, k, c, h // 2, 2, w // 2, 2)
    a, b = x[:, :, :, :, 0, :, 0], x[:, :, :, :, 0, :, 1]  # top-left, top-right
    p, q = x[:, :, :, :, 1, :, 0], x[:, :, :, :, 1, :, 1]  # bottom-left, bottom-right
    bands = ((a + b) + (p + q), (a - b) + (p - q), (a + b) - (p + q), (a - b) - (p - q))
    return torch.stack(bands, dim=2).mul(0.5).reshape(n, 4 * k, c, h // 2, w // 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    """(N, 4K, C, h, w) -> (N, K, C, 2h, 2w): the inverse of :func:`_split`."""
    n, k4, c, h, w = x.shape
    x = x.reshape(n, k4 // 4, 4, c, h, w)
    ll, lh, hl, hh = x.unbind(dim=2)
    a, b = (ll + lh) + (hl + hh), (ll - lh) + (hl - hh)
    p, q = (ll + lh) - (hl + hh), (ll - lh) - (hl - hh)
    top = torch.stack((a, b), dim=-1).reshape(n, k4 // 4, c, h, 2 * w)
    bottom = torch.stack((p, q), dim=-1).reshape(n, k4 // 4, c, h, 2 * w)
    return torch.stack((top, bottom), dim=-2).reshape(n, k4 // 4, c, 2 * h, 2 * w).mul(0.5)


def haar_packet_forward(x: torch.Tensor, levels: int) -> torch.Tensor:
    """The ``levels``-level full Haar wavelet packet of ``x`` (N, C, H, W).

    Returns (N, 4**levels * C, H / 2**levels, W / 2**levels); channel ``i * C + c`` is
    coefficient ``i`` of colour ``c``. ``i``'s base-4 digits, most significant first, name the
    band taken at each split, from the finest (level 1, the HR pixels) to the coarsest: 0 is
    the low-pass ``(a + b + c + d) / 2`` of a 2 x 2 block, 1, 2, 3 the horizontal, vertical and
    diagonal differences. Orthonormal: the sum of squares is kept, and
    :func:`haar_packet_inverse` undoes it exactly (up to float rounding).
    """
    if levels < 0:
        raise ValueError(f"haar_packet_forward: levels must be >= 0, got {levels}")
    n, c, h, w = x.shape
    side = 2**levels
    if h % side or w % side:
        raise ValueError(f"haar_packet_forward: {h} x {w} is not divisible by 2**{levels}")
    y = x.reshape(n, 1, c, h, w)
    for _ in range(levels):
        y = _split(y)
    return y.reshape(n, -1, h // side, w // side)


def haar_packet_inverse(coefficients: torch.Tensor, levels: int) -> torch.Tensor:
    """The image (N, C, H * 2**levels, W * 2**levels) of packet coefficients laid out as
    :func:`haar_packet_forward` returns them (N, 4**levels * C, H, W)."""
    if levels < 0:
        raise ValueError(f"haar_packet_inverse: levels must be >= 0, got {levels}")
    n, kc, h, w = coefficients.shape
    k = 4**levels
    if kc % k:
        raise ValueError(f"haar_packet_inverse: {kc} channels are not 4**{levels} x colours")
    y = coefficients.reshape(n, k, kc // k, h, w)
    for _ in range(levels):
        y = _merge(y)
    return y.reshape(n, kc // k, h * 2**levels, w * 2**levels)


def band_sizes(levels: int) -> list[int]:
    """Coefficients per branch of the prediction net: 1, 3, 12, 48, ... (``4**levels`` in all)."""
    return [1] + [3 * 4 ** (k - 1) for k in range(1, levels + 1)]


# --- the network ----------------------------------------------------------------------------


def conv3(cin: int, cout: int, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1, groups=groups, bias=False)


class ResidualBlock(nn.Module):
    """conv-BN-ReLU-conv, plus the skip (1 x 1 where the width changes or ``skip_conv``), then
    BN and ReLU after the sum. ``groups``: of the second convolution, and of the first too unless
    ``first_groups`` says otherwise; the skip convolution is never grouped."""

    def __init__(
        self,
        cin: int,
        cout: int,
        groups: int = 1,
        first_groups: int | None = None,
        skip_conv: bool = False,
    ) -> None:
        super().__init__()
        needs_skip = skip_conv or cin != cout
        self.skip = nn.Conv2d(cin, cout, 1, bias=False) if needs_skip else nn.Identity()
        first = groups if first_groups is None else first_groups
        self.body = nn.Sequential(
            conv3(cin, cout, first), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            conv3(cout, cout, groups),
        )  # fmt: skip
        self.out = nn.Sequential(nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x) + self.skip(x))


class WaveletBranch(nn.Module):
    """The subnets of ``coefficients`` packet coefficients, as one grouped stack."""

    def __init__(self, cin: int, features: int, coefficients: int, channels: int) -> None:
        super().__init__()
        g = coefficients
        self.interim = ResidualBlock(cin, features * g, groups=g, first_groups=1, skip_conv=True)
        self.block = ResidualBlock(features * g, 2 * features * g, groups=g)
        self.predict = nn.Conv2d(2 * features * g, channels * g, 3, padding=1, groups=g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.predict(self.block(self.interim(x)))


class WaveletSRNet(nn.Module):
    def __init__(
        self,
        scale: int = 8,
        features: int = 64,
        res_blocks: int = 2,
        wavelet_features: int = 32,
        channels: int = 3,
    ) -> None:
        super().__init__()
        check_scale("waveletsrnet", scale, SCALES)
        if res_blocks < 1:
            raise ValueError(f"waveletsrnet: res_blocks must be >= 1, got {res_blocks}")
        self.scale = scale
        self.levels = LEVELS[scale]
        self.head = nn.Sequential(
            conv3(channels, features), nn.BatchNorm2d(features), nn.ReLU(inplace=True)
        )
        blocks: list[nn.Module] = []
        width = features
        for factor in EMBEDDING_WIDTHS:
            for _ in range(res_blocks):
                blocks.append(ResidualBlock(width, features * factor))
                width = features * factor
        self.embedding = nn.Sequential(*blocks)
        self.branches = nn.ModuleList(
            WaveletBranch(width, wavelet_features, g, channels) for g in band_sizes(self.levels)
        )
        for m in self.modules():  # the authors' initialisation: He (fan-out), BN at (1, 0)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def coefficients(self, x: torch.Tensor) -> torch.Tensor:
        """The predicted packet coefficients (N, 4**r * C, H, W) of the HR image."""
        features = self.embedding(self.head(x))
        return torch.cat([branch(features) for branch in self.branches], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return haar_packet_inverse(self.coefficients(x), self.levels)


SPECS = (
    ArchSpec(
        name="waveletsrnet",
        cls=WaveletSRNet,
        defaults={"features": 64, "res_blocks": 2, "wavelet_features": 32, "channels": 3},
        scales=SCALES,
        convention=RGB01,
        reference=Reference(
            "Huang, He, Sun, Tan",
            "Wavelet-SRNet: A Wavelet-based CNN for Multi-scale Face Super Resolution",
            "ICCV",
            2017,
            "https://openaccess.thecvf.com/content_iccv_2017/html/"
            "Huang_Wavelet-SRNet_A_Wavelet-Based_ICCV_2017_paper.html",
        ),
        # x8 first: build's default scale is the paper's 16 -> 128 face case
        published_params={8: 74_999_296, 4: 51_353_968, 2: 46_327_372},
        params_source="the authors' networks.py NetSR (hhb072/WaveletSRNet, num_layers_res=2, "
        "wavelet_c=32) counted layer by layer (no published total is known to srkit)",
        description="face SR by predicting Haar wavelet-packet coefficients (4^r maps per "
        "colour at LR size) with grouped per-coefficient subnets; fixed inverse packet",
    ),
)
