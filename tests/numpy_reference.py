"""An independent, deliberately plain float64 NumPy version of the SR evaluation protocol.

It follows MATLAB's ``imresize.m`` / ``rgb2ycbcr`` / Wang's ``ssim_index`` step by step, pixel row
by pixel row, so that srkit's vectorised torch code has something simple to be checked against.
It is also the baseline of ``benchmarks/bench_eval_speed.py``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import correlate1d


def cubic(x: float) -> float:
    ax = abs(x)
    if ax <= 1:
        return 1.5 * ax**3 - 2.5 * ax**2 + 1
    if ax <= 2:
        return -0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2
    return 0.0


def resize_axis(image: np.ndarray, axis: int, out_len: int, scale: float) -> np.ndarray:
    """Resize one axis of a float64 array the way MATLAB's imresize does (bicubic)."""
    in_len = image.shape[axis]
    antialias = scale < 1
    width = 4.0 / scale if antialias else 4.0
    moved = np.moveaxis(image, axis, 0)
    out = np.empty((out_len, *moved.shape[1:]), dtype=np.float64)
    for j in range(out_len):
        center = (j + 1) / scale + 0.5 * (1 - 1 / scale)  # 1-based input coordinate
        first = math.floor(center - width / 2)
        taps = math.ceil(width) + 2
        acc = np.zeros(moved.shape[1:], dtype=np.float64)
        total = 0.0
        for k in range(first, first + taps):
            distance = center - k
            w = scale * cubic(scale * distance) if antialias else cubic(distance)
            if w == 0:
                continue
            # mirror 1-based index k into 1..in_len (symmetric padding)
            idx = (k - 1) % (2 * in_len)
            if idx >= in_len:
                idx = 2 * in_len - 1 - idx
            acc += w * moved[idx]
            total += w
        out[j] = acc / total
    return np.moveaxis(out, 0, axis)


def imresize(image: np.ndarray, scale: float | None = None, size=None) -> np.ndarray:
    """MATLAB imresize(bicubic) on an (H, W[, C]) float64 array."""
    h, w = image.shape[:2]
    if size is None:
        out_h, out_w = math.ceil(h * scale), math.ceil(w * scale)
        sh = sw = scale
    else:
        out_h, out_w = size
        sh, sw = out_h / h, out_w / w
    if sh <= sw:
        return resize_axis(resize_axis(image, 0, out_h, sh), 1, out_w, sw)
    return resize_axis(resize_axis(image, 1, out_w, sw), 0, out_h, sh)


def to_uint8(x: np.ndarray) -> np.ndarray:
    return np.floor(np.clip(x, 0, 255) + 0.5).astype(np.uint8)


def rgb2y(rgb_uint8: np.ndarray, rounded: bool) -> np.ndarray:
    rgb = rgb_uint8.astype(np.float64)
    y = 16.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0
    return np.floor(y + 0.5) if rounded else y


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    g = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
    g /= g.sum()

    def filt(x: np.ndarray) -> np.ndarray:
        y = correlate1d(correlate1d(x, g, axis=0, mode="constant"), g, axis=1, mode="constant")
        return y[5:-5, 5:-5]  # 'valid'

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a**2
    var_b = filt(b * b) - mu_b**2
    cov = filt(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float(np.mean(num / den))


def evaluate_bicubic(hr_uint8: np.ndarray, scale: int, legacy: bool = False) -> tuple[float, float]:
    """The whole protocol for the bicubic 'model' on one (H, W, 3) uint8 image."""
    h, w = hr_uint8.shape[:2]
    hr = hr_uint8[: h - h % scale, : w - w % scale]
    lr = to_uint8(imresize(hr.astype(np.float64), 1 / scale))
    sr = to_uint8(imresize(lr.astype(np.float64) / 255.0, scale) * 255.0)
    y_sr = rgb2y(sr, legacy)[scale:-scale, scale:-scale]
    y_hr = rgb2y(hr, legacy)[scale:-scale, scale:-scale]
    return psnr(y_sr, y_hr), ssim(y_sr, y_hr)
