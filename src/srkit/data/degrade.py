"""Degradation pipelines that make LR training/evaluation inputs from HR images.

A pipeline is a list of steps, each a typed dataclass read from YAML, applied to a batch
``(N, C, H, W)`` of floats in ``[0, 1]``. Exactly one step changes the size (``resize``, by
``1 / scale``); if none is given, MATLAB bicubic is used, the standard SR protocol. Random
parameters are drawn per sample from a ``numpy.random.Generator`` the caller seeds, so the
same seed gives the same LR everywhere (training workers, evaluation, tests).

Example (``real.yaml``)::

    order: random          # shuffle the steps per sample (resize stays where it is)
    steps:
      - {type: gaussian_blur, sigma: [0.2, 2.0], anisotropic: true}
      - {type: resize, method: bicubic}
      - {type: gaussian_noise, sigma: [1, 15]}
      - {type: jpeg, quality: [40, 95]}

Kinds: ``resize`` (``bicubic`` = MATLAB, ``pil_bicubic``, ``opencv_bicubic``, ``bilinear``,
``nearest``), ``gaussian_blur`` (isotropic or anisotropic), ``motion_blur``, ``gaussian_noise``,
``poisson_noise``, ``jpeg``. The output is rounded to 8-bit levels (``quantize: true``), as if the
LR had been saved to PNG.

Presets replace the step list with a published recipe: ``preset: realesrgan`` is Real-ESRGAN's
second-order degradation (:mod:`srkit.data.second_order`, its settings overridable under
``options:``)::

    preset: realesrgan
    options:
      second: {blur_prob: 0.8, noise_sigma: [1, 25]}
      final: {sinc_prob: 0.8}
"""

from __future__ import annotations

import io
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from srkit.config import ConfigError, from_dict, load_yaml
from srkit.image.resize import METHODS, quantize_uint8, resize

Range = float | list[float]


def _draw(value: Range, rng: np.random.Generator, where: str) -> float:
    """A fixed number, or a uniform draw from ``[low, high]``."""
    if isinstance(value, int | float):
        return float(value)
    if len(value) != 2 or value[0] > value[1]:
        raise ConfigError(f"{where}: a range is [low, high], got {value!r}")
    return float(rng.uniform(value[0], value[1]))


def _check_range(value: Range, where: str, low: float = 0.0) -> None:
    values = [value] if isinstance(value, int | float) else list(value)
    if not isinstance(value, int | float) and (len(values) != 2 or values[0] > values[1]):
        raise ValueError(f"{where}: a range is [low, high], got {value!r}")
    if any(v < low for v in values):
        raise ValueError(f"{where}: values must be >= {low}, got {value!r}")


@dataclass
class ResizeStep:
    type: Literal["resize"] = "resize"
    method: str = "bicubic"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"resize.method must be one of {', '.join(METHODS)}")

    def apply(self, x: torch.Tensor, rng: np.random.Generator, scale: int) -> torch.Tensor:
        height, width = x.shape[-2] // scale, x.shape[-1] // scale
        if self.method == "pil_bicubic":  # Pillow works on 8-bit planes, like saved images
            as_uint8 = quantize_uint8(x * 255)
            return resize(as_uint8, size=(height, width), method=self.method).float() / 255
        return resize(x, size=(height, width), method=self.method)


def _gaussian_kernel(sigma_x: float, sigma_y: float, theta: float, size: int) -> torch.Tensor:
    half = (size - 1) / 2
    coords = torch.arange(size, dtype=torch.float64) - half
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    cos, sin = math.cos(theta), math.sin(theta)
    u = cos * xx + sin * yy
    v = -sin * xx + cos * yy
    kernel = torch.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return kernel / kernel.sum()


def _convolve(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Same-size filtering with reflected borders, one kernel for all channels."""
    channels = x.shape[1]
    pad = kernel.shape[-1] // 2
    # Reflection needs a border narrower than the image; a kernel wider than a small image
    # repeats the edge pixels instead.
    mode = "reflect" if pad < min(x.shape[-2:]) else "replicate"
    padded = F.pad(x, (pad, pad, pad, pad), mode=mode)
    weight = kernel.to(x.dtype).expand(channels, 1, *kernel.shape)
    return F.conv2d(padded, weight, groups=channels)


@dataclass
class GaussianBlurStep:
    type: Literal["gaussian_blur"] = "gaussian_blur"
    sigma: Range = 1.0
    anisotropic: bool = False  # then sigma is drawn per axis and rotated by a random angle
    kernel_size: int = 21

    def __post_init__(self) -> None:
        _check_range(self.sigma, "gaussian_blur.sigma", low=1e-3)
        if self.kernel_size < 3 or self.kernel_size % 2 == 0:
            raise ValueError("gaussian_blur.kernel_size must be odd and >= 3")

    def apply(self, x: torch.Tensor, rng: np.random.Generator, scale: int) -> torch.Tensor:
        sigma_x = _draw(self.sigma, rng, "sigma")
        if self.anisotropic:
            sigma_y = _draw(self.sigma, rng, "sigma")
            theta = float(rng.uniform(0, math.pi))
        else:
            sigma_y, theta = sigma_x, 0.0
        return _convolve(x, _gaussian_kernel(sigma_x, sigma_y, theta, self.kernel_size))


@dataclass
class MotionBlurStep:
    type: Literal["motion_blur"] = "motion_blur"
    length: Range = field(default_factory=lambda: [3.0, 9.0])  # pixels
    angle: Range = field(default_factory=lambda: [0.0, 180.0])  # degrees

    def __post_init__(self) -> None:
        _check_range(self.length, "motion_blur.length", low=1.0)

    def apply(self, x: torch.Tensor, rng: np.random.Generator, scale: int) -> torch.Tensor:
        length = _draw(self.length, rng, "length")
        angle = math.radians(_draw(self.angle, rng, "angle"))
        size = int(math.ceil(length)) | 1
        half = (size - 1) / 2
        kernel = torch.zeros(size, size, dtype=torch.float64)
        # a line segment of the given length, drawn with sub-pixel samples
        for t in np.linspace(-length / 2, length / 2, num=4 * size):
            col = half + t * math.cos(angle)
            row = half - t * math.sin(angle)
            r0, c0 = int(math.floor(row)), int(math.floor(col))
            for rr, cc in ((r0, c0), (r0 + 1, c0), (r0, c0 + 1), (r0 + 1, c0 + 1)):
                if 0 <= rr < size and 0 <= cc < size:
                    weight = (1 - abs(row - rr)) * (1 - abs(col - cc))
                    kernel[rr, cc] += max(weight, 0.0)
        return _convolve(x, kernel / kernel.sum())


@dataclass
class GaussianNoiseStep:
    type: Literal["gaussian_noise"] = "gaussian_noise"
    sigma: Range = 5.0  # in 8-bit levels (0..255)
    gray: bool = False  # the same noise on every channel

    def __post_init__(self) -> None:
        _check_range(self.sigma, "gaussian_noise.sigma")

    def apply(self, x: torch.Tensor, rng: np.random.Generator, scale: int) -> torch.Tensor:
        sigma = _draw(self.sigma, rng, "sigma") / 255.0
        shape = (x.shape[0], 1, *x.shape[2:]) if self.gray else tuple(x.shape)
        noise = torch.from_numpy(rng.standard_normal(shape)).to(x.dtype)
        return x + sigma * noise


@dataclass
class PoissonNoiseStep:
    type: Literal["poisson_noise"] = "poisson_noise"
    peak: Range = field(default_factory=lambda: [50.0, 500.0])  # photons at white

    def __post_init__(self) -> None:
        _check_range(self.peak, "poisson_noise.peak", low=1.0)

    def apply(self, x: torch.Tensor, rng: np.random.Generator, scale: int) -> torch.Tensor:
        peak = _draw(self.peak, rng, "peak")
        counts = rng.poisson(np.clip(x.detach().cpu().numpy(), 0, 1) * peak)
        return torch.from_numpy(counts / peak).to(x.dtype)


@dataclass
class JpegStep:
    type: Literal["jpeg"] = "jpeg"
    quality: Range = 75.0

    def __post_init__(self) -> None:
        _check_range(self.quality, "jpeg.quality", low=1.0)
        values = [self.quality] if isinstance(self.quality, int | float) else self.quality
        if max(values) > 100:
            raise ValueError("jpeg.quality must be in 1..100")

    def apply(self, x: torch.Tensor, rng: np.random.Generator, scale: int) -> torch.Tensor:
        quality = int(round(_draw(self.quality, rng, "quality")))
        out = torch.empty_like(x)
        for i, image in enumerate(x):
            out[i] = jpeg_roundtrip(image, quality)
        return out


def jpeg_roundtrip(image: torch.Tensor, quality: int) -> torch.Tensor:
    """One ``(C, H, W)`` image in [0, 1] (C = 1 or 3) through a real JPEG encode and decode
    (Pillow, 4:2:0 chroma) at ``quality``; rounded to 8-bit first, as a saved file would be."""
    from PIL import Image

    array = quantize_uint8(image * 255)
    array = array.permute(1, 2, 0).cpu().numpy()
    mode = "L" if array.shape[2] == 1 else "RGB"
    buffer = io.BytesIO()
    Image.fromarray(array.squeeze(2) if mode == "L" else array, mode=mode).save(
        buffer, format="JPEG", quality=quality
    )
    decoded = np.asarray(Image.open(buffer).convert(mode), dtype=np.float32) / 255.0
    decoded = decoded[..., None] if mode == "L" else decoded
    return torch.from_numpy(decoded).permute(2, 0, 1).to(image.dtype)


Step = (
    ResizeStep | GaussianBlurStep | MotionBlurStep | GaussianNoiseStep | PoissonNoiseStep | JpegStep
)
STEP_TYPES: dict[str, type] = {
    "resize": ResizeStep,
    "gaussian_blur": GaussianBlurStep,
    "motion_blur": MotionBlurStep,
    "gaussian_noise": GaussianNoiseStep,
    "poisson_noise": PoissonNoiseStep,
    "jpeg": JpegStep,
}


@dataclass
class DegradationConfig:
    steps: list[dict] = field(default_factory=list)
    order: Literal["fixed", "random"] = "fixed"
    quantize: bool = True
    preset: Literal["realesrgan"] | None = None  # a published recipe instead of ``steps``
    options: dict = field(default_factory=dict)  # the preset's settings to override


class Degradation:
    """HR ``(N, C, H, W)`` in [0, 1] -> LR ``(N, C, H/s, W/s)`` in [0, 1], seeded per call."""

    def __init__(
        self, steps: list | None = None, order: str = "fixed", quantize: bool = True
    ) -> None:
        steps = list(steps or [])
        resizes = [s for s in steps if isinstance(s, ResizeStep)]
        if len(resizes) > 1:
            raise ConfigError("a degradation has at most one resize step")
        if not resizes:
            steps.append(ResizeStep())
        self.steps = steps
        self.order = order
        self.quantize = quantize

    @classmethod
    def from_config(cls, config: DegradationConfig) -> Degradation:
        if config.preset is not None:
            if config.steps:
                raise ConfigError("degradation: give either preset or steps, not both")
            if config.order != "fixed":
                raise ConfigError("degradation.order: a preset has its own order of steps")
            from srkit.data.second_order import SecondOrderConfig, SecondOrderDegradation

            options = from_dict(SecondOrderConfig, config.options, where="degradation.options")
            return SecondOrderDegradation(options, quantize=config.quantize)
        if config.options:
            raise ConfigError("degradation.options: only with a preset (preset: realesrgan)")
        steps = []
        for index, raw in enumerate(config.steps):
            where = f"degradation.steps[{index}]"
            kind = raw.get("type") if isinstance(raw, dict) else None
            if kind not in STEP_TYPES:
                raise ConfigError(f"{where}.type: expected one of {', '.join(STEP_TYPES)}")
            steps.append(from_dict(STEP_TYPES[kind], raw, where=where))
        return cls(steps, config.order, config.quantize)

    @classmethod
    def from_yaml(cls, path: str | Path) -> Degradation:
        return cls.from_config(from_dict(DegradationConfig, load_yaml(path), where="degradation"))

    @property
    def is_default(self) -> bool:
        only = self.steps[0] if len(self.steps) == 1 else None
        return isinstance(only, ResizeStep) and only.method == "bicubic" and self.quantize

    def _ordered(self, rng: np.random.Generator) -> list:
        if self.order != "random":
            return self.steps
        others = [s for s in self.steps if not isinstance(s, ResizeStep)]
        position = next(i for i, s in enumerate(self.steps) if isinstance(s, ResizeStep))
        shuffled = [others[i] for i in rng.permutation(len(others))]
        return [*shuffled[:position], self.steps[position], *shuffled[position:]]

    def __call__(
        self, hr: torch.Tensor, scale: int, rng: np.random.Generator | int
    ) -> torch.Tensor:
        rng = _check_call(hr, scale, rng)
        if self.is_default:  # the whole batch at once
            return self._finish(resize(hr, size=_lr_size(hr, scale)))
        outputs = []
        for sample in hr.split(1):  # parameters are drawn per sample
            x = sample
            for step in self._ordered(rng):
                x = step.apply(x, rng, scale)
            outputs.append(x)
        return self._finish(torch.cat(outputs))

    def apply_uint8(
        self, hr: torch.Tensor, scale: int, rng: np.random.Generator | int
    ) -> torch.Tensor:
        """uint8 HR ``(N, C, H, W)`` -> uint8 LR: the pipeline run in float64 on ``hr / 255``,
        its output rounded back to uint8 (what ``srkit bench`` and ``srkit faces eval`` feed a
        model)."""
        return quantize_uint8(self(hr.to(torch.float64) / 255.0, scale, rng) * 255)

    def _finish(self, x: torch.Tensor) -> torch.Tensor:
        x = x.clamp(0, 1)
        return torch.floor(x * 255 + 0.5) / 255 if self.quantize else x


def _check_call(
    hr: torch.Tensor, scale: int, rng: np.random.Generator | int
) -> np.random.Generator:
    """The checks every pipeline makes on its input; an int seed -> a generator."""
    if hr.dim() != 4:
        raise ValueError(f"expected (N, C, H, W), got {tuple(hr.shape)}")
    if hr.shape[-2] % scale or hr.shape[-1] % scale:
        raise ValueError(f"HR size {tuple(hr.shape[-2:])} is not a multiple of {scale}")
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _lr_size(hr: torch.Tensor, scale: int) -> tuple[int, int]:
    return hr.shape[-2] // scale, hr.shape[-1] // scale


def bench_degradation(degradation: Degradation, seed: int = 0):
    """Adapt a pipeline to ``srkit bench``: uint8 HR -> uint8 LR, the same for every run.

    Each image's random draws are seeded by its content and the scale, so they do not depend
    on the order in which (parallel) evaluation reaches it.
    """

    def degrade(hr: torch.Tensor, scale: int) -> torch.Tensor:
        digest = zlib.crc32(hr.contiguous().numpy().tobytes())
        return degradation.apply_uint8(hr, scale, np.random.default_rng([seed, digest, scale]))

    return degrade


_SECOND_ORDER_NAMES = (
    "SecondOrderConfig",
    "SecondOrderDegradation",
    "StageConfig",
    "SecondStageConfig",
    "FinalConfig",
)


def __getattr__(name: str):
    """``from srkit.data.degrade import SecondOrderDegradation`` without an import cycle
    (:mod:`srkit.data.second_order` builds on this module)."""
    if name in _SECOND_ORDER_NAMES:
        from srkit.data import second_order

        return getattr(second_order, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
