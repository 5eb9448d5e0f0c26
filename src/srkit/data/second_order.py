"""Real-ESRGAN's second-order synthetic degradation, the ``realesrgan`` preset.

Wang et al., "Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure Synthetic Data"
(ICCVW 2021) make an LR training input by degrading the HR image twice, each round a *blur ->
random resize -> noise -> JPEG*, and end with a resize to the LR size and a sinc filter. The
defaults here are the settings published with the paper (Real-ESRGAN's
``options/train_realesrgan_x4plus.yml``, BasicSR's ``basicsr/data/degradations.py``):

1. **First round.** A blur kernel (size a random odd number in 7..21): with probability
   ``sinc_prob`` (0.1) a 2-D sinc, else one of ``kernel_list`` drawn by ``kernel_prob``: isotropic
   or anisotropic Gaussian (``blur_sigma`` [0.2, 3], rotation uniform in [-pi, pi]), generalized
   Gaussian ``exp(-q^beta / 2)`` (``betag`` [0.5, 4]) or plateau ``1 / (1 + q^beta)`` (``betap``
   [1, 2]), where ``q`` is the squared Mahalanobis distance; beta is drawn from [low, 1] or
   [1, high] with equal odds when the range holds 1, as BasicSR does. Then a resize up, down or not
   (``resize_prob`` [0.2, 0.7, 0.1]) by a factor from ``resize_range`` [0.15, 1.5], with area,
   bilinear or bicubic interpolation (uniformly); Gaussian noise (``gaussian_noise_prob`` 0.5,
   ``noise_sigma`` [1, 30] in 8-bit levels) or else Poisson noise (``poisson_scale`` [0.05, 3]),
   the same on all channels with ``gray_noise_prob`` 0.4; a JPEG round trip (``jpeg_quality``
   [30, 95], a real encode and decode with Pillow).
2. **Second round** (``second.prob``: 1, always, in Real-ESRGAN). The blur only with
   ``blur_prob`` 0.8, kernels as above with ``blur_sigma`` [0.2, 1.5]; a resize to the LR size
   times a factor (``resize_prob`` [0.3, 0.4, 0.3], ``resize_range`` [0.3, 1.2]); noise
   (``noise_sigma`` [1, 25], ``poisson_scale`` [0.05, 2.5]). Its JPEG (``jpeg_quality`` [30, 95])
   belongs to the final step.
3. **Final step.** *[resize to exactly H/scale x W/scale + sinc filter]* and the second JPEG, in
   one of the two orders with equal odds (``jpeg_first_prob``); the sinc filter (cutoff uniform in
   [pi/3, pi], size 7..21) only with ``sinc_prob`` 0.8. The result is clamped to [0, 1] and rounded
   to 8-bit levels (``quantize: true``), like every srkit pipeline.

Each sample draws all its parameters and noise from its own generator, seeded from the caller's
``numpy.random.Generator``: the same generator gives the same LR bit for bit, and a sample's LR
does not depend on the batch it is in. Blurs of same-size samples run as one grouped
convolution; everything else is per sample.

Where this differs from the published code: parameters are drawn per sample (Real-ESRGAN draws one
resize per batch and mixes batches through a pool of training pairs); JPEG is Pillow's codec at an
integer quality rather than a differentiable JPEG at a float one; the HR is degraded as given (the
paper degrades and trains on an unsharp-masked HR: sharpen the data first if you want that).

Example (``realesrgan.yaml``, for ``data.degradation`` and ``srkit bench --degradation``); every
key under ``options`` is optional, these are the defaults::

    preset: realesrgan
    quantize: true
    options:
      first:
        blur_prob: 1.0
        kernel_list: [iso, aniso, generalized_iso, generalized_aniso, plateau_iso, plateau_aniso]
        kernel_prob: [0.45, 0.25, 0.12, 0.03, 0.12, 0.03]
        kernel_size: [7, 21]          # odd sizes, uniformly
        sinc_prob: 0.1
        blur_sigma: [0.2, 3.0]
        betag: [0.5, 4.0]
        betap: [1.0, 2.0]
        resize_prob: [0.2, 0.7, 0.1]  # up, down, keep
        resize_range: [0.15, 1.5]
        resize_modes: [area, bilinear, bicubic]
        gaussian_noise_prob: 0.5      # else Poisson
        noise_sigma: [1, 30]          # 8-bit levels
        poisson_scale: [0.05, 3.0]
        gray_noise_prob: 0.4
        jpeg_quality: [30, 95]
      second:                         # the same keys, and prob
        prob: 1.0                     # run the second round at all
        blur_prob: 0.8
        blur_sigma: [0.2, 1.5]
        resize_prob: [0.3, 0.4, 0.3]
        resize_range: [0.3, 1.2]
        noise_sigma: [1, 25]
        poisson_scale: [0.05, 2.5]
        jpeg_quality: [30, 95]        # the final step's JPEG
      final:
        sinc_prob: 0.8
        kernel_size: [7, 21]
        resize_modes: [area, bilinear, bicubic]
        jpeg_first_prob: 0.5          # JPEG, then resize + sinc; else resize + sinc, then JPEG
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from srkit.data.degrade import Degradation, Range, _check_call, jpeg_roundtrip

#: The blur kernel families of ``kernel_list``.
KERNELS: tuple[str, ...] = (
    "iso",
    "aniso",
    "generalized_iso",
    "generalized_aniso",
    "plateau_iso",
    "plateau_aniso",
)
#: The interpolations of the random resizes (``torch.nn.functional.interpolate`` modes).
RESIZE_MODES: tuple[str, ...] = ("area", "bilinear", "bicubic")

_KERNEL_PROB = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
_LUMA = (0.299, 0.587, 0.114)  # BT.601, the grey of gray Poisson noise
# Sinc cutoffs (radians per pixel; pi is Nyquist): the blur rounds' for kernels under 13 pixels
# and from 13 on, and the final filter's.
_SINC_SMALL = (math.pi / 3, math.pi)
_SINC_LARGE = (math.pi / 5, math.pi)
_SINC_FINAL = (math.pi / 3, math.pi)


# ------------------------------------------------------------------------------------------------
# settings


def _bounds(
    value: Range, name: str, low: float = 0.0, high: float = math.inf
) -> tuple[float, float]:
    if isinstance(value, int | float):
        lo = hi = float(value)
    else:
        if len(value) != 2 or value[0] > value[1]:
            raise ValueError(f"{name}: a range is [low, high], got {value!r}")
        lo, hi = float(value[0]), float(value[1])
    if lo < low or hi > high:
        raise ValueError(f"{name}: values must lie in [{low:g}, {high:g}], got {value!r}")
    return lo, hi


def _odd_sizes(value: int | list[int], name: str) -> list[int]:
    if isinstance(value, int):
        lo = hi = value
    elif len(value) == 2:
        lo, hi = value
    else:
        raise ValueError(f"{name}: a size or [low, high], got {value!r}")
    if lo < 3 or lo > hi or lo % 2 == 0 or hi % 2 == 0:
        raise ValueError(f"{name}: odd kernel sizes >= 3 as [low, high], got {value!r}")
    return list(range(lo, hi + 1, 2))


def _probability(value: float, name: str) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: a probability in [0, 1], got {value!r}")


def _weights(values: list[float], count: int, name: str) -> None:
    if len(values) != count or any(v < 0 for v in values) or sum(values) <= 0:
        raise ValueError(f"{name}: {count} non-negative weights, not all 0, got {values!r}")


def _choices(values: list[str], allowed: tuple[str, ...], name: str) -> None:
    unknown = [v for v in values if v not in allowed]
    if not values or unknown:
        raise ValueError(f"{name}: a non-empty list of {', '.join(allowed)}, got {values!r}")


@dataclass
class StageConfig:
    """One round of blur, random resize, noise and JPEG; the defaults are Real-ESRGAN's first."""

    blur_prob: float = 1.0
    kernel_list: list[str] = field(default_factory=lambda: list(KERNELS))
    kernel_prob: list[float] = field(default_factory=lambda: list(_KERNEL_PROB))
    kernel_size: int | list[int] = field(default_factory=lambda: [7, 21])
    sinc_prob: float = 0.1
    blur_sigma: Range = field(default_factory=lambda: [0.2, 3.0])
    betag: Range = field(default_factory=lambda: [0.5, 4.0])
    betap: Range = field(default_factory=lambda: [1.0, 2.0])
    resize_prob: list[float] = field(default_factory=lambda: [0.2, 0.7, 0.1])  # up, down, keep
    resize_range: Range = field(default_factory=lambda: [0.15, 1.5])
    resize_modes: list[str] = field(default_factory=lambda: list(RESIZE_MODES))
    gaussian_noise_prob: float = 0.5  # else Poisson noise
    noise_sigma: Range = field(default_factory=lambda: [1.0, 30.0])  # 8-bit levels
    poisson_scale: Range = field(default_factory=lambda: [0.05, 3.0])
    gray_noise_prob: float = 0.4
    jpeg_quality: Range = field(default_factory=lambda: [30.0, 95.0])

    def __post_init__(self) -> None:
        for name in ("blur_prob", "sinc_prob", "gaussian_noise_prob", "gray_noise_prob"):
            _probability(getattr(self, name), name)
        _choices(self.kernel_list, KERNELS, "kernel_list")
        _weights(self.kernel_prob, len(self.kernel_list), "kernel_prob")
        _odd_sizes(self.kernel_size, "kernel_size")
        _bounds(self.blur_sigma, "blur_sigma", low=1e-3)
        _bounds(self.betag, "betag", low=1e-3)
        _bounds(self.betap, "betap", low=1e-3)
        _weights(self.resize_prob, 3, "resize_prob (up, down, keep)")
        low, high = _bounds(self.resize_range, "resize_range", low=1e-3)
        if not low <= 1.0 <= high:
            raise ValueError(f"resize_range: [down to, up to] around 1, got {self.resize_range!r}")
        _choices(self.resize_modes, RESIZE_MODES, "resize_modes")
        _bounds(self.noise_sigma, "noise_sigma")
        _bounds(self.poisson_scale, "poisson_scale")
        _bounds(self.jpeg_quality, "jpeg_quality", low=1.0, high=100.0)


@dataclass
class SecondStageConfig(StageConfig):
    """Real-ESRGAN's second round; its JPEG (``jpeg_quality``) is the final step's."""

    blur_prob: float = 0.8
    blur_sigma: Range = field(default_factory=lambda: [0.2, 1.5])
    resize_prob: list[float] = field(default_factory=lambda: [0.3, 0.4, 0.3])
    resize_range: Range = field(default_factory=lambda: [0.3, 1.2])
    noise_sigma: Range = field(default_factory=lambda: [1.0, 25.0])
    poisson_scale: Range = field(default_factory=lambda: [0.05, 2.5])
    prob: float = 1.0  # the probability of running this round at all

    def __post_init__(self) -> None:
        super().__post_init__()
        _probability(self.prob, "prob")


@dataclass
class FinalConfig:
    """The last step: resize to the LR size, sinc filter and JPEG."""

    sinc_prob: float = 0.8
    kernel_size: int | list[int] = field(default_factory=lambda: [7, 21])
    resize_modes: list[str] = field(default_factory=lambda: list(RESIZE_MODES))
    jpeg_first_prob: float = 0.5  # JPEG before [resize + sinc]; else after

    def __post_init__(self) -> None:
        _probability(self.sinc_prob, "sinc_prob")
        _probability(self.jpeg_first_prob, "jpeg_first_prob")
        _odd_sizes(self.kernel_size, "kernel_size")
        _choices(self.resize_modes, RESIZE_MODES, "resize_modes")


@dataclass
class SecondOrderConfig:
    """The ``options`` of ``preset: realesrgan``."""

    first: StageConfig = field(default_factory=StageConfig)
    second: SecondStageConfig = field(default_factory=SecondStageConfig)
    final: FinalConfig = field(default_factory=FinalConfig)


# ------------------------------------------------------------------------------------------------
# kernels


def _quadratic_form(size: int, sigma_x: float, sigma_y: float, theta: float) -> torch.Tensor:
    """``q = p^T S^-1 p`` on a ``size`` x ``size`` grid centred on 0, for the covariance ``S`` with
    standard deviations ``sigma_x``, ``sigma_y`` along axes rotated by ``theta`` (radians)."""
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    cos, sin = math.cos(theta), math.sin(theta)
    u = cos * xx + sin * yy
    v = -sin * xx + cos * yy
    return (u / sigma_x) ** 2 + (v / sigma_y) ** 2


def _normalized(kernel: torch.Tensor) -> torch.Tensor:
    return kernel / kernel.sum()


def gaussian_kernel(
    size: int, sigma_x: float, sigma_y: float | None = None, theta: float = 0.0
) -> torch.Tensor:
    """A Gaussian, isotropic when ``sigma_y`` is None; float64, sums to 1."""
    q = _quadratic_form(size, sigma_x, sigma_x if sigma_y is None else sigma_y, theta)
    return _normalized(torch.exp(-0.5 * q))


def generalized_gaussian_kernel(
    size: int, sigma_x: float, sigma_y: float, theta: float, beta: float
) -> torch.Tensor:
    """``exp(-q^beta / 2)``: beta = 1 is the Gaussian, below 1 heavier tails, above a flatter top.

    (With the distance ``r = sqrt(q)`` this is ``exp(-r^(2 beta) / 2)``: the "shape 2" Gaussian
    of the ``exp(-|x|^p)`` convention is beta = 1 here, the convention of the paper's ranges.)
    """
    q = _quadratic_form(size, sigma_x, sigma_y, theta)
    return _normalized(torch.exp(-0.5 * q**beta))


def plateau_kernel(
    size: int, sigma_x: float, sigma_y: float, theta: float, beta: float
) -> torch.Tensor:
    """``1 / (1 + q^beta)``: a flat top and heavy tails."""
    q = _quadratic_form(size, sigma_x, sigma_y, theta)
    return _normalized(1.0 / (1.0 + q**beta))


def sinc_kernel(size: int, cutoff: float) -> torch.Tensor:
    """The ideal circular low-pass filter of ``cutoff`` radians per pixel (pi: Nyquist), cut to
    ``size`` x ``size``: ``cutoff J1(cutoff r) / (2 pi r)``. Its ripples make ringing and
    overshoot around edges."""
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    r = torch.sqrt(xx**2 + yy**2)
    safe = torch.where(r > 0, r, torch.ones_like(r))
    kernel = cutoff * torch.special.bessel_j1(cutoff * safe) / (2 * math.pi * safe)
    kernel = torch.where(r > 0, kernel, torch.full_like(r, cutoff**2 / (4 * math.pi)))
    return _normalized(kernel)


@dataclass(frozen=True)
class KernelDraw:
    """The drawn parameters of one kernel (``kind``: one of :data:`KERNELS` or ``sinc``)."""

    kind: str
    size: int
    sigma_x: float = 0.0
    sigma_y: float = 0.0
    theta: float = 0.0
    beta: float = 1.0
    cutoff: float = 0.0  # sinc only

    def kernel(self) -> torch.Tensor:
        if self.kind == "sinc":
            return sinc_kernel(self.size, self.cutoff)
        shape = (self.size, self.sigma_x, self.sigma_y, self.theta)
        if self.kind in ("iso", "aniso"):
            return gaussian_kernel(*shape)
        if self.kind.startswith("generalized"):
            return generalized_gaussian_kernel(*shape, self.beta)
        return plateau_kernel(*shape, self.beta)


# ------------------------------------------------------------------------------------------------
# drawing the parameters


def _uniform(rng: np.random.Generator, value: Range) -> float:
    low, high = _bounds(value, "range")
    return float(rng.uniform(low, high))


def _pick(rng: np.random.Generator, weights: list[float]) -> int:
    p = np.asarray(weights, dtype=np.float64)
    return int(rng.choice(len(p), p=p / p.sum()))


def _beta(rng: np.random.Generator, value: Range) -> float:
    """BasicSR's rule: below or above 1 with equal odds when the range holds 1 (so ``[1, 2]`` gives
    exactly 1 half the time); otherwise uniform over the range."""
    low, high = _bounds(value, "beta")
    if low <= 1.0 <= high:
        return float(rng.uniform(low, 1.0) if rng.random() < 0.5 else rng.uniform(1.0, high))
    return float(rng.uniform(low, high))


def _quality(rng: np.random.Generator, value: Range) -> int:
    return int(round(_uniform(rng, value)))


def _size(rng: np.random.Generator, value: int | list[int]) -> int:
    sizes = _odd_sizes(value, "kernel_size")
    return sizes[int(rng.integers(len(sizes)))]


def draw_kernel(rng: np.random.Generator, stage: StageConfig) -> KernelDraw:
    """One blur kernel of a round: a sinc with ``sinc_prob``, else a family of ``kernel_list``."""
    size = _size(rng, stage.kernel_size)
    if rng.random() < stage.sinc_prob:
        low, high = _SINC_SMALL if size < 13 else _SINC_LARGE
        return KernelDraw("sinc", size, cutoff=float(rng.uniform(low, high)))
    kind = stage.kernel_list[_pick(rng, stage.kernel_prob)]
    sigma_x = _uniform(rng, stage.blur_sigma)
    if kind.endswith("aniso"):
        sigma_y = _uniform(rng, stage.blur_sigma)
        theta = float(rng.uniform(-math.pi, math.pi))
    else:
        sigma_y, theta = sigma_x, 0.0
    beta = 1.0
    if kind.startswith("generalized"):
        beta = _beta(rng, stage.betag)
    elif kind.startswith("plateau"):
        beta = _beta(rng, stage.betap)
    return KernelDraw(kind, size, sigma_x, sigma_y, theta, beta)


@dataclass(frozen=True)
class StagePlan:
    """The drawn parameters of one round."""

    kernel: KernelDraw | None  # None: no blur
    resize: str  # "up", "down" or "keep"
    factor: float
    mode: str
    noise: str  # "gaussian" or "poisson"
    noise_level: float  # sigma in 8-bit levels, or the Poisson scale
    gray_noise: bool


@dataclass(frozen=True)
class SamplePlan:
    """Every parameter of one sample's degradation (the noise itself is drawn when applied)."""

    first: StagePlan
    first_quality: int
    second: StagePlan | None  # None: the second round is skipped (``second.prob``)
    jpeg_first: bool
    final_mode: str
    final_sinc: KernelDraw | None
    final_quality: int


def _draw_stage(rng: np.random.Generator, stage: StageConfig) -> StagePlan:
    kernel = draw_kernel(rng, stage) if rng.random() < stage.blur_prob else None
    resize = ("up", "down", "keep")[_pick(rng, stage.resize_prob)]
    low, high = _bounds(stage.resize_range, "resize_range")
    factor = 1.0
    if resize != "keep":
        factor = float(rng.uniform(1.0, high) if resize == "up" else rng.uniform(low, 1.0))
    mode = stage.resize_modes[int(rng.integers(len(stage.resize_modes)))]
    gaussian = bool(rng.random() < stage.gaussian_noise_prob)
    level = _uniform(rng, stage.noise_sigma if gaussian else stage.poisson_scale)
    gray = bool(rng.random() < stage.gray_noise_prob)
    noise = "gaussian" if gaussian else "poisson"
    return StagePlan(kernel, resize, factor, mode, noise, level, gray)


def draw_plan(rng: np.random.Generator, config: SecondOrderConfig) -> SamplePlan:
    """All the parameters of one sample, drawn from its generator."""
    first = _draw_stage(rng, config.first)
    first_quality = _quality(rng, config.first.jpeg_quality)
    second = _draw_stage(rng, config.second) if rng.random() < config.second.prob else None
    final = config.final
    jpeg_first = bool(rng.random() < final.jpeg_first_prob)
    final_mode = final.resize_modes[int(rng.integers(len(final.resize_modes)))]
    final_sinc = None
    if rng.random() < final.sinc_prob:
        size = _size(rng, final.kernel_size)
        final_sinc = KernelDraw("sinc", size, cutoff=float(rng.uniform(*_SINC_FINAL)))
    final_quality = _quality(rng, config.second.jpeg_quality)
    return SamplePlan(
        first, first_quality, second, jpeg_first, final_mode, final_sinc, final_quality
    )


def sample_generators(rng: np.random.Generator, count: int) -> list[np.random.Generator]:
    """One generator per sample, seeded from ``rng``: a sample's draws do not depend on the
    others of its batch."""
    seeds = rng.integers(0, 2**62, size=(count, 2))
    return [np.random.default_rng([int(a), int(b)]) for a, b in seeds]


# ------------------------------------------------------------------------------------------------
# applying them


def _reflect_index(length: int, pad: int) -> torch.Tensor:
    """Source indices of a reflected border (``reflect``, the edge not repeated), also when the
    border is wider than the image (the reflection then repeats)."""
    index = torch.arange(-pad, length + pad)
    if length == 1:
        return torch.zeros_like(index)
    period = 2 * (length - 1)
    index = index.remainder(period)
    return torch.where(index >= length, period - index, index)


def _pad_reflect(x: torch.Tensor, pad: int) -> torch.Tensor:
    height, width = x.shape[-2:]
    if pad < height and pad < width:
        return F.pad(x, (pad, pad, pad, pad), mode="reflect")
    rows, cols = _reflect_index(height, pad), _reflect_index(width, pad)
    return x.index_select(-2, rows.to(x.device)).index_select(-1, cols.to(x.device))


def _filter_fft(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """``x`` correlated with ``kernel`` (reflected borders) by FFT: exact up to rounding, as the
    circular wrap-around falls outside the part kept."""
    size = kernel.shape[-1]
    padded = _pad_reflect(x, size // 2)
    shape = tuple(padded.shape[-2:])
    flipped = kernel.flip(-2, -1).to(device=x.device, dtype=x.dtype)
    product = torch.fft.rfft2(padded) * torch.fft.rfft2(flipped, s=shape)
    return torch.fft.irfft2(product, s=shape)[..., size - 1 :, size - 1 :]


def filter_per_sample(
    images: list[torch.Tensor], kernels: list[torch.Tensor | None]
) -> list[torch.Tensor]:
    """Each ``(1, C, h, w)`` image filtered with its own square kernel (None: left as is), with
    reflected borders. Images of one size go through one grouped convolution; float64 ones (the
    uint8 evaluation path) through FFTs, per sample, as PyTorch's float64 convolution is slow."""
    out = list(images)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, (image, kernel) in enumerate(zip(images, kernels, strict=True)):
        if kernel is None:
            continue
        if image.dtype == torch.float64:
            out[i] = _filter_fft(image, kernel)
        else:
            groups.setdefault((*image.shape, image.dtype.itemsize), []).append(i)
    for members in groups.values():
        first = images[members[0]]
        _, channels, height, width = first.shape
        size = max(kernels[i].shape[-1] for i in members)  # smaller kernels padded with zeros
        weights = []
        for i in members:
            margin = (size - kernels[i].shape[-1]) // 2
            padded = F.pad(kernels[i], (margin, margin, margin, margin))
            weights.append(padded.expand(channels, size, size))
        count = len(members) * channels
        weight = torch.stack(weights).reshape(count, 1, size, size).to(first.dtype)
        batch = torch.cat([images[i] for i in members]).reshape(1, count, height, width)
        filtered = F.conv2d(_pad_reflect(batch, size // 2), weight.to(first.device), groups=count)
        for j, i in enumerate(members):
            out[i] = filtered[:, j * channels : (j + 1) * channels]
    return out


def _resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    if tuple(x.shape[-2:]) == size:  # interpolate to the same size is the identity
        return x
    options = {} if mode == "area" else {"align_corners": False}
    return F.interpolate(x, size=size, mode=mode, **options)


def _scaled(size: tuple[int, int], factor: float) -> tuple[int, int]:
    return max(1, int(size[0] * factor)), max(1, int(size[1] * factor))


def _add_noise(x: torch.Tensor, plan: StagePlan, rng: np.random.Generator) -> torch.Tensor:
    """Gaussian or Poisson noise (one plane for all channels when gray), then clamped."""
    _, channels, height, width = x.shape
    if plan.noise == "gaussian":
        shape = (1, 1 if plan.gray_noise else channels, height, width)
        noise = torch.from_numpy(rng.standard_normal(shape)) * (plan.noise_level / 255.0)
    else:
        base = x.detach().cpu().double()
        if plan.gray_noise and channels == 3:
            base = (base * torch.tensor(_LUMA, dtype=torch.float64).view(1, 3, 1, 1)).sum(
                dim=1, keepdim=True
            )
        levels = base.mul(255).round().clamp(0, 255).numpy() / 255.0
        # photons per unit intensity: the number of distinct 8-bit levels, up to a power of 2
        # (scikit-image's and BasicSR's rule)
        photons = 2.0 ** math.ceil(math.log2(len(np.unique(levels))))
        counts = rng.poisson(levels * photons)
        noise = torch.from_numpy(counts / photons - levels) * plan.noise_level
    return (x + noise.to(device=x.device, dtype=x.dtype)).clamp(0, 1)


def _jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    return jpeg_roundtrip(x[0].clamp(0, 1), quality).unsqueeze(0).to(x.device)


def _kernel(draw: KernelDraw | None) -> torch.Tensor | None:
    return None if draw is None else draw.kernel()


class SecondOrderDegradation(Degradation):
    """``preset: realesrgan``: HR ``(N, C, H, W)`` in [0, 1] -> LR ``(N, C, H/s, W/s)``."""

    def __init__(self, config: SecondOrderConfig | None = None, quantize: bool = True) -> None:
        super().__init__(quantize=quantize)
        self.steps = []  # not a list of steps
        self.config = config or SecondOrderConfig()

    @property
    def is_default(self) -> bool:
        return False

    def __call__(
        self, hr: torch.Tensor, scale: int, rng: np.random.Generator | int
    ) -> torch.Tensor:
        rng = _check_call(hr, scale, rng)
        generators = sample_generators(rng, hr.shape[0])
        plans = [draw_plan(g, self.config) for g in generators]
        return self._finish(self.apply_plans(hr, scale, plans, generators))

    def apply_plans(
        self,
        hr: torch.Tensor,
        scale: int,
        plans: list[SamplePlan],
        generators: list[np.random.Generator],
    ) -> torch.Tensor:
        """The degradation of drawn plans (noise from ``generators``), before the final clamp and
        rounding."""
        height, width = hr.shape[-2:]
        target = (height // scale, width // scale)
        xs = list(hr.split(1))
        # the first round
        xs = filter_per_sample(xs, [_kernel(p.first.kernel) for p in plans])
        xs = [_resize(x, _scaled((height, width), p.first.factor), p.first.mode)
              for x, p in zip(xs, plans, strict=True)]  # fmt: skip
        xs = [_add_noise(x, p.first, g) for x, p, g in zip(xs, plans, generators, strict=True)]
        xs = [_jpeg(x, p.first_quality) for x, p in zip(xs, plans, strict=True)]
        # the second round (its JPEG is in the final step)
        seconds = [p.second for p in plans]
        xs = filter_per_sample(xs, [None if s is None else _kernel(s.kernel) for s in seconds])
        xs = [x if s is None else _add_noise(_resize(x, _scaled(target, s.factor), s.mode), s, g)
              for x, s, g in zip(xs, seconds, generators, strict=True)]  # fmt: skip
        # the final step: [resize to the LR size + sinc] and JPEG, in either order
        pairs = list(zip(xs, plans, strict=True))
        xs = [_jpeg(x, p.final_quality) if p.jpeg_first else x for x, p in pairs]
        xs = [_resize(x, target, p.final_mode) for x, p in zip(xs, plans, strict=True)]
        xs = filter_per_sample(xs, [_kernel(p.final_sinc) for p in plans])
        pairs = list(zip(xs, plans, strict=True))
        xs = [x if p.jpeg_first else _jpeg(x, p.final_quality) for x, p in pairs]
        return torch.cat(xs)
