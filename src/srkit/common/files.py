"""Atomic file writes: the target is written beside itself under a temporary name and renamed
onto its path only when complete, so a reader (or a rerun after a crash or ``kill -9``) sees the
previous file or the new one, whole, never a partial file.

* ``write_bytes_atomic`` / ``write_text_atomic``: data in memory.
* ``AtomicFile``: a file object written over time (a streamed PNG), then ``commit()`` or
  ``abort()``.
* ``atomic_path``: a temporary path for a library that opens the file itself (``h5py``, ``onnx``,
  ``safetensors``, ``torch.save``).

Files get the permissions of an ordinary ``open()`` (``0o666`` less the umask), not the private
``0o600`` of ``mkstemp``. ``fsync=True`` also flushes the data to the disk before the rename, for
files that must survive a power cut (checkpoints), at some cost in speed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import IO, Any


@lru_cache(maxsize=1)
def _umask() -> int:
    """The process's umask, read once: ``os.umask`` can only be read by setting it, which races
    with other threads creating files."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split(":", 1)[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temporary_beside(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    return temporary


def _publish(temporary: str, path: Path, fsync: bool) -> None:
    if fsync:
        with open(temporary, "rb") as stream:
            os.fsync(stream.fileno())
    os.chmod(temporary, 0o666 & ~_umask())
    os.replace(temporary, path)


class AtomicFile:
    """A file object for ``path`` that appears there, whole, on ``commit()``.

    ``abort()`` (or an exception inside ``with AtomicFile(...) as f:``) deletes the partial file
    and leaves any previous file at ``path`` untouched.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        mode: str = "wb",
        *,
        fsync: bool = False,
        **open_options: Any,
    ) -> None:
        if not mode.startswith("w"):
            raise ValueError(f"AtomicFile writes a new file: mode 'w' or 'wb', got {mode!r}")
        self.path = Path(path)
        self.fsync = fsync
        self._temporary = _temporary_beside(self.path)
        try:
            self.file: IO[Any] = open(self._temporary, mode, **open_options)  # noqa: SIM115
        except BaseException:
            Path(self._temporary).unlink(missing_ok=True)
            raise

    def commit(self) -> Path:
        """Close the file and move it onto ``path``."""
        try:
            self.file.close()
            _publish(self._temporary, self.path, self.fsync)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Drop the partial file."""
        if not self.file.closed:
            self.file.close()
        Path(self._temporary).unlink(missing_ok=True)

    def __enter__(self) -> IO[Any]:
        return self.file

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (parent folders are created)."""
    with AtomicFile(path, "wb", fsync=fsync) as stream:
        stream.write(data)
    return Path(path)


def write_text_atomic(
    path: str | os.PathLike,
    text: str,
    *,
    encoding: str = "utf-8",
    newline: str | None = None,
    fsync: bool = False,
) -> Path:
    """Write ``text`` to ``path`` atomically; ``newline=""`` writes line ends as they are (CSV)."""
    with AtomicFile(path, "w", fsync=fsync, encoding=encoding, newline=newline) as stream:
        stream.write(text)
    return Path(path)


@contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = False) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that opens the file itself; renamed onto
    ``path`` when the block ends without an exception, deleted when it raises::

        with atomic_path(out) as temporary:
            onnx.save(proto, str(temporary))
    """
    target = Path(path)
    temporary = _temporary_beside(target)
    try:
        yield Path(temporary)
        _publish(temporary, target, fsync)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def cache_dir() -> Path:
    """srkit's cache folder: ``$SRKIT_CACHE``, or ``~/.cache/srkit``."""
    env = os.environ.get("SRKIT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "srkit"
