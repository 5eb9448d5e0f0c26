"""The metrics ``srkit bench --metrics`` can add to PSNR/SSIM, by name.

Each is a pure function of one SR/HR pair of uint8-valued RGB tensors ``(1, 3, H, W)``
returning a float, so an evaluation loop only calls :attr:`ImageMetric.score`:

==================  =========================================================  ============
name                what                                                       better
==================  =========================================================  ============
``lpips``           ST-LPIPS, AlexNet trunk (offline; ``lpips_alex`` too)      lower
``lpips_vgg``       ST-LPIPS, VGG16 trunk (offline)                            lower
``lpips_std:PATH``  standard LPIPS v0.1 from a torchvision AlexNet file        lower
``msssim``          MS-SSIM, 5 scales, on the protocol's Y                     higher
``niqe``            NIQE of the SR image alone (official pristine model)       lower
==================  =========================================================  ============

``psnr`` and ``ssim`` are always computed and may be named. FID needs an ImageNet Inception
network that srkit cannot obtain offline: it is refused with a message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

BASE_METRICS = ("psnr", "ssim")
EXTRA_METRICS = ("lpips", "lpips_alex", "lpips_vgg", "lpips_std:PATH", "msssim", "niqe")


@dataclass(frozen=True)
class ImageMetric:
    """``score(sr, hr, border=..., convention=..., channel=...) -> float``."""

    name: str
    score: Callable[..., float]
    higher_is_better: bool


def _lpips(variant: str) -> Callable[..., float]:
    def score(sr: torch.Tensor, hr: torch.Tensor, *, border: int, **_) -> float:
        from srkit.metrics.perceptual import lpips

        return float(lpips(sr, hr, border=border, variant=variant)[0])

    return score


def _msssim(sr: torch.Tensor, hr: torch.Tensor, *, border: int, convention: str, channel: str):
    from srkit.metrics.perceptual import ms_ssim

    return float(ms_ssim(sr, hr, border=border, convention=convention, channel=channel)[0])


def _niqe(sr: torch.Tensor, hr: torch.Tensor, *, border: int, convention: str, **_) -> float:
    from srkit.metrics.niqe import niqe

    return float(niqe(sr, border=border, convention=convention)[0])


def image_metric(name: str) -> ImageMetric:
    """One metric by name (see the module docstring). Loads what it needs now, so a missing
    package or file is reported before any image is scored."""
    if name in ("lpips", "lpips_alex", "lpips_vgg"):
        from srkit.metrics.perceptual import lpips_model

        variant = "vgg" if name == "lpips_vgg" else "alex"
        lpips_model(variant)
        return ImageMetric(name, _lpips(variant), higher_is_better=False)
    if name.startswith("lpips_std:"):
        from srkit.metrics.perceptual import lpips_model

        variant = "std:" + name.partition(":")[2]
        lpips_model(variant)
        return ImageMetric("lpips_std", _lpips(variant), higher_is_better=False)
    if name == "msssim":
        return ImageMetric(name, _msssim, higher_is_better=True)
    if name == "niqe":
        from srkit.metrics.niqe import pristine_model

        pristine_model()
        return ImageMetric(name, _niqe, higher_is_better=False)
    if name == "fid":
        raise ValueError(
            "fid: needs an ImageNet Inception-v3 network, which srkit cannot obtain offline; "
            "FID is not available"
        )
    raise ValueError(
        f"unknown metric {name!r}; choose from {', '.join(BASE_METRICS + EXTRA_METRICS)}"
    )


def parse_metrics(spec: str | Sequence[str]) -> list[ImageMetric]:
    """``"psnr,ssim,lpips,niqe"`` -> the metrics beyond PSNR/SSIM, in order, without repeats."""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    chosen: list[ImageMetric] = []
    for raw in names:
        name = raw.strip()
        if not name or name in BASE_METRICS:
            continue
        metric = image_metric(name)
        if all(m.name != metric.name for m in chosen):
            chosen.append(metric)
    return chosen
