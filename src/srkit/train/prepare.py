"""``srkit prepare``: cut large images into sub-images and/or pack a dataset into HDF5.

Sub-images follow the DIV2K recipe of BasicSR/A2N: windows of ``size`` pixels every ``stride``
pixels, plus one flush with the right/bottom border so no pixel is lost. HDF5 files use the
layout ``srkit.data.sources`` reads: group ``hr`` with one uint8 ``(H, W, 3)`` dataset per image
named like the source file (and group ``lr`` with MATLAB-bicubic LR when ``lr_scale`` is given),
so training from the packed file sees exactly the images, in the order, of the source.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from rich.progress import Progress

from srkit.common.files import atomic_path
from srkit.common.progress import progress_bar
from srkit.data.sources import open_source
from srkit.image.io import write_image
from srkit.image.resize import imresize_array


def window_starts(length: int, size: int, stride: int) -> list[int]:
    """Top-left offsets along one axis; the last window touches the border."""
    if length <= size:
        return [0]
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def sub_images(image: np.ndarray, size: int, stride: int) -> Iterator[np.ndarray]:
    height, width = image.shape[:2]
    for top in window_starts(height, size, stride):
        for left in window_starts(width, size, stride):
            yield image[top : top + size, left : left + size]


def _images(spec: str | Path, progress: Progress, what: str):
    with open_source(spec) as source:
        task = progress.add_task(f"{what} {source.name}", total=len(source))
        for name in source.names:
            yield name, source.read(name).to_rgb8()
            progress.advance(task)


def _crops(
    spec: str | Path, size: int, stride: int, progress: Progress
) -> Iterator[tuple[str, np.ndarray]]:
    for name, image in _images(spec, progress, "cutting"):
        stem = Path(name).with_suffix("").as_posix().replace("/", "_")
        if size <= 0:
            yield f"{stem}.png", image
            continue
        for index, crop in enumerate(sub_images(image, size, stride)):
            yield f"{stem}_s{index:03d}.png", crop


def prepare(
    source: str | Path,
    out: str | Path,
    *,
    size: int = 0,
    stride: int = 0,
    lr_scale: int | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
) -> int:
    """Write sub-images (``size > 0``) or whole images to a folder or, for ``.h5``, HDF5.

    Returns the number of images written.
    """
    out = Path(out)
    if size and stride <= 0:
        raise ValueError("--stride must be positive when --size is given")
    to_hdf5 = out.suffix.lower() in (".h5", ".hdf5")
    if out.exists() and not overwrite and (to_hdf5 or any(out.iterdir())):
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    if lr_scale is not None and not to_hdf5:
        raise ValueError("--lr-scale is for HDF5 output (an lr group beside hr)")
    count = 0
    with progress_bar(enabled=show_progress) as progress:
        items = _crops(source, size, stride, progress)
        if not to_hdf5:
            out.mkdir(parents=True, exist_ok=True)
            for name, image in items:
                write_image(out / name, image)
                count += 1
            return count
        try:
            import h5py
        except ImportError as error:
            raise ImportError("HDF5 output needs h5py: pip install 'srkit[data]'") from error
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as temporary, h5py.File(temporary, "w") as handle:
            hr_group = handle.create_group("hr")
            lr_group = handle.create_group("lr") if lr_scale else None
            for name, image in items:
                hr_group.create_dataset(name, data=image)
                if lr_group is not None:
                    height, width = image.shape[:2]
                    cropped = image[: height - height % lr_scale, : width - width % lr_scale]
                    lr_group.create_dataset(name, data=imresize_array(cropped, 1 / lr_scale))
                count += 1
    return count
