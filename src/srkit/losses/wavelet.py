"""Wavelet-SRNet's training loss: Huang, He, Sun and Tan, "Wavelet-SRNet: A Wavelet-based CNN for
Multi-scale Face Super Resolution", ICCV 2017 (the network: :mod:`srkit.archs.waveletsrnet`).

Both images go through the ``levels``-level Haar wavelet packet
(:func:`~srkit.archs.waveletsrnet.haar_packet_forward`; ``levels = log2(scale)``). Since the
network's output *is* the inverse packet of its predicted coefficients, and the packet is exactly
invertible, the coefficients of ``sr`` are the predicted ones: the loss reads images. Terms:

* ``low``: squared error of the approximation coefficient (coefficient 0);
* ``high``: squared error of all other coefficients;
* ``image``: squared error of the images;
* ``texture``: ``max(texture_alpha * |c_hr|^2 + texture_eps - |c_sr|^2, 0)`` over the detail
  coefficients, ``|c|^2`` the energy of a coefficient at one position summed over colours, as the
  authors' code takes it, averaged. With ``texture_alpha > 1`` it asks the output for a little
  *more* detail energy than the target has, so that it cannot shrink to the over-smoothed mean.

The total is ``low_weight * low + high_weight * high + image_weight * image + texture_weight *
texture``, by default the authors' code (github.com/hhb072/WaveletSRNet, ``main.py``): 0.01, 0.99,
0.1, 1 and ``texture_alpha=1.2, texture_eps=0``. There the squared errors are summed and halved
per image (``reduction="sum"``: ``sum((a - b)^2) / (2 N)``) while the texture term is a mean;
``reduction="mean"`` gives plain MSEs (the weights then need retuning: the texture term weighs
some 10^4 times more). At ``sr == hr`` every squared error is 0 with a zero gradient; the texture
term is not, by design, when ``texture_alpha > 1`` (it is ``(texture_alpha - 1) |c_hr|^2 +
texture_eps``, and its gradient raises the detail energy); with ``texture_alpha <= 1`` and
``texture_eps = 0`` it is 0 too.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from srkit.archs.waveletsrnet import haar_packet_forward

Reduction = Literal["sum", "mean"]


def _squared_error(a: torch.Tensor, b: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    se = (a - b).pow(2)
    return se.mean() if reduction == "mean" else se.sum() / (2 * a.shape[0])


def texture_loss(
    sr_detail: torch.Tensor,
    hr_detail: torch.Tensor,
    channels: int = 3,
    alpha: float = 1.2,
    eps: float = 0.0,
) -> torch.Tensor:
    """``mean(max(alpha * |c_hr|^2 + eps - |c_sr|^2, 0))`` of detail coefficients laid out as
    ``haar_packet_forward`` lays them out (N, K * channels, h, w); ``|c|^2`` sums the colours."""
    n, kc, h, w = sr_detail.shape
    sr_energy = sr_detail.reshape(n, kc // channels, channels, h, w).pow(2).sum(dim=2)
    hr_energy = hr_detail.reshape(n, kc // channels, channels, h, w).pow(2).sum(dim=2)
    return torch.relu(alpha * hr_energy + eps - sr_energy).mean()


def wavelet_loss_terms(
    sr: torch.Tensor,
    hr: torch.Tensor,
    levels: int,
    *,
    texture_alpha: float = 1.2,
    texture_eps: float = 0.0,
    reduction: Reduction = "sum",
) -> dict[str, torch.Tensor]:
    """The four unweighted terms (``low``, ``high``, ``image``, ``texture``) for images ``sr``
    and ``hr`` (N, C, H, W), H and W divisible by ``2**levels``."""
    if sr.shape != hr.shape:
        raise ValueError(f"wavelet loss: sr {tuple(sr.shape)} and hr {tuple(hr.shape)} differ")
    if levels < 1:
        raise ValueError(f"wavelet loss: levels must be >= 1 (log2 of the scale), got {levels}")
    if reduction not in ("sum", "mean"):
        raise ValueError(f"wavelet loss: reduction 'sum' or 'mean', got {reduction!r}")
    c = sr.shape[1]
    sr_c, hr_c = haar_packet_forward(sr, levels), haar_packet_forward(hr, levels)
    return {
        "low": _squared_error(sr_c[:, :c], hr_c[:, :c], reduction),
        "high": _squared_error(sr_c[:, c:], hr_c[:, c:], reduction),
        "image": _squared_error(sr, hr, reduction),
        "texture": texture_loss(sr_c[:, c:], hr_c[:, c:], c, texture_alpha, texture_eps),
    }


class WaveletLoss(nn.Module):
    """Wavelet-SRNet's weighted loss, ``loss(sr, hr)`` on images (see the module docstring)."""

    def __init__(
        self,
        levels: int = 3,
        low_weight: float = 0.01,
        high_weight: float = 0.99,
        image_weight: float = 0.1,
        texture_weight: float = 1.0,
        texture_alpha: float = 1.2,
        texture_eps: float = 0.0,
        reduction: Reduction = "sum",
    ) -> None:
        super().__init__()
        if levels < 1:
            raise ValueError(f"wavelet loss: levels must be >= 1 (log2 of the scale), got {levels}")
        if reduction not in ("sum", "mean"):
            raise ValueError(f"wavelet loss: reduction 'sum' or 'mean', got {reduction!r}")
        self.levels = levels
        self.weights = {
            "low": low_weight,
            "high": high_weight,
            "image": image_weight,
            "texture": texture_weight,
        }
        self.texture_alpha = texture_alpha
        self.texture_eps = texture_eps
        self.reduction: Reduction = reduction

    def terms(self, sr: torch.Tensor, hr: torch.Tensor) -> dict[str, torch.Tensor]:
        return wavelet_loss_terms(
            sr,
            hr,
            self.levels,
            texture_alpha=self.texture_alpha,
            texture_eps=self.texture_eps,
            reduction=self.reduction,
        )

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        terms = self.terms(sr, hr)
        return sum((self.weights[k] * v for k, v in terms.items()), sr.new_zeros(()))
