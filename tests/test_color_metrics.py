"""Colour conversion and the PSNR/SSIM of the SR protocol."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import numpy_reference as ref
from srkit.image.color import rgb_to_y, rgb_to_ycbcr, rgb_uint8_to_y, ycbcr_to_rgb
from srkit.metrics import crop_border, mod_crop, psnr, ssim


def test_ycbcr_round_trip():
    rgb = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(ycbcr_to_rgb(rgb_to_ycbcr(rgb)), rgb, rtol=0, atol=1e-12)


def test_matlab_reference_values():
    # MATLAB: rgb2ycbcr(uint8([255 255 255])) = [235 128 128]; black -> [16 128 128]
    white = torch.ones(1, 3, 1, 1, dtype=torch.float64)
    black = torch.zeros(1, 3, 1, 1, dtype=torch.float64)
    f64 = torch.float64
    torch.testing.assert_close(
        rgb_to_ycbcr(white).flatten() * 255,
        torch.tensor([235.0, 128.0, 128.0], dtype=torch.float64),
    )
    torch.testing.assert_close(
        rgb_to_ycbcr(black).flatten() * 255, torch.tensor([16.0, 128.0, 128.0], dtype=f64)
    )
    # pure red: Y = 16 + 65.481, Cb = 128 - 37.797, Cr = 128 + 112
    red = torch.tensor([1.0, 0, 0], dtype=torch.float64).view(1, 3, 1, 1)
    torch.testing.assert_close(
        rgb_to_ycbcr(red).flatten() * 255,
        torch.tensor([81.481, 90.203, 240.0], dtype=torch.float64),
    )


def test_y_helpers_agree():
    rgb = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(rgb_to_y(rgb), rgb_to_ycbcr(rgb)[:, :1])
    rgb8 = torch.randint(0, 256, (1, 3, 8, 8), dtype=torch.uint8)
    float_y = rgb_uint8_to_y(rgb8, rounded=False)
    rounded_y = rgb_uint8_to_y(rgb8, rounded=True)
    assert torch.equal(rounded_y, torch.floor(float_y + 0.5))
    assert not torch.equal(rounded_y, float_y)


def test_psnr_identical_is_infinite_and_ssim_is_one():
    image = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    assert torch.isinf(psnr(image, image)).all()
    torch.testing.assert_close(ssim(image, image), torch.ones(2, dtype=torch.float64))


def test_psnr_of_a_known_mse_on_rgb():
    hr = torch.full((1, 3, 20, 20), 100, dtype=torch.uint8)
    sr = hr.clone()
    sr[..., ::2, :] += 10  # half the pixels off by 10 -> MSE 50
    expected = 10 * math.log10(255**2 / 50)
    assert psnr(sr, hr, channel="rgb").item() == pytest.approx(expected, abs=1e-12)


def test_psnr_on_y_crops_the_border():
    hr = torch.full((1, 3, 20, 20), 120, dtype=torch.uint8)
    sr = hr.clone()
    sr[..., :2, :] = 0  # damage only a 2-pixel border
    assert math.isinf(psnr(sr, hr, border=2).item())
    assert psnr(sr, hr, border=1).item() < 30


@pytest.mark.parametrize("legacy", [False, True])
def test_psnr_ssim_match_numpy_reference(legacy):
    rng = np.random.default_rng(1)
    hr = rng.integers(0, 256, size=(40, 36, 3)).astype(np.uint8)
    sr = np.clip(hr.astype(int) + rng.integers(-20, 21, size=hr.shape), 0, 255).astype(np.uint8)
    y_sr = ref.rgb2y(sr, legacy)[3:-3, 3:-3]
    y_hr = ref.rgb2y(hr, legacy)[3:-3, 3:-3]
    convention = "legacy" if legacy else "modern"
    to_t = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None]  # noqa: E731
    got_psnr = psnr(to_t(sr), to_t(hr), border=3, convention=convention).item()
    got_ssim = ssim(to_t(sr), to_t(hr), border=3, convention=convention).item()
    assert got_psnr == pytest.approx(ref.psnr(y_sr, y_hr), abs=1e-9)
    assert got_ssim == pytest.approx(ref.ssim(y_sr, y_hr), abs=1e-9)


def test_conventions_differ():
    rng = np.random.default_rng(2)
    hr = torch.from_numpy(rng.integers(0, 256, size=(1, 3, 32, 32)).astype(np.uint8))
    sr = (hr.int() + 3).clamp(0, 255).to(torch.uint8)
    assert psnr(sr, hr, convention="modern").item() != psnr(sr, hr, convention="legacy").item()
    with pytest.raises(ValueError, match="convention"):
        psnr(sr, hr, convention="matlab")


def test_ssim_decreases_with_noise():
    rng = np.random.default_rng(4)
    hr = torch.from_numpy(rng.integers(60, 200, size=(1, 3, 48, 48)).astype(np.uint8))
    scores = []
    for sigma in (2, 10, 40):
        noise = torch.from_numpy(rng.normal(0, sigma, size=hr.shape))
        noisy = (hr.double() + noise).round().clamp(0, 255).to(torch.uint8)
        scores.append(ssim(noisy, hr).item())
    assert scores[0] > scores[1] > scores[2]


def test_crops():
    image = torch.zeros(1, 3, 31, 17)
    assert mod_crop(image, 4).shape[-2:] == (28, 16)
    assert crop_border(image, 3).shape[-2:] == (25, 11)
    with pytest.raises(ValueError, match="border"):
        crop_border(image, 9)
