"""High-to-Low and Low-to-High networks of Bulat, Yang and Tzimiropoulos, "To learn image
super-resolution, use a GAN to learn how to do image degradation first", ECCV 2018
(arXiv:1807.11458).

The paper learns, from *unpaired* HR and real LR images, a High-to-Low generator (H2L) that turns
clean HR images into LR images that look like the real ones (a GAN against a discriminator on
real vs generated LR, plus a pixel loss to the downscaled HR that keeps content), then trains a
Low-to-High network (L2H) on the pairs the H2L makes.

``h2l`` (:class:`H2L`, HR -> LR at 1/4 size): the HR image and one noise channel go in, as in
the paper, which projects a 64-d noise vector with a fully connected layer to a map the size of
one image channel and concatenates it. ``noise="vector"`` does exactly that on a
``noise_size`` x ``noise_size`` map (the paper's 64 x 64 HR faces), tiled over larger inputs;
``noise="map"`` feeds an i.i.d. Gaussian map the size of the input instead (any size, no
repetition: srkit's CPU default). Then a ResNet: a 3x3 head, residual blocks (conv-LReLU-conv +
skip) at HR, two stride-2 3x3 convolutions each followed by residual blocks (HR/2, HR/4), a 3x3
convolution to RGB, added to the 4x4 average (area downscale) of the HR: the network learns the
residual on a stable anchor, and its last layer starts at zero, so an untrained H2L is exactly
the area downscale (content and colours are right from the first step; the GAN adds blur, noise
and colour shifts). ``keep_low=sigma`` (LR pixels) subtracts from the residual its own Gaussian
low-pass: the residual then holds no low frequencies, so the output's colours and brightness
(its means over a few LR pixels) stay the anchor's, and the network can only add or remove
detail (blur, noise, ringing). With unpaired data a free H2L also
learns the content differences of the two sets (the camera's photos are bluer than the HR
photos, say) as a colour cast, which the L2H would then learn to undo on real images. Inputs
must have sides divisible by 4; the output is not clamped (callers clamp and quantise to 8
bits). The paper's H2L is an encoder-decoder (12 residual blocks in 6
groups of 96-128-256-512-256-128 channels, four poolings to 4 x 4 and two upsamplings to the
16 x 16 LR, tanh output); srkit's downsamples only to the LR size, so any HR size divisible by 4
works. ``PAPER_H2L`` is the paper's size on srkit's layout: 12 residual blocks (2 at HR, 2 at
HR/2, 8 at LR) of 96 / 128 / 256 channels.

``l2h`` (:class:`L2H`, x4 SR, RGB in [0, 1]): a 3x3 head; ``blocks`` pre-activation residual
blocks (ReLU-conv-ReLU-conv, BN before each ReLU with ``batch_norm``) at ``features`` channels
with a long skip; two stages of bilinear x2 upsampling, a 3x3 to ``up_features[i]`` channels and
``up_blocks`` pre-activation blocks; ReLU and a 3x3 to RGB, added to the bilinear x4 upscale of
the LR (srkit's anchor: the paper ends with a tanh and no skip). The paper's L2H: 12
pre-activation blocks at 256 channels, then groups of 3 blocks at 128 and 96 channels after each
bilinear x2 (``features=256, blocks=12, up_features=(128, 96), up_blocks=3, batch_norm=True``).

Parameter counts are srkit's own (``count_params`` of these modules): the paper prints none.
The H2L is not an SR network (it downscales), so it is not in the SR registry
(:data:`srkit.archs.registry.ARCHS`, whose networks upscale); :data:`DEGRADERS` is its table and
:func:`build_degrader` builds it, as the discriminators have their own table.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from srkit.archs.common import RGB01, ArchSpec, Reference, check_scale

REFERENCE = Reference(
    "Bulat, Yang, Tzimiropoulos",
    "To learn image super-resolution, use a GAN to learn how to do image degradation first",
    "ECCV",
    2018,
    "https://arxiv.org/abs/1807.11458",
)
NOISE_KINDS = ("vector", "map")


class ResBlock(nn.Module):
    """x + conv(lrelu(conv(x))): the H2L's residual block (no normalisation)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(x), 0.2))


def _as_list(value: int | list[int] | tuple[int, ...], n: int, name: str) -> list[int]:
    values = [int(value)] * n if isinstance(value, int) else [int(v) for v in value]
    if len(values) != n:
        raise ValueError(f"h2l: {name} needs {n} values (HR, HR/2, HR/4), got {list(values)}")
    return values


def gaussian_lowpass(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (reflect padding); ``sigma`` 0 returns ``x``."""
    if sigma <= 0:
        return x
    radius = max(1, math.ceil(3 * sigma))
    radius = min(radius, x.shape[-1] - 1, x.shape[-2] - 1)
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


class H2L(nn.Module):
    """HR (N, 3, H, W) in [0, 1] (+ noise) -> LR (N, 3, H/4, W/4); see the module docstring."""

    def __init__(
        self,
        scale: int = 4,
        features: list[int] | tuple[int, ...] = (32, 48, 64),
        blocks: list[int] | tuple[int, ...] = (1, 1, 2),
        noise: str = "map",
        noise_dim: int = 64,
        noise_size: int = 64,
        channels: int = 3,
        keep_low: float = 0.0,
    ) -> None:
        super().__init__()
        check_scale("h2l", scale, (4,))
        if keep_low < 0:
            raise ValueError(f"h2l: keep_low must be >= 0, got {keep_low}")
        self.keep_low = float(keep_low)
        if noise not in NOISE_KINDS:
            raise ValueError(f"h2l: noise must be one of {', '.join(NOISE_KINDS)}, got {noise!r}")
        widths = _as_list(features, 3, "features")
        depths = _as_list(blocks, 3, "blocks")
        if min(widths) < 1 or min(depths) < 0 or noise_dim < 1 or noise_size < 4:
            raise ValueError("h2l: features >= 1, blocks >= 0, noise_dim >= 1, noise_size >= 4")
        self.scale = scale
        self.noise = noise
        self.noise_dim = noise_dim
        self.noise_size = noise_size
        if noise == "vector":
            self.project = nn.Linear(noise_dim, noise_size * noise_size)
        self.head = nn.Conv2d(channels + 1, widths[0], 3, padding=1)
        self.level0 = nn.Sequential(*(ResBlock(widths[0]) for _ in range(depths[0])))
        self.down1 = nn.Conv2d(widths[0], widths[1], 3, stride=2, padding=1)
        self.level1 = nn.Sequential(*(ResBlock(widths[1]) for _ in range(depths[1])))
        self.down2 = nn.Conv2d(widths[1], widths[2], 3, stride=2, padding=1)
        self.level2 = nn.Sequential(*(ResBlock(widths[2]) for _ in range(depths[2])))
        self.tail = nn.Conv2d(widths[2], channels, 3, padding=1)
        nn.init.zeros_(self.tail.weight)  # an untrained H2L is the area downscale
        nn.init.zeros_(self.tail.bias)

    def draw_noise(
        self,
        n: int,
        height: int,
        width: int,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """Standard normal noise of the shape :meth:`forward` takes for ``n`` inputs of
        ``height`` x ``width``: ``(n, noise_dim)`` vectors or ``(n, 1, height, width)`` maps."""
        shape = (n, self.noise_dim) if self.noise == "vector" else (n, 1, height, width)
        return torch.randn(shape, generator=generator, device=device)

    def noise_map(self, noise: torch.Tensor, height: int, width: int) -> torch.Tensor:
        if self.noise == "map":
            if noise.shape[-2:] != (height, width) or noise.dim() != 4:
                raise ValueError(f"h2l: a noise map must be (N, 1, {height}, {width})")
            return noise
        side = self.noise_size
        tile = self.project(noise).view(-1, 1, side, side)
        reps = (-(-height // side), -(-width // side))
        return tile.repeat(1, 1, *reps)[..., :height, :width]

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        n, _, height, width = x.shape
        if height % self.scale or width % self.scale:
            raise ValueError(
                f"h2l: the HR sides must be multiples of {self.scale}, got {height} x {width}"
            )
        if noise is None:
            noise = self.draw_noise(n, height, width, device=x.device)
        z = self.noise_map(noise.to(x.dtype), height, width)
        h = self.head(torch.cat([x * 2 - 1, z], dim=1))
        h = self.level0(h)
        h = self.level1(self.down1(F.leaky_relu(h, 0.2)))
        h = self.level2(self.down2(F.leaky_relu(h, 0.2)))
        anchor = F.avg_pool2d(x, self.scale)
        residual = self.tail(F.leaky_relu(h, 0.2))
        if self.keep_low:  # the residual loses its low frequencies: colours stay the anchor's
            residual = residual - gaussian_lowpass(residual, self.keep_low)
        return anchor + residual


class PreActBlock(nn.Module):
    """x + conv(relu(bn(conv(relu(bn(x)))))): a pre-activation residual block (He et al. 2016);
    without ``batch_norm`` the normalisations are identities."""

    def __init__(self, features: int, batch_norm: bool) -> None:
        super().__init__()
        norm = (lambda: nn.BatchNorm2d(features)) if batch_norm else nn.Identity
        self.norm1, self.norm2 = norm(), norm()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.relu(self.norm1(x)))
        return x + self.conv2(F.relu(self.norm2(h)))


class L2H(nn.Module):
    """LR (N, 3, H, W) -> SR (N, 3, 4H, 4W), RGB in [0, 1]; see the module docstring."""

    def __init__(
        self,
        scale: int = 4,
        features: int = 48,
        blocks: int = 6,
        up_features: list[int] | tuple[int, ...] = (32, 24),
        up_blocks: int = 1,
        batch_norm: bool = False,
        channels: int = 3,
    ) -> None:
        super().__init__()
        check_scale("l2h", scale, (4,))
        widths = [int(w) for w in up_features]
        if len(widths) != 2 or min(widths) < 1 or features < 1 or blocks < 0 or up_blocks < 0:
            raise ValueError(
                "l2h: features >= 1, blocks >= 0, two up_features >= 1, up_blocks >= 0"
            )
        self.scale = scale
        self.head = nn.Conv2d(channels, features, 3, padding=1)
        self.body = nn.Sequential(*(PreActBlock(features, batch_norm) for _ in range(blocks)))
        stages: list[nn.Module] = []
        cin = features
        for width in widths:
            stages.append(
                nn.Sequential(
                    nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                    nn.Conv2d(cin, width, 3, padding=1),
                    *(PreActBlock(width, batch_norm) for _ in range(up_blocks)),
                )
            )
            cin = width
        self.up = nn.Sequential(*stages)
        self.tail = nn.Conv2d(cin, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.head(x)
        h = self.up(self.body(feat) + feat)
        anchor = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return anchor + self.tail(F.relu(h))


PAPER_L2H: dict[str, Any] = {
    "features": 256,
    "blocks": 12,
    "up_features": [128, 96],
    "up_blocks": 3,
    "batch_norm": True,
}
PAPER_H2L: dict[str, Any] = {"features": [96, 128, 256], "blocks": [2, 2, 8], "noise": "vector"}

SPECS = (
    ArchSpec(
        name="l2h",
        cls=L2H,
        defaults={
            "features": 48,
            "blocks": 6,
            "up_features": [32, 24],
            "up_blocks": 1,
            "batch_norm": False,
            "channels": 3,
        },
        scales=(4,),
        convention=RGB01,
        reference=REFERENCE,
        published_params={4: 15_976_131},
        params_source="srkit's count of the paper's L2H size (12 pre-activation blocks at 256, "
        "3 at 128 and 96 after each bilinear x2, batch norm); the paper prints no count",
        paper_options=PAPER_L2H,
        description="Low-to-High SR of Bulat et al.: pre-activation residual blocks, bilinear "
        "x2 stages, trained on a learned degradation's pairs",
    ),
)

H2L_SPEC = ArchSpec(
    name="h2l",
    cls=H2L,
    defaults={
        "features": [32, 48, 64],
        "blocks": [1, 1, 2],
        "noise": "map",
        "noise_dim": 64,
        "noise_size": 64,
        "channels": 3,
        "keep_low": 0.0,
    },
    scales=(4,),
    convention=RGB01,
    reference=REFERENCE,
    published_params={4: 11_046_371},
    params_source="srkit's count of PAPER_H2L (12 residual blocks of 96/128/256 channels, the "
    "64-d noise vector's projection to 64 x 64); the paper prints no count",
    paper_options=PAPER_H2L,
    description="High-to-Low generator of Bulat et al.: HR + noise -> LR at 1/4 (a learned "
    "degradation; not an upscaler)",
)

DEGRADERS: dict[str, ArchSpec] = {H2L_SPEC.name: H2L_SPEC}
"""Networks that make LR from HR (not in the SR registry, which holds upscalers)."""


def build_degrader(name: str, **options: Any) -> H2L:
    """Build a degradation network of :data:`DEGRADERS`; unknown options raise, naming them."""
    try:
        spec = DEGRADERS[name.lower().replace("-", "_")]
    except KeyError:
        raise KeyError(
            f"unknown degradation network {name!r}; known: {', '.join(DEGRADERS)}"
        ) from None
    return spec.cls(scale=4, **spec.options(**options))
