"""RGB <-> YCbCr with MATLAB's ``rgb2ycbcr`` / ``ycbcr2rgb`` conventions (ITU-R BT.601).

For RGB in ``[0, 1]`` MATLAB gives ``Y`` in ``[16, 235] / 255`` and ``Cb``/``Cr`` in
``[16, 240] / 255``. Every SR paper's Y-PSNR is computed on this ``Y``; the two evaluation
conventions differ only in whether it is rounded to uint8 first (see ``srkit.metrics``).
"""

from __future__ import annotations

import torch

# Rows: Y, Cb, Cr. Coefficients are MATLAB's, applied to RGB scaled to [0, 1], output in 0..255.
_RGB_TO_YCBCR = (
    (65.481, 128.553, 24.966),
    (-37.797, -74.203, 112.0),
    (112.0, -93.786, -18.214),
)
_YCBCR_OFFSET = (16.0, 128.0, 128.0)


def _matrix(like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(_RGB_TO_YCBCR, dtype=like.dtype, device=like.device)


def _offset(like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(_YCBCR_OFFSET, dtype=like.dtype, device=like.device).view(3, 1, 1)


def _check_rgb(x: torch.Tensor) -> None:
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(f"expected RGB tensor (..., 3, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"expected a float tensor in [0, 1], got {x.dtype}")


def rgb_to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """RGB ``(..., 3, H, W)`` in ``[0, 1]`` -> YCbCr in ``[0, 1]`` (Y in [16/255, 235/255])."""
    _check_rgb(rgb)
    ycc = torch.einsum("oc,...chw->...ohw", _matrix(rgb), rgb) + _offset(rgb)
    return ycc / 255.0


def rgb_to_y(rgb: torch.Tensor) -> torch.Tensor:
    """Luma only: RGB ``(..., 3, H, W)`` in ``[0, 1]`` -> ``(..., 1, H, W)`` in ``[0, 1]``."""
    _check_rgb(rgb)
    weights = _matrix(rgb)[0].view(3, 1, 1)
    return ((rgb * weights).sum(dim=-3, keepdim=True) + 16.0) / 255.0


def ycbcr_to_rgb(ycc: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr` (MATLAB ``ycbcr2rgb``); output is not clamped."""
    _check_rgb(ycc)
    inverse = torch.linalg.inv(_matrix(ycc).double()).to(ycc.dtype)
    return torch.einsum("oc,...chw->...ohw", inverse, ycc * 255.0 - _offset(ycc))


def rgb_uint8_to_y(rgb: torch.Tensor, *, rounded: bool) -> torch.Tensor:
    """Y in 0..255 from uint8-valued RGB ``(..., 3, H, W)`` (any dtype holding 0..255 values).

    ``rounded=True`` is MATLAB's ``rgb2ycbcr`` on a uint8 image (result rounded to uint8, the
    legacy evaluation convention); ``rounded=False`` keeps Y in float (the modern convention).
    """
    r, g, b = rgb.to(torch.float64).unbind(dim=-3)
    y = (r * _RGB_TO_YCBCR[0][0] + g * _RGB_TO_YCBCR[0][1] + b * _RGB_TO_YCBCR[0][2]) / 255.0
    y = y.unsqueeze(-3).add_(16.0)
    return round_half_up(y) if rounded else y


def round_half_up(x: torch.Tensor) -> torch.Tensor:
    """MATLAB's ``round`` for the non-negative values images hold (torch rounds half to even)."""
    return torch.floor(x + 0.5)
