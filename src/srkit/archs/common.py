"""Pieces shared by the architectures: input conventions, arch specs, small layers."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from srkit.image.resize import imresize

if TYPE_CHECKING:
    from srkit.archs.detection import KeyDetector

DIV2K_MEAN: tuple[float, float, float] = (0.4488, 0.4371, 0.4040)
"""Per-channel RGB mean of DIV2K (in [0, 1] units), subtracted by EDSR-family networks."""


@dataclass(frozen=True)
class InputConvention:
    """What a raw network expects and returns.

    * ``channels``: ``"rgb"`` (3 channels) or ``"y"`` (1 channel: BT.601 luma, MATLAB rgb2ycbcr);
    * ``value_range``: ``1.0`` (values in [0, 1]) or ``255.0`` (values in [0, 255]);
    * ``mean``: per-channel mean in [0, 1] units that is subtracted *after* scaling to
      ``value_range`` (``x * range - mean * range``) and added back to the output; ``None``: none;
    * ``input_size``: ``(height, width)`` in pixels when the network takes only inputs of exactly
      that size (an aligned face crop), never tiled; ``None``: any size.
    """

    channels: Literal["rgb", "y"] = "rgb"
    value_range: float = 1.0
    mean: tuple[float, ...] | None = None
    input_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.channels not in ("rgb", "y"):
            raise ValueError(f"channels must be 'rgb' or 'y', got {self.channels!r}")
        if self.value_range not in (1.0, 255.0):
            raise ValueError(f"value_range must be 1.0 or 255.0, got {self.value_range!r}")
        n = 3 if self.channels == "rgb" else 1
        if self.mean is not None and len(self.mean) != n:
            raise ValueError(f"mean needs {n} values for {self.channels!r}, got {self.mean!r}")
        size = self.input_size
        if size is not None and (
            len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size)
        ):
            raise ValueError(f"input_size must be (height, width) in pixels, got {size!r}")

    @property
    def in_channels(self) -> int:
        return 3 if self.channels == "rgb" else 1

    def _scaled_mean(self, like: torch.Tensor) -> torch.Tensor | None:
        if self.mean is None:
            return None
        mean = torch.tensor(self.mean, dtype=like.dtype, device=like.device)
        return mean.view(1, -1, 1, 1) * self.value_range

    @property
    def _is_identity(self) -> bool:
        """[0, 1] units without a mean: both conversions are the identity."""
        return self.mean is None and self.value_range == 1.0

    def to_network(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in [0, 1] (already RGB or Y as the network works) -> the network's units."""
        if self._is_identity:  # already the network's units: no pass over x
            return x
        mean = self._scaled_mean(x)
        x = x * self.value_range
        return x if mean is None else x - mean

    def from_network(self, y: torch.Tensor) -> torch.Tensor:
        """The network's output -> [0, 1] units (inverse of :meth:`to_network`)."""
        if self._is_identity:
            return y
        mean = self._scaled_mean(y)
        return (y if mean is None else y + mean) / self.value_range

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "channels": self.channels,
            "value_range": self.value_range,
            "mean": list(self.mean) if self.mean is not None else None,
        }
        if self.input_size is not None:  # written only when set: older manifests stay as they are
            d["input_size"] = list(self.input_size)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InputConvention:
        mean, size = d.get("mean"), d.get("input_size")
        return cls(
            channels=d.get("channels", "rgb"),
            value_range=float(d.get("value_range", 1.0)),
            mean=tuple(float(m) for m in mean) if mean is not None else None,
            input_size=tuple(size) if size is not None else None,  # type: ignore[arg-type]
        )


RGB01 = InputConvention("rgb", 1.0, None)
RGB255 = InputConvention("rgb", 255.0, None)
Y01 = InputConvention("y", 1.0, None)


@dataclass(frozen=True)
class Reference:
    """A paper: short citation and where it was published."""

    authors: str
    title: str
    venue: str
    year: int
    url: str = ""

    def short(self) -> str:
        first = self.authors.split(",")[0].replace(" et al.", "").strip()
        more = " et al." if ("," in self.authors or "et al." in self.authors) else ""
        return f"{first}{more}, {self.venue} {self.year}"


@dataclass(frozen=True)
class ArchSpec:
    """Everything srkit knows about one architecture, declared in the architecture's own module.

    ``defaults`` are the paper configuration's build options (every option ``build`` accepts);
    ``published_params`` maps a scale to the parameter count the paper (or the cited source)
    reports at ``paper_options``; ``params_counted`` says what that count covers: ``"all"``
    (weights and biases, like ``sum(p.numel())``) or ``"weights"`` (convolution/linear weights
    only, as SRCNN and FSRCNN count them). ``detector`` recognises the authors' checkpoints
    from their key names and shapes (``None``: srkit reads no foreign files of this arch).
    ``image_blend`` names the architecture that runs two networks of this one and blends their
    outputs (``None``: an image-space blend stage of a recipe cannot take this arch).
    """

    name: str
    cls: type[nn.Module]
    defaults: dict[str, Any]
    scales: tuple[int, ...]
    convention: InputConvention
    reference: Reference
    published_params: dict[int, int] = field(default_factory=dict)
    params_source: str = ""
    params_counted: Literal["all", "weights"] = "all"
    paper_options: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    detector: KeyDetector | None = None
    image_blend: str | None = None

    def options(self, **overrides: Any) -> dict[str, Any]:
        unknown = set(overrides) - set(self.defaults) - {"scale"}
        if unknown:
            known = ", ".join(sorted(self.defaults))
            bad = ", ".join(sorted(unknown))
            raise TypeError(f"{self.name}: unknown option(s) {bad}; known: scale, {known}")
        return {**self.defaults, **overrides}


# --- pre-upsampling -------------------------------------------------------------------------


def _bicubic_torch(x: torch.Tensor, scale: int) -> torch.Tensor:
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)


def bicubic_upscale(x: torch.Tensor, scale: int) -> torch.Tensor:
    """MATLAB-compatible bicubic upscaling used by pre-upsampling networks (SRCNN, VDSR, DRCN).

    Uses ``srkit.image.resize.imresize`` (MATLAB ``imresize``); falls back to PyTorch's bicubic
    only for tensors without data (``meta`` device, used for FLOP counting).
    """
    if x.device.type == "meta":
        return _bicubic_torch(x, scale)
    return imresize(x, scale=scale)


# --- small layers ----------------------------------------------------------------------------


def conv(cin: int, cout: int, k: int = 3, bias: bool = True, groups: int = 1) -> nn.Conv2d:
    """A ``k x k`` convolution with 'same' padding."""
    return nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias, groups=groups)


def pixel_shuffle_stages(scale: int) -> list[int]:
    """Factor a scale into pixel-shuffle stages the way EDSR/SRResNet do (x4 = 2 x 2, x8 = 2^3)."""
    if scale in (2, 3):
        return [scale]
    if scale > 0 and scale & (scale - 1) == 0:
        return [2] * int(math.log2(scale))
    raise ValueError(f"scale {scale} is not supported by pixel-shuffle upsampling (2, 3, 2^n)")


def check_scale(name: str, scale: int, scales: tuple[int, ...]) -> None:
    if scale not in scales:
        raise ValueError(f"{name} supports scales {scales}, got {scale}")


def make_layers(n: int, factory: Callable[[], nn.Module]) -> nn.Sequential:
    return nn.Sequential(*(factory() for _ in range(n)))


@dataclass(frozen=True)
class DiscriminatorSpec:
    """A GAN discriminator, declared in its own module under ``srkit.archs.discriminators``.

    Discriminators are not SR networks (no scale, no input convention: they read RGB images in
    [0, 1] and return logits), so they have their own table, apart from the SR registry.
    ``input_size``: the side its input must have at ``defaults`` (``None``: any size, e.g. a
    patch discriminator); ``published_params``: the count at ``defaults`` (its source in
    ``params_source``).
    """

    name: str
    cls: type[nn.Module]
    defaults: dict[str, Any]
    reference: Reference
    description: str
    input_size: int | None = None
    published_params: int | None = None
    params_source: str = ""

    def options(self, **overrides: Any) -> dict[str, Any]:
        unknown = set(overrides) - set(self.defaults)
        if unknown:
            known = ", ".join(sorted(self.defaults))
            bad = ", ".join(sorted(unknown))
            raise TypeError(f"{self.name}: unknown option(s) {bad}; known: {known}")
        return {**self.defaults, **overrides}
