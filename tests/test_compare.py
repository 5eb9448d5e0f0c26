"""``srkit compare``: the bicubic | model | HR panel and its numbers (the benchmark's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import srkit.infer.compare as compare_module
from srkit.archs import build, get_spec
from srkit.archs.adapter import NetworkModel
from srkit.bench import evaluate_model, score_image
from srkit.bench.protocol import matlab_bicubic_lr, super_resolve_uint8
from srkit.cli import _expand_variadic, app
from srkit.data.builtin import bundled_set5
from srkit.image.io import read_rgb
from srkit.infer.compare import check_crop, compare, detail_crop, render_panel
from srkit.metrics import mod_crop
from srkit.models import resolve_model
from srkit.weights import save_model

BUTTERFLY = bundled_set5() / "butterfly.png"


def tiny_espcn(scale: int, seed: int = 0) -> NetworkModel:
    """A small random ESPCN (Y-only network): fast, and clearly different from bicubic."""
    torch.manual_seed(seed)
    net = build("espcn", scale=scale, n1=8, n2=4)
    return NetworkModel(net, scale, get_spec("espcn").convention, "tiny_espcn")


def hr_batch(path: Path, scale: int) -> torch.Tensor:
    rgb = read_rgb(path)
    return mod_crop(torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0), scale)


def to_hwc(batch: torch.Tensor) -> np.ndarray:
    return batch[0].permute(1, 2, 0).numpy()


@pytest.fixture(scope="module")
def butterfly_x4(tmp_path_factory) -> tuple[compare_module.CompareResult, NetworkModel]:
    model = tiny_espcn(4)
    out = tmp_path_factory.mktemp("compare")
    return compare(BUTTERFLY, model, 4, out), model


def test_writes_sr_and_panel_named_after_image_scale_model(butterfly_x4) -> None:
    result, model = butterfly_x4
    assert result.sr_path.name == "butterfly_x4_tiny_espcn.png"
    assert result.compare_path.name == "butterfly_x4_compare.png"
    assert result.sr_path.parent == result.compare_path.parent
    assert (result.height, result.width) == (256, 256)
    # The SR file is exactly what the benchmark scores: model(LR) clamped and rounded
    hr = hr_batch(BUTTERFLY, 4)
    expected = to_hwc(super_resolve_uint8(model, matlab_bicubic_lr(hr, 4)))
    np.testing.assert_array_equal(read_rgb(result.sr_path), expected)


def test_panel_has_three_columns_full_image_and_zoomed_crop(butterfly_x4) -> None:
    result, model = butterfly_x4
    panel = np.asarray(Image.open(result.compare_path).convert("RGB"))
    height, width = result.height, result.width
    x, y, side = result.crop
    zoomed = side * result.zoom
    assert result.zoom >= 2 and zoomed <= width
    # Three equal columns (as wide as the image) separated and surrounded by one margin
    margin, rest = divmod(panel.shape[1] - 3 * width, 4)
    assert rest == 0 and margin > 0
    assert panel.shape[0] > height + zoomed + 2 * margin
    hr = hr_batch(BUTTERFLY, 4)
    lr = matlab_bicubic_lr(hr, 4)
    columns = [
        to_hwc(super_resolve_uint8(resolve_model("bicubic", 4), lr)),
        to_hwc(super_resolve_uint8(model, lr)),
        to_hwc(hr),
    ]
    crop_rows = slice(y, y + side)
    crop_cols = slice(x, x + side)
    tops = []
    for i, image in enumerate(columns):
        left = margin + i * (width + margin)
        # the full image: found at one height, intact except for the box drawn around the crop
        top = next(
            t
            for t in range(panel.shape[0] - height)
            if np.array_equal(
                panel[t + y : t + y + side, left + x : left + x + side], image[crop_rows, crop_cols]
            )
        )
        tops.append(top)
        shown = panel[top : top + height, left : left + width]
        changed = np.argwhere((shown != image).any(axis=2))
        assert len(changed) > 0  # the box is drawn...
        stroke = max(2, round(min(height, width) / 128))
        inside_box = (changed[:, 0] >= y) & (changed[:, 0] < y + side)
        inside_box &= (changed[:, 1] >= x) & (changed[:, 1] < x + side)
        assert not inside_box.any()  # ...around the crop, not over it
        assert changed[:, 0].min() >= y - stroke and changed[:, 0].max() <= y + side - 1 + stroke
        assert changed[:, 1].min() >= x - stroke and changed[:, 1].max() <= x + side - 1 + stroke
        assert tuple(shown[changed[0][0], changed[0][1]]) == compare_module._BOX
        # the crop enlarged by nearest neighbour, centred under it and below the full image
        expected = np.repeat(np.repeat(image[crop_rows, crop_cols], result.zoom, 0), result.zoom, 1)
        zoom_left = left + (width - zoomed) // 2
        below = panel[top + height :, zoom_left : zoom_left + zoomed]
        assert any(
            np.array_equal(below[t : t + zoomed], expected)
            for t in range(below.shape[0] - zoomed + 1)
        )
    assert len(set(tops)) == 1  # one row of images, labels above them
    assert tops[0] > margin  # room for the labels


def test_psnrs_are_the_benchmark_scores(butterfly_x4) -> None:
    result, model = butterfly_x4
    hr = hr_batch(BUTTERFLY, 4)
    # the same figure up to the summation order of the float reduction (CPU-dependent)
    assert result.psnr_model == pytest.approx(score_image(model, hr, 4).psnr, rel=1e-12)
    bicubic = score_image(resolve_model("bicubic", 4), hr, 4).psnr
    assert result.psnr_bicubic == pytest.approx(bicubic, rel=1e-12)
    assert result.psnr_model < result.psnr_bicubic - 5  # a random network is far worse


def test_bicubic_psnr_equals_srkit_bench_on_butterfly_x4(butterfly_x4) -> None:
    result, _ = butterfly_x4
    bench = evaluate_model(resolve_model("bicubic", 4), bundled_set5())
    (row,) = [r for r in bench.per_image if Path(r.image).stem == "butterfly"]
    assert result.psnr_bicubic == row.psnr
    assert result.psnr_bicubic == pytest.approx(22.10, abs=0.005)


def test_model_none_means_the_default_model(tmp_path: Path, monkeypatch) -> None:
    asked = []
    real = compare_module.resolve_model

    def fake(spec: str, scale: int):
        asked.append((spec, scale))
        return tiny_espcn(scale) if spec == "default" else real(spec, scale)

    import srkit.infer.upscaler as upscaler_module  # compare resolves names through it

    monkeypatch.setattr(compare_module, "resolve_model", fake)
    monkeypatch.setattr(upscaler_module, "resolve_model", fake)
    result = compare(BUTTERFLY, None, 2, tmp_path)
    assert ("default", 2) in asked
    assert result.model == "tiny_espcn" and result.sr_path.exists()


def test_wrong_scale_and_too_small_images_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="x3 model; asked for x4"):
        compare(BUTTERFLY, tiny_espcn(3), 4, tmp_path)
    with pytest.raises(ValueError, match="too small"):
        compare(np.zeros((15, 40, 3), np.uint8), "bicubic", 4, tmp_path)
    assert not list(tmp_path.iterdir())


def test_gray_array_input_and_explicit_crop(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, size=(41, 50), dtype=np.uint8)
    result = compare(gray, "bicubic", 2, tmp_path, crop=(10, 4, 12), zoom=3, name="noise")
    assert (result.height, result.width) == (40, 50)  # mod-cropped
    assert result.crop == (10, 4, 12) and result.zoom == 3
    assert result.compare_path == tmp_path / "noise_x2_compare.png"
    sr = read_rgb(result.sr_path)
    assert sr.shape == (40, 50, 3)
    assert (sr[:, :, 0] == sr[:, :, 1]).all() and (sr[:, :, 1] == sr[:, :, 2]).all()
    with pytest.raises(ValueError, match="not inside"):
        compare(gray, "bicubic", 2, tmp_path, crop=(45, 0, 12))


@pytest.mark.parametrize("shape", [(256, 256), (344, 228), (40, 17), (9, 300)])
@pytest.mark.parametrize("size", [None, 8, 16])
def test_detail_crop_stays_inside(shape: tuple[int, int], size: int | None) -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    side = min(size or 10**6, *shape) if size is not None else None
    for margin in (0, 4, 1000):
        x, y, s = detail_crop(image, side, margin=margin)
        assert s >= 1
        if side is not None:
            assert s == side
        assert check_crop((x, y, s), *shape) == (x, y, s)


def test_detail_crop_finds_the_textured_region() -> None:
    image = np.full((120, 160, 3), 128, dtype=np.uint8)
    rng = np.random.default_rng(2)
    image[70:100, 20:50] = rng.integers(0, 256, size=(30, 30, 3), dtype=np.uint8)
    x, y, side = detail_crop(image, 30)
    assert (x, y, side) == (20, 70, 30)
    # the margin keeps the box off the edges, even when the detail touches one
    edge = np.full((120, 160, 3), 128, dtype=np.uint8)
    edge[:, :8] = rng.integers(0, 256, size=(120, 8, 3), dtype=np.uint8)
    assert detail_crop(edge, 30)[0] == 0
    assert detail_crop(edge, 30, margin=4)[0] == 4


def test_render_panel_refuses_mismatched_images() -> None:
    a = np.zeros((32, 32, 3), np.uint8)
    b = np.zeros((32, 30, 3), np.uint8)
    with pytest.raises(ValueError, match="same size"):
        render_panel([("a", "", a), ("b", "", b)], (0, 0, 8), 2)


def test_help_shows_examples() -> None:
    result = CliRunner().invoke(app, ["compare", "--help"])
    assert result.exit_code == 0
    assert "srkit compare -o demo/" in result.output
    assert "--crop" in result.output and "--model" in result.output


@pytest.fixture
def weight_file(tmp_path: Path) -> Path:
    model = tiny_espcn(4, seed=3)
    options = {"n1": 8, "n2": 4}
    return save_model(model.net, tmp_path / "w" / "tiny", arch="espcn", scale=4, options=options)


def test_cli_writes_files_and_prints_bench_psnrs(tmp_path: Path, weight_file: Path) -> None:
    out_dir = tmp_path / "out"
    args = ["compare", "--scale", "4", str(BUTTERFLY), "--model", str(weight_file)]
    args += ["-o", str(out_dir), "--crop", "100", "60", "40"]
    result = CliRunner().invoke(app, _expand_variadic(args))
    assert result.exit_code == 0, result.output
    sr_file = out_dir / "butterfly_x4_tiny.png"
    panel = out_dir / "butterfly_x4_compare.png"
    assert sr_file.is_file() and panel.is_file()
    assert str(sr_file) in result.output and str(panel) in result.output
    hr = hr_batch(BUTTERFLY, 4)
    model_psnr = score_image(resolve_model(str(weight_file), 4), hr, 4).psnr
    bicubic_psnr = score_image(resolve_model("bicubic", 4), hr, 4).psnr
    assert f"{model_psnr:.2f} dB" in result.output
    assert f"{bicubic_psnr:.2f} dB" in result.output
    assert "40x40 at (100, 60)" in result.output


def test_cli_reports_errors(tmp_path: Path) -> None:
    args = ["compare", str(BUTTERFLY), "--model", "bicubic", "-o", str(tmp_path)]
    bad_crop = CliRunner().invoke(app, [*args, "--crop", "250", "0", "40"])
    assert bad_crop.exit_code == 1 and "not inside" in bad_crop.output
    missing = CliRunner().invoke(
        app, ["compare", str(tmp_path / "nope.png"), "--model", "bicubic", "-o", str(tmp_path)]
    )
    assert missing.exit_code == 1 and "error" in missing.output
    two = CliRunner().invoke(app, _expand_variadic([*args, "--scale", "2", "3"]))
    assert two.exit_code == 1 and "one scale per run" in two.output
    assert not list(tmp_path.glob("*.png"))


def test_several_models_side_by_side_with_perceptual_metrics(tmp_path: Path) -> None:
    from srkit.metrics.select import image_metric

    first, second = tiny_espcn(4, seed=1), tiny_espcn(4, seed=2)
    second.name = "tiny_espcn_b"
    result = compare(BUTTERFLY, [first, second], 4, tmp_path, metrics="psnr,lpips,msssim")
    assert [c.name for c in result.columns] == ["bicubic", "tiny_espcn", "tiny_espcn_b"]
    assert result.model == "tiny_espcn" and result.sr_path == result.columns[1].path
    assert result.columns[0].path is None  # bicubic is not written
    hr = hr_batch(BUTTERFLY, 4)
    lr = matlab_bicubic_lr(hr, 4)
    lpips = image_metric("lpips")
    upscalers = (resolve_model("bicubic", 4), first, second)
    for column, upscaler in zip(result.columns, upscalers, strict=True):
        assert set(column.scores) == {"lpips", "msssim"}
        sr = super_resolve_uint8(upscaler, lr)
        assert column.scores["lpips"] == pytest.approx(lpips.score(sr, hr, border=4), abs=1e-6)
        if column.path is not None:
            np.testing.assert_array_equal(read_rgb(column.path), to_hwc(sr))
    # a random network is perceptually far from the HR; bicubic is close
    assert result.columns[0].scores["lpips"] < min(c.scores["lpips"] for c in result.columns[1:])
    # four columns: bicubic, two models, HR
    panel = Image.open(result.compare_path)
    assert panel.width > 4 * result.width


def test_models_of_a_comparison_need_distinct_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="named differently"):
        compare(BUTTERFLY, [tiny_espcn(4), tiny_espcn(4, seed=5)], 4, tmp_path)
    assert not list(tmp_path.iterdir())


def test_cli_compares_several_models_with_metrics(tmp_path: Path, weight_file: Path) -> None:
    args = ["compare", str(BUTTERFLY), "--model", "bicubic", "--model", str(weight_file)]
    result = CliRunner().invoke(app, [*args, "--metrics", "lpips", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "butterfly_x4_bicubic.png").is_file()
    assert (tmp_path / "butterfly_x4_tiny.png").is_file()
    rows = [line for line in result.output.splitlines() if " dB  lpips " in line]
    assert len(rows) == 3  # bicubic (reference column), bicubic as a model, the weight file
    bad = CliRunner().invoke(app, [*args, "--metrics", "fid", "-o", str(tmp_path / "x")])
    assert bad.exit_code == 1 and "fid" in bad.output and not (tmp_path / "x").exists()
