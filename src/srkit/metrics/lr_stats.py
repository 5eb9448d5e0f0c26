"""Match statistics of two sets of LR images: how well a learned (or hand-made) degradation
matches real low-resolution images when no HR of those images exists.

Per image (RGB uint8 ``(H, W, 3)``; grey statistics on BT.601 luma, in 8-bit units):

- ``noise``: Immerkaer's fast noise estimate (Immerkaer, "Fast Noise Variance Estimation",
  CVIU 1996): the mean absolute response to the Laplacian-difference mask
  ``[[1, -2, 1], [-2, 4, -2], [1, -2, 1]]`` times ``sqrt(pi / 2) / 6``, a noise standard
  deviation for white Gaussian noise;
- ``laplacian_var``: variance of the 4-neighbour Laplacian (sharpness: blur lowers it);
- ``hf_ratio``: the share of the spectral energy (DC removed) above half the Nyquist frequency;
- ``blockiness``: mean absolute difference across the 8 x 8 JPEG block boundaries (columns and
  rows ``8k - 1 | 8k`` from the image origin) over the mean inside the blocks: 1 without
  blocking, above 1 with it;
- ``mean_r/g/b``, ``std_r/g/b``: colour statistics (0..255); ``saturation``: mean HSV
  saturation (0..1).

:func:`set_statistics` averages them over a set (mean and standard deviation);
:func:`compare_sets` gives both sets' figures and the difference (fake - real).
:func:`domain_classifier_accuracy` trains a small CNN for a few hundred steps on real vs generated
patches and reports its held-out accuracy: 0.5 means the sets cannot be told apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

STATISTICS = (
    "noise",
    "laplacian_var",
    "hf_ratio",
    "blockiness",
    "mean_r",
    "mean_g",
    "mean_b",
    "std_r",
    "std_g",
    "std_b",
    "saturation",
)
_LUMA = np.array([0.299, 0.587, 0.114])


def _check(image: np.ndarray) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {image.shape}")
    if min(image.shape[:2]) < 8:
        raise ValueError(f"an LR image must be at least 8 x 8 pixels, got {image.shape[:2]}")
    return image.astype(np.float64)


def noise_level(gray: np.ndarray) -> float:
    """Immerkaer's noise standard deviation of a grey image (any units: the image's)."""
    g = gray
    response = (
        g[:-2, :-2] - 2 * g[:-2, 1:-1] + g[:-2, 2:]
        - 2 * g[1:-1, :-2] + 4 * g[1:-1, 1:-1] - 2 * g[1:-1, 2:]
        + g[2:, :-2] - 2 * g[2:, 1:-1] + g[2:, 2:]
    )  # fmt: skip
    return float(math.sqrt(math.pi / 2) / 6 * np.abs(response).mean())


def laplacian_variance(gray: np.ndarray) -> float:
    g = gray
    lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4 * g[1:-1, 1:-1]
    return float(lap.var())


def high_frequency_ratio(gray: np.ndarray) -> float:
    """Energy above half the Nyquist frequency (in either axis' radius) over all but DC."""
    g = gray - gray.mean()
    power = np.abs(np.fft.fft2(g)) ** 2
    fy = np.abs(np.fft.fftfreq(g.shape[0]))[:, None]
    fx = np.abs(np.fft.fftfreq(g.shape[1]))[None, :]
    radius = np.sqrt(fx**2 + fy**2)
    total = power.sum()
    return float(power[radius > 0.25].sum() / total) if total > 0 else 0.0


def blockiness(gray: np.ndarray, block: int = 8) -> float:
    """Mean |difference| across block boundaries over the mean inside blocks (1: none)."""
    ratios = []
    for diff in (np.abs(np.diff(gray, axis=1)), np.abs(np.diff(gray, axis=0)).T):
        index = np.arange(diff.shape[1])
        boundary = (index + 1) % block == 0
        if boundary.any() and (~boundary).any():
            inside = diff[:, ~boundary].mean()
            ratios.append(diff[:, boundary].mean() / max(inside, 1e-6))
    return float(np.mean(ratios)) if ratios else 1.0


def image_statistics(image: np.ndarray) -> dict[str, float]:
    """The statistics of one RGB uint8 image (see the module docstring)."""
    rgb = _check(image)
    gray = rgb @ _LUMA
    top, bottom = rgb.max(axis=2), rgb.min(axis=2)
    saturation = np.where(top > 0, (top - bottom) / np.maximum(top, 1e-9), 0.0)
    means, stds = rgb.reshape(-1, 3).mean(0), rgb.reshape(-1, 3).std(0)
    return {
        "noise": noise_level(gray),
        "laplacian_var": laplacian_variance(gray),
        "hf_ratio": high_frequency_ratio(gray),
        "blockiness": blockiness(gray),
        "mean_r": float(means[0]),
        "mean_g": float(means[1]),
        "mean_b": float(means[2]),
        "std_r": float(stds[0]),
        "std_g": float(stds[1]),
        "std_b": float(stds[2]),
        "saturation": float(saturation.mean()),
    }


@dataclass(frozen=True)
class SetStatistic:
    mean: float
    std: float


def set_statistics(images: Sequence[np.ndarray]) -> dict[str, SetStatistic]:
    """Mean and standard deviation over ``images`` of every statistic."""
    if not images:
        raise ValueError("an empty set of images")
    rows = [image_statistics(image) for image in images]
    return {
        key: SetStatistic(
            float(np.mean([r[key] for r in rows])), float(np.std([r[key] for r in rows]))
        )
        for key in STATISTICS
    }


@dataclass(frozen=True)
class Comparison:
    """One statistic of two sets: real and fake (mean, std), and ``fake - real`` of the means."""

    name: str
    real: SetStatistic
    fake: SetStatistic

    @property
    def difference(self) -> float:
        return self.fake.mean - self.real.mean

    @property
    def relative(self) -> float:
        """The difference over the real set's spread (its std; 1e-9 when constant)."""
        return self.difference / max(self.real.std, 1e-9)


def compare_sets(real: Sequence[np.ndarray], fake: Sequence[np.ndarray]) -> list[Comparison]:
    """Every statistic of both sets, in :data:`STATISTICS` order."""
    a, b = set_statistics(real), set_statistics(fake)
    return [Comparison(key, a[key], b[key]) for key in STATISTICS]


# --- domain classifier --------------------------------------------------------------------


def _patches(
    images: Sequence[np.ndarray], size: int, count: int, rng: np.random.Generator
) -> torch.Tensor:
    usable = [im for im in images if min(im.shape[:2]) >= size]
    if not usable:
        raise ValueError(f"no image is at least {size} x {size} pixels for the classifier")
    out = np.empty((count, size, size, 3), dtype=np.uint8)
    for i in range(count):
        image = usable[int(rng.integers(len(usable)))]
        top = int(rng.integers(image.shape[0] - size + 1))
        left = int(rng.integers(image.shape[1] - size + 1))
        out[i] = image[top : top + size, left : left + size]
    return torch.from_numpy(out).permute(0, 3, 1, 2).float() / 255.0


def _classifier(width: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1),
        nn.LeakyReLU(0.2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * width, 1),
    )


def domain_classifier_accuracy(
    real: Sequence[np.ndarray],
    fake: Sequence[np.ndarray],
    *,
    patch: int = 32,
    steps: int = 300,
    batch_size: int = 64,
    width: int = 16,
    seed: int = 0,
) -> float:
    """Held-out accuracy of a small CNN trained to tell ``real`` from ``fake`` patches.

    The images of each set are split in two halves (so held-out patches come from images the
    classifier never saw); ``patch``-pixel crops at random offsets (not aligned to the JPEG
    grid) train it for ``steps`` Adam steps; 1024 crops of each held-out half score it. 0.5:
    indistinguishable; 1.0: told apart every time. Sets of one image share it (no split).
    """
    rng = np.random.default_rng(seed)

    def halves(images: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        order = rng.permutation(len(images))
        if len(images) < 2:
            return list(images), list(images)
        cut = len(images) // 2
        return [images[i] for i in order[:cut]], [images[i] for i in order[cut:]]

    real_train, real_test = halves(real)
    fake_train, fake_test = halves(fake)
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = _classifier(width)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    half = max(1, batch_size // 2)
    net.train()
    for _ in range(steps):
        x = torch.cat(
            [_patches(real_train, patch, half, rng), _patches(fake_train, patch, half, rng)]
        )
        y = torch.cat([torch.ones(half), torch.zeros(half)])
        flip = torch.rand(x.shape[0], generator=generator) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        loss = loss_fn(net(x).squeeze(1), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    net.eval()
    correct, total = 0, 0
    with torch.no_grad():
        for images, label in ((real_test, 1.0), (fake_test, 0.0)):
            for _ in range(4):
                x = _patches(images, patch, 256, rng)
                predicted = (net(x).squeeze(1) > 0).float()
                correct += int((predicted == label).sum())
                total += x.shape[0]
    return correct / total
