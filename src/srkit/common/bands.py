"""Row bands of a NumPy job spread over the cores (NumPy's loops release the GIL).

Blending tiles and converting float rows to pixels run between two network calls, when the
network's threads are idle: :func:`over_bands` cuts the rows into one band per thread and runs
them at once on a small pool that lives as long as the process. :func:`set_threads` limits the
threads (``srkit upscale --threads``, a Ray worker's share); by default every core this process
may use.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

_POOL: ThreadPoolExecutor | None = None
_LOCK = threading.Lock()
_THREADS: int | None = None
_IN_POOL = threading.local()


def cores() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def set_threads(threads: int | None) -> None:
    """Run bands on at most ``threads`` threads (None: every core)."""
    global _THREADS
    _THREADS = None if threads is None else max(1, int(threads))


def threads() -> int:
    return _THREADS if _THREADS is not None else cores()


def _mark() -> None:
    _IN_POOL.active = True


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(
                max(1, cores() - 1), thread_name_prefix="srkit-band", initializer=_mark
            )
        return _POOL


def over_bands(fn: Callable[[int, int], None], rows: int, *, min_rows: int = 64) -> None:
    """``fn(r0, r1)`` over ``[0, rows)`` in one band per thread (bands of at least
    ``min_rows``; the calling thread takes the first). ``fn`` must write disjoint rows. Every
    band has finished when this returns or raises (the first error is raised). Called from a
    band itself, it runs ``fn`` whole on that thread."""
    bands = max(1, min(threads(), rows // max(1, min_rows)))
    if bands == 1 or getattr(_IN_POOL, "active", False):
        fn(0, rows)
        return
    bounds = [round(i * rows / bands) for i in range(bands + 1)]
    pending = [_pool().submit(fn, a, b) for a, b in zip(bounds[1:-1], bounds[2:], strict=True)]
    error: BaseException | None = None
    try:
        fn(bounds[0], bounds[1])
    except BaseException as failure:  # noqa: BLE001 - raised once every band has stopped
        error = failure
    wait(pending)
    for future in pending:
        if error is None and future.exception() is not None:
            error = future.exception()
    if error is not None:
        raise error
