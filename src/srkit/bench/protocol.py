"""One image through the SR evaluation protocol (see ``srkit.metrics`` for the conventions)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from srkit.image.resize import imresize, quantize_uint8
from srkit.metrics.select import ImageMetric
from srkit.metrics.sr import check_convention, mod_crop, psnr_ssim
from srkit.models import SRModel

#: Makes the LR input from a mod-cropped uint8 HR ``(1, 3, H, W)``; returns uint8.
Degradation = Callable[[torch.Tensor, int], torch.Tensor]


def matlab_bicubic_lr(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """The standard LR: MATLAB ``imresize(hr, 1/scale, 'bicubic')`` rounded to uint8."""
    return quantize_uint8(imresize(hr.to(torch.float64), scale=1.0 / scale))


@dataclass(frozen=True)
class ImageScore:
    image: str
    psnr: float
    ssim: float
    height: int
    width: int
    extra: dict[str, float] = field(default_factory=dict)  # --metrics beyond PSNR/SSIM


def super_resolve_uint8(model: SRModel, lr: torch.Tensor) -> torch.Tensor:
    """Run ``model`` on a uint8 LR batch and return its output clamped and rounded to uint8."""
    with torch.inference_mode():
        out = model(lr.to(torch.float32) / 255.0)
    return quantize_uint8(out.to(torch.float64) * 255.0)


def score_image(
    model: SRModel,
    hr: torch.Tensor,
    scale: int,
    *,
    name: str = "",
    convention: str = "modern",
    channel: str = "y",
    border: int | None = None,
    degradation: Degradation = matlab_bicubic_lr,
    metrics: Sequence[ImageMetric] = (),
) -> ImageScore:
    """HR uint8 ``(1, 3, H, W)`` -> PSNR/SSIM of ``model``'s reconstruction from its LR."""
    check_convention(convention)
    hr = mod_crop(hr, scale)
    if min(hr.shape[-2:]) < scale * 4:
        raise ValueError(f"{name}: image {tuple(hr.shape[-2:])} is too small for x{scale}")
    lr = degradation(hr, scale)
    sr = super_resolve_uint8(model, lr)
    if sr.shape != hr.shape:
        raise ValueError(
            f"{name}: model {model.name} returned {tuple(sr.shape[-2:])} for an LR of "
            f"{tuple(lr.shape[-2:])} at x{scale}; expected {tuple(hr.shape[-2:])}"
        )
    border = scale if border is None else border
    psnr, ssim = psnr_ssim(sr, hr, border=border, convention=convention, channel=channel)
    extra = {
        m.name: m.score(sr, hr, border=border, convention=convention, channel=channel)
        for m in metrics
    }
    return ImageScore(
        image=name,
        psnr=psnr.item(),
        ssim=ssim.item(),
        height=int(hr.shape[-2]),
        width=int(hr.shape[-1]),
        extra=extra,
    )
