"""Fuzz srkit's image decoding (``srkit.image.io.read_image``) with mutated image files.

Seeds: tiny images in every format and pixel layout srkit reads (8/16-bit PNG gray/RGB/alpha/
palette, JPEG with EXIF orientation, BMP, animated GIF, TIFF incl. 16-bit and CMYK, WebP, PPM).
Clean errors: ``ImageReadError``. Coverage: srkit and Pillow's Python code.

    python benchmarks/fuzz_images.py --seconds 180
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

import _fuzz

# The first input byte picks the file name the decoder is told (errors and sniffing use it).
NAMES = ("img.png", "img.jpg", "img.bmp", "img.gif", "img.tif", "img.webp", "img.ppm", "img")


def seeds() -> list[bytes]:
    import numpy as np
    from PIL import Image

    from srkit.image.io import write_image

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
    images = {
        "PNG": [Image.fromarray(rgb), Image.fromarray(rgb).convert("L")],
        "JPEG": [Image.fromarray(rgb), Image.fromarray(rgb).convert("L")],
        "BMP": [Image.fromarray(rgb)],
        "TIFF": [Image.fromarray(rgb), Image.fromarray(rgb).convert("CMYK")],
        "WEBP": [Image.fromarray(rgb)],
        "PPM": [Image.fromarray(rgb)],
    }
    seeds: list[tuple[str, bytes]] = []
    for fmt, items in images.items():
        for image in items:
            buffer = io.BytesIO()
            image.save(buffer, format=fmt)
            seeds.append((fmt, buffer.getvalue()))
    rgba = Image.fromarray(np.dstack([rgb, rgb[..., :1]]), "RGBA")
    palette = Image.fromarray(rgb).convert("P")
    palette.info["transparency"] = 3
    extra = {"PNG": [rgba, palette, Image.fromarray(rgb).convert("LA")]}
    for fmt, items in extra.items():
        for image in items:
            buffer = io.BytesIO()
            image.save(buffer, format=fmt)
            seeds.append((fmt, buffer.getvalue()))
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90
    Image.fromarray(rgb).save(buffer, format="JPEG", exif=exif.tobytes())
    seeds.append(("JPEG", buffer.getvalue()))
    buffer = io.BytesIO()
    frames = [Image.fromarray(rgb).convert("P"), Image.fromarray(rgb[::-1]).convert("P")]
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    seeds.append(("GIF", buffer.getvalue()))
    buffer = io.BytesIO()
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(buffer, format="TIFF")
    seeds.append(("TIFF", buffer.getvalue()))
    scratch = Path(tempfile.mkdtemp())
    for name, pixels in (
        ("16.png", rng.integers(0, 65536, (5, 4, 3), dtype=np.uint16)),
        ("16a.png", rng.integers(0, 65536, (5, 4, 4), dtype=np.uint16)),
        ("16g.png", rng.integers(0, 65536, (5, 4, 1), dtype=np.uint16)),
    ):
        write_image(scratch / name, pixels)
        seeds.append(("PNG", (scratch / name).read_bytes()))
        (scratch / name).unlink()
    scratch.rmdir()
    index = {"PNG": 0, "JPEG": 1, "BMP": 2, "GIF": 3, "TIFF": 4, "WEBP": 5, "PPM": 6}
    return [bytes([index[fmt]]) + data for fmt, data in seeds]


def make_target():
    from srkit.image.io import ImageReadError, read_image

    def target(data: bytes, folder: Path) -> None:
        if not data:
            return
        name = NAMES[data[0] % len(NAMES)]
        image = read_image(data[1:], name=name, max_pixels=1 << 22)
        image.to_rgb8()

    return target, (ImageReadError,)


if __name__ == "__main__":
    sys.exit(
        _fuzz.main(
            "fuzz_images", make_target, seeds, instrument=("srkit", "PIL"), description=__doc__
        )
    )
