"""Where a dataset's images come from: a folder, a glob, a zip, a list file or an HDF5 file.

``open_source(spec)`` looks at ``spec`` and returns an :class:`ImageSource` with the same small
API whatever the storage: ``name``, ``names`` (natural-sorted), ``len()``, ``read(name)`` ->
:class:`~srkit.image.io.LoadedImage`, ``read_bytes(name)``, and ``has_lr`` / ``read_lr(name)``
for HDF5 files that pair HR with LR images. A bad image raises ``ImageReadError`` on ``read`` so
callers can skip it; a bad *source* (missing, empty, unsafe archive) fails when opened.

:mod:`srkit.data.pairs` pairs HR images with stored LR images by file stem; evaluation then
scores the stored LR as is (``source.paired``).
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import threading
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any

import numpy as np

from srkit.image.io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    ImageReadError,
    LoadedImage,
    check_pixel_limit,
    image_from_array,
    read_image,
    resolve_max_pixels,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "FileSource",
    "FolderSource",
    "GlobSource",
    "HDF5Source",
    "ImageSource",
    "ListFileSource",
    "SourceError",
    "UnsafeArchiveError",
    "ZipSource",
    "files_of",
    "is_image_name",
    "natural_key",
    "open_source",
]

LIST_SUFFIXES = frozenset({".txt", ".lst"})
HDF5_SUFFIXES = frozenset({".h5", ".hdf5"})

_GLOB_MAGIC = re.compile(r"[*?[]")
_DIGITS = re.compile(r"([0-9]+)")


def files_of(path: Path) -> list[Path] | None:
    """The files a source path stands for on disk: a folder's files (sorted) or one file (an
    image, a zip); ``None`` for a list file (its images live elsewhere), a glob or a missing
    path. What keys a cache by the files instead of decoding them reads."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file())
    if path.is_file() and path.suffix.lower() not in LIST_SUFFIXES:
        return [path]
    return None


class SourceError(ValueError):
    """A dataset source that cannot be used: no images, unreadable archive, bad layout."""


class UnsafeArchiveError(SourceError):
    """A zip archive with an entry that could escape its folder (absolute path or ``..``)."""


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key putting ``img2`` before ``img10``; ties fall back to the exact string, so the
    order is total and the same on every machine."""
    parts = _DIGITS.split(name)  # text, digits, text, ...: each position has one type
    key = tuple(
        (int(part), part) if index % 2 else (part.casefold(), part)
        for index, part in enumerate(parts)
    )
    return key, name


def _sorted_names(names: Iterable[str]) -> list[str]:
    return sorted(set(names), key=natural_key)


def is_image_name(name: str) -> bool:
    """Whether a file name has an image extension (case-insensitive) and is not hidden."""
    base = PurePosixPath(name.replace("\\", "/")).name
    # "._x.png" are macOS resource forks, not images; other dotfiles are hidden on purpose
    return not base.startswith(".") and PurePosixPath(base).suffix.lower() in IMAGE_EXTENSIONS


def _missing(path: str | os.PathLike, what: str = "dataset source") -> FileNotFoundError:
    return FileNotFoundError(2, f"{what} not found", os.fspath(path))


class ImageSource(ABC):
    """A named, ordered collection of images readable by name."""

    def __init__(self, name: str, names: Iterable[str], origin: str) -> None:
        self.name = name
        self.origin = origin  # what was opened, for messages
        self._names = _sorted_names(names)
        self._index = frozenset(self._names)
        if not self._names:
            raise SourceError(f"{origin}: no images found")

    @property
    def names(self) -> list[str]:
        """Image names in natural sort order."""
        return list(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.origin!r}, {len(self)} images)"

    def _check(self, name: str) -> None:
        if name not in self._index:
            raise KeyError(f"{name!r} is not an image of {self.origin}")

    def label(self, name: str) -> str:
        """How errors name an image of this source."""
        return f"{self.origin}:{name}"

    @abstractmethod
    def read(self, name: str, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> LoadedImage:
        """Decode one image; a bad one raises ``ImageReadError``."""

    @abstractmethod
    def read_bytes(self, name: str) -> bytes:
        """The encoded file as stored."""

    @property
    def has_lr(self) -> bool:
        """Whether the source pairs each image with a stored low-resolution version."""
        return False

    @property
    def paired(self) -> bool:
        """Whether evaluation takes the stored LR instead of degrading the HR (PairedSource)."""
        return False

    @property
    def fingerprint(self) -> str | None:
        """A string that changes when the images may have (cache keys); None when unknown."""
        return None

    def read_lr(self, name: str, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> LoadedImage:
        """The stored LR image paired with ``name`` (only when ``has_lr``)."""
        raise SourceError(f"{self.origin} has no stored LR images")

    def close(self) -> None:  # noqa: B027 - sources without open files have nothing to do
        """Release open files (the source reopens them if used again)."""

    def __enter__(self) -> ImageSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


# --------------------------------------------------------------------------- plain files


class FileSource(ImageSource):
    """Images that are files on disk, each under a name."""

    def __init__(self, name: str, files: dict[str, Path], origin: str) -> None:
        self._files = files
        super().__init__(name, files, origin)

    def path(self, name: str) -> Path:
        """The file behind ``name``."""
        self._check(name)
        return self._files[name]

    def label(self, name: str) -> str:
        return str(self.path(name))

    @property
    def fingerprint(self) -> str | None:
        digest = hashlib.sha256()
        try:
            for name in self._names:
                path = self._files[name]
                digest.update(f"{name}\0{_file_identity(path)}\n".encode())
        except OSError:
            return None
        return digest.hexdigest()

    def read(self, name: str, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> LoadedImage:
        return read_image(self.path(name), max_pixels=max_pixels)

    def read_bytes(self, name: str) -> bytes:
        path = self.path(name)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ImageReadError(str(path), "file not found") from None
        except OSError as error:
            raise ImageReadError(str(path), "cannot open file", str(error)) from error


def _file_identity(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def folder_name(path: Path) -> str:
    # abspath, not resolve: "." becomes the working folder's name without following symlinks
    return Path(os.path.abspath(path)).name or str(path)


class FolderSource(FileSource):
    """Image files in a folder (and its subfolders with ``recursive=True``)."""

    def __init__(self, folder: str | os.PathLike, *, recursive: bool = False) -> None:
        root = Path(folder)
        if not root.is_dir():
            raise _missing(root, "dataset folder")
        files: dict[str, Path] = {}
        if recursive:
            for directory, subfolders, filenames in os.walk(root):
                subfolders[:] = [d for d in subfolders if not d.startswith(".")]
                for filename in filenames:
                    path = Path(directory) / filename
                    if is_image_name(filename) and path.is_file():
                        files[path.relative_to(root).as_posix()] = path
        else:
            with os.scandir(root) as entries:
                for entry in entries:
                    if is_image_name(entry.name) and entry.is_file():
                        files[entry.name] = root / entry.name
        self.root = root
        super().__init__(folder_name(root), files, str(root))


def _glob_root(pattern: str) -> Path:
    """The folder part of a pattern before its first wildcard."""
    parts = Path(pattern).parts
    fixed: list[str] = []
    for part in parts[:-1]:
        if _GLOB_MAGIC.search(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


class GlobSource(FileSource):
    """Image files matching a glob pattern (``**`` spans folders); named after its root folder."""

    def __init__(self, pattern: str) -> None:
        root = _glob_root(pattern)
        if not root.is_dir():
            raise _missing(root, f"folder of pattern {pattern!r}")
        files: dict[str, Path] = {}
        for match in glob.glob(pattern, recursive=True):
            path = Path(match)
            if is_image_name(path.name) and path.is_file():
                files[path.relative_to(root).as_posix()] = path
        self.root = root
        self.pattern = pattern
        super().__init__(folder_name(root), files, pattern)


class ListFileSource(FileSource):
    """Images listed one per line in a ``.txt``/``.lst`` file, relative to the list's folder.

    Blank lines and lines starting with ``#`` are skipped. Names are the lines as written;
    like every source, they are natural-sorted.
    """

    def __init__(self, list_file: str | os.PathLike) -> None:
        list_path = Path(list_file)
        try:
            text = list_path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise _missing(list_path, "image list") from None
        except UnicodeDecodeError as error:
            raise SourceError(f"{list_path}: not a UTF-8 text file ({error})") from None
        except OSError as error:
            raise SourceError(f"{list_path}: cannot read the image list ({error})") from None
        files: dict[str, Path] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            entry = line.strip()
            if not entry or entry.startswith("#"):
                continue
            if "\0" in entry:
                raise SourceError(f"{list_path}:{number}: the line holds a NUL byte")
            if entry in files:
                raise SourceError(f"{list_path}:{number}: {entry!r} is listed twice")
            files[entry] = list_path.parent / entry
        self.list_path = list_path
        super().__init__(list_path.stem, files, str(list_path))


# --------------------------------------------------------------------------- zip archives


def _unsafe_entry_reason(entry: str) -> str | None:
    """Why a zip entry name could point outside the archive's folder, if it could."""
    normalised = entry.replace("\\", "/")
    if normalised.startswith("/") or re.match(r"^[A-Za-z]:", normalised):
        return "absolute path"
    if ".." in normalised.split("/"):
        return "'..' path component"
    return None


class ZipSource(ImageSource):
    """Images inside a zip archive (any folder), read in place without extracting.

    One ``ZipFile`` is kept open and reopened after ``close()`` or in a forked worker process
    (a shared file offset would mix reads between processes).
    """

    def __init__(self, archive: str | os.PathLike) -> None:
        self.path = Path(archive)
        if not self.path.is_file():
            raise _missing(self.path, "zip archive")
        self._lock = threading.Lock()
        self._zip: zipfile.ZipFile | None = None
        self._pid = os.getpid()
        entries = self._archive().infolist()
        for info in entries:
            reason = _unsafe_entry_reason(info.filename)
            if reason is not None:
                self.close()
                raise UnsafeArchiveError(
                    f"{self.path}: refusing zip entry {info.filename!r} ({reason})"
                )
        self._sizes = {
            info.filename: info.file_size
            for info in entries
            if is_image_name(info.filename)  # first: is_dir() fails on an empty name
            and not info.is_dir()
            and not info.filename.startswith("__MACOSX/")
        }
        try:
            super().__init__(self.path.stem, self._sizes, str(self.path))
        except SourceError:
            self.close()
            raise

    @property
    def fingerprint(self) -> str | None:
        try:
            return _file_identity(self.path)
        except OSError:
            return None

    def _archive(self) -> zipfile.ZipFile:
        if self._zip is None or self._pid != os.getpid():
            try:
                self._zip = zipfile.ZipFile(self.path)
            except Exception as error:  # zipfile raises many types on a damaged central directory
                raise SourceError(f"{self.path}: not a valid zip archive ({error})") from None
            self._pid = os.getpid()
        return self._zip

    def read_bytes(self, name: str) -> bytes:
        self._check(name)
        label = self.label(name)
        with self._lock:
            try:
                return self._archive().read(name)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as error:
                raise ImageReadError(label, "corrupt zip entry", str(error)) from error
            except (RuntimeError, NotImplementedError) as error:  # encrypted, odd compression
                raise ImageReadError(label, "cannot read zip entry", str(error)) from error
            except Exception as error:  # zlib.error, a local header's undecodable name, ...
                raise ImageReadError(label, "corrupt zip entry", str(error)) from error

    def read(self, name: str, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> LoadedImage:
        self._check(name)
        limit = resolve_max_pixels(max_pixels)
        # An encoded image of `limit` pixels needs at most ~8 bytes each (raw 16-bit RGBA):
        # refuse larger entries before inflating them into memory.
        if limit is not None and self._sizes[name] > 8 * limit + (1 << 20):
            size = f"{self._sizes[name]:,} bytes uncompressed"
            raise ImageReadError(self.label(name), "too many pixels", size)
        return read_image(self.read_bytes(name), name=self.label(name), max_pixels=limit)

    def close(self) -> None:
        with self._lock:
            if self._zip is not None:
                self._zip.close()
                self._zip = None

    def __getstate__(self) -> dict[str, Any]:
        # Open files and locks do not pickle (spawned DataLoader workers): reopen lazily.
        state = self.__dict__.copy()
        state["_zip"] = None
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


# --------------------------------------------------------------------------- HDF5


def _import_h5py() -> Any:
    try:
        import h5py
    except ImportError as error:
        raise ImportError(
            "reading .h5/.hdf5 datasets needs h5py: pip install 'srkit[data]'"
        ) from error
    return h5py


# h5py reports a damaged file with several types, depending on the HDF5 call that meets the damage.
_HDF5_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError)


def _child(container: Any, key: str) -> Any:
    """``container[key]`` matching the key case-insensitively (``hr`` or ``HR``), or None."""
    for candidate in container:
        if candidate.lower() == key:
            return container[candidate]
    return None


def _channel_first(shape: tuple[int, ...]) -> bool:
    """(C, H, W) rather than (H, W, C): C is 1 or 3 and the last axis cannot be channels."""
    return len(shape) == 3 and shape[0] in (1, 3) and shape[-1] not in (1, 3)


def _image_size(shape: tuple[int, ...]) -> tuple[int, int]:
    """(height, width) of one image of ``shape`` (H, W), (H, W, C) or (C, H, W)."""
    if _channel_first(shape):
        return shape[1], shape[2]
    return shape[0], shape[1]


class _Hdf5Images:
    """One side (``hr`` or ``lr``) of an HDF5 file: a group of datasets or one stacked array."""

    def __init__(self, h5py: Any, node: Any, side: str, origin: str) -> None:
        self.side = side
        self.stacked = isinstance(node, h5py.Dataset)
        if self.stacked:
            if node.ndim not in (3, 4):
                raise SourceError(
                    f"{origin}: stacked dataset {side!r} must be (N, H, W[, C]) or "
                    f"(N, C, H, W), got shape {node.shape}"
                )
            width = max(5, len(str(node.shape[0] - 1)))
            self.keys = {f"{index:0{width}d}": index for index in range(node.shape[0])}
        elif isinstance(node, h5py.Group):
            self.keys = {key: key for key, item in node.items() if isinstance(item, h5py.Dataset)}
        else:
            raise SourceError(f"{origin}: {side!r} is neither a group nor a dataset")

    def read(self, node: Any, name: str, label: str, max_pixels: int | None) -> LoadedImage:
        try:
            return self._read(node, name, label, max_pixels)
        except ImageReadError:
            raise
        except _HDF5_ERRORS as error:
            raise ImageReadError(label, "cannot read HDF5 dataset", str(error)) from None

    def _read(self, node: Any, name: str, label: str, max_pixels: int | None) -> LoadedImage:
        key = self.keys[name]
        dataset = node if self.stacked else node[key]
        shape = tuple(dataset.shape[1:] if self.stacked else dataset.shape)
        if len(shape) not in (2, 3):
            raise ImageReadError(label, "unsupported array shape", f"{shape}")
        height, width = _image_size(shape)
        check_pixel_limit(label, width, height, max_pixels)  # before reading the data
        array = np.asarray(dataset[key] if self.stacked else dataset[()])
        if _channel_first(array.shape):
            array = np.moveaxis(array, 0, -1)
        return image_from_array(array, name=label, max_pixels=None)


class HDF5Source(ImageSource):
    """Images in an HDF5 file, in the layouts SR repositories use.

    * groups ``hr`` (and optionally ``lr``) with one dataset per image, named by its key;
    * datasets ``hr`` (and optionally ``lr``) stacking N images as (N, H, W), (N, H, W, C) or
      (N, C, H, W), named ``00000``, ``00001``, ...

    Pixels must be uint8 or uint16 (float data raises ``ImageReadError``).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise _missing(self.path, "HDF5 file")
        self._h5py = _import_h5py()
        self._lock = threading.Lock()
        self._file: Any = None
        self._pid = os.getpid()
        origin = str(self.path)
        try:
            self._hr, self._lr = self._layout(origin)
            super().__init__(self.path.stem, self._hr.keys, origin)
        except SourceError:
            self.close()
            raise
        except _HDF5_ERRORS as error:
            self.close()
            raise SourceError(f"{origin}: damaged HDF5 file ({error})") from None

    def _layout(self, origin: str) -> tuple[_Hdf5Images, _Hdf5Images | None]:
        handle = self._handle()
        hr_node = _child(handle, "hr")
        if hr_node is None:
            keys = sorted(handle)
            raise SourceError(f"{origin}: no 'hr' group or dataset (top-level keys: {keys})")
        hr = _Hdf5Images(self._h5py, hr_node, "hr", origin)
        lr_node = _child(handle, "lr")
        lr = None if lr_node is None else _Hdf5Images(self._h5py, lr_node, "lr", origin)
        if lr is not None and set(lr.keys) != set(hr.keys):
            unpaired = sorted(set(hr.keys) ^ set(lr.keys), key=natural_key)
            raise SourceError(f"{origin}: 'hr' and 'lr' images do not pair up: {unpaired[:5]}")
        return hr, lr

    @property
    def fingerprint(self) -> str | None:
        try:
            return _file_identity(self.path)
        except OSError:
            return None

    def _handle(self) -> Any:
        if self._file is None or self._pid != os.getpid():
            try:
                self._file = self._h5py.File(self.path, "r")
            except OSError as error:
                raise SourceError(f"{self.path}: not a readable HDF5 file ({error})") from error
            self._pid = os.getpid()
        return self._file

    def _read(self, images: _Hdf5Images, name: str, max_pixels: int | None) -> LoadedImage:
        self._check(name)
        label = f"{self.origin}:{images.side}/{name}"
        with self._lock:
            try:
                node = _child(self._handle(), images.side)
            except _HDF5_ERRORS as error:
                raise ImageReadError(label, "cannot read HDF5 dataset", str(error)) from None
            return images.read(node, name, label, max_pixels)

    def read(self, name: str, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> LoadedImage:
        return self._read(self._hr, name, max_pixels)

    @property
    def has_lr(self) -> bool:
        return self._lr is not None

    def read_lr(self, name: str, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> LoadedImage:
        if self._lr is None:
            return super().read_lr(name, max_pixels)
        return self._read(self._lr, name, max_pixels)

    def read_bytes(self, name: str) -> bytes:
        raise NotImplementedError(
            f"{self.origin} stores decoded arrays, not encoded files: use read()"
        )

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_file=None, _lock=None, _h5py=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._h5py = _import_h5py()


# --------------------------------------------------------------------------- dispatch


def open_source(spec: str | os.PathLike | ImageSource, *, recursive: bool = False) -> ImageSource:
    """Open a dataset by what ``spec`` is: folder, glob pattern, ``.zip``, ``.txt``/``.lst``
    list file, ``.h5``/``.hdf5`` file or one image file (an ``ImageSource`` is returned as is).

    ``recursive`` includes a folder's subfolders. Raises ``FileNotFoundError`` for a missing
    path and ``SourceError`` for an unsupported file or a source without images.
    """
    if isinstance(spec, ImageSource):
        return spec
    text = os.path.expanduser(os.fspath(spec))
    path = Path(text)
    if path.is_dir():
        return FolderSource(path, recursive=recursive)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".zip":
            return ZipSource(path)
        if suffix in LIST_SUFFIXES:
            return ListFileSource(path)
        if suffix in HDF5_SUFFIXES:
            return HDF5Source(path)
        if is_image_name(path.name):
            return FileSource(path.stem, {path.name: path}, str(path))
        raise SourceError(
            f"{path}: not a dataset source (expected a folder, a glob pattern, an image, or a "
            ".zip, .txt/.lst or .h5/.hdf5 file)"
        )
    if _GLOB_MAGIC.search(text):
        return GlobSource(text)
    raise _missing(path)
