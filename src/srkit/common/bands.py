"""Row bands of a NumPy job spread over the cores (NumPy's loops release the GIL).

Blending tiles and converting float rows to pixels run between two network calls, when the
network's threads are idle: :func:`over_bands` cuts the rows into one band per core and runs
them at once on a small pool that lives as long as the process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

_POOL: ThreadPoolExecutor | None = None
_LOCK = threading.Lock()


def cores() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max(1, cores() - 1), thread_name_prefix="srkit-band")
        return _POOL


def over_bands(fn: Callable[[int, int], None], rows: int, *, min_rows: int = 64) -> None:
    """``fn(r0, r1)`` over ``[0, rows)`` in one band per core (bands of at least ``min_rows``;
    the calling thread takes the first). ``fn`` must write disjoint rows. Errors are raised."""
    bands = max(1, min(cores(), rows // max(1, min_rows)))
    if bands == 1:
        fn(0, rows)
        return
    bounds = [round(i * rows / bands) for i in range(bands + 1)]
    pending = [_pool().submit(fn, a, b) for a, b in zip(bounds[1:-1], bounds[2:], strict=True)]
    try:
        fn(bounds[0], bounds[1])
    finally:
        for future in pending:
            future.result()
