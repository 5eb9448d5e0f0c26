"""A PNG written row block by row block, so huge outputs never sit in memory whole.

8- or 16-bit gray, gray+alpha, RGB or RGBA, with the ICC profile (``iCCP``) and EXIF (``eXIf``)
kept. Rows are filtered with Average (or libpng's heuristic: ``srkit.image.io``'s filter) and
deflated incrementally (ISA-L at levels 1-2, zlib-ng above), in pieces of a few MB spread over
``threads`` threads (:class:`srkit.image.deflate.ZlibStream`); IDAT chunks are flushed as the
compressor produces them. The file is written beside the target and renamed into place on
``close()``, so readers never see half a file.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from srkit.common.bands import cores
from srkit.common.files import AtomicFile
from srkit.image import deflate
from srkit.image.io import PNG_FILTERS, _png_filtered_rows  # srkit's vectorised PNG filter
from srkit.image.io import _png_chunk as _chunk

_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}
_IDAT_FLUSH = 1 << 20
_PIECE_BYTES = 4 << 20  # bytes of rows filtered and deflated as one job


def _default_threads() -> int:
    """Threads for filtering and deflating: the cores this process may use, at most 4."""
    return min(4, cores())


class PNGStreamWriter:
    """``write(rows)`` with ``(n, W, C)`` uint8/uint16 blocks top to bottom, then ``close()``.

    ``filter``: ``average`` (the default: one pass, and on photographs and network output a
    smaller file than the heuristic) or ``heuristic`` (libpng's per-row choice; better on flat
    graphics)."""

    def __init__(
        self,
        path: str | os.PathLike,
        width: int,
        height: int,
        channels: int,
        bit_depth: int = 8,
        *,
        icc_profile: bytes | None = None,
        exif: bytes | None = None,
        level: int = 6,
        threads: int | None = None,
        filter: str = "average",
    ) -> None:
        if channels not in _COLOR_TYPES:
            raise ValueError(f"PNG holds 1 to 4 channels, got {channels}")
        if bit_depth not in (8, 16):
            raise ValueError(f"bit depth must be 8 or 16, got {bit_depth}")
        if filter not in PNG_FILTERS:
            raise ValueError(f"PNG filter must be one of {', '.join(PNG_FILTERS)}, got {filter!r}")
        self.filter = filter
        self.path = Path(path)
        self.width, self.height, self.channels, self.bit_depth = width, height, channels, bit_depth
        self.rows_written = 0
        self._bpp = channels * bit_depth // 8
        self._prev: np.ndarray | None = None
        threads = _default_threads() if threads is None else threads
        self._deflate = deflate.ZlibStream(level, threads)
        self._pending = bytearray()
        self._target = AtomicFile(self.path, "wb")
        self._file = self._target.file
        header = struct.pack(">IIBBBBB", width, height, bit_depth, _COLOR_TYPES[channels], 0, 0, 0)
        self._file.write(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header))
        if icc_profile:
            profile = deflate.compress(icc_profile)
            self._file.write(_chunk(b"iCCP", b"ICC Profile\x00\x00" + profile))
        if exif:
            self._file.write(_chunk(b"eXIf", exif.removeprefix(b"Exif\x00\x00")))

    def write(self, rows: np.ndarray) -> None:
        if rows.ndim == 2:
            rows = rows[:, :, None]
        if rows.shape[1:] != (self.width, self.channels):
            raise ValueError(
                f"rows of shape {rows.shape[1:]} for a {self.width}x{self.channels} PNG"
            )
        if self.rows_written + rows.shape[0] > self.height:
            raise ValueError("more rows than the PNG's height")
        dtype = ">u2" if self.bit_depth == 16 else np.uint8
        # pieces of a few MB, filtered then deflated a group at a time on the stream's threads
        row_bytes = rows.shape[1] * rows.shape[2] * np.dtype(dtype).itemsize
        step = max(1, _PIECE_BYTES // max(1, row_bytes))
        group = step * self._deflate.threads
        for g0 in range(0, rows.shape[0], group):
            block = rows[g0 : g0 + group]
            raw = np.ascontiguousarray(block, dtype=dtype).view(np.uint8)
            raw = raw.reshape(block.shape[0], -1)
            # the Up/Average/Paeth filters look at the row above each piece
            pieces = [raw[r0 : r0 + step] for r0 in range(0, raw.shape[0], step)]
            above = [self._prev] + [piece[-1] for piece in pieces[:-1]]
            filtered = self._deflate.map(
                lambda piece, prev: _png_filtered_rows(
                    piece, self._bpp, prev=prev, method=self.filter
                ),
                pieces,
                above,
            )
            self._prev = raw[-1].copy()
            self._pending += self._deflate.compress(filtered)
            if len(self._pending) >= _IDAT_FLUSH:
                self._flush()
        self.rows_written += rows.shape[0]

    def _flush(self) -> None:
        if self._pending:
            self._file.write(_chunk(b"IDAT", bytes(self._pending)))
            self._pending.clear()

    def close(self) -> Path:
        """Finish the file and move it into place (it must have received every row)."""
        try:
            if self.rows_written != self.height:
                raise ValueError(f"PNG got {self.rows_written} of {self.height} rows")
            self._pending += self._deflate.finish()
            self._flush()
            self._file.write(_chunk(b"IEND", b""))
            self._target.commit()
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Drop the partial file."""
        self._deflate.close()
        self._target.abort()
