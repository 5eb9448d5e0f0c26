"""Fuzz srkit's dataset sources (``srkit.data.sources.open_source``): zip archives, HDF5 files,
list files, folders and glob patterns, opened and every image in them read.

The first input byte picks the kind; the rest is the file (zip, HDF5, list text), or, for folders
and globs, a description of the files to create (names and contents from the input). Seeds: tiny
valid sources of each kind. Clean errors: ``SourceError``, ``ImageReadError`` and
``FileNotFoundError`` (what ``open_source`` documents). Coverage: srkit.

    python benchmarks/fuzz_sources.py --seconds 180
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import zipfile
from pathlib import Path

import _fuzz

KINDS = ("zip", "hdf5", "list", "folder", "glob")
SUFFIXES = (".png", ".jpg", ".bmp", ".txt", ".zip", "", ".PNG", ".tif")


def _png(seed: int, shape=(4, 5, 3)) -> bytes:
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels.squeeze()).save(buffer, format="PNG")
    return buffer.getvalue()


def _folder_spec(files: list[tuple[bytes, bytes]]) -> bytes:
    """The folder kinds' input format: per file, name length, name, content length, content."""
    out = bytearray()
    for name, content in files:
        out += bytes([len(name)]) + name + len(content).to_bytes(2, "little") + content
    return bytes(out)


def _make_folder(data: bytes, root: Path) -> None:
    """Create the files described by ``data`` (see ``_folder_spec``) under ``root``."""
    pos = 0
    while pos < len(data):
        size = data[pos]
        raw = data[pos + 1 : pos + 1 + size]
        pos += 1 + size
        length = int.from_bytes(data[pos : pos + 2], "little")
        content = data[pos + 2 : pos + 2 + length]
        pos += 2 + length
        parts = [p for p in raw.replace(b"\0", b"").split(b"/") if p not in (b"", b".", b"..")]
        if not parts:
            continue
        path = root.joinpath(*(os.fsdecode(p[:100]) for p in parts[:3]))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        except OSError:  # a name used both as a file and as a folder: skip that file
            continue


def seeds() -> list[bytes]:
    import h5py
    import numpy as np

    png, gray = _png(1), _png(2, (4, 5))
    seeds = []
    for entries in (
        {"a.png": png, "sub/b.png": gray, "__MACOSX/._a.png": b"junk", "readme.txt": b"hi"},
        {"x.png": png},
    ):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, content in entries.items():
                archive.writestr(name, content)
            archive.writestr("folder/", b"")
        seeds.append(b"\0" + buffer.getvalue())
    scratch = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    layouts = {
        "groups.h5": lambda f: (
            f.create_group("hr").create_dataset("img1", data=rng.integers(0, 255, (6, 6, 3))),
            f.create_group("lr").create_dataset("img1", data=rng.integers(0, 255, (3, 3, 3))),
        ),
        "stacked.h5": lambda f: (
            f.create_dataset("HR", data=rng.integers(0, 255, (2, 3, 6, 6), dtype=np.uint8)),
            f.create_dataset("LR", data=rng.integers(0, 255, (2, 3, 3, 3), dtype=np.uint8)),
        ),
        "gray16.h5": lambda f: f.create_dataset(
            "hr", data=rng.integers(0, 65535, (2, 6, 6), dtype=np.uint16)
        ),
    }
    for name, fill in layouts.items():
        with h5py.File(scratch / name, "w") as file:
            fill(file)
        seeds.append(b"\1" + (scratch / name).read_bytes())
        (scratch / name).unlink()
    scratch.rmdir()
    seeds.append(b"\2" + b"a.png\n# a comment\n\nsub/b.png\n")
    seeds.append(b"\2" + b"\xef\xbb\xbfa.png\r\nmissing.png\n")
    files = [(b"a.png", png), (b"sub/b.jpg", gray), (b"c.txt", b"x"), (b"d.png", b"broken")]
    seeds.append(b"\3" + _folder_spec(files))
    seeds.append(b"\4" + b"*.png\0" + _folder_spec(files))
    seeds.append(b"\4" + b"**/[ab].*\0" + _folder_spec(files))
    return seeds


def make_target():
    from srkit.data.sources import SourceError, open_source
    from srkit.image.io import ImageReadError

    png, gray = _png(1), _png(2, (4, 5))

    def consume(spec: str | Path, recursive: bool) -> None:
        with open_source(spec, recursive=recursive) as source:
            len(source)
            for name in source:
                source.label(name)
                try:
                    source.read(name, max_pixels=1 << 20)
                    if source.has_lr:
                        source.read_lr(name, max_pixels=1 << 20)
                except ImageReadError:  # one bad image; the rest are still read
                    continue

    def target(data: bytes, folder: Path) -> None:
        if not data:
            return
        kind, body = KINDS[data[0] % len(KINDS)], data[1:]
        recursive = bool(data[0] & 0x80)
        if kind in ("zip", "hdf5", "list"):
            suffix = {"zip": ".zip", "hdf5": ".h5", "list": ".txt"}[kind]
            path = folder / f"data{suffix}"
            path.write_bytes(body)
            if kind == "list":  # the images a list file may name
                (folder / "a.png").write_bytes(png)
                (folder / "sub").mkdir()
                (folder / "sub" / "b.png").write_bytes(gray)
            consume(path, recursive)
        elif kind == "folder":
            _make_folder(body, folder / "set")
            consume(folder / "set", recursive)
        else:
            pattern, _, files = body.partition(b"\0")
            _make_folder(files, folder / "set")
            text = os.fsdecode(pattern[:200]).replace("\0", "")
            consume(str(folder / "set") + "/" + text, recursive)

    return target, (SourceError, ImageReadError, FileNotFoundError)


if __name__ == "__main__":
    sys.exit(_fuzz.main("fuzz_sources", make_target, seeds, description=__doc__))
