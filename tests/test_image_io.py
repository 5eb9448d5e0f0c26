"""srkit.image.io: formats, modes, metadata, bad inputs and the tensor helpers.

Test images are made on the fly. 16-bit colour files come from small independent encoders
below (Pillow cannot write them), so the reader is not only checked against its own writer.
"""

from __future__ import annotations

import io
import pickle
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

from srkit.image.io import (
    DEFAULT_MAX_PIXELS,
    MAX_PIXELS_ENV,
    AnimatedImageWarning,
    ImageReadError,
    ImageWriteError,
    LoadedImage,
    from_tensor,
    image_from_array,
    read_image,
    read_rgb,
    resolve_max_pixels,
    to_tensor,
    write_image,
)

RNG = np.random.default_rng(1234)


def noise(shape: tuple[int, ...], dtype: type = np.uint8) -> np.ndarray:
    high = 65536 if dtype == np.uint16 else 256
    return RNG.integers(0, high, size=shape, dtype=dtype)


def gradient(height: int = 24, width: int = 32) -> np.ndarray:
    """A smooth RGB image (JPEG/WebP reproduce it closely)."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack(
        [x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], -1
    ).astype(np.uint8)


def save_pil(path: Path, image: Image.Image, **options: object) -> Path:
    image.save(path, **options)
    return path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png16(samples: np.ndarray) -> bytes:
    """Minimal 16-bit PNG (filter 0) for (H, W) gray or (H, W, 2|3|4) samples."""
    height, width = samples.shape[:2]
    channels = 1 if samples.ndim == 2 else samples.shape[2]
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = samples.astype(">u2").reshape(height, -1).view(np.uint8)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)
    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(raw))
        + png_chunk(b"IEND", b"")
    )


def encode_tiff16(samples: np.ndarray, big_endian: bool, rows_per_strip: int = 0) -> bytes:
    """Minimal uncompressed 16-bit RGB(A) TIFF in strips of ``rows_per_strip`` rows (0: one)."""
    height, width, channels = samples.shape
    rows_per_strip = rows_per_strip or height
    order = ">" if big_endian else "<"
    data = samples.astype(order + "u2").tobytes()
    strip_bytes = rows_per_strip * width * channels * 2
    strips = [data[i : i + strip_bytes] for i in range(0, len(data), strip_bytes)]
    count = 10 + (channels == 4)
    bits_offset = 8 + 2 + 12 * count + 4
    offsets_offset = bits_offset + 2 * channels  # strip offsets, then strip sizes
    data_offset = offsets_offset + 8 * len(strips)
    starts = [data_offset + sum(len(x) for x in strips[:k]) for k in range(len(strips))]
    short, long_ = 3, 4
    one_strip = len(strips) == 1
    tags = [
        (256, short, 1, width),
        (257, short, 1, height),
        (258, short, channels, bits_offset),  # BitsPerSample, stored out of line
        (259, short, 1, 1),  # no compression
        (262, short, 1, 2),  # RGB
        (273, long_, len(strips), starts[0] if one_strip else offsets_offset),
        (277, short, 1, channels),
        (278, short, 1, rows_per_strip),
        (279, long_, len(strips), len(data) if one_strip else offsets_offset + 4 * len(strips)),
        (284, short, 1, 1),
    ]
    if channels == 4:
        tags.append((338, short, 1, 2))  # unassociated alpha
    out = (b"MM" if big_endian else b"II") + struct.pack(order + "HI", 42, 8)
    out += struct.pack(order + "H", len(tags))
    for tag, kind, n, value in tags:
        if kind == short and n == 1:
            out += struct.pack(order + "HHIHH", tag, kind, n, value, 0)
        else:
            out += struct.pack(order + "HHII", tag, kind, n, value)
    out += struct.pack(order + "I", 0) + struct.pack(order + "H" * channels, *[16] * channels)
    out += struct.pack(order + "I" * len(strips), *starts)
    out += struct.pack(order + "I" * len(strips), *[len(x) for x in strips])
    return out + data


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".tiff"])
def test_lossless_8bit_round_trip(tmp_path: Path, suffix: str) -> None:
    pixels = noise((7, 9, 3))
    path = write_image(tmp_path / f"a{suffix}", pixels)
    image = read_image(path)
    assert image.pixels.dtype == np.uint8 and image.bit_depth == 8
    np.testing.assert_array_equal(image.pixels, pixels)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), pixels)  # a standard file
    assert (image.height, image.width, image.is_gray, image.alpha) == (7, 9, False, None)
    assert image.name == str(path) and image.frames == 1


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".webp"])
def test_lossy_round_trip_is_close(tmp_path: Path, suffix: str) -> None:
    pixels = gradient()
    image = read_image(write_image(tmp_path / f"a{suffix}", pixels, quality=95))
    assert image.pixels.shape == pixels.shape and image.pixels.dtype == np.uint8
    error = np.abs(image.pixels.astype(int) - pixels).mean()
    assert error < 3.0


def test_jpeg_quality_is_applied(tmp_path: Path) -> None:
    pixels = noise((32, 32, 3))
    small = write_image(tmp_path / "q10.jpg", pixels, quality=10).stat().st_size
    large = write_image(tmp_path / "q95.jpg", pixels, quality=95).stat().st_size
    assert small < large


def test_webp_lossless_file_reads_exactly(tmp_path: Path) -> None:
    pixels = noise((6, 5, 3))
    path = save_pil(tmp_path / "a.webp", Image.fromarray(pixels), lossless=True)
    np.testing.assert_array_equal(read_image(path).pixels, pixels)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16bit_png_from_independent_encoder(channels: int) -> None:
    samples = noise((5, 6, channels) if channels > 1 else (5, 6), np.uint16)
    image = read_image(encode_png16(samples), name="wide.png")
    assert image.pixels.dtype == np.uint16 and image.bit_depth == 16
    color = samples[..., None] if channels == 1 else samples[..., : 3 if channels > 2 else 1]
    np.testing.assert_array_equal(image.pixels, color)
    if channels in (2, 4):
        np.testing.assert_array_equal(image.alpha, samples[..., -1])
    else:
        assert image.alpha is None


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16bit_png_write_is_readable_by_pillow(tmp_path: Path, channels: int) -> None:
    # noise and a smooth ramp make the encoder use several PNG filters
    ramp = (np.arange(40 * 33, dtype=np.uint32).reshape(40, 33) * 47 % 65536).astype(np.uint16)
    samples = np.stack([ramp] * channels, -1)
    samples[::3] = noise(samples[::3].shape, np.uint16)
    path = write_image(tmp_path / "w.png", samples)
    with Image.open(path) as pil:
        decoded = np.asarray(pil)
    # Pillow keeps 16-bit gray and cuts colour to the high byte (gray+alpha becomes RGBA)
    if channels == 1:
        np.testing.assert_array_equal(decoded, samples[..., 0])
    elif channels == 2:
        np.testing.assert_array_equal(decoded[..., 0], samples[..., 0] >> 8)
        np.testing.assert_array_equal(decoded[..., 3], samples[..., 1] >> 8)
    else:
        np.testing.assert_array_equal(decoded, samples >> 8)
    image = read_image(path)
    np.testing.assert_array_equal(image.pixels, samples[..., : 3 if channels > 2 else 1])
    if channels in (2, 4):
        np.testing.assert_array_equal(image.alpha, samples[..., -1])


@pytest.mark.parametrize("rows_per_strip", [0, 2])
@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("channels", [3, 4])
def test_16bit_rgb_tiff(big_endian: bool, channels: int, rows_per_strip: int) -> None:
    samples = noise((5, 7, channels), np.uint16)
    image = read_image(encode_tiff16(samples, big_endian, rows_per_strip))
    assert image.bit_depth == 16
    np.testing.assert_array_equal(image.pixels, samples[..., :3])
    if channels == 4:
        np.testing.assert_array_equal(image.alpha, samples[..., 3])


def test_16bit_gray_tiff(tmp_path: Path) -> None:
    gray = noise((5, 8), np.uint16)
    path = save_pil(tmp_path / "g.tif", Image.fromarray(gray), compression="tiff_deflate")
    image = read_image(path)
    assert image.is_gray and image.bit_depth == 16
    np.testing.assert_array_equal(image.pixels[..., 0], gray)


def test_16bit_reduced_to_8bit_with_rounding() -> None:
    values = np.array([[0, 128, 129, 257 * 100 + 128, 257 * 100 + 129, 65535]], np.uint16)
    rgb = read_rgb(encode_png16(values))
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 6, 3)
    np.testing.assert_array_equal(rgb[0, :, 0], [0, 0, 1, 100, 101, 255])
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])  # gray replicated


def test_grayscale(tmp_path: Path) -> None:
    gray = noise((6, 4))
    path = save_pil(tmp_path / "g.png", Image.fromarray(gray))
    image = read_image(path)
    assert image.is_gray and image.pixels.shape == (6, 4, 1)
    np.testing.assert_array_equal(image.pixels[..., 0], gray)
    np.testing.assert_array_equal(read_rgb(path), np.repeat(gray[..., None], 3, axis=2))


def test_bilevel_image_becomes_0_and_255(tmp_path: Path) -> None:
    bits = noise((5, 9)) > 127
    path = save_pil(tmp_path / "b.png", Image.fromarray(bits))
    np.testing.assert_array_equal(read_image(path).pixels[..., 0], bits * 255)


def test_palette_without_transparency(tmp_path: Path) -> None:
    palette = noise((256, 3))
    indices = noise((5, 7))
    pil = Image.fromarray(indices).convert("P")  # L -> P keeps the values as indices
    pil.putpalette(palette.tobytes())
    path = save_pil(tmp_path / "p.png", pil)
    image = read_image(path)
    assert image.alpha is None and image.pixels.shape == (5, 7, 3)
    np.testing.assert_array_equal(image.pixels, palette[indices])


def test_palette_with_transparency(tmp_path: Path) -> None:
    indices = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    pil = Image.fromarray(indices).convert("P")
    pil.putpalette([10, 20, 30, 40, 50, 60, 70, 80, 90] + [0] * 759)
    path = save_pil(tmp_path / "t.png", pil, transparency=1)
    image = read_image(path)
    np.testing.assert_array_equal(image.pixels[0, 2], [70, 80, 90])
    np.testing.assert_array_equal(image.alpha, np.where(indices == 1, 0, 255))


def test_rgba_alpha_kept_aside(tmp_path: Path) -> None:
    rgba = noise((6, 5, 4))
    path = write_image(tmp_path / "a.png", rgba)
    image = read_image(path)
    np.testing.assert_array_equal(image.pixels, rgba[..., :3])
    np.testing.assert_array_equal(image.alpha, rgba[..., 3])
    np.testing.assert_array_equal(read_rgb(path), rgba[..., :3])


def test_gray_alpha_and_alpha_argument(tmp_path: Path) -> None:
    gray, alpha = noise((4, 6)), noise((4, 6))
    image = read_image(write_image(tmp_path / "la.png", gray, alpha=alpha))
    assert image.is_gray
    np.testing.assert_array_equal(image.pixels[..., 0], gray)
    np.testing.assert_array_equal(image.alpha, alpha)


def test_rgb_with_transparent_colour(tmp_path: Path) -> None:
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = (1, 2, 3)
    path = save_pil(tmp_path / "k.png", Image.fromarray(rgb), transparency=(1, 2, 3))
    np.testing.assert_array_equal(read_image(path).alpha, [[0, 255], [255, 255]])


def test_cmyk_becomes_rgb(tmp_path: Path) -> None:
    cmyk = Image.frombytes("CMYK", (5, 4), noise((4, 5, 4)).tobytes())
    path = save_pil(tmp_path / "c.tif", cmyk)
    image = read_image(path)
    assert image.pixels.shape == (4, 5, 3) and image.icc_profile is None
    np.testing.assert_array_equal(image.pixels, np.asarray(cmyk.convert("RGB")))


def exif_with_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "srkit-test"  # Make: a tag that must survive
    return exif.tobytes()


@pytest.mark.parametrize(
    ("orientation", "upright"),
    [
        (3, lambda a: np.rot90(a, 2)),
        (6, lambda a: np.rot90(a, -1)),  # stored rotated: display turns it clockwise
        (8, lambda a: np.rot90(a, 1)),
        (2, lambda a: a[:, ::-1]),
    ],
)
def test_exif_orientation_applied(tmp_path: Path, orientation: int, upright) -> None:
    stored = noise((4, 7, 3))
    path = save_pil(
        tmp_path / "o.png", Image.fromarray(stored), exif=exif_with_orientation(orientation)
    )
    image = read_image(path)
    np.testing.assert_array_equal(image.pixels, upright(stored))
    kept = Image.Exif()
    kept.load(image.exif)
    assert kept.get(0x010F) == "srkit-test"
    assert kept.get(0x0112, 1) == 1  # rewriting the pixels must not rotate them again


def test_exif_orientation_in_jpeg(tmp_path: Path) -> None:
    stored = np.zeros((16, 32, 3), np.uint8)
    stored[:, :8] = 255  # a white band on the left of the stored image
    path = save_pil(tmp_path / "o.jpg", Image.fromarray(stored), exif=exif_with_orientation(6))
    image = read_image(path)
    assert (image.height, image.width) == (32, 16)
    assert image.pixels[:8].mean() > 200 and image.pixels[-8:].mean() < 50  # band now on top


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_exif_orientation_in_16bit_png(tmp_path: Path, channels: int) -> None:
    stored = noise((3, 5, channels), np.uint16)
    path = write_image(tmp_path / "o16.png", stored, exif=exif_with_orientation(6))
    image = read_image(path)  # colour is decoded in two passes: both must be turned
    upright = np.rot90(stored, -1)
    np.testing.assert_array_equal(image.pixels, upright[..., : 3 if channels > 1 else 1])
    if channels == 4:
        np.testing.assert_array_equal(image.alpha, upright[..., 3])


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif"])
def test_icc_profile_preserved(tmp_path: Path, suffix: str) -> None:
    profile = srgb_profile()
    image = read_image(write_image(tmp_path / f"i{suffix}", gradient(), icc_profile=profile))
    assert image.icc_profile == profile


def test_icc_and_exif_preserved_in_16bit_png(tmp_path: Path) -> None:
    profile = srgb_profile()
    exif = exif_with_orientation(1)
    path = write_image(
        tmp_path / "i16.png", noise((3, 4, 3), np.uint16), icc_profile=profile, exif=exif
    )
    image = read_image(path)
    assert image.icc_profile == profile
    with Image.open(path) as pil:
        assert pil.info["icc_profile"] == profile
    loaded = Image.Exif()
    loaded.load(image.exif)
    assert loaded[0x010F] == "srkit-test"


def test_reads_bytes_and_streams(tmp_path: Path) -> None:
    pixels = noise((3, 5, 3))
    data = write_image(tmp_path / "s.png", pixels).read_bytes()
    np.testing.assert_array_equal(read_image(data).pixels, pixels)
    for offset in (0, 4):  # a stream may start anywhere
        stream = io.BytesIO(b"junk"[:offset] + data)
        stream.seek(offset)
        np.testing.assert_array_equal(read_image(stream, name="mem.png").pixels, pixels)
        assert not stream.closed  # the caller's stream is left open

    class OneWay(io.RawIOBase):
        def __init__(self) -> None:
            self.inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:  # type: ignore[override]
            chunk = self.inner.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    np.testing.assert_array_equal(read_image(OneWay()).pixels, pixels)


def test_16bit_rgb_from_stream_is_decoded_twice_from_the_start() -> None:
    samples = noise((3, 4, 3), np.uint16)
    stream = io.BytesIO(b"xx" + encode_png16(samples))
    stream.seek(2)
    np.testing.assert_array_equal(read_image(stream).pixels, samples)


def test_pixels_are_writable(tmp_path: Path) -> None:
    image = read_image(write_image(tmp_path / "w.png", noise((2, 2, 4))))
    image.pixels[0, 0] = 0
    image.alpha[0, 0] = 0  # type: ignore[index]
    assert image.pixels[0, 0].sum() == 0


# --------------------------------------------------------------------------- bad inputs


def read_error(source, **options) -> ImageReadError:
    with pytest.raises(ImageReadError) as caught:
        read_image(source, **options)
    return caught.value


def test_missing_file(tmp_path: Path) -> None:
    error = read_error(tmp_path / "baby.png")
    assert error.reason == "file not found" and error.path == str(tmp_path / "baby.png")
    assert str(error) == f"{tmp_path / 'baby.png'}: file not found"
    assert isinstance(error, ValueError)


def test_directory_is_not_an_image(tmp_path: Path) -> None:
    assert "directory" in read_error(tmp_path).reason


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    error = read_error(path)
    assert error.reason == "empty file (0 bytes)" and str(error).startswith(f"{path}: empty")
    assert read_error(b"", name="blob.png").path == "blob.png"


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
def test_truncated_file(tmp_path: Path, suffix: str) -> None:
    data = write_image(tmp_path / f"full{suffix}", noise((64, 64, 3))).read_bytes()
    path = tmp_path / f"baby{suffix}"
    path.write_bytes(data[: len(data) // 2])
    error = read_error(path)
    assert error.reason == "truncated or corrupt image data"
    assert str(error).startswith(f"{path}: truncated or corrupt image data")


def test_corrupt_header(tmp_path: Path) -> None:
    data = bytearray(write_image(tmp_path / "ok.png", noise((4, 4, 3))).read_bytes())
    data[16:24] = b"\xff" * 8  # width/height inside IHDR: its checksum no longer matches
    path = tmp_path / "bad.png"
    path.write_bytes(bytes(data))
    error = read_error(path)
    assert error.reason == "corrupt PNG header" and error.path == str(path)


def test_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("these are not pixels\n")
    error = read_error(path)
    assert error.reason == "not an image file (unrecognised format)"
    assert str(error).startswith(f"{path}: not an image")


def test_over_pixel_limit(tmp_path: Path) -> None:
    path = write_image(tmp_path / "big.png", noise((10, 12, 3)))
    error = read_error(path, max_pixels=100)
    assert error.reason == "too many pixels" and "12x10" in str(error) and str(path) in str(error)
    assert read_image(path, max_pixels=120).width == 12  # the limit is inclusive
    assert read_image(path, max_pixels=None).height == 10


def test_pixel_limit_checked_before_decoding(tmp_path: Path) -> None:
    # a header claiming 20000 x 20000 with almost no data: refused for size, not for truncation
    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", b"x")
    error = read_error(data, name="bomb.png", max_pixels=10_000_000)
    assert error.reason == "too many pixels" and error.path == "bomb.png"


def test_pillow_bomb_error_is_converted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write_image(tmp_path / "b.png", noise((10, 10, 3)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20)  # Pillow refuses above 2 * 20
    error = read_error(path, max_pixels=None)
    assert error.reason == "too many pixels" and error.path == str(path)


def test_pixel_limit_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write_image(tmp_path / "e.png", noise((10, 10, 3)))
    monkeypatch.setenv(MAX_PIXELS_ENV, "50")
    assert resolve_max_pixels() == 50
    assert read_error(path).reason == "too many pixels"
    assert read_image(path, max_pixels=1000).width == 10  # an explicit limit wins
    monkeypatch.setenv(MAX_PIXELS_ENV, "none")
    assert resolve_max_pixels() is None
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(ValueError, match=MAX_PIXELS_ENV):
        resolve_max_pixels()
    monkeypatch.delenv(MAX_PIXELS_ENV)
    assert resolve_max_pixels() == DEFAULT_MAX_PIXELS == 178_956_970
    with pytest.raises(ValueError, match="positive"):
        resolve_max_pixels(0)


def frames_rgb(count: int) -> list[Image.Image]:
    return [Image.new("RGB", (6, 4), (40 * k, 200 - 40 * k, 0)) for k in range(count)]


@pytest.mark.parametrize(
    ("suffix", "options"),
    [(".gif", {}), (".png", {}), (".webp", {"lossless": True})],
)
def test_animated_image_first_frame_and_warning(tmp_path: Path, suffix: str, options: dict) -> None:
    first, *rest = frames_rgb(3)
    path = tmp_path / f"anim{suffix}"
    first.save(path, save_all=True, append_images=rest, duration=100, **options)
    with pytest.warns(AnimatedImageWarning, match=rf"anim\{suffix}.*3 frames"):
        image = read_image(path)
    assert image.frames == 3
    np.testing.assert_array_equal(read_rgb_quiet(path)[0, 0], [0, 200, 0])
    assert image.pixels.shape[:2] == (4, 6)


def read_rgb_quiet(path: Path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AnimatedImageWarning)
        return read_rgb(path)


def test_still_image_gives_no_warning(tmp_path: Path) -> None:
    path = write_image(tmp_path / "still.png", noise((3, 3, 3)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_image(path)


def test_read_error_pickles() -> None:
    error = ImageReadError("a.png", "truncated or corrupt image data", "detail")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.reason, copy.detail, str(copy)) == (
        "a.png",
        error.reason,
        "detail",
        str(error),
    )


def test_unsupported_float_image(tmp_path: Path) -> None:
    path = save_pil(tmp_path / "f.tif", Image.fromarray(np.ones((3, 3), np.float32)))
    assert read_error(path).reason == "unsupported pixel format"


# --------------------------------------------------------------------------- writing


def test_write_errors(tmp_path: Path) -> None:
    pixels = noise((4, 4, 3))
    with pytest.raises(ImageWriteError, match=r"unknown image extension '\.xyz'"):
        write_image(tmp_path / "a.xyz", pixels)
    with pytest.raises(ImageWriteError, match="JPEG.*PNG for 16-bit"):
        write_image(tmp_path / "a.jpg", noise((4, 4, 3), np.uint16))
    with pytest.raises(ImageWriteError, match="JPEG has no alpha"):
        write_image(tmp_path / "a.jpg", noise((4, 4, 4)))
    with pytest.raises(ImageWriteError, match="uint8 or uint16"):
        write_image(tmp_path / "a.png", pixels.astype(np.float32))
    with pytest.raises(ImageWriteError, match="bit_depth"):
        write_image(tmp_path / "a.png", pixels, bit_depth=12)
    with pytest.raises(ImageWriteError, match="shape"):
        write_image(tmp_path / "a.png", pixels, alpha=noise((3, 3)))
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_write_creates_folders_and_replaces_atomically(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "out.png"
    write_image(target, noise((3, 3, 3)))
    second = noise((5, 5, 3))
    write_image(target, second)
    np.testing.assert_array_equal(read_image(target).pixels, second)
    assert [p.name for p in target.parent.iterdir()] == ["out.png"]  # no temp files left
    assert target.stat().st_mode & 0o777 != 0o600  # not mkstemp's private mode


def test_write_bit_depth_conversions(tmp_path: Path) -> None:
    eight = np.array([[0, 1, 128, 255]], np.uint8)
    wide = read_image(write_image(tmp_path / "w.png", eight, bit_depth=16))
    assert wide.bit_depth == 16
    np.testing.assert_array_equal(wide.pixels[..., 0], eight.astype(np.uint16) * 257)
    sixteen = np.array([[0, 128, 129, 65535]], np.uint16)
    narrow = read_image(write_image(tmp_path / "n.png", sixteen, bit_depth=8))
    np.testing.assert_array_equal(narrow.pixels[0, :, 0], [0, 0, 1, 255])


# --------------------------------------------------------------------------- tensors


def test_to_tensor_and_back() -> None:
    pixels = noise((4, 5, 3))
    tensor = to_tensor(pixels)
    assert tensor.dtype == torch.float32 and tensor.shape == (3, 4, 5)
    assert torch.allclose(tensor[1], torch.from_numpy(pixels[..., 1].astype(np.float32)) / 255)
    np.testing.assert_array_equal(from_tensor(tensor), pixels)
    np.testing.assert_array_equal(from_tensor(tensor[None]), pixels)  # a batch of one
    wide = noise((2, 3), np.uint16)
    assert to_tensor(wide).shape == (1, 2, 3)
    np.testing.assert_array_equal(from_tensor(to_tensor(wide), np.uint16)[..., 0], wide)


def test_from_tensor_clamps_and_rounds() -> None:
    values = torch.tensor([[[-0.5, 0.0, 0.4 / 255, 0.6 / 255, 1.0, 1.5, float("nan")]]])
    np.testing.assert_array_equal(from_tensor(values)[0, :, 0], [0, 0, 0, 1, 255, 255, 0])
    with pytest.raises(TypeError):
        to_tensor(np.zeros((2, 2), np.float32))


def test_image_from_array_and_loaded_image_helpers() -> None:
    array = noise((3, 4, 4), np.uint16)
    image = image_from_array(array, name="arr")
    assert isinstance(image, LoadedImage) and image.bit_depth == 16 and not image.is_gray
    np.testing.assert_array_equal(image.alpha, array[..., 3])
    assert image.to_rgb8().dtype == np.uint8
    with pytest.raises(ImageReadError, match="arr: unsupported pixel format"):
        image_from_array(np.zeros((2, 2), np.float32), name="arr")


def test_deflate_is_standard_zlib_at_every_level() -> None:
    """PNG deflate goes through ISA-L at levels 1-2 and zlib-ng above (both dependencies), and
    stays readable by plain zlib."""
    import zlib

    from srkit.image import deflate

    assert deflate.BACKEND == "zlib-ng"
    assert [deflate.library(level) for level in (0, 1, 2, 3, 9)] == [
        "zlib-ng", "isa-l", "isa-l", "zlib-ng", "zlib-ng"
    ]  # fmt: skip
    data = np.random.default_rng(0).integers(0, 8, 200_000, dtype=np.uint8).tobytes()
    for level in (0, 1, 2, 3, 6, 9):
        assert zlib.decompress(deflate.compress(data, level)) == data
        stream = deflate.compressobj(level)
        assert zlib.decompress(stream.compress(data[:1000]) + stream.compress(data[1000:])
                               + stream.flush()) == data  # fmt: skip
    assert len(deflate.compress(data, 6)) < len(deflate.compress(data, 0))
    with pytest.raises(ValueError, match="level"):
        deflate.compress(data, 10)


def test_zlib_stream_in_pieces_on_threads_is_one_standard_stream() -> None:
    """pigz's method: pieces primed with the 32 KiB before them, sync-flushed, concatenated;
    plain zlib reads the result (header check and adler32 included) at every level."""
    import zlib

    from srkit.image.deflate import ZlibStream, compress

    rng = np.random.default_rng(1)
    data = (rng.integers(0, 4, 150_000, dtype=np.uint8) * 9).tobytes() + b"abc" * 30_000
    cuts = [0, 7, 40_000, 40_001, 123_456, len(data)]
    for level in (0, 1, 2, 3, 6, 9):
        for threads in (1, 3):
            stream = ZlibStream(level, threads)
            out = stream.compress([data[a:b] for a, b in zip(cuts[:2], cuts[1:3], strict=True)])
            out += stream.compress([])
            tail = zip(cuts[2:-1], cuts[3:], strict=True)
            out += stream.compress([np.frombuffer(data[a:b], np.uint8) for a, b in tail])
            out += stream.finish()
            assert zlib.decompress(out) == data
            if level:  # priming keeps the ratio: within 1% of one serial stream
                assert len(out) <= 1.01 * len(compress(data, level)) + 64
    assert zlib.decompress(ZlibStream(6, 2).finish()) == b""


def _reference_filter(
    raw: np.ndarray, bpp: int, prev: np.ndarray | None, only: int | None = None
) -> np.ndarray:
    """libpng's heuristic row by row in plain Python integers (slow, small inputs only); with
    ``only``, that filter type on every row."""
    rows = []
    above = [0] * raw.shape[1] if prev is None else [int(v) for v in prev]
    for line in raw.tolist():
        cands = []
        for kind in range(5):
            out = []
            for i, x in enumerate(line):
                a = line[i - bpp] if i >= bpp else 0
                b = above[i]
                c = above[i - bpp] if i >= bpp else 0
                if kind == 4:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                else:
                    pred = (0, a, b, (a + b) // 2)[kind]
                out.append((x - pred) % 256)
            cands.append(out)
        costs = [sum(min(v, 256 - v) for v in cand) for cand in cands]
        best = costs.index(min(costs)) if only is None else only
        rows.append([best] + cands[best])
        above = line
    return np.array(rows, dtype=np.uint8)


def test_png_filter_is_libpngs_heuristic_in_every_block_size() -> None:
    from srkit.image.io import _png_filtered_rows

    rng = np.random.default_rng(2)
    smooth = np.cumsum(rng.integers(-3, 4, (9, 24)), axis=1).astype(np.uint8)
    for raw in (rng.integers(0, 256, (7, 24), dtype=np.uint8), smooth,
                np.full((3, 12), 128, np.uint8)):  # fmt: skip
        for bpp in (1, 3, 4, 6):
            expected = _reference_filter(raw, bpp, None)
            for block_bytes in (1, 50, 1 << 18):  # one row per block .. all rows in one
                got = _png_filtered_rows(raw, bpp, block_bytes=block_bytes)
                np.testing.assert_array_equal(got, expected)
            # a streamed piece: the row above comes from the previous piece
            np.testing.assert_array_equal(
                _png_filtered_rows(raw[2:], bpp, prev=raw[1]),
                _reference_filter(raw[2:], bpp, raw[1]),
            )
            np.testing.assert_array_equal(
                _png_filtered_rows(raw[2:], bpp, prev=raw[1]), expected[2:]
            )


def test_png_average_filter_on_every_row() -> None:
    from srkit.image.io import _png_filtered_rows

    rng = np.random.default_rng(4)
    raw = rng.integers(0, 256, (6, 24), dtype=np.uint8)
    for bpp in (1, 3, 6):
        for block_bytes in (1, 50, 1 << 18):
            got = _png_filtered_rows(raw, bpp, block_bytes=block_bytes, method="average")
            np.testing.assert_array_equal(got, _reference_filter(raw, bpp, None, only=3))
        np.testing.assert_array_equal(
            _png_filtered_rows(raw[2:], bpp, prev=raw[1], method="average"),
            _reference_filter(raw[2:], bpp, raw[1], only=3),
        )
    with pytest.raises(ValueError, match="PNG filter must be one of heuristic, average"):
        _png_filtered_rows(raw, 3, method="paeth")


def test_streamed_png_on_threads_reads_back_exactly(tmp_path: Path, monkeypatch) -> None:
    """Small pieces (many per write, several writes) on 1 and 3 threads: the same pixels, a
    valid file, and sizes within a few hundred bytes of each other."""
    import srkit.infer.pngstream as pngstream

    monkeypatch.setattr(pngstream, "_PIECE_BYTES", 2000)
    rng = np.random.default_rng(3)
    for dtype, depth in ((np.uint8, 8), (np.uint16, 16)):
        top = np.iinfo(dtype).max
        image = (np.linspace(0, top, 61 * 50 * 3) % (top + 1)).astype(dtype).reshape(61, 50, 3)
        image[::7] = rng.integers(0, top, (9, 50, 3), dtype=dtype)
        for filter, level in (("heuristic", 6), ("average", 2)):
            sizes = []
            for threads in (1, 3):
                target = tmp_path / f"t{threads}_{depth}_{filter}.png"
                writer = pngstream.PNGStreamWriter(
                    target, 50, 61, 3, depth, level=level, threads=threads, filter=filter
                )
                for r0 in (0, 5, 40):
                    writer.write(image[r0 : {0: 5, 5: 40, 40: 61}[r0]])
                writer.close()
                np.testing.assert_array_equal(read_image(target).pixels, image)
                sizes.append(target.stat().st_size)
            assert abs(sizes[0] - sizes[1]) < 400, sizes
    with pytest.raises(ValueError, match="PNG filter must be one of"):
        pngstream.PNGStreamWriter(tmp_path / "x.png", 2, 2, 3, filter="up")
    assert not (tmp_path / "x.png").exists()


def test_from_tensor_numpy_matches_torch() -> None:
    """A NumPy float array takes the torch path's steps: clamp, NaN -> 0, ties to even."""
    rng = np.random.default_rng(0)
    values = rng.normal(0.5, 0.4, (3, 9, 11)).astype(np.float32)
    values[0, 0, :4] = [np.nan, np.inf, -np.inf, 0.5 / 255]  # 0.5 rounds to 0 (even)
    for dtype in (np.uint8, np.uint16):
        want = from_tensor(torch.from_numpy(values), dtype)
        np.testing.assert_array_equal(from_tensor(values, dtype), want)
        into = np.zeros(want.shape, dtype)
        assert from_tensor(values, dtype, out=into) is into
        np.testing.assert_array_equal(into, want)
    assert list(from_tensor(values)[0, :4, 0]) == [0, 255, 0, 0]
