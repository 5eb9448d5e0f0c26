"""One evaluation loop: sources x degradations x models, scored by metric plugins.

``srkit bench``, ``srkit faces eval`` and training validation all run :class:`Evaluation`. It
scores every model on every image of a source under every degradation and keeps one record per
image (:class:`~srkit.bench.records.Result`). What differs between those commands is plugged in
(the interface: :mod:`srkit.bench.plugins`):

* a :class:`PairStep` turns images of the source into the :class:`Sample` objects that are
  scored: the HR, the stored LR of a paired source, and extras for the other plugins.
  :class:`ReadImages` (the default) decodes the image; the face step of
  :mod:`srkit.faces.evaluate` detects the face and crops it aligned to a template, keeping its
  landmarks;
* a :class:`DegradationStep` makes the LR from the HR (default: MATLAB bicubic, uint8). The LR of
  a paired source is used as stored, never degraded;
* :class:`Metric` plugins score each SR image against its HR: :class:`PsnrSsim` here, the identity
  distance in :mod:`srkit.faces.evaluate`. A metric can compute model-independent references
  with the samples (the HR's identity embedding) and dataset-level figures from the records
  (verification accuracy).

Flow for one source::

    names --PairStep (+ Metric.reference)--> samples --[cache]--> batches
        --DegradationStep--> LR --model--> SR (uint8) --Metric.score--> per-image records
        --Metric.summarize--> dataset-level figures

Parallelism: preparation and scoring run as tasks of one thread pool, each with one intra-op
torch thread. On a small, shared CPU this beats OpenMP's barriers by a wide margin, and results
do not depend on the number of workers (Pillow, dlib and torch release the GIL).

Caching: a pair step with a :meth:`PairStep.fingerprint` is model-independent, so with a
``cache_root`` the prepared samples of a source (and the metrics' references) are stored there
and reused by every later evaluation of that source (:meth:`Evaluation.prepare`).
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from srkit.bench.plugins import (
    BICUBIC,
    DegradationStep,
    Metric,
    PairStep,
    PsnrSsim,
    ReadImages,
    Sample,
    SkipImage,
    as_degradation_step,
)
from srkit.bench.protocol import super_resolve_uint8
from srkit.bench.records import CACHE_VERSION, Prepared, Result, load_prepared, save_prepared
from srkit.image.io import ImageReadError
from srkit.image.resize import quantize_uint8
from srkit.metrics.sr import mod_crop
from srkit.models import SRModel

__all__ = [
    "BICUBIC",
    "DegradationStep",
    "Evaluation",
    "Metric",
    "PairStep",
    "Prepared",
    "PsnrSsim",
    "ReadImages",
    "Result",
    "Sample",
    "SkipImage",
    "as_degradation_step",
]

T = TypeVar("T")


# ----------------------------------------------------------------------------- the loop


def _ordered(pool: ThreadPoolExecutor, tasks: Iterable[Callable[[], T]], ahead: int) -> Iterator[T]:
    """Run ``tasks`` in ``pool`` with at most ``ahead`` of them waiting; yield results in order."""
    queue: deque[Future] = deque()
    for task in tasks:
        queue.append(pool.submit(task))
        while len(queue) > ahead:
            yield queue.popleft().result()
    while queue:
        yield queue.popleft().result()


@dataclass
class _Scored:
    """What one scoring task returns for one (degradation, model) entry."""

    entry: int
    names: list[str]
    shape: tuple[int, int]
    columns: dict[str, np.ndarray]
    kept: dict[str, np.ndarray]
    seconds: float


class Evaluation:
    """Score ``models`` (``(scale, model)`` pairs) on sources, under each degradation.

    ``batch`` consecutive samples of one size are super-resolved together (1 for datasets of
    mixed sizes). ``skip_bad`` lists unreadable images instead of stopping. ``pair_crop`` crops
    a paired source's HR to ``scale`` times its LR, at the top left, when it is larger (the
    BasicSR/RealSR evaluation); without it a size mismatch is an error. ``float32_output``
    scales the model's output by 255 in float32 before rounding (the face protocol's
    convention) instead of float64. ``on_prepared(k)`` / ``on_scored(k)`` report progress: ``k``
    images prepared, ``k`` (image, degradation, model) steps scored or skipped.
    """

    def __init__(
        self,
        models: Sequence[tuple[int, SRModel]],
        *,
        metrics: Sequence[Metric] | None = None,
        degradations: Sequence[DegradationStep] | None = None,
        pair_step: PairStep | None = None,
        batch: int = 1,
        workers: int | None = None,
        skip_bad: bool = False,
        pair_crop: bool = False,
        cache_root: str | Path | None = None,
        float32_output: bool = False,
        on_prepared: Callable[[int], None] | None = None,
        on_scored: Callable[[int], None] | None = None,
    ) -> None:
        self.models = list(models)
        self.metrics = list(metrics) if metrics is not None else [PsnrSsim()]
        self.degradations = list(degradations) if degradations else [BICUBIC]
        self.pair_step = pair_step or ReadImages()
        self.batch = max(1, batch)
        self.workers = max(1, workers if workers is not None else torch.get_num_threads())
        self.skip_bad = skip_bad
        self.pair_crop = pair_crop
        self.cache_root = Path(cache_root) if cache_root is not None else None
        self.float32_output = float32_output
        self.on_prepared = on_prepared
        self.on_scored = on_scored
        self._entries = [(d, s, m) for d in self.degradations for s, m in self.models]

    # ------------------------------------------------------------------ public

    def run(self, source: Any) -> list[Result]:
        """Prepare and score ``source`` in one pass (through the cache when there is one)."""
        if self._cache_path(source) is not None:
            return self.score(self.prepare(source))
        with self._pool() as pool:
            skipped: dict[str, str] = {}
            samples = self._prepare_stream(pool, source, skipped)
            return self._score_stream(pool, source.name, samples, skipped, _paired(source))

    def prepare(self, source: Any) -> Prepared:
        """All usable samples of ``source``, from the cache when it has them (then saved there)."""
        start = time.perf_counter()
        path = self._cache_path(source)
        if path is not None and (path / "meta.json").is_file():
            try:
                prepared = load_prepared(path, source.name)
            except (OSError, ValueError, KeyError) as error:  # damaged: recompute it
                warnings.warn(f"ignoring damaged cache {path}: {error}", stacklevel=2)
            else:
                prepared.seconds = time.perf_counter() - start
                return prepared
        skipped: dict[str, str] = {}
        with self._pool() as pool:
            samples = list(self._prepare_stream(pool, source, skipped))
        if not samples:
            raise ValueError(f"{source.name}: no usable image in {len(source.names)}: {skipped}")
        prepared = Prepared(source.name, samples, skipped)
        prepared.paired = _paired(source)
        if path is not None:
            save_prepared(prepared, path, {"source": source.name})
            prepared.path = path
        prepared.seconds = time.perf_counter() - start
        return prepared

    def score(self, prepared: Prepared) -> list[Result]:
        """Score prepared samples (see :meth:`prepare`)."""
        with self._pool() as pool:
            return self._score_stream(
                pool, prepared.source, iter(prepared), prepared.skipped, prepared.paired
            )

    # ------------------------------------------------------------------ preparation

    def _cache_path(self, source: Any) -> Path | None:
        step = self.pair_step.fingerprint()
        if self.cache_root is None or step is None or _paired(source):
            return None  # the cache holds HR samples only
        identity = getattr(source, "fingerprint", None)
        if identity is None:
            return None  # a source that cannot say when it changed is not cached
        payload = {
            "version": CACHE_VERSION,
            "source": identity,
            "names": hashlib.sha256("\n".join(source.names).encode()).hexdigest(),
            "step": step,
            "references": [m.fingerprint() for m in self.metrics],
        }
        key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]
        return self.cache_root / f"{source.name}-{key}"

    def _prepare_chunk(self, source: Any, names: Sequence[str]) -> list[Sample | Exception]:
        items = self.pair_step.prepare(source, names)
        ready = [item for item in items if isinstance(item, Sample)]
        for metric in self.metrics:
            for group in _same_size_groups(ready):
                hr = torch.stack([s.hr for s in group])
                for key, values in metric.reference(hr, group).items():
                    for sample, value in zip(group, values, strict=True):
                        sample.extras[key] = value
        return items

    def _prepare_stream(self, pool, source: Any, skipped: dict[str, str]) -> Iterator[Sample]:
        """Usable samples in source order, numbered; unusable images go to ``skipped``."""
        names = list(source.names)
        chunk = max(1, self.pair_step.chunk)
        tasks = (
            (lambda part=names[i : i + chunk]: (part, self._prepare_chunk(source, part)))
            for i in range(0, len(names), chunk)
        )
        index = 0
        for part, items in _ordered(pool, tasks, ahead=self.workers + 2):
            for name, item in zip(part, items, strict=True):
                if isinstance(item, Sample):
                    item.index = index
                    index += 1
                    yield item
                    continue
                if isinstance(item, SkipImage) or (
                    isinstance(item, ImageReadError) and self.skip_bad
                ):
                    skipped[name] = str(item)
                    if self.on_scored is not None:
                        self.on_scored(len(self._entries))
                    continue
                raise item
            if self.on_prepared is not None:
                self.on_prepared(len(items))

    # ------------------------------------------------------------------ scoring

    def _score_stream(
        self,
        pool,
        source: str,
        samples: Iterator[Sample],
        skipped: dict[str, str],
        paired: bool = False,
    ) -> list[Result]:
        if not self.models:
            raise ValueError("nothing to evaluate: no model given")
        if paired and any(d is not BICUBIC for d in self.degradations):
            raise ValueError(f"{source}: paired data has its own LR: no degradation is applied")
        results = [
            Result(getattr(m, "name", str(m)), s, source, None if paired else d.name)
            for d, s, m in self._entries
        ]
        wall_start = time.perf_counter()
        tasks = ((lambda b=b: self._score_batch(b, paired)) for b in _batches(samples, self.batch))
        for scored in _ordered(pool, tasks, ahead=2 * self.workers):
            for part in scored:
                result = results[part.entry]
                result.names += part.names
                result.heights += [part.shape[0]] * len(part.names)
                result.widths += [part.shape[1]] * len(part.names)
                for key, values in part.columns.items():
                    result.columns.setdefault(key, []).extend(values.tolist())
                for key, values in part.kept.items():
                    result.kept.setdefault(key, []).append(values)
                result.busy += part.seconds
            if self.on_scored is not None:
                self.on_scored(len(self._entries) * len(scored[0].names))
        wall = time.perf_counter() - wall_start
        total_busy = sum(r.busy for r in results) or 1.0
        for result in results:
            result.seconds = round(wall * result.busy / total_busy, 4)
            result.skipped = dict(skipped)
            for column in (c for metric in self.metrics for c in metric.columns):
                result.columns.setdefault(column, [])
            for metric in self.metrics:
                result.summary.update(metric.summarize(result))
        return results

    def _pair(self, sample: Sample, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A paired sample's (HR, LR): HR exactly ``scale`` x LR, or cropped to it."""
        hr, lr = sample.hr, sample.lr
        assert lr is not None
        want = (lr.shape[-2] * scale, lr.shape[-1] * scale)
        got = tuple(hr.shape[-2:])
        if got != want:
            larger = got[0] >= want[0] and got[1] >= want[1]
            if not (self.pair_crop and larger):
                hint = " (--pair-crop crops a larger HR)" if larger else ""
                raise ValueError(
                    f"{sample.name}: HR {got[1]}x{got[0]} is not x{scale} its LR "
                    f"{lr.shape[-1]}x{lr.shape[-2]} (expected HR {want[1]}x{want[0]}){hint}"
                )
            hr = hr[..., : want[0], : want[1]]
        return hr, lr

    def _super_resolve(self, model: SRModel, lr: torch.Tensor) -> torch.Tensor:
        if not self.float32_output:
            return super_resolve_uint8(model, lr)
        with torch.inference_mode():
            out = model(lr.to(torch.float32) / 255.0)
        return quantize_uint8(out * 255.0)

    def _score_batch(self, batch: list[Sample], paired: bool) -> list[_Scored]:
        first = batch[0]
        out = []
        for entry, (degradation, scale, model) in enumerate(self._entries):
            start = time.perf_counter()
            if paired:
                pairs = [self._pair(s, scale) for s in batch]
                hr = torch.stack([p[0] for p in pairs])
                lr = torch.stack([p[1] for p in pairs])
            else:
                hr = mod_crop(torch.stack([s.hr for s in batch]), scale)
                if min(hr.shape[-2:]) < scale * 4:
                    raise ValueError(
                        f"{first.name}: image {tuple(hr.shape[-2:])} is too small for x{scale}"
                    )
                lr = degradation.make(hr, scale, first.index)
            sr = self._super_resolve(model, lr)
            if sr.shape != hr.shape:
                raise ValueError(
                    f"{first.name}: model {getattr(model, 'name', model)} returned "
                    f"{tuple(sr.shape[-2:])} for an LR of {tuple(lr.shape[-2:])} at x{scale}; "
                    f"expected {tuple(hr.shape[-2:])}"
                )
            columns: dict[str, np.ndarray] = {}
            kept: dict[str, np.ndarray] = {}
            for metric in self.metrics:
                for key, values in metric.score(sr, hr, batch, scale).items():
                    (columns if key in metric.columns else kept)[key] = np.asarray(values)
            out.append(
                _Scored(
                    entry,
                    [s.name for s in batch],
                    (int(hr.shape[-2]), int(hr.shape[-1])),
                    columns,
                    kept,
                    time.perf_counter() - start,
                )
            )
        return out

    @contextmanager
    def _pool(self) -> Iterator[ThreadPoolExecutor]:
        """The worker threads, each running torch with one intra-op thread."""
        previous = torch.get_num_threads()
        torch.set_num_threads(1)  # before the threads start: they take the setting then
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="srkit-eval")
        try:
            yield pool
        except BaseException:
            pool.shutdown(cancel_futures=True)  # an error stops the run: drop the queued work
            raise
        finally:
            pool.shutdown()
            torch.set_num_threads(previous)


def _paired(source: Any) -> bool:
    return bool(getattr(source, "paired", False))


def _same_size_groups(samples: Sequence[Sample]) -> list[list[Sample]]:
    groups: dict[tuple, list[Sample]] = {}
    for sample in samples:
        groups.setdefault(tuple(sample.hr.shape), []).append(sample)
    return list(groups.values())


def _batches(samples: Iterator[Sample], size: int) -> Iterator[list[Sample]]:
    """Consecutive samples of one size (HR and LR), at most ``size`` at a time."""
    batch: list[Sample] = []

    def shape(s: Sample) -> tuple:
        return tuple(s.hr.shape), None if s.lr is None else tuple(s.lr.shape)

    for sample in samples:
        if batch and (len(batch) == size or shape(batch[0]) != shape(sample)):
            yield batch
            batch = []
        batch.append(sample)
    if batch:
        yield batch
