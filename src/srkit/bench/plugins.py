"""The plugin interface of :class:`srkit.bench.engine.Evaluation`, and the bench's plugins.

* :class:`PairStep`: images of a source -> :class:`Sample` objects (HR, stored LR, extras);
  :class:`ReadImages` decodes them;
* :class:`DegradationStep`: HR -> LR (:data:`BICUBIC`: MATLAB bicubic, uint8);
* :class:`Metric`: SR vs HR figures per image, model-independent references, dataset summaries;
  :class:`PsnrSsim` is the papers' PSNR/SSIM.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from srkit.bench.protocol import matlab_bicubic_lr
from srkit.image.io import DEFAULT_MAX_PIXELS, ImageReadError, LoadedImage
from srkit.metrics.select import ImageMetric
from srkit.metrics.sr import check_convention, psnr_ssim

if TYPE_CHECKING:
    from srkit.bench.records import Result

__all__ = [
    "BICUBIC",
    "DegradationStep",
    "Metric",
    "PairStep",
    "PsnrSsim",
    "ReadImages",
    "Sample",
    "SkipImage",
    "as_degradation_step",
    "to_chw",
]


# ----------------------------------------------------------------------------- samples


@dataclass
class Sample:
    """One image as scored: HR uint8 ``(3, H, W)``, a paired source's LR, plugin extras.

    ``index`` is the sample's position among the source's usable images (it seeds per-image
    random degradations, so the LR does not depend on batching or on the number of workers).
    """

    name: str
    hr: torch.Tensor
    lr: torch.Tensor | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    index: int = -1


class SkipImage(Exception):  # noqa: N818 - a signal, not an error of the run
    """Raised (or returned) by a pair step for an image it cannot use: listed, not scored."""


def to_chw(image: LoadedImage | np.ndarray) -> torch.Tensor:
    """A decoded image (or a uint8 ``(H, W, 3)`` array) -> uint8 tensor ``(3, H, W)``."""
    rgb = image.to_rgb8() if isinstance(image, LoadedImage) else image
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)


class PairStep:
    """Turns images of a source into samples (HR, optional stored LR, extras).

    ``chunk`` images are prepared by one task. A step whose :meth:`fingerprint` is a string is
    model-independent and cacheable: it must produce samples of one size.
    """

    chunk: int = 1

    def fingerprint(self) -> str | None:
        return None

    def prepare(self, source: Any, names: Sequence[str]) -> list[Sample | Exception]:
        """One sample, or the exception that made it unusable, per name (in order).

        ``ImageReadError`` stops the run unless ``skip_bad``; ``SkipImage`` always skips.
        """
        raise NotImplementedError


class ReadImages(PairStep):
    """The image as HR; the stored LR too when the source is paired (``source.paired``)."""

    def __init__(self, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> None:
        self.max_pixels = max_pixels

    def prepare(self, source: Any, names: Sequence[str]) -> list[Sample | Exception]:
        paired = getattr(source, "paired", False)
        out: list[Sample | Exception] = []
        for name in names:
            try:
                hr = to_chw(source.read(name, max_pixels=self.max_pixels))
                lr = to_chw(source.read_lr(name, max_pixels=self.max_pixels)) if paired else None
            except ImageReadError as error:
                out.append(error)
                continue
            out.append(Sample(name, hr, lr))
        return out


# ----------------------------------------------------------------------------- degradations


@dataclass(frozen=True)
class DegradationStep:
    """Makes the uint8 LR batch: ``make(hr, scale, first_index)`` on a uint8 HR ``(N, 3, H, W)``.

    ``first_index`` is the :attr:`Sample.index` of the batch's first sample. ``name`` labels the
    results (``Set5+jpeg``); ``None`` is the protocol's default and keeps the source's name.
    """

    make: Callable[[torch.Tensor, int, int], torch.Tensor]
    name: str | None = None


BICUBIC = DegradationStep(lambda hr, scale, _first: matlab_bicubic_lr(hr, scale))


def as_degradation_step(
    degradation: DegradationStep | Callable[[torch.Tensor, int], torch.Tensor] | None,
) -> DegradationStep:
    """A step as is; ``None`` or MATLAB bicubic as :data:`BICUBIC`; ``fn(hr, scale)`` wrapped."""
    if degradation is None or degradation is matlab_bicubic_lr:
        return BICUBIC
    if isinstance(degradation, DegradationStep):
        return degradation
    return DegradationStep(lambda hr, scale, _first: degradation(hr, scale), None)


# ----------------------------------------------------------------------------- metrics


class Metric:
    """Scores SR against HR, batch by batch.

    * :meth:`score` returns per-image arrays: 1-D arrays named in ``columns`` are the figures
      (CSV columns, averaged per dataset); other arrays (e.g. embeddings ``(N, D)``) are kept
      in :attr:`Result.kept` for :meth:`summarize`;
    * :meth:`reference` computes model-independent per-sample arrays once per source (stored in
      :attr:`Sample.extras` and cached with the samples); :meth:`fingerprint` names them;
    * :meth:`summarize` turns a finished :class:`Result` into dataset-level figures.
    """

    columns: tuple[str, ...] = ()

    def fingerprint(self) -> str | None:
        return None

    def reference(self, hr: torch.Tensor, samples: Sequence[Sample]) -> dict[str, np.ndarray]:
        return {}

    def score(
        self, sr: torch.Tensor, hr: torch.Tensor, samples: Sequence[Sample], scale: int
    ) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def summarize(self, result: Result) -> dict[str, Any]:
        return {}


class PsnrSsim(Metric):
    """PSNR (dB) and SSIM on Y (or RGB) with ``border`` pixels removed (default: the scale)."""

    columns = ("psnr", "ssim")

    def __init__(self, convention: str = "modern", channel: str = "y", border: int | None = None):
        self.convention = check_convention(convention)
        self.channel = channel
        self.border = border

    def score(self, sr, hr, samples, scale):
        border = scale if self.border is None else self.border
        psnr, ssim = psnr_ssim(
            sr, hr, border=border, convention=self.convention, channel=self.channel
        )
        return {"psnr": psnr.numpy(), "ssim": ssim.numpy()}


class ImageMetrics(Metric):
    """The ``--metrics`` beyond PSNR/SSIM (:mod:`srkit.metrics.select`), image by image, with
    the protocol's border, convention and channel."""

    def __init__(
        self,
        metrics: Sequence[ImageMetric],
        convention: str = "modern",
        channel: str = "y",
        border: int | None = None,
    ) -> None:
        self.metrics = list(metrics)
        self.columns = tuple(m.name for m in self.metrics)
        self.convention = check_convention(convention)
        self.channel = channel
        self.border = border

    def score(self, sr, hr, samples, scale):
        border = scale if self.border is None else self.border
        return {
            m.name: np.array(
                [
                    m.score(
                        sr[i : i + 1],
                        hr[i : i + 1],
                        border=border,
                        convention=self.convention,
                        channel=self.channel,
                    )
                    for i in range(sr.shape[0])
                ],
                dtype=np.float64,
            )  # fmt: skip
            for m in self.metrics
        }
