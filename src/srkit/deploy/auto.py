"""``--backend auto``: the fastest installed backend that keeps the model's accuracy.

The first time a model runs on a machine, every installed backend x precision is timed on a
small input and scored on the bundled Set5 (``srkit speed``'s measurement, shortened); those
within :data:`BUDGET_DB` of eager fp32's Set5 PSNR are kept and the fastest is used. The
choice is cached in ``$SRKIT_CACHE/backends.json`` (default ``~/.cache/srkit``), keyed by the
CPU's name and instruction-set flags, the torch version, the thread count and a hash of the
network's weights, so the next run starts at once and another machine measures for itself.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from srkit.common.files import cache_dir, write_text_atomic
from srkit.common.machine import cpu_flags, cpu_name
from srkit.deploy.cache import weights_digest

BUDGET_DB = 0.05  # Set5 Y-PSNR an automatic choice may lose against eager fp32
# bump when a backend's speed changes enough to change choices already cached (2: folded tails,
# OpenVINO int8's float layers in bf16; 3: int8 folded tails)
AUTO_VERSION = 3


@dataclass
class BackendChoice:
    """What ``auto`` picked, and what it measured to pick it."""

    backend: str
    precision: str
    reason: str  # one line for the user
    mp_per_s: float | None = None
    set5_psnr: float | None = None
    fp32_psnr: float | None = None
    measured_s: float | None = None  # None: read from the cache (or nothing to measure)
    candidates: list[dict[str, Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.backend}/{self.precision}"


def cache_file() -> Path:
    return cache_dir() / "backends.json"


def machine_key() -> str:
    return (
        f"{cpu_name()} [{cpu_flags()}] torch {torch.__version__} threads {torch.get_num_threads()}"
    )


def pick(results: Sequence[Any], budget_db: float = BUDGET_DB) -> Any | None:
    """The fastest of ``srkit speed``'s results whose Set5 PSNR is within ``budget_db`` of
    eager fp32's (the first result); None when there is nothing usable."""
    if not results or results[0].error is not None:
        return None
    reference = results[0].set5_psnr

    def usable(r: Any) -> bool:
        if r.error is not None or not math.isfinite(r.mp_per_s):
            return False
        return math.isfinite(reference) and r.set5_psnr >= reference - budget_db

    kept = [r for r in results if usable(r)]
    return max(kept, key=lambda r: r.mp_per_s) if kept else None


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def choose_backend(
    model: Any,
    *,
    precision: str | None = None,
    budget_db: float = BUDGET_DB,
    size: int = 96,
    min_time: float = 0.6,
    refresh: bool = False,
    cache: Path | None = None,
    log: Any = None,
) -> BackendChoice:
    """The backend ``model`` should run on here (``precision``: only that precision).

    Models without a network (bicubic) and fixed-input-size networks (face crops) run as they
    are. ``log(text)`` hears what is being measured (it takes tens of seconds, once).
    """
    from srkit.deploy import available_backends
    from srkit.deploy.speed import DEFAULT_COMBOS, measure

    net = getattr(model, "net", None)
    convention = getattr(model, "convention", None)
    if net is None:
        return BackendChoice("torch", precision or "fp32", "no network to accelerate")
    if getattr(convention, "input_size", None) is not None:
        return BackendChoice("torch", precision or "fp32", "a fixed-input-size network")
    installed = set(available_backends())
    if os.environ.get("SRKIT_SKIP_COMPILE"):
        installed.discard("torch-compile")
    combos = [(b, p) for b, p in DEFAULT_COMBOS if b in installed and precision in (None, p)]
    if ("torch", "fp32") not in combos:
        combos.insert(0, ("torch", "fp32"))  # the reference
    path = cache or cache_file()
    key = (
        f"{machine_key()} | {weights_digest(net)} x{int(model.scale)} | {precision or 'any'}"
        f" | auto {AUTO_VERSION}"
    )
    entries = _read_cache(path)
    hit = entries.get(key)
    if hit and not refresh and (hit["backend"], hit["precision"]) in combos:
        return BackendChoice(**{**hit, "measured_s": None, "reason": hit["reason"] + " (cached)"})
    if log is not None:
        log(
            f"backend auto: timing {len(combos)} backend/precision pairs of {model.name} on "
            f"this CPU once (cached in {path}; --backend NAME skips this)"
        )
    start = time.perf_counter()
    results = measure(model, size=size, combos=combos, min_time=min_time, rounds=2, psnr=True)
    seconds = time.perf_counter() - start
    best = pick(results, budget_db)
    candidates = [
        {
            k: v
            for k, v in r.record().items()
            if k in ("backend", "precision", "mp_per_s", "set5_psnr", "error")
        }  # fmt: skip
        for r in results
    ]
    if best is None:
        choice = BackendChoice("torch", "fp32", "no backend passed the check; eager fp32",
                               measured_s=round(seconds, 1), candidates=candidates)  # fmt: skip
    else:
        reference = results[0]
        speedup = best.mp_per_s / reference.mp_per_s
        choice = BackendChoice(
            best.backend, best.precision,
            f"fastest within {budget_db} dB of fp32 on Set5: {speedup:.2f}x eager fp32, "
            f"{best.set5_psnr - reference.set5_psnr:+.3f} dB",
            mp_per_s=best.mp_per_s, set5_psnr=best.set5_psnr, fp32_psnr=reference.set5_psnr,
            measured_s=round(seconds, 1), candidates=candidates,
        )  # fmt: skip
    record = {k: v for k, v in asdict(choice).items() if k != "measured_s"}
    entries[key] = record
    with contextlib.suppress(OSError):  # a read-only home: measure again next time
        write_text_atomic(path, json.dumps(entries, indent=2) + "\n")
    return choice
