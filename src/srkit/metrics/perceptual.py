"""LPIPS and MS-SSIM on uint8-valued image batches.

LPIPS (Zhang et al., "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric",
CVPR 2018): features of five layers, each unit-normalised over channels, squared differences
weighted per channel by learned non-negative weights, averaged over space and summed over
layers. Variants (:func:`lpips_model`):

``alex`` / ``vgg``
    ST-LPIPS (Ghildyal & Liu, ECCV 2022): the shift-tolerant AlexNet / VGG16 trunks and their
    linear weights, shipped in the ``stlpips-pytorch`` package (offline). Values are close to,
    not equal to, standard LPIPS: the trunks are anti-aliased and were trained with the
    linear layers.
``std:PATH``
    Standard LPIPS v0.1 (AlexNet): torchvision's ImageNet AlexNet file given by the user, and the
    linear weights from the ``lpips`` package (``pip install --no-deps lpips``; only its data
    file is read).

MS-SSIM (Wang, Simoncelli & Bovik, "Multi-scale structural similarity for image quality
assessment", 2003): 5 scales with weights 0.0448, 0.2856, 0.3001, 0.2363, 0.1333; 11x11
Gaussian window (sigma 1.5, 'valid'), K1 = 0.01, K2 = 0.03, 2x2 average then decimation
between scales (the authors' MATLAB code), on the same Y as PSNR/SSIM.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from srkit.features.networks import (
    LPIPS_LAYERS,
    FeatureNet,
    imagenet_alexnet,
    package_file,
    stlpips_linear_weights,
    stlpips_trunk,
    unit_features,
)
from srkit.metrics.sr import (
    SSIM_C1,
    SSIM_C2,
    _prepared_pair,
    crop_border,
    ssim_statistics,
)

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
LPIPS_VARIANTS = ("alex", "vgg", "std:PATH")


class LPIPS(nn.Module):
    """``forward(a, b)``: RGB batches in ``[0, 1]`` -> per-image distance ``(N,)``.

    ``weights``: one non-negative ``(C,)`` tensor per layer; ``None`` gives the unweighted
    baseline (channel sum).
    """

    def __init__(
        self,
        net: FeatureNet,
        layers: Sequence[str],
        weights: Sequence[torch.Tensor] | None = None,
        name: str = "lpips",
    ) -> None:
        super().__init__()
        self.net = net
        self.layers = tuple(layers)
        self.name = name
        if weights is not None:
            if len(weights) != len(self.layers):
                raise ValueError(f"{name}: {len(weights)} weight vectors for {len(layers)} layers")
            for layer, w in zip(self.layers, weights, strict=True):
                if w.numel() != net.channels(layer):
                    raise ValueError(
                        f"{name}: layer {layer} has {net.channels(layer)} channels, its linear "
                        f"weights {w.numel()}"
                    )
        self.weights = None if weights is None else [w.flatten().float() for w in weights]

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.shape != b.shape:
            raise ValueError(
                f"LPIPS of images of different shapes: {tuple(a.shape)}, {tuple(b.shape)}"
            )
        return self.from_features(self.net(a, self.layers), self.net(b, self.layers))

    def from_features(
        self, fa: dict[str, torch.Tensor], fb: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """The per-image distance of two images' features (``self.net(x, self.layers)``)."""
        first = fa[self.layers[0]]
        total = first.new_zeros(first.shape[0], dtype=torch.float32)
        for k, layer in enumerate(self.layers):
            diff = (unit_features(fa[layer]) - unit_features(fb[layer])).pow(2)
            if self.weights is None:
                per_pixel = diff.sum(dim=1)
            else:
                w = self.weights[k].to(diff.device, diff.dtype).view(1, -1, 1, 1)
                per_pixel = (diff * w).sum(dim=1)
            total = total + per_pixel.flatten(1).mean(dim=1)
        return total


def stlpips_lpips(variant: str = "alex") -> LPIPS:
    """A new ST-LPIPS (``alex`` or ``vgg``): its own trunk and linear weights, frozen."""
    if variant not in ("alex", "vgg"):
        raise ValueError(f"unknown ST-LPIPS variant {variant!r}; use alex or vgg")
    trunk = "alex" if variant == "alex" else "vgg16"
    return LPIPS(
        stlpips_trunk(trunk),
        LPIPS_LAYERS[trunk],
        stlpips_linear_weights(trunk),
        name=f"stlpips_{variant}",
    )


@functools.lru_cache(maxsize=4)
def lpips_model(variant: str = "alex") -> LPIPS:
    """The LPIPS of a variant (see the module docstring); built once per process."""
    if variant in ("alex", "vgg"):
        return stlpips_lpips(variant)
    kind, sep, path = variant.partition(":")
    if kind == "std" and sep and path:
        linear = package_file(
            "lpips",
            "weights/v0.1/alex.pth",
            hint="pip install --no-deps lpips; only its data is read",
        )
        state = torch.load(linear, map_location="cpu", weights_only=True)
        weights = [state[f"lin{k}.model.1.weight"].flatten() for k in range(5)]
        return LPIPS(imagenet_alexnet(path), LPIPS_LAYERS["alexnet"], weights, name="lpips")
    raise ValueError(f"unknown LPIPS variant {variant!r}; use one of {', '.join(LPIPS_VARIANTS)}")


def lpips(
    sr: torch.Tensor, hr: torch.Tensor, *, border: int = 0, variant: str = "alex"
) -> torch.Tensor:
    """Per-image LPIPS of uint8-valued RGB batches ``(N, 3, H, W)``, ``border`` pixels cropped
    from every side (lower is better; identical images give 0)."""
    if sr.shape != hr.shape:
        raise ValueError(f"SR and HR differ in shape: {tuple(sr.shape)} vs {tuple(hr.shape)}")
    model = lpips_model(variant)
    a = crop_border(sr.to(torch.float32) / 255.0, border)
    b = crop_border(hr.to(torch.float32) / 255.0, border)
    with torch.inference_mode():
        return model(a, b)


def _ssim_and_cs(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mu_a, mu_b, var_a, var_b, cov = ssim_statistics(a, b)
    c1, c2 = SSIM_C1, SSIM_C2
    cs_map = (2 * cov + c2) / (var_a + var_b + c2)
    luminance = (2 * mu_a * mu_b + c1) / (mu_a * mu_a + mu_b * mu_b + c1)
    return (luminance * cs_map).flatten(1).mean(dim=1), cs_map.flatten(1).mean(dim=1)


def ms_ssim(
    sr: torch.Tensor,
    hr: torch.Tensor,
    *,
    border: int = 0,
    convention: str = "modern",
    channel: str = "y",
) -> torch.Tensor:
    """Per-image MS-SSIM of uint8-valued RGB batches (higher is better; identical images give 1).

    The image must keep 11 pixels a side at the fifth scale (176 after the border crop).
    Contrast-structure terms below 0 are clamped to 0 before the weighted product, as the
    fractional powers of the definition are not real for them.
    """
    a, b = _prepared_pair(sr, hr, border, convention, channel)
    scales = len(MS_SSIM_WEIGHTS)
    needed = 11 * 2 ** (scales - 1)
    if min(a.shape[-2:]) < needed:
        raise ValueError(
            f"MS-SSIM needs at least {needed}x{needed} pixels after the border crop, got "
            f"{tuple(a.shape[-2:])}"
        )
    weights = torch.tensor(MS_SSIM_WEIGHTS, dtype=a.dtype, device=a.device)
    factors = []
    for scale in range(scales):
        ssim_value, cs = _ssim_and_cs(a, b)
        factors.append((ssim_value if scale == scales - 1 else cs).clamp(min=0))
        if scale < scales - 1:  # MATLAB: imfilter(ones(2)/4, 'symmetric') then (1:2:end)
            a = _average_2x2(a)
            b = _average_2x2(b)
    stacked = torch.stack(factors, dim=1)
    return stacked.pow(weights).prod(dim=1)


def _average_2x2(x: torch.Tensor) -> torch.Tensor:
    """MATLAB ``imfilter(x, ones(2)/4, 'symmetric', 'same')`` then ``x(1:2:end, 1:2:end)``.

    For an even-sized kernel MATLAB's 'same' window covers the pixel and the one after it, so
    the sample at an odd (1-based) position averages rows/columns ``i, i+1``; at the last
    position of an odd size it mirrors the edge pixel.
    """
    padded = F.pad(x, (0, 1, 0, 1), mode="replicate")  # symmetric pad by one == replicate
    pooled = (
        padded[..., :-1, :-1] + padded[..., 1:, :-1] + padded[..., :-1, 1:] + padded[..., 1:, 1:]
    ) / 4
    return pooled[..., ::2, ::2]
