"""srkit.image.jpeg: the IJG quality of a JPEG file from its quantization tables, the quality
range of a set, and the differentiable JPEG model the degradation task trains through."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from srkit.data.degrade import jpeg_roundtrip
from srkit.image.jpeg import ijg_quality, ijg_table, jpeg_quality, quality_range, soft_jpeg


def _photo(seed: int = 0, height: int = 48, width: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / 20.0
    image = np.stack(
        [np.sin(x * (1 + c) + rng.uniform(0, 3)) * np.cos(y + c) for c in range(3)], -1
    )
    image = 128 + 90 * image + rng.normal(0, 8, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _encode(array: np.ndarray, fmt: str = "JPEG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize("quality", [1, 10, 49, 50, 51, 60, 75, 85, 95, 100])
def test_pillow_qualities_are_recovered_exactly(quality: int) -> None:
    assert jpeg_quality(_encode(_photo(), quality=quality)) == quality


def test_tables_follow_the_ijg_scaling() -> None:
    assert ijg_table(50).tolist()[:8] == [16, 11, 10, 16, 24, 40, 51, 61]  # Annex K.1 itself
    assert ijg_table(50, chroma=True).tolist()[:4] == [17, 18, 24, 47]  # Annex K.2
    assert ijg_table(100).max() == 1 and ijg_table(1).max() == 255
    with pytest.raises(ValueError, match="1..100"):
        ijg_table(0)


def test_other_encoders_and_formats_have_no_quality() -> None:
    assert ijg_quality([3] * 64) is None  # a flat table: no IJG quality makes it
    assert ijg_quality([16] * 10) is None
    assert jpeg_quality(_encode(_photo(), "PNG")) is None
    assert jpeg_quality(b"not an image") is None
    custom = {0: [2] * 64, 1: [3] * 64}
    assert jpeg_quality(_encode(_photo(), qtables=custom)) is None


def test_quality_range_of_a_set() -> None:
    files = [_encode(_photo(i), quality=q) for i, q in enumerate([70, 62, 81])]
    assert quality_range(files) == (62, 81)
    assert quality_range([*files, _encode(_photo(), "PNG")]) is None  # a PNG: no one JPEG
    assert quality_range([]) is None


def test_soft_jpeg_approximates_the_real_codec_and_has_gradients() -> None:
    x = torch.from_numpy(_photo(3, 40, 56)).permute(2, 0, 1)[None].float() / 255  # not /16
    for quality in (30, 60, 90):
        real = jpeg_roundtrip(x[0], quality)[None]
        soft = soft_jpeg(x, [quality])
        assert soft.shape == x.shape
        error_real = (real - x).abs().mean()
        assert (soft - real).abs().mean() < 0.5 * error_real  # closer to the codec than to x
    # lower quality removes more: the soft model follows the codec's ordering
    assert (soft_jpeg(x, [20]) - x).abs().mean() > (soft_jpeg(x, [90]) - x).abs().mean()
    y = x.clone().requires_grad_(True)
    soft_jpeg(torch.cat([y, y]), [40, 80]).sum().backward()
    assert y.grad is not None and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="qualities"):
        soft_jpeg(x, [50, 60])
