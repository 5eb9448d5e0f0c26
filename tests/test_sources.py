"""srkit.data.sources: folders, globs, list files, zip archives and HDF5 files."""

from __future__ import annotations

import pickle
import re
import sys
import zipfile
from pathlib import Path

import h5py  # in the dev extra: the HDF5 tests must run, not skip
import numpy as np
import pytest
from PIL import Image

from srkit.data.sources import (
    FolderSource,
    GlobSource,
    HDF5Source,
    ImageSource,
    ListFileSource,
    SourceError,
    UnsafeArchiveError,
    ZipSource,
    natural_key,
    open_source,
)
from srkit.image.io import ImageReadError, LoadedImage

RNG = np.random.default_rng(99)


def pixels(seed: int, shape: tuple[int, ...] = (4, 5, 3)) -> np.ndarray:
    """Distinct, reproducible pixels per image."""
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def png_bytes(array: np.ndarray) -> bytes:
    from io import BytesIO

    buffer = BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def make_images(folder: Path, names: list[str]) -> dict[str, np.ndarray]:
    """Write one PNG (whatever the extension says, Pillow sniffs the content) per name."""
    written = {}
    for seed, name in enumerate(names):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        array = pixels(seed)
        fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP"}.get(path.suffix.lower(), "PNG")
        Image.fromarray(array).save(path, format=fmt)
        written[name] = array
    return written


def test_natural_sort_is_total_and_numeric() -> None:
    names = ["img10.png", "img2.png", "Img1.png", "img1.png", "img01.png", "a/img3.png"]
    ordered = sorted(names, key=natural_key)
    assert ordered == ["a/img3.png", "Img1.png", "img01.png", "img1.png", "img2.png", "img10.png"]
    assert sorted(reversed(names), key=natural_key) == ordered  # input order does not matter


# --------------------------------------------------------------------------- folders and globs


def test_folder_source(tmp_path: Path) -> None:
    folder = tmp_path / "Set5"
    written = make_images(folder, ["img10.png", "img2.PNG", "photo.jpg", "sub/deep.png"])
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.png").write_bytes(png_bytes(pixels(7)))
    source = open_source(folder)
    assert isinstance(source, FolderSource) and source.name == "Set5"
    assert source.names == ["img2.PNG", "img10.png", "photo.jpg"]  # natural, not lexical
    assert len(source) == 3 and "img2.PNG" in source and "notes.txt" not in source
    image = source.read("img10.png")
    assert isinstance(image, LoadedImage)
    np.testing.assert_array_equal(image.pixels, written["img10.png"])
    assert source.read_bytes("img10.png") == (folder / "img10.png").read_bytes()
    assert not source.has_lr
    with pytest.raises(KeyError, match="deep.png"):
        source.read("deep.png")


def test_folder_source_recursive(tmp_path: Path) -> None:
    written = make_images(tmp_path / "data", ["b.png", "sub/a.png", "sub/x/c.bmp", ".git/z.png"])
    source = open_source(tmp_path / "data", recursive=True)
    assert source.names == ["b.png", "sub/a.png", "sub/x/c.bmp"]
    np.testing.assert_array_equal(source.read("sub/x/c.bmp").pixels, written["sub/x/c.bmp"])


def test_bad_image_in_folder_raises_image_read_error(tmp_path: Path) -> None:
    make_images(tmp_path / "d", ["good.png"])
    (tmp_path / "d" / "bad.png").write_bytes(png_bytes(pixels(1))[:40])
    source = open_source(tmp_path / "d")
    with pytest.raises(ImageReadError) as caught:
        source.read("bad.png")
    assert caught.value.path == str(tmp_path / "d" / "bad.png")
    assert source.read("good.png").width == 5  # the rest stays readable


def test_glob_source(tmp_path: Path) -> None:
    written = make_images(tmp_path / "data", ["x1.png", "x2.jpg", "sub/x3.png"])
    source = open_source(str(tmp_path / "data" / "*.png"))
    assert isinstance(source, GlobSource) and source.name == "data"
    assert source.names == ["x1.png"]
    np.testing.assert_array_equal(source.read("x1.png").pixels, written["x1.png"])
    deep = open_source(str(tmp_path / "data" / "**" / "*.png"))
    assert deep.names == ["sub/x3.png", "x1.png"]


def test_glob_without_matches(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no images"):
        open_source(str(tmp_path / "empty" / "*.png"))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        open_source(str(tmp_path / "nowhere" / "*.png"))


# --------------------------------------------------------------------------- list files


def test_list_file_source(tmp_path: Path) -> None:
    written = make_images(tmp_path / "imgs", ["a.png", "b10.png", "b9.png"])
    listing = tmp_path / "lists" / "val.txt"
    listing.parent.mkdir()
    listing.write_text(
        "# validation split\n\n../imgs/b10.png\n  ../imgs/a.png  \n# ../imgs/b9.png\n"
        f"{tmp_path / 'imgs' / 'b9.png'}\n"
    )
    source = open_source(listing)
    assert isinstance(source, ListFileSource) and source.name == "val"
    absolute = str(tmp_path / "imgs" / "b9.png")
    assert sorted(source.names) == sorted(["../imgs/a.png", "../imgs/b10.png", absolute])
    assert source.names == sorted(source.names, key=natural_key)
    np.testing.assert_array_equal(source.read("../imgs/b10.png").pixels, written["b10.png"])
    np.testing.assert_array_equal(source.read(absolute).pixels, written["b9.png"])


def test_list_file_with_missing_entry_and_duplicates(tmp_path: Path) -> None:
    listing = tmp_path / "l.lst"
    listing.write_text("gone.png\n")
    with pytest.raises(ImageReadError, match=r"gone\.png: file not found"):
        open_source(listing).read("gone.png")
    listing.write_text("a.png\na.png\n")
    with pytest.raises(SourceError, match="listed twice"):
        open_source(listing)
    listing.write_text("# only a comment\n\n")
    with pytest.raises(SourceError, match="no images"):
        open_source(listing)


# --------------------------------------------------------------------------- zip archives


def make_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(zipfile.ZipInfo(name), data)
    return path


def test_zip_source_reads_in_place(tmp_path: Path) -> None:
    arrays = {name: pixels(seed) for seed, name in enumerate(["hr/img10.png", "hr/img9.png"])}
    entries = {name: png_bytes(array) for name, array in arrays.items()}
    entries |= {"top.png": png_bytes(pixels(5)), "readme.txt": b"hi", "hr/": b""}
    entries |= {"__MACOSX/hr/._img9.png": b"\x00\x05", "hr/._img9.png": b"\x00"}
    archive = make_zip(tmp_path / "DIV2K_valid.zip", entries)
    before = sorted(p.name for p in tmp_path.iterdir())
    with open_source(archive) as source:
        assert isinstance(source, ZipSource) and source.name == "DIV2K_valid"
        assert source.names == ["hr/img9.png", "hr/img10.png", "top.png"]
        np.testing.assert_array_equal(source.read("hr/img10.png").pixels, arrays["hr/img10.png"])
        assert source.read_bytes("hr/img9.png") == entries["hr/img9.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing extracted
    assert source._zip is None  # closed by the with block
    np.testing.assert_array_equal(source.read("hr/img9.png").pixels, arrays["hr/img9.png"])
    source.close()


def test_zip_source_survives_pickling(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "z.zip", {"a.png": png_bytes(pixels(3))})
    source = open_source(archive)
    source.read("a.png")  # opens the ZipFile, which cannot be pickled
    copy = pickle.loads(pickle.dumps(source))
    np.testing.assert_array_equal(copy.read("a.png").pixels, pixels(3))
    source.close()
    copy.close()


def test_bad_entry_in_zip(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "z.zip", {"ok.png": png_bytes(pixels(1)), "bad.png": b"text"})
    with open_source(archive) as source:
        with pytest.raises(ImageReadError) as caught:
            source.read("bad.png")
        assert caught.value.path == f"{archive}:bad.png"
        assert caught.value.reason == "not an image file (unrecognised format)"


@pytest.mark.parametrize(
    "entry", ["/etc/evil.png", "../evil.png", "a/../../evil.png", "..\\evil.png", "C:/evil.png"]
)
def test_unsafe_zip_entries_are_refused(tmp_path: Path, entry: str) -> None:
    archive = make_zip(tmp_path / "evil.zip", {"fine.png": png_bytes(pixels(1)), entry: b"x"})
    with pytest.raises(UnsafeArchiveError, match=re.escape(repr(entry))) as caught:
        open_source(archive)
    assert isinstance(caught.value, ValueError) and str(archive) in str(caught.value)


def test_not_a_zip(tmp_path: Path) -> None:
    fake = tmp_path / "fake.zip"
    fake.write_text("not a zip")
    with pytest.raises(SourceError, match="not a valid zip"):
        open_source(fake)
    empty = make_zip(tmp_path / "empty.zip", {"readme.txt": b"no images here"})
    with pytest.raises(SourceError, match="no images"):
        open_source(empty)


# --------------------------------------------------------------------------- HDF5


def test_hdf5_groups_with_lr_pairs(tmp_path: Path) -> None:
    path = tmp_path / "train_x2.h5"
    hr = {key: pixels(i, (8, 6, 3)) for i, key in enumerate(["10", "2", "1"])}
    lr = {key: pixels(10 + i, (4, 3, 3)) for i, key in enumerate(hr)}
    with h5py.File(path, "w") as file:
        for key in hr:
            file.create_dataset(f"hr/{key}", data=hr[key])
            file.create_dataset(f"lr/{key}", data=lr[key])
    with open_source(path) as source:
        assert isinstance(source, HDF5Source) and source.name == "train_x2"
        assert source.names == ["1", "2", "10"] and source.has_lr
        np.testing.assert_array_equal(source.read("10").pixels, hr["10"])
        lr_image = source.read_lr("10")
        np.testing.assert_array_equal(lr_image.pixels, lr["10"])
        assert lr_image.name.endswith(":lr/10")
        with pytest.raises(NotImplementedError, match="read\\(\\)"):
            source.read_bytes("1")


def test_hdf5_group_with_channel_first_and_gray_images(tmp_path: Path) -> None:
    path = tmp_path / "mixed.hdf5"
    chw = pixels(1, (3, 5, 7))
    gray16 = np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000
    with h5py.File(path, "w") as file:
        file.create_dataset("HR/chw", data=chw)
        file.create_dataset("HR/gray", data=gray16)
    source = open_source(path)
    assert not source.has_lr
    np.testing.assert_array_equal(source.read("chw").pixels, chw.transpose(1, 2, 0))
    gray = source.read("gray")
    assert gray.is_gray and gray.bit_depth == 16
    np.testing.assert_array_equal(gray.pixels[..., 0], gray16)
    with pytest.raises(SourceError, match="no stored LR"):
        source.read_lr("gray")
    source.close()


# (stacked shape, one image -> (H, W, C), halve the H and W axes of the stack)
STACKS = {
    "N,H,W,C": ((3, 8, 10, 3), lambda a: a, lambda s: s[:, ::2, ::2]),
    "N,C,H,W": ((3, 3, 8, 10), lambda a: a.transpose(1, 2, 0), lambda s: s[:, :, ::2, ::2]),
    "N,1,H,W": ((3, 1, 8, 10), lambda a: a.transpose(1, 2, 0), lambda s: s[:, :, ::2, ::2]),
    "N,H,W": ((3, 8, 10), lambda a: a[..., None], lambda s: s[:, ::2, ::2]),
}


@pytest.mark.parametrize("layout", STACKS)
@pytest.mark.parametrize("with_lr", [False, True])
def test_hdf5_stacked_arrays(tmp_path: Path, layout: str, with_lr: bool) -> None:
    shape, to_hwc, halve = STACKS[layout]
    path = tmp_path / "stack.h5"
    hr = pixels(4, shape)
    lr = np.ascontiguousarray(halve(hr))
    with h5py.File(path, "w") as file:
        file.create_dataset("hr", data=hr)
        if with_lr:
            file.create_dataset("lr", data=lr)
    with open_source(path) as source:
        assert source.names == ["00000", "00001", "00002"]
        image = source.read("00002")
        assert (image.height, image.width) == (8, 10)
        np.testing.assert_array_equal(image.pixels, to_hwc(hr[2]))
        assert source.has_lr == with_lr
        if with_lr:
            np.testing.assert_array_equal(source.read_lr("00001").pixels, to_hwc(lr[1]))


def test_hdf5_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as file:
        file.create_dataset("hr/a", data=np.zeros((4, 4, 3), np.float32))
        file.create_dataset("hr/b", data=np.zeros((40, 40, 3), np.uint8))
        file.create_dataset("lr/a", data=np.zeros((2, 2, 3), np.float32))
        file.create_dataset("lr/b", data=np.zeros((20, 20, 3), np.uint8))
    with open_source(path) as source:
        with pytest.raises(ImageReadError, match="hr/a: unsupported pixel format"):
            source.read("a")
        with pytest.raises(ImageReadError, match="too many pixels"):
            source.read("b", max_pixels=100)
    with h5py.File(path, "a") as file:
        del file["lr/b"]
    with pytest.raises(SourceError, match="do not pair up"):
        open_source(path)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as file:
        file.create_dataset("data", data=np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(SourceError, match="no 'hr'"):
        open_source(other)


def test_missing_h5py_gives_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as file:
        file.create_dataset("hr", data=np.zeros((1, 4, 4), np.uint8))
    monkeypatch.setitem(sys.modules, "h5py", None)  # makes `import h5py` fail
    with pytest.raises(ImportError, match=r"srkit\[data\]"):
        open_source(path)


# --------------------------------------------------------------------------- dispatch


def test_open_source_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing_folder"):
        open_source(tmp_path / "missing_folder")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no images found"):
        open_source(tmp_path / "empty")
    table = tmp_path / "scores.csv"
    table.write_text("a,b\n")
    with pytest.raises(SourceError, match="not a dataset source"):
        open_source(table)


def test_open_source_passes_sources_through(tmp_path: Path) -> None:
    make_images(tmp_path / "d", ["a.png"])
    source = open_source(tmp_path / "d")
    assert open_source(source) is source
    assert isinstance(source, ImageSource) and list(source) == ["a.png"]
