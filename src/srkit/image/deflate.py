"""Deflate for PNG writing: ISA-L at the fast levels, zlib-ng above them (both dependencies).

Both produce standard deflate streams (any PNG reader opens them). On a 7680x4320 RGB output
filtered with Average (an AMD EPYC core): ISA-L at level 2 deflates in 0.26 s, zlib-ng at level
3 in 0.87 s for a file 6% smaller, at level 6 in 3.8 s; plain zlib at 6 takes 13.2 s
(benchmarks/bench_upscale_share.py times the whole path).
"""

from __future__ import annotations

import zlib
from typing import Any

try:  # the same API as zlib's
    from zlib_ng import zlib_ng as _impl
except ImportError:  # pragma: no cover - zlib-ng is a dependency; plain zlib still works
    _impl = zlib

try:  # zlib's API too, levels 0-3 of its own
    from isal import isal_zlib as _fast
except ImportError:  # pragma: no cover - isal is a dependency; the slower levels still work
    _fast = None

#: which library deflates at levels 3-9 (and at 1-2 without ISA-L): ``zlib-ng`` or ``zlib``
BACKEND = "zlib" if _impl is zlib else "zlib-ng"

#: the levels ISA-L deflates (its own levels 1 and 2: about 3x zlib-ng's level 3, a few %
#: larger); level 0 stores, levels 3-9 go to zlib-ng
FAST_LEVELS = (1, 2)


def _library(level: int) -> Any:
    return _fast if _fast is not None and level in FAST_LEVELS else _impl


def library(level: int) -> str:
    """The library that deflates at ``level``: ``isa-l``, ``zlib-ng`` or ``zlib``."""
    return "isa-l" if _library(check_level(level)) is _fast else BACKEND


def check_level(level: int, name: str = "PNG compression level") -> int:
    """``level`` if it is a deflate level (0-9), else a ``ValueError`` naming ``name``."""
    if not 0 <= level <= 9:
        raise ValueError(f"{name} must be 0..9, got {level}")
    return level


def compressobj(level: int = 6) -> Any:
    """A streaming compressor (``compress(bytes)`` / ``flush()``), zlib format."""
    return _library(check_level(level)).compressobj(level)


def compress(data: bytes, level: int = 6) -> bytes:
    """``data`` deflated in zlib format at ``level``."""
    return _library(check_level(level)).compress(data, level)


class ZlibStream:
    """A zlib stream deflated in independent pieces on a few threads (pigz's method).

    Each piece is raw deflate primed with the 32 KiB of data before it (so matches still reach
    back across pieces) and ended with a sync flush, so the pieces simply concatenate; the
    stream's adler32 is kept over the data in order. The output is a standard zlib stream of
    almost the size of a serial one (a few bytes per piece), made ``threads`` times as fast when
    the cores are free: the part of a PNG that is left to encode after the last tile.
    """

    WINDOW = 32768

    def __init__(self, level: int = 6, threads: int = 1) -> None:
        self.level = check_level(level)
        self.threads = max(1, int(threads))
        self._pool: Any = None
        self._adler = 1
        self._tail = b""  # the last WINDOW bytes of data so far
        self._started = False

    def _header(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        flevel = 0 if self.level < 2 else 1 if self.level < 6 else 2 if self.level == 6 else 3
        cmf, flg = 0x78, flevel << 6
        flg += 31 - (cmf * 256 + flg) % 31
        return bytes((cmf, flg))

    def _piece(self, data: memoryview, zdict: bytes) -> bytes:
        primed = {"zdict": zdict} if zdict else {}  # the first piece has no data before it
        lib = _library(self.level)
        c = lib.compressobj(self.level, lib.DEFLATED, -15, 8, lib.Z_DEFAULT_STRATEGY, **primed)
        return c.compress(data) + c.flush(lib.Z_SYNC_FLUSH)

    def map(self, fn: Any, *iterables: Any) -> list[Any]:
        """``fn`` over the items on this stream's threads, results in order."""
        args = list(zip(*iterables, strict=True))
        if self.threads == 1 or len(args) < 2:
            return [fn(*a) for a in args]
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="srkit-deflate")
        return list(self._pool.map(lambda a: fn(*a), args))

    def compress(self, pieces: list[Any]) -> bytes:
        """The deflated bytes of ``pieces`` (buffers, in order), one piece per job."""
        views = [memoryview(p).cast("B") for p in pieces]
        views = [v for v in views if len(v)]
        zdicts = []
        tail = self._tail
        for v in views:
            zdicts.append(tail)
            if len(v) >= self.WINDOW:
                tail = bytes(v[-self.WINDOW :])
            else:
                tail = (tail + bytes(v))[-self.WINDOW :]
        self._tail = tail
        for v in views:
            self._adler = _impl.adler32(v, self._adler)
        return self._header() + b"".join(self.map(self._piece, views, zdicts))

    def finish(self) -> bytes:
        """The end of the stream: an empty final block and the adler32."""
        self.close()
        return self._header() + b"\x03\x00" + (self._adler & 0xFFFFFFFF).to_bytes(4, "big")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
