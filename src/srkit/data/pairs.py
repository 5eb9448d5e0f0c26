"""LR/HR pairs: HR images with stored LR images, matched by file stem.

``open_dataset(spec)`` opens what :func:`~srkit.data.sources.open_source` opens, and a folder
holding ``HR/`` and ``LR/`` (either case, no images of its own) as a :class:`PairedSource` named
after the folder; ``open_dataset(hr, lr=folder)`` pairs the two. Evaluation scores a paired
source's stored LR as is (``source.paired``): no degradation.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from srkit.data.sources import (
    ImageSource,
    SourceError,
    folder_name,
    is_image_name,
    natural_key,
    open_source,
)
from srkit.image.io import DEFAULT_MAX_PIXELS, LoadedImage

__all__ = ["PAIR_FOLDERS", "PairedSource", "open_dataset", "open_pairs"]

PAIR_FOLDERS = ("HR", "LR")


def _by_stem(source: ImageSource) -> dict[str, str]:
    """``{stem: name}`` (``sub/0001.png`` -> ``sub/0001``); two images of one stem are an error."""
    stems: dict[str, str] = {}
    for name in source.names:
        stem = PurePosixPath(name).with_suffix("").as_posix()
        if stem in stems:
            raise SourceError(
                f"{source.origin}: {stems[stem]!r} and {name!r} have the same stem: "
                "LR/HR pairs are matched by stem"
            )
        stems[stem] = name
    return stems


class PairedSource(ImageSource):
    """HR images paired with stored LR images by file stem (``0001.png`` with ``0001.jpg``).

    Names, ``read`` and ``read_bytes`` are the HR's; ``read_lr(name)`` decodes its LR (any image
    format). Evaluation applies no degradation to it. Every HR needs an LR of the same stem
    and the other way round: an image without a partner is a ``SourceError`` naming it.
    """

    def __init__(self, hr: ImageSource, lr: ImageSource, name: str | None = None) -> None:
        hr_stems, lr_stems = _by_stem(hr), _by_stem(lr)
        for stems, other, side in ((hr_stems, lr_stems, "LR"), (lr_stems, hr_stems, "HR")):
            alone = sorted((n for s, n in stems.items() if s not in other), key=natural_key)
            if alone:
                origin = lr.origin if side == "LR" else hr.origin
                shown = ", ".join(alone[:5]) + (f" (+{len(alone) - 5} more)" if alone[5:] else "")
                raise SourceError(f"{origin}: no {side} image with the stem of {shown}")
        self.hr_source, self.lr_source = hr, lr
        self._lr_names = {hr_stems[stem]: lr_name for stem, lr_name in lr_stems.items()}
        super().__init__(name or hr.name, hr.names, f"{hr.origin} (LR: {lr.origin})")

    @property
    def paired(self) -> bool:
        return True

    @property
    def has_lr(self) -> bool:
        return True

    @property
    def fingerprint(self) -> str | None:
        hr, lr = self.hr_source.fingerprint, self.lr_source.fingerprint
        return None if hr is None or lr is None else f"{hr}|{lr}"

    def lr_name(self, name: str) -> str:
        """The LR image paired with HR ``name``."""
        self._check(name)
        return self._lr_names[name]

    def label(self, name: str) -> str:
        return self.hr_source.label(name)

    def read(self, name: str, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> LoadedImage:
        self._check(name)
        return self.hr_source.read(name, max_pixels=max_pixels)

    def read_lr(self, name: str, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> LoadedImage:
        return self.lr_source.read(self.lr_name(name), max_pixels=max_pixels)

    def read_bytes(self, name: str) -> bytes:
        self._check(name)
        return self.hr_source.read_bytes(name)

    def close(self) -> None:
        self.hr_source.close()
        self.lr_source.close()


def _pair_folders(path: Path) -> tuple[Path, Path] | None:
    """``(HR, LR)`` subfolders of ``path`` (either case) when it holds both and no images."""
    found: dict[str, Path] = {}
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.is_dir() and entry.name.upper() in PAIR_FOLDERS:
                found[entry.name.upper()] = Path(entry.path)
            elif entry.is_file() and is_image_name(entry.name):
                return None
    if set(found) != set(PAIR_FOLDERS):
        return None
    return found["HR"], found["LR"]


def open_pairs(
    hr: str | os.PathLike | ImageSource,
    lr: str | os.PathLike | ImageSource,
    name: str | None = None,
) -> PairedSource:
    """Pair an HR dataset with a folder (or any source) of LR images, matched by file stem."""
    hr_source = open_dataset(hr)
    try:
        lr_source = open_dataset(lr)
    except BaseException:
        hr_source.close()
        raise
    if hr_source.paired or lr_source.paired:
        raise SourceError(f"{hr_source.origin}: already an LR/HR pair folder")
    try:
        return PairedSource(hr_source, lr_source, name)
    except BaseException:
        hr_source.close()
        lr_source.close()
        raise


def open_dataset(
    spec: str | os.PathLike | ImageSource, lr: str | os.PathLike | ImageSource | None = None
) -> ImageSource:
    """A dataset spec (see :func:`~srkit.data.sources.open_source`), a pair folder, or ``spec``
    (the HR) paired with the LR images of ``lr``."""
    if lr is not None:
        return open_pairs(spec, lr)
    if not isinstance(spec, ImageSource):
        path = Path(os.path.expanduser(os.fspath(spec)))
        pair = _pair_folders(path) if path.is_dir() else None
        if pair is not None:
            return open_pairs(pair[0], pair[1], name=folder_name(path))
    return open_source(spec)
