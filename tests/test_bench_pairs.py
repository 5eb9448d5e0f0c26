"""Paired evaluation: LR/HR folders matched by stem, scored without degradation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from srkit.bench import evaluate_model, run_benchmark
from srkit.bench.protocol import matlab_bicubic_lr
from srkit.cli import _expand_variadic, app
from srkit.data.builtin import bundled_set5
from srkit.data.pairs import PairedSource, open_dataset, open_pairs
from srkit.data.sources import SourceError, open_source
from srkit.metrics.sr import mod_crop
from srkit.models import resolve_model

SCALE = 4


def _hr(seed: int, size: tuple[int, int]) -> np.ndarray:
    """A smooth, textured HR crop from Set5 (random noise would make every model equal)."""
    image = np.asarray(Image.open(bundled_set5() / "baby.png").convert("RGB"))
    top = 40 + 30 * seed
    return np.ascontiguousarray(image[top : top + size[0], 50 : 50 + size[1]])


def _bicubic_lr(hr: np.ndarray) -> np.ndarray:
    x = mod_crop(torch.from_numpy(hr).permute(2, 0, 1)[None], SCALE)
    return matlab_bicubic_lr(x, SCALE)[0].permute(1, 2, 0).numpy()


@pytest.fixture
def pairs(tmp_path) -> Path:
    """DIR/HR: three PNGs; DIR/LR: srkit's MATLAB bicubic of each, as PNG, BMP and JPEG."""
    root = tmp_path / "Pairs"
    (root / "HR").mkdir(parents=True)
    (root / "LR").mkdir()
    for i, suffix in enumerate([".png", ".bmp", ".jpg"]):
        hr = _hr(i, (48, 64))
        Image.fromarray(hr).save(root / "HR" / f"im{i}.png")
        Image.fromarray(_bicubic_lr(hr)).save(root / "LR" / f"im{i}{suffix}", quality=75)
    return root


def test_pair_folder_scores_like_the_bicubic_degradation(pairs):
    model = resolve_model("bicubic", SCALE)
    paired = evaluate_model(model, pairs, SCALE)
    degraded = evaluate_model(model, pairs / "HR", SCALE)
    assert paired.dataset == "Pairs" and degraded.dataset == "HR" and paired.n == 3
    by_name = {s.image: s for s in degraded.per_image}
    for score in paired.per_image:
        ref = by_name[score.image]
        assert (score.height, score.width) == (ref.height, ref.width) == (48, 64)
        if score.image != "im2.png":  # lossless LR: the same pixels, the same figures
            assert (score.psnr, score.ssim) == (ref.psnr, ref.ssim)
        else:  # the JPEG LR is matched by its stem and costs PSNR
            assert score.psnr < ref.psnr - 0.1
    # the same with the LR folder given apart (--lr LR --data HR), via the Python API
    apart = evaluate_model(model, pairs / "HR", SCALE, lr=pairs / "LR")
    assert [(s.image, s.psnr) for s in apart.per_image] == [
        (s.image, s.psnr) for s in paired.per_image
    ]


def test_paired_source_matches_stems_and_names_the_unmatched(pairs):
    source = open_dataset(pairs)
    assert isinstance(source, PairedSource) and source.paired and source.has_lr
    assert source.names == ["im0.png", "im1.png", "im2.png"]
    assert source.lr_name("im1.png") == "im1.bmp"
    assert source.read_lr("im2.png").width == 16
    assert not open_dataset(pairs / "HR").paired
    with pytest.raises(SourceError, match="no images"):  # open_source does not pair
        open_source(pairs)
    (pairs / "LR" / "extra.png").write_bytes((pairs / "LR" / "im0.png").read_bytes())
    with pytest.raises(SourceError, match=r"no HR image with the stem of extra\.png"):
        open_dataset(pairs)
    (pairs / "LR" / "extra.png").unlink()
    (pairs / "LR" / "im1.bmp").unlink()
    with pytest.raises(SourceError, match=r"no LR image with the stem of im1\.png"):
        open_pairs(pairs / "HR", pairs / "LR")
    (pairs / "LR" / "im0.jpg").write_bytes((pairs / "LR" / "im2.jpg").read_bytes())
    with pytest.raises(SourceError, match="same stem"):
        open_dataset(pairs)


def test_size_mismatch_is_an_error_unless_pair_crop(tmp_path):
    root = tmp_path / "odd"
    (root / "HR").mkdir(parents=True)
    (root / "LR").mkdir()
    hr = _hr(0, (50, 66))  # not a multiple of 4: the LR is of its 48x64 mod-crop
    Image.fromarray(hr).save(root / "HR" / "a.png")
    Image.fromarray(_bicubic_lr(hr)).save(root / "LR" / "a.png")
    model = resolve_model("bicubic", SCALE)
    with pytest.raises(ValueError, match=r"a\.png: HR 66x50 is not x4 its LR 16x12.*--pair-crop"):
        evaluate_model(model, root, SCALE)
    cropped = evaluate_model(model, root, SCALE, pair_crop=True)
    reference = evaluate_model(model, root / "HR", SCALE)  # mod-crop = the top-left crop
    assert (cropped.psnr, cropped.ssim) == (reference.psnr, reference.ssim)
    assert (cropped.per_image[0].height, cropped.per_image[0].width) == (48, 64)
    with pytest.raises(ValueError, match="is not x2 its LR"):
        evaluate_model(resolve_model("bicubic", 2), root, 2)
    with pytest.raises(ValueError, match="is not x8 its LR 16x12"):  # smaller: no crop helps
        evaluate_model(resolve_model("bicubic", 8), root, 8, pair_crop=True)


def test_bench_cli_on_pairs(pairs, tmp_path):
    out = tmp_path / "p.json"
    args = ["bench", "--model", "bicubic", "--data", str(pairs), "--json", str(out)]
    result = CliRunner().invoke(app, _expand_variadic(args))  # no --scale: x4 from the pairs
    assert result.exit_code == 0, result.output
    (record,) = json.loads(out.read_text())["results"]
    assert record["scale"] == 4 and record["n"] == 3 and record["dataset"] == "Pairs"
    apart = ["bench", "--model", "bicubic", "--scale", "4", "--json", str(out)]
    apart += ["--lr", str(pairs / "LR"), "--data", str(pairs / "HR")]
    result = CliRunner().invoke(app, _expand_variadic(apart))
    assert result.exit_code == 0, result.output
    (again,) = json.loads(out.read_text())["results"]
    assert again["psnr"] == record["psnr"] and again["dataset"] == "HR"
    [via_api] = run_benchmark("bicubic", [pairs / "HR"], [4], lr=pairs / "LR")
    assert via_api.psnr == record["psnr"]


def test_bench_cli_pair_errors_are_one_line(pairs, tmp_path):
    def run(*extra: str) -> str:
        result = CliRunner().invoke(app, _expand_variadic(["bench", "--model", "bicubic", *extra]))
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        return result.output

    assert "paired data has its own LR" in run(
        "--data", str(pairs), "--scale", "4", "--degradation", str(_jpeg_yaml(tmp_path))
    )
    assert "is not x2 its LR" in run("--data", str(pairs), "--scale", "2")
    assert "--lr pairs with one --data" in run(
        "--lr", str(pairs / "LR"), "--data", str(pairs / "HR"), str(pairs / "HR")
    )
    (pairs / "LR" / "im1.bmp").unlink()
    assert "no LR image with the stem of im1.png" in run("--data", str(pairs), "--scale", "4")


def _jpeg_yaml(folder: Path) -> Path:
    path = folder / "jpeg.yaml"
    path.write_text("steps:\n  - {type: resize}\n  - {type: jpeg, quality: 30}\n")
    return path
