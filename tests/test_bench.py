"""`srkit bench`: paper figures on the bundled Set5, outputs, bad inputs, the CLI."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from srkit.bench import evaluate_model, run_benchmark
from srkit.cli import _expand_variadic, app
from srkit.data.builtin import bundled_set5
from srkit.models import resolve_model

# Published bicubic rows (legacy) and the modern-convention figures of an independent
# implementation (see ../shared/data/README.md and ../shared/weights/official/README.md).
MODERN = {2: (33.68, 0.9305), 3: (30.41, 0.8690), 4: (28.43, 0.8113)}
LEGACY = {2: (33.66, 0.9299), 3: (30.39, 0.8682), 4: (28.42, 0.8104)}


@pytest.fixture(scope="module")
def set5_results() -> dict[str, dict[int, tuple[float, float]]]:
    table = {}
    for convention in ("modern", "legacy"):
        results = run_benchmark("bicubic", [bundled_set5()], [2, 3, 4], convention=convention)
        table[convention] = {r.scale: (r.psnr, r.ssim) for r in results}
        assert all(r.n == 5 and r.dataset == "Set5" for r in results)
    return table


@pytest.mark.parametrize("convention", ["modern", "legacy"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_set5_matches_papers(set5_results, convention, scale):
    expected = (MODERN if convention == "modern" else LEGACY)[scale]
    got_psnr, got_ssim = set5_results[convention][scale]
    assert got_psnr == pytest.approx(expected[0], abs=0.02)
    assert got_ssim == pytest.approx(expected[1], abs=0.0005)


def test_the_numpy_reference_agrees_on_one_image():
    import numpy_reference

    path = bundled_set5() / "head.png"
    hr = np.asarray(Image.open(path).convert("RGB"))
    ref_psnr, ref_ssim = numpy_reference.evaluate_bicubic(hr, 3)
    result = evaluate_model(resolve_model("bicubic", 3), Path(path).parent, convention="modern")
    head = next(s for s in result.per_image if s.image == "head.png")
    assert head.psnr == pytest.approx(ref_psnr, abs=1e-4)
    assert head.ssim == pytest.approx(ref_ssim, abs=1e-6)


def _write_images(folder: Path, count: int, size=(40, 48)) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        base = rng.integers(0, 255, size=(size[0] // 8, size[1] // 8, 3)).astype(np.uint8)
        image = Image.fromarray(base).resize((size[1], size[0]), Image.BICUBIC)
        image.save(folder / f"im{i}.png")


def test_cli_writes_csv_and_json_of_the_documented_shape(tmp_path):
    _write_images(tmp_path / "tiny", 3)
    csv_path, json_path = tmp_path / "out.csv", tmp_path / "out.json"
    args = ["bench", "--model", "bicubic", "--scale", "2", "4", "--data", str(tmp_path / "tiny")]
    args += ["--csv", str(csv_path), "--json", str(json_path)]
    result = CliRunner().invoke(app, _expand_variadic(args))
    assert result.exit_code == 0, result.output
    assert "tiny" in result.output and "x2" in result.output and "x4" in result.output
    summary = json.loads(json_path.read_text())
    assert list(summary) == ["results"]
    assert len(summary["results"]) == 2
    for record in summary["results"]:
        assert set(record) == {
            "model",
            "dataset",
            "scale",
            "psnr",
            "ssim",
            "n",
            "seconds",
            "skipped",
        }
        assert record["model"] == "bicubic" and record["dataset"] == "tiny"
        assert record["n"] == 3 and record["skipped"] == []
        assert isinstance(record["psnr"], float) and isinstance(record["seconds"], float)
    rows = list(csv.DictReader(csv_path.open()))
    assert [r["image"] for r in rows] == ["im0.png", "im1.png", "im2.png", "mean"] * 2
    x2 = [float(r["psnr"]) for r in rows[:3]]
    assert float(rows[3]["psnr"]) == pytest.approx(np.mean(x2), abs=1e-3)
    assert float(rows[3]["psnr"]) == pytest.approx(summary["results"][0]["psnr"], abs=1e-3)


def test_ensemble_is_scored_under_its_own_name(tmp_path):
    """Bicubic is flip/transpose equivariant, so its "+" row equals the plain one; a trained net's
    ensemble is a different, better image (a wrong inverse transform would cost many dB)."""
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "bird.png").write_bytes((bundled_set5() / "bird.png").read_bytes())
    json_path = tmp_path / "plus.json"
    args = ["bench", "--model", "bicubic", "repan", "--scale", "2", "--data", str(folder)]
    result = CliRunner().invoke(
        app, _expand_variadic([*args, "--ensemble", "--json", str(json_path)])
    )
    assert result.exit_code == 0, result.output
    plus = {r["model"]: r["psnr"] for r in json.loads(json_path.read_text())["results"]}
    assert set(plus) == {"bicubic+", "repan_x2+"}
    plain = {r.model: r.psnr for m in ("bicubic", "repan") for r in run_benchmark(m, [folder], [2])}
    assert plus["bicubic+"] == pytest.approx(plain["bicubic"], abs=1e-3)
    assert plus["repan_x2+"] > plain["repan_x2"] + 0.01


def test_bad_image_stops_the_run_unless_skip_bad(tmp_path):
    folder = tmp_path / "mixed"
    _write_images(folder, 2)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    args = ["bench", "--model", "bicubic", "--scale", "2", "--data", str(folder)]
    failed = CliRunner().invoke(app, _expand_variadic(args))
    assert failed.exit_code != 0
    assert "broken.png" in failed.output
    json_path = tmp_path / "s.json"
    ok = CliRunner().invoke(app, _expand_variadic([*args, "--skip-bad", "--json", str(json_path)]))
    assert ok.exit_code == 0, ok.output
    record = json.loads(json_path.read_text())["results"][0]
    assert record["skipped"] == ["broken.png"] and record["n"] == 2


def test_zip_dataset_is_named_after_the_archive(tmp_path):
    _write_images(tmp_path / "imgs", 2)
    archive = tmp_path / "Pack.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted((tmp_path / "imgs").iterdir()):
            zf.write(f, f"inner/{f.name}")
    [result] = run_benchmark("bicubic", [archive], [2])
    assert result.dataset == "Pack" and result.n == 2


def test_unknown_model_and_convention_are_clear_errors():
    result = CliRunner().invoke(app, ["bench", "--model", "bicubik", "--scale", "2"])
    assert result.exit_code != 0 and "unknown model 'bicubik'" in result.output
    result = CliRunner().invoke(
        app, ["bench", "--model", "bicubic", "--convention", "matlab", "--scale", "2"]
    )
    assert result.exit_code != 0 and "convention" in result.output


def test_variadic_options_expand():
    assert _expand_variadic(["bench", "--scale", "2", "3", "--data", "a", "b", "--csv", "x"]) == [
        "bench", "--scale", "2", "--scale", "3", "--data", "a", "--data", "b", "--csv", "x",
    ]  # fmt: skip
    assert _expand_variadic(["--scale", "4"]) == ["--scale", "4"]


def test_every_command_has_help_with_an_example():
    result = CliRunner().invoke(app, ["bench", "--help"])
    assert result.exit_code == 0
    assert "srkit bench --model bicubic --scale 2 3 4" in result.output


def test_bench_with_a_degradation_file(tmp_path):
    spec = tmp_path / "jpeg.yaml"
    spec.write_text("steps:\n  - {type: resize}\n  - {type: jpeg, quality: 10}\n")
    json_path = tmp_path / "d.json"
    args = [
        "bench",
        "--model",
        "bicubic",
        "--scale",
        "2",
        "--degradation",
        str(spec),
        "--json",
        str(json_path),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (record,) = json.loads(json_path.read_text())["results"]
    assert record["dataset"] == "Set5+jpeg"  # labelled by its degradation file
    assert record["psnr"] < MODERN[2][0] - 1.0  # JPEG q10 LR inputs cost bicubic well over 1 dB
    spec.write_text("steps:\n  - {type: sharpen}\n")
    failed = CliRunner().invoke(app, args)
    assert failed.exit_code == 1 and "type" in failed.output


def test_arch_option_overrides_detection(tmp_path):
    from conftest import shared_weights_dir

    path = shared_weights_dir() / "imdn" / "IMDN_x2.pth"
    if not path.is_file():
        pytest.skip(f"official weights not found at {path} (set SRKIT_WEIGHTS)")
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "bird.png").write_bytes((bundled_set5() / "bird.png").read_bytes())
    args = ["bench", "--model", str(path), "--scale", "2", "--data", str(folder)]
    right = CliRunner().invoke(app, _expand_variadic([*args, "--arch", "imdn"]))
    assert right.exit_code == 0, right.output
    wrong = CliRunner().invoke(app, _expand_variadic([*args, "--arch", "rlfn"]))
    assert wrong.exit_code == 1 and "do not fit" in wrong.output
