"""LPIPS, MS-SSIM, NIQE and `srkit bench --metrics`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from srkit.cli import app
from srkit.data.builtin import bundled_set5
from srkit.image.resize import imresize
from srkit.metrics.niqe import niqe, pristine_model
from srkit.metrics.perceptual import lpips, ms_ssim
from srkit.metrics.select import parse_metrics
from test_features import HAS_STLPIPS, needs_stlpips


def load(name: str) -> torch.Tensor:
    rgb = np.asarray(Image.open(bundled_set5() / name).convert("RGB")).copy()
    return torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0)


def blurred(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic down and up by ``scale``: more scale, more blur."""
    small = imresize(hr.double(), scale=1 / scale)
    return imresize(small, size=tuple(hr.shape[-2:])).clamp(0, 255).round()


@pytest.fixture(scope="module")
def series():
    hr = load("baby.png")
    return hr, [blurred(hr, s) for s in (2, 3, 4)]


def test_ms_ssim_is_one_for_identical_and_falls_with_blur(series):
    hr, blurs = series
    assert ms_ssim(hr, hr, border=4).item() == pytest.approx(1.0, abs=1e-12)
    values = [ms_ssim(b, hr, border=4).item() for b in blurs]
    assert 1.0 > values[0] > values[1] > values[2] > 0.5
    with pytest.raises(ValueError, match="MS-SSIM needs at least 176x176"):
        ms_ssim(hr[..., :100, :100], hr[..., :100, :100])


@needs_stlpips
@pytest.mark.parametrize("variant", ["alex", "vgg"])
def test_lpips_is_zero_for_identical_and_grows_with_blur(series, variant):
    hr, blurs = series
    crop = hr[..., :160, :160]
    assert lpips(crop, crop, variant=variant).item() == pytest.approx(0.0, abs=1e-7)
    values = [lpips(b[..., :160, :160], crop, variant=variant).item() for b in blurs]
    assert 0 < values[0] < values[1] < values[2] < 1


def test_niqe_pristine_model_and_blur_makes_images_less_natural(series):
    mu, cov, window = pristine_model()
    assert mu.shape == (36,) and cov.shape == (36, 36) and window.shape == (7, 7)
    assert window.sum() == pytest.approx(1.0)
    hr, blurs = series
    sharp, soft = niqe(hr).item(), niqe(blurs[2]).item()
    assert 2.0 < sharp < soft  # measured here: baby.png 3.27, its x4 bicubic 7.41
    with pytest.raises(ValueError, match="two 96x96 blocks"):
        niqe(hr[..., :100, :100])


def test_metric_names_are_checked_before_scoring():
    assert [m.name for m in parse_metrics("psnr,ssim,msssim,niqe,msssim")] == ["msssim", "niqe"]
    with pytest.raises(ValueError, match="FID is not available"):
        parse_metrics("fid")
    with pytest.raises(ValueError, match="unknown metric 'sharpness'"):
        parse_metrics("psnr,sharpness")


@pytest.mark.slow
def test_bench_metrics_reach_json_and_csv(tmp_path):
    data = tmp_path / "two"
    data.mkdir()
    for name in ("baby.png", "bird.png"):
        (data / name).write_bytes((bundled_set5() / name).read_bytes())
    names = "psnr,ssim,msssim,niqe" + (",lpips" if HAS_STLPIPS else "")
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    result = CliRunner().invoke(
        app,
        ["bench", "--model", "bicubic", "--scale", "4", "--data", str(data), "--metrics", names,
         "--json", str(out_json), "--csv", str(out_csv)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads(out_json.read_text())["results"][0]
    assert 0.5 < record["msssim"] < 1 and record["niqe"] > 2 and record["n"] == 2
    if HAS_STLPIPS:
        assert 0 < record["lpips"] < 1
    header = out_csv.read_text().splitlines()[0].split(",")
    assert header[-len(names.split(",")) + 2 :] == names.split(",")[2:]
    bad = CliRunner().invoke(app, ["bench", "--model", "bicubic", "--metrics", "fid"])
    assert bad.exit_code != 0 and "FID is not available" in bad.output
