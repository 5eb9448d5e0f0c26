"""Labeled Faces in the Wild, read from its zip (or folder) in place, with the official lists.

Image keys are ``Name/Name_0001.jpg`` whatever the storage (``lfw-deepfunneled/`` prefix in the
zip, any folder above in a directory). ``pairs.txt`` (10 folds of 300 matched + 300 mismatched
pairs), ``pairsDevTrain.txt`` / ``pairsDevTest.txt`` (one fold) and the ``people*.txt`` lists are
parsed by :func:`read_pairs` and :func:`read_people`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from srkit.data.sources import open_source
from srkit.faces.paths import data_dir

__all__ = [
    "LFW",
    "LFW_FALLBACK_BOX",
    "Pair",
    "default_lfw_zip",
    "image_key",
    "pair_keys",
    "read_pairs",
    "read_people",
]

# Median dlib HOG box (left, top, right, bottom) on the 250x250 deep-funneled images: used when
# the detector finds nothing, since every LFW image is centred on its face.
LFW_FALLBACK_BOX = (67, 80, 175, 187)


def default_lfw_zip() -> Path:
    return data_dir() / "faces" / "lfw" / "lfw-deepfunneled.zip"


def image_key(name: str, number: int) -> str:
    """``("Aaron_Peirsol", 1)`` -> ``"Aaron_Peirsol/Aaron_Peirsol_0001.jpg"``."""
    return f"{name}/{name}_{int(number):04d}.jpg"


@dataclass(frozen=True)
class Pair:
    """One line of an LFW pairs list: two images, same person or not, and its fold (0-based)."""

    first: str
    second: str
    same: bool
    fold: int


def _bad(path, line_no: int, line: str, why: str) -> ValueError:
    return ValueError(f"{path}:{line_no}: {why}: {line!r}")


def read_pairs(path: str | os.PathLike) -> list[Pair]:
    """Parse an LFW pairs list (``pairs.txt`` with ``folds sets`` header, or ``pairsDev*.txt``)."""
    lines = Path(path).read_text().splitlines()
    if not lines:
        raise ValueError(f"{path}: empty pairs list")
    head = lines[0].split()
    try:
        folds, per_fold = (int(head[0]), int(head[1])) if len(head) == 2 else (1, int(head[0]))
    except (ValueError, IndexError):
        raise _bad(path, 1, lines[0], "bad header (expected 'N' or 'folds N')") from None
    pairs: list[Pair] = []
    body = [(i + 2, line) for i, line in enumerate(lines[1:]) if line.strip()]
    if len(body) != 2 * folds * per_fold:
        raise ValueError(
            f"{path}: header announces {folds} x 2 x {per_fold} pairs, found {len(body)} lines"
        )
    for k, (line_no, line) in enumerate(body):
        f = line.split()
        fold, within = divmod(k, 2 * per_fold)
        same = within < per_fold
        try:
            if len(f) == 3 and same:
                pairs.append(Pair(image_key(f[0], f[1]), image_key(f[0], f[2]), True, fold))
            elif len(f) == 4 and not same:
                pairs.append(Pair(image_key(f[0], f[1]), image_key(f[2], f[3]), False, fold))
            else:
                raise _bad(path, line_no, line, "expected 'name n1 n2' then 'name1 n1 name2 n2'")
        except ValueError as e:
            if isinstance(e, ValueError) and str(e).startswith(str(path)):
                raise
            raise _bad(path, line_no, line, "bad image number") from None
    return pairs


def read_people(path: str | os.PathLike) -> list[tuple[str, int, int]]:
    """Parse a people list: ``(name, number_of_images, fold)``; ``people.txt`` has 10 folds."""
    lines = [line.split() for line in Path(path).read_text().splitlines() if line.strip()]
    out: list[tuple[str, int, int]] = []
    i, fold = 0, 0
    if len(lines[0]) == 1 and len(lines) > 1 and len(lines[1]) == 1:  # 'folds' then 'count'
        i = 1
    while i < len(lines):
        count = int(lines[i][0])
        for name, n in lines[i + 1 : i + 1 + count]:
            out.append((name, int(n), fold))
        i += 1 + count
        fold += 1
    return out


def pair_keys(pairs: list[Pair]) -> list[str]:
    """The distinct images of a pairs list, in first-appearance order."""
    seen: dict[str, None] = {}
    for p in pairs:
        seen.setdefault(p.first)
        seen.setdefault(p.second)
    return list(seen)


class LFW:
    """LFW images by key, read in place from the zip or a folder (``srkit.data.sources``)."""

    def __init__(self, source: str | os.PathLike | None = None) -> None:
        path = Path(source) if source is not None else default_lfw_zip()
        if not path.exists():
            raise FileNotFoundError(f"LFW not found at {path} (set SRKIT_DATA or pass --data)")
        self.path = path
        self.source = open_source(path, recursive=True)
        self._index: dict[str, str] = {}
        for entry in self.source.names:
            parts = entry.split("/")
            if len(parts) >= 2:
                self._index[f"{parts[-2]}/{parts[-1]}"] = entry
        self.keys = sorted(self._index)
        self.name = "lfw"

    @property
    def lists_dir(self) -> Path:
        return self.path.parent

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def entry(self, key: str) -> str:
        try:
            return self._index[key]
        except KeyError:
            raise KeyError(f"{key} is not in {self.path}") from None

    def read(self, key: str) -> np.ndarray:
        """uint8 RGB ``(H, W, 3)``; a bad image raises ``ImageReadError``."""
        return self.source.read(self.entry(key)).to_rgb8()

    def read_bytes(self, key: str) -> bytes:
        return self.source.read_bytes(self.entry(key))
