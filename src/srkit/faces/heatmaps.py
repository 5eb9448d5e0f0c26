"""Landmark heatmaps: one Gaussian per landmark, the targets of facial attention (PFSRNet).

Kim et al. (BMVC 2019) weight the pixel error by heatmaps of the face's landmarks (from a
face-alignment network run on the HR), so the error on the eyes, nose, mouth and jaw line counts
and the flat cheek does not. srkit draws the heatmaps from dlib's 68 points of each HR crop
(computed once, :mod:`srkit.faces.trainset`), at a quarter of the crop's resolution as FAN does.
"""

from __future__ import annotations

import torch

__all__ = ["landmark_heatmaps"]


def landmark_heatmaps(
    points: torch.Tensor, image_size: int, size: int = 32, sigma: float = 1.0
) -> torch.Tensor:
    """``(..., K, 2)`` pixel points of an ``image_size`` crop -> ``(..., K, size, size)`` maps.

    Each map is ``exp(-d^2 / (2 sigma^2))`` around the point (peak 1; ``sigma`` in heatmap
    pixels), with pixel centres matched between the crop and the smaller map.
    """
    scale = size / image_size
    p = (points.to(torch.float32) + 0.5) * scale - 0.5
    grid = torch.arange(size, dtype=torch.float32)
    dx = grid - p[..., 0, None]  # (..., K, size)
    dy = grid - p[..., 1, None]
    return torch.exp(-(dy[..., :, None] ** 2 + dx[..., None, :] ** 2) / (2 * sigma**2))
