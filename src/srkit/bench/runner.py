"""``srkit bench`` results: the paper protocol on :class:`~srkit.bench.engine.Evaluation`."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from srkit.bench.engine import (
    BICUBIC,
    DegradationStep,
    Evaluation,
    Prepared,
    PsnrSsim,
    ReadImages,
    Result,
    Sample,
    as_degradation_step,
)
from srkit.bench.plugins import ImageMetrics
from srkit.bench.protocol import Degradation, ImageScore, matlab_bicubic_lr
from srkit.data.pairs import open_dataset
from srkit.data.sources import ImageSource
from srkit.image.io import DEFAULT_MAX_PIXELS
from srkit.metrics.select import ImageMetric
from srkit.metrics.sr import check_convention
from srkit.models import SelfEnsemble, SRModel, resolve_model


@dataclass
class DatasetResult:
    """Scores of one model on one dataset at one scale."""

    model: str
    dataset: str
    scale: int
    psnr: float
    ssim: float
    n: int
    seconds: float
    skipped: list[str] = field(default_factory=list)
    per_image: list[ImageScore] = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)  # means of the --metrics beyond PSNR/SSIM

    @classmethod
    def from_result(cls, result: Result, extra: Sequence[str] = ()) -> DatasetResult:
        psnr, ssim = result.values("psnr"), result.values("ssim")
        columns = {name: result.values(name) for name in extra}
        rows = [
            ImageScore(name, float(p), float(s), h, w,
                       {c: float(v[i]) for c, v in columns.items()})
            for i, (name, p, s, h, w) in enumerate(
                zip(result.names, psnr, ssim, result.heights, result.widths, strict=True)
            )
        ]  # fmt: skip
        return cls(
            model=result.model,
            dataset=result.dataset,
            scale=result.scale,
            psnr=float(np.mean(psnr)) if rows else float("nan"),
            ssim=float(np.mean(ssim)) if rows else float("nan"),
            n=len(rows),
            seconds=result.seconds,
            skipped=list(result.skipped),
            per_image=rows,
            extra={c: float(np.mean(v)) if rows else float("nan") for c, v in columns.items()},
        )

    def summary(self) -> dict:
        """The JSON record scripts rely on (no per-image rows); the metrics beyond PSNR/SSIM
        are top-level keys (``lpips``, ``msssim``, ``niqe``)."""
        record = asdict(self)
        record.pop("per_image")
        record.update(record.pop("extra"))
        for key in ("psnr", "ssim", *self.extra):  # NaN (nothing scored) is not valid JSON
            if not math.isfinite(record[key]):
                record[key] = None
        return record


ProgressCallback = Callable[[int], None]


def pair_scale(source: ImageSource) -> int:
    """The scale of a paired source, from its first pair (HR size // LR size, both axes)."""
    name = source.names[0]
    hr, lr = source.read(name), source.read_lr(name)
    scales = {hr.height // lr.height, hr.width // lr.width}
    if len(scales) != 1 or min(scales) < 1:
        raise ValueError(
            f"{source.label(name)}: HR {hr.width}x{hr.height} and LR {lr.width}x{lr.height} "
            "give no single scale: pass --scale"
        )
    return scales.pop()


def evaluate_models(
    models: dict[int, SRModel],
    source: ImageSource | str | Path,
    *,
    convention: str = "modern",
    channel: str = "y",
    border: int | None = None,
    skip_bad: bool = False,
    degradation: Degradation | DegradationStep = matlab_bicubic_lr,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    on_image: ProgressCallback | None = None,
    lr: str | Path | None = None,
    pair_crop: bool = False,
    workers: int | None = None,
    metrics: Sequence[ImageMetric] = (),
) -> list[DatasetResult]:
    """Score one model per scale on every image of ``source`` (each image is decoded once).

    ``metrics``: scored besides PSNR/SSIM (:func:`srkit.metrics.select.parse_metrics`).

    A bad image raises its ``ImageReadError`` unless ``skip_bad``, which lists it in ``skipped``.
    ``on_image(k)`` is called after each image with the number of (image, scale) steps done.
    A paired source (a folder with ``LR/`` and ``HR/``, or ``lr=`` a folder of LR images) is
    scored on its stored LR: no degradation; ``pair_crop`` crops a larger HR to ``scale`` x LR.
    """
    check_convention(convention)
    own = not isinstance(source, ImageSource)
    source = open_dataset(source, lr) if own or lr is not None else source
    step = as_degradation_step(degradation)
    if source.paired and step is not BICUBIC:
        raise ValueError(f"{source.origin}: paired data has its own LR: no degradation applies")
    evaluation = Evaluation(
        list(models.items()),
        metrics=_metrics(convention, channel, border, metrics),
        degradations=[step],
        pair_step=ReadImages(max_pixels),
        skip_bad=skip_bad,
        pair_crop=pair_crop,
        workers=workers,
        on_scored=on_image,
    )
    try:
        names = [m.name for m in metrics]
        return [DatasetResult.from_result(r, names) for r in evaluation.run(source)]
    finally:
        if own:
            source.close()


def score_image(
    model: SRModel,
    hr: torch.Tensor,
    scale: int,
    *,
    name: str = "",
    convention: str = "modern",
    channel: str = "y",
    border: int | None = None,
    degradation: Degradation | DegradationStep = matlab_bicubic_lr,
    metrics: Sequence[ImageMetric] = (),
) -> ImageScore:
    """HR uint8 ``(1, 3, H, W)`` -> PSNR/SSIM (and ``metrics``) of ``model``'s reconstruction
    from its LR."""
    evaluation = Evaluation(
        [(scale, model)],
        metrics=_metrics(convention, channel, border, metrics),
        degradations=[as_degradation_step(degradation)],
        workers=1,
    )
    (result,) = evaluation.score(Prepared("image", [Sample(name, hr[0], index=0)]))
    return DatasetResult.from_result(result, [m.name for m in metrics]).per_image[0]


def _metrics(convention, channel, border, extra: Sequence[ImageMetric]) -> list:
    plugins = [PsnrSsim(convention, channel, border)]
    if extra:
        plugins.append(ImageMetrics(extra, convention, channel, border))
    return plugins


def evaluate_model(
    model: SRModel,
    source: ImageSource | str | Path,
    scale: int | None = None,
    convention: str = "modern",
    **options,
) -> DatasetResult:
    """Score ``model`` on a dataset at its scale (see :func:`evaluate_models` for options)."""
    scale = model.scale if scale is None else scale
    return evaluate_models({scale: model}, source, convention=convention, **options)[0]


def run_benchmark(
    model: str,
    data: Sequence[str | Path],
    scales: Sequence[int],
    *,
    arch: str | None = None,
    ensemble: bool = False,
    on_dataset: Callable[[ImageSource], None] | None = None,
    lr: str | Path | None = None,
    **options,
) -> list[DatasetResult]:
    """``srkit bench`` without the printing: model spec x datasets x scales -> results.

    ``ensemble`` scores the x8 geometric self-ensemble instead, named ``<model>+`` as in the
    papers' "+" rows (EDSR+, RCAN+), so it never reads as the plain model's figure. ``lr``
    pairs the one dataset of ``data`` (the HR) with a folder of LR images.
    """
    if lr is not None and len(data) != 1:
        raise ValueError(f"LR images pair with one HR dataset, got {len(data)}")
    models = {scale: resolve_model(model, scale, arch=arch) for scale in scales}
    if ensemble:
        models = {scale: SelfEnsemble(m) for scale, m in models.items()}
    results: list[DatasetResult] = []
    for spec in data:
        with open_dataset(spec, lr) as source:
            if on_dataset is not None:
                on_dataset(source)
            results.extend(evaluate_models(models, source, **options))
    return results
