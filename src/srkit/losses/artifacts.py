"""LDL's artifact map and loss (Liang, Zeng & Zhang, "Details or Artifacts: A Locally
Discriminative Learning Approach to Realistic Image Super-Resolution", CVPR 2022).

A GAN's output mixes real detail with artifacts. Where the residual ``|hr - sr|`` (summed over
colour) varies strongly within a small window, the texture is probably wrong; where the EMA of the
generator is already closer to the HR than the current generator, the current one has drifted
from a stable solution. The map weighs each pixel by the residual's local variance (a ``ksize``
window, reflect-padded, unbiased) times the patch's global residual variance to the power 1/5,
and is zero wherever the EMA's residual is larger than the generator's. The loss is the L1
distance of ``map * sr`` and ``map * hr``: pixel loss where artifacts are likely, none on
plausible detail. The map is a weight, so it carries no gradient here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def local_variance(x: torch.Tensor, ksize: int = 7) -> torch.Tensor:
    """The unbiased variance of each ``ksize`` x ``ksize`` window of ``x`` ``(N, C, H, W)``,
    centred on each pixel (reflect padding): same shape as ``x``."""
    if ksize < 3 or ksize % 2 == 0:
        raise ValueError(f"ksize must be odd and >= 3, got {ksize}")
    pad = ksize // 2
    x = F.pad(x.float(), (pad, pad, pad, pad), mode="reflect")
    mean = F.avg_pool2d(x, ksize, stride=1)
    mean_sq = F.avg_pool2d(x * x, ksize, stride=1)
    n = ksize * ksize
    return ((mean_sq - mean * mean) * (n / (n - 1))).clamp_min(0)


@torch.no_grad()
def artifact_map(
    hr: torch.Tensor, sr: torch.Tensor, sr_ema: torch.Tensor, ksize: int = 7
) -> torch.Tensor:
    """LDL's refined artifact map ``(N, 1, H, W)`` of images ``(N, C, H, W)`` in [0, 1]."""
    residual = (hr - sr).abs().float().sum(1, keepdim=True)
    residual_ema = (hr - sr_ema).abs().float().sum(1, keepdim=True)
    patch = residual.flatten(1).var(dim=1).view(-1, 1, 1, 1).pow(0.2)
    weight = patch * local_variance(residual, ksize)
    return weight.masked_fill(residual < residual_ema, 0.0)


def artifact_loss(
    hr: torch.Tensor, sr: torch.Tensor, sr_ema: torch.Tensor, ksize: int = 7
) -> torch.Tensor:
    """``mean |M * sr - M * hr|`` with ``M = artifact_map(hr, sr, sr_ema)``."""
    weight = artifact_map(hr, sr, sr_ema, ksize)
    return (weight * (sr.float() - hr.float())).abs().mean()
