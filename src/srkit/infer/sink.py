"""The encoder's thread: jobs run in order, overlapped with the network."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable


class Sink:
    """One background thread running jobs in order (encoding overlapped with compute)."""

    def __init__(self, depth: int = 2) -> None:
        self._jobs: queue.Queue = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._loop, name="srkit-encode", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            job()

    def put(self, job: Callable[[], None]) -> None:
        self._jobs.put(job)

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join()
