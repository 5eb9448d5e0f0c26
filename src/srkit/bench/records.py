"""What an evaluation produces: per-image records (:class:`Result`) and prepared samples.

:class:`Prepared` holds the usable samples of a source; it is what the cache of
:class:`srkit.bench.engine.Evaluation` stores (one folder per source and pair step: ``hr.npy``,
one ``.npy`` per extra, ``meta.json``).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from srkit.bench.plugins import Sample

__all__ = ["CACHE_VERSION", "Prepared", "Result", "load_prepared", "save_prepared"]

CACHE_VERSION = 1


# ----------------------------------------------------------------------------- results


@dataclass
class Result:
    """The records of one model at one scale on one source under one degradation."""

    model: str
    scale: int
    source: str
    degradation: str | None
    names: list[str] = field(default_factory=list)
    heights: list[int] = field(default_factory=list)
    widths: list[int] = field(default_factory=list)
    columns: dict[str, list[float]] = field(default_factory=dict)
    kept: dict[str, list[np.ndarray]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    busy: float = 0.0

    @property
    def dataset(self) -> str:
        """``Set5``, or ``Set5+jpeg`` under a named degradation."""
        return self.source if self.degradation is None else f"{self.source}+{self.degradation}"

    @property
    def n(self) -> int:
        return len(self.names)

    def values(self, column: str) -> np.ndarray:
        """One figure per image, in source order (float64)."""
        return np.asarray(self.columns[column], dtype=np.float64)

    def kept_array(self, key: str) -> np.ndarray:
        """A kept per-image array, stacked ``(N, ...)``."""
        return np.concatenate(self.kept[key]) if self.kept.get(key) else np.zeros((0,))

    def records(self) -> Iterator[dict[str, Any]]:
        """One dict per image: ``image``, ``height``, ``width`` and each figure."""
        for i, name in enumerate(self.names):
            row = {"image": name, "height": self.heights[i], "width": self.widths[i]}
            row.update({key: values[i] for key, values in self.columns.items()})
            yield row


# ----------------------------------------------------------------------------- prepared samples


class Prepared:
    """The usable samples of a source (kept in memory or memory-mapped from the cache)."""

    def __init__(
        self,
        source: str,
        samples: list[Sample] | None = None,
        skipped: dict[str, str] | None = None,
        *,
        arrays: dict[str, np.ndarray] | None = None,
        names: list[str] | None = None,
        path: Path | None = None,
    ) -> None:
        self.source = source
        self._samples = samples
        self._arrays = arrays  # from the cache: "hr" (N, 3, H, W) and one array per extra
        self.names = [s.name for s in samples] if samples is not None else list(names or [])
        self.skipped = dict(skipped or {})
        self.path = path
        self.from_cache = arrays is not None
        self.paired = False
        self.seconds = 0.0

    def __len__(self) -> int:
        return len(self.names)

    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    def __iter__(self) -> Iterator[Sample]:
        if self._samples is not None:
            yield from self._samples
            return
        arrays = self._arrays or {}
        extras = [k for k in arrays if k != "hr"]
        for i, name in enumerate(self.names):
            hr = torch.from_numpy(np.array(arrays["hr"][i]))
            yield Sample(name, hr, None, {k: arrays[k][i] for k in extras}, i)

    def hr(self) -> np.ndarray:
        """All HR images stacked ``(N, 3, H, W)`` uint8 (one size)."""
        if self._arrays is not None:
            return self._arrays["hr"]
        return np.stack([s.hr.numpy() for s in self._samples or []])

    def extra(self, key: str) -> np.ndarray:
        """One extra of every sample, stacked ``(N, ...)``."""
        if self._arrays is not None:
            return self._arrays[key]
        return np.stack([np.asarray(s.extras[key]) for s in self._samples or []])

    def extra_keys(self) -> list[str]:
        if self._arrays is not None:
            return [k for k in self._arrays if k != "hr"]
        return list(self._samples[0].extras) if self._samples else []


def save_prepared(prepared: Prepared, path: Path, meta: dict) -> None:
    """Write the cache folder atomically (a concurrent writer's folder is as good as ours)."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    keys = prepared.extra_keys()
    np.save(tmp / "hr.npy", prepared.hr())
    for key in keys:
        np.save(tmp / f"{key}.npy", prepared.extra(key))
    meta = dict(
        meta, version=CACHE_VERSION, names=prepared.names, skipped=prepared.skipped, extras=keys
    )
    (tmp / "meta.json").write_text(json.dumps(meta))
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
    try:
        tmp.rename(path)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


def load_prepared(path: Path, source: str) -> Prepared:
    meta = json.loads((path / "meta.json").read_text())
    if meta.get("version") != CACHE_VERSION:
        raise ValueError(f"cache version {meta.get('version')}, expected {CACHE_VERSION}")
    arrays = {"hr": np.load(path / "hr.npy", mmap_mode="r")}
    for key in meta["extras"]:
        arrays[key] = np.load(path / f"{key}.npy")
    names = meta["names"]
    if any(len(a) != len(names) for a in arrays.values()):
        raise ValueError("arrays and names differ in length")
    return Prepared(source, None, meta["skipped"], arrays=arrays, names=names, path=path)
