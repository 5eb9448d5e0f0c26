"""The face data sets ``srkit faces eval`` scores: LFW on a pairs list, or any face folder."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from srkit.data.sources import open_source
from srkit.faces.lfw import LFW, LFW_FALLBACK_BOX, Pair, pair_keys, read_pairs

__all__ = ["FaceSet", "folder_faceset", "lfw_faceset"]


@dataclass
class FaceSet:
    """Images to score: keys, a reader, an identity for cache keys, optional pairs.

    A source of :class:`srkit.bench.engine.Evaluation`: ``name``, ``names`` and ``fingerprint``.
    """

    name: str
    keys: list[str]
    reader: Callable[[str], np.ndarray]
    fingerprint: str
    pairs: list[Pair] | None = None
    fallback_box: tuple[int, int, int, int] | None = None

    @property
    def names(self) -> list[str]:
        return self.keys


def _file_identity(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}:{st.st_size}:{int(st.st_mtime)}"


def lfw_faceset(data: str | Path | None = None, pairs: str | Path | None = None) -> FaceSet:
    """LFW (zip or folder) scored on a pairs list (default ``pairsDevTest.txt`` next to it)."""
    lfw = LFW(data)
    pairs_path = Path(pairs) if pairs is not None else lfw.lists_dir / "pairsDevTest.txt"
    if not pairs_path.is_file() and not pairs_path.is_absolute():
        pairs_path = lfw.lists_dir / pairs_path  # a list name: look next to the images
    if not pairs_path.is_file():
        raise FileNotFoundError(f"pairs list not found: {pairs_path} (pass --pairs)")
    plist = read_pairs(pairs_path)
    keys = pair_keys(plist)
    missing = [k for k in keys if k not in lfw]
    if missing:
        raise ValueError(
            f"{len(missing)} images of {pairs_path.name} not in {lfw.path}: {missing[:3]}"
        )
    ident = f"{_file_identity(lfw.path) if lfw.path.is_file() else lfw.path.resolve()}|"
    ident += _file_identity(pairs_path)
    return FaceSet(
        name=f"lfw-{pairs_path.stem}",
        keys=keys,
        reader=lfw.read,
        fingerprint=ident,
        pairs=plist,
        fallback_box=LFW_FALLBACK_BOX,
    )


def folder_faceset(data: str | Path, fallback_box=None) -> FaceSet:
    """Any folder or zip of face images (per-image figures only, no pairs)."""
    src = open_source(data, recursive=True)
    keys = list(src.names)
    path = Path(data)
    listing = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]
    ident = _file_identity(path) if path.is_file() else f"{path.resolve()}:{listing}"
    if path.is_dir():  # folder contents may change: include sizes and mtimes
        h = hashlib.sha256()
        for k in keys:
            st = (path / k).stat()
            h.update(f"{k}:{st.st_size}:{int(st.st_mtime)}\n".encode())
        ident += ":" + h.hexdigest()[:16]

    def reader(key: str) -> np.ndarray:
        return src.read(key).to_rgb8()

    return FaceSet(src.name, keys, reader, ident, None, fallback_box)


def looks_like_lfw(path: Path) -> bool:
    """An LFW zip/folder with its default pairs list beside it."""
    return "lfw" in path.name.lower() and (path.parent / "pairsDevTest.txt").is_file()
