"""srkit's torch imresize against the plain NumPy transcription of MATLAB's algorithm."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from numpy_reference import imresize as reference_imresize
from srkit.image.resize import METHODS, contributions, imresize, imresize_uint8, resize

CASES = [
    # (height, width, scale or None, size or None)
    (17, 23, 0.5, None),
    (31, 29, 1 / 3, None),
    (40, 36, 0.25, None),
    (13, 11, 2.0, None),
    (9, 14, 3.0, None),
    (8, 7, 4.0, None),
    (21, 19, 0.7, None),  # non-integer shrink
    (12, 15, 1.5, None),  # non-integer enlarge
    (25, 18, None, (10, 33)),  # shrink one axis, enlarge the other
    (1, 9, 2.0, None),  # single row
]


@pytest.mark.parametrize(("height", "width", "scale", "size"), CASES)
def test_matches_numpy_reference_float64(height, width, scale, size):
    rng = np.random.default_rng(height * 100 + width)
    image = rng.random((height, width, 3))
    expected = reference_imresize(image, scale=scale, size=size)
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None]
    got = imresize(tensor, scale=scale, size=size)[0].permute(1, 2, 0).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert np.abs(got - expected).max() < 1e-9  # in practice float64 agrees to rounding error


def test_gather_path_matches_dense_path(monkeypatch):
    import srkit.image.resize as module

    image = torch.rand(2, 3, 37, 41, dtype=torch.float64)
    dense = imresize(image, scale=0.37)
    monkeypatch.setattr(module, "_DENSE_LIMIT", 0)
    module._TORCH_CACHE.clear()
    gathered = imresize(image, scale=0.37)
    module._TORCH_CACHE.clear()
    torch.testing.assert_close(dense, gathered, rtol=0, atol=1e-12)


@pytest.mark.parametrize("scale", [0.25, 1 / 3, 0.5, 2.0, 3.0, 4.0])
@pytest.mark.parametrize("method", ["bicubic", "bilinear", "opencv_bicubic"])
def test_polyphase_path_matches_the_matrix_path(monkeypatch, scale, method):
    import srkit.image.resize as module

    image = torch.rand(1, 2, 23, 5, dtype=torch.float64)  # 5 < the x4 shrink kernel's reach
    fast = imresize(image, scale=scale, kernel=method)
    assert module._polyphase(23, fast.shape[-2], scale, method, True) is not None
    monkeypatch.setattr(module, "_polyphase", lambda *args: None)
    slow = imresize(image, scale=scale, kernel=method)
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-12)


def test_batched_equals_one_by_one():
    batch = torch.rand(4, 3, 20, 24, dtype=torch.float64)
    together = imresize(batch, scale=0.5)
    for i in range(4):
        torch.testing.assert_close(together[i : i + 1], imresize(batch[i : i + 1], scale=0.5))


def test_output_size_follows_matlab_ceil_rule():
    assert imresize(torch.rand(1, 1, 256, 255), scale=1 / 3).shape[-2:] == (86, 85)
    assert imresize(torch.rand(1, 1, 10, 10), scale=2.5).shape[-2:] == (25, 25)


def test_constant_image_stays_constant():
    image = torch.full((1, 3, 15, 17), 0.3, dtype=torch.float64)
    for scale in (0.25, 0.5, 2.0, 3.0):
        torch.testing.assert_close(
            imresize(image, scale=scale), torch.full_like(imresize(image, scale=scale), 0.3)
        )


def test_uint8_path_rounds_half_up_and_saturates():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(19, 22, 3)).astype(np.uint8)
    expected = reference_imresize(image.astype(np.float64), scale=0.5)
    expected = np.floor(np.clip(expected, 0, 255) + 0.5).astype(np.uint8)
    got = imresize_uint8(torch.from_numpy(image).permute(2, 0, 1)[None], scale=0.5)
    assert got.dtype == torch.uint8
    np.testing.assert_array_equal(got[0].permute(1, 2, 0).numpy(), expected)
    # overshoot of the cubic kernel on a hard edge must saturate, not wrap around
    edge = torch.zeros(1, 1, 8, 8, dtype=torch.uint8)
    edge[..., 4:] = 255
    up = imresize_uint8(edge, scale=4)
    assert up.min() == 0 and up.max() == 255


def test_contributions_weights_sum_to_one_and_indices_in_range():
    for scale in (0.25, 0.5, 2.0, 1 / 3):
        weights, indices = contributions(30, int(np.ceil(30 * scale)), scale)
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-12)
        assert indices.min() >= 0 and indices.max() < 30


def test_other_methods_are_available_and_differ_from_matlab():
    image = torch.rand(1, 3, 32, 32, dtype=torch.float64)
    matlab = imresize(image, scale=0.5)
    assert set(METHODS) >= {"bicubic", "bilinear", "nearest", "opencv_bicubic", "pil_bicubic"}
    for method in ("opencv_bicubic", "pil_bicubic", "bilinear"):
        other = resize(image, scale=0.5, method=method)
        assert other.shape == matlab.shape
        assert (other - matlab).abs().max() > 1e-3, method


def test_pil_bicubic_is_pillow():
    from PIL import Image

    rng = np.random.default_rng(3)
    plane = rng.integers(0, 256, size=(20, 30)).astype(np.uint8)
    expected = np.asarray(Image.fromarray(plane).resize((15, 10), Image.Resampling.BICUBIC))
    got = resize(torch.from_numpy(plane)[None, None], scale=0.5, method="pil_bicubic")
    np.testing.assert_array_equal(got[0, 0].numpy(), expected)


def test_nearest_upscale_replicates_pixels():
    image = torch.arange(6, dtype=torch.float64).view(1, 1, 2, 3)
    up = imresize(image, scale=2, kernel="nearest")
    expected = image.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
    torch.testing.assert_close(up, expected)


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="exactly one"):
        imresize(torch.rand(1, 1, 4, 4))
    with pytest.raises(ValueError, match="unknown resize method"):
        imresize(torch.rand(1, 1, 4, 4), scale=2, kernel="lanczos9")
    with pytest.raises(TypeError, match="float"):
        imresize(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), scale=2)
