"""The SR evaluation protocol's pieces: the standard LR, uint8 SR output, per-image scores."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from srkit.image.resize import imresize, quantize_uint8
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
