"""Evaluate SR models on datasets and scales: the engine behind ``srkit bench``."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from srkit.bench.protocol import Degradation, ImageScore, matlab_bicubic_lr, score_image
from srkit.data.prefetch import prefetched
from srkit.data.sources import ImageSource, open_source
from srkit.image.io import DEFAULT_MAX_PIXELS, ImageReadError, LoadedImage
from srkit.metrics.select import ImageMetric
from srkit.metrics.sr import check_convention
from srkit.models import SelfEnsemble, SRModel, resolve_model

_PREFETCH = 3  # images decoded ahead of scoring


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

    def summary(self) -> dict:
        """The JSON record scripts rely on (no per-image rows); extra metrics are top-level
        keys (``lpips``, ``msssim``, ``niqe``)."""
        record = asdict(self)
        record.pop("per_image")
        record.update(record.pop("extra"))
        for key in ("psnr", "ssim", *self.extra):  # NaN (nothing scored) is not valid JSON
            if not math.isfinite(record[key]):
                record[key] = None
        return record


ProgressCallback = Callable[[int], None]


def to_batch(image: LoadedImage) -> torch.Tensor:
    """A decoded image -> uint8 tensor ``(1, 3, H, W)``."""
    rgb = image.to_rgb8()
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).unsqueeze(0)


def _decoded(
    source: ImageSource, max_pixels: int | None
) -> Iterator[tuple[str, LoadedImage | ImageReadError]]:
    """Yield (name, image or the error it raised), decoding ahead."""

    def load(name: str) -> LoadedImage | ImageReadError:
        try:
            return source.read(name, max_pixels=max_pixels)
        except ImageReadError as error:
            return error

    return prefetched(source.names, load, depth=_PREFETCH)


def evaluate_models(
    models: dict[int, SRModel],
    source: ImageSource | str | Path,
    *,
    convention: str = "modern",
    channel: str = "y",
    border: int | None = None,
    skip_bad: bool = False,
    degradation: Degradation = matlab_bicubic_lr,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    on_image: ProgressCallback | None = None,
    metrics: Sequence[ImageMetric] = (),
) -> list[DatasetResult]:
    """Score one model per scale on every image of ``source`` (each image is decoded once).

    ``metrics``: scored besides PSNR/SSIM (:func:`srkit.metrics.select.parse_metrics`).

    A bad image raises its ``ImageReadError`` unless ``skip_bad``, which lists it in ``skipped``.
    ``on_image(k)`` is called after each image with the number of (image, scale) steps done.
    """
    check_convention(convention)
    if not isinstance(source, ImageSource):
        source = open_source(source)
    scores: dict[int, list[ImageScore]] = {scale: [] for scale in models}
    busy: dict[int, float] = dict.fromkeys(models, 0.0)
    skipped: list[str] = []

    def score_all_scales(name: str, image: LoadedImage) -> list[tuple[int, ImageScore, float]]:
        hr = to_batch(image)
        out = []
        for scale, model in models.items():
            start = time.perf_counter()
            score = score_image(
                model,
                hr,
                scale,
                name=name,
                convention=convention,
                channel=channel,
                border=border,
                degradation=degradation,
                metrics=metrics,
            )
            out.append((scale, score, time.perf_counter() - start))
        return out

    def collect(future: Future) -> None:
        for scale, score, spent in future.result():
            scores[scale].append(score)
            busy[scale] += spent
        if on_image is not None:
            on_image(len(models))

    # Images are scored in parallel, one intra-op thread each: on a small, shared CPU this beats
    # OpenMP's barriers by a wide margin (and the results do not depend on the thread count).
    workers = max(1, torch.get_num_threads())
    previous_threads = torch.get_num_threads()
    wall_start = time.perf_counter()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            in_flight: list[Future] = []
            for name, image in _decoded(source, max_pixels):
                if isinstance(image, ImageReadError):
                    if not skip_bad:
                        raise image
                    skipped.append(name)
                    if on_image is not None:
                        on_image(len(models))
                    continue
                in_flight.append(pool.submit(score_all_scales, name, image))
                while len(in_flight) > 2 * workers:
                    collect(in_flight.pop(0))
            for future in in_flight:
                collect(future)
    finally:
        torch.set_num_threads(previous_threads)
    wall = time.perf_counter() - wall_start
    total_busy = sum(busy.values()) or 1.0
    seconds = {scale: wall * busy[scale] / total_busy for scale in models}
    results = []
    for scale, model in models.items():
        rows = scores[scale]
        results.append(
            DatasetResult(
                model=model.name,
                dataset=source.name,
                scale=scale,
                psnr=float(np.mean([r.psnr for r in rows])) if rows else float("nan"),
                ssim=float(np.mean([r.ssim for r in rows])) if rows else float("nan"),
                n=len(rows),
                seconds=round(seconds[scale], 4),
                skipped=list(skipped),
                per_image=rows,
                extra={
                    m.name: float(np.mean([r.extra[m.name] for r in rows]))
                    if rows
                    else float("nan")
                    for m in metrics
                },
            )
        )
    return results


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
    **options,
) -> list[DatasetResult]:
    """``srkit bench`` without the printing: model spec x datasets x scales -> results.

    ``ensemble`` scores the x8 geometric self-ensemble instead, named ``<model>+`` as in the
    papers' "+" rows (EDSR+, RCAN+), so it never reads as the plain model's figure.
    """
    models = {scale: resolve_model(model, scale, arch=arch) for scale in scales}
    if ensemble:
        models = {scale: SelfEnsemble(m) for scale, m in models.items()}
    results: list[DatasetResult] = []
    for spec in data:
        with open_source(spec) as source:
            if on_dataset is not None:
                on_dataset(source)
            results.extend(evaluate_models(models, source, **options))
    return results
