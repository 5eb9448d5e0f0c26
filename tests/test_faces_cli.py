"""``srkit faces eval`` / ``srkit faces align`` command lines (the faces sub-app)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from srkit.faces.cli import faces_app
from srkit.faces.lfw import default_lfw_zip
from srkit.faces.paths import data_dir

LFW_ZIP = default_lfw_zip()
CELEBA = data_dir() / "faces" / "celeba-align-32"
runner = CliRunner()


def test_help_lists_commands():
    res = runner.invoke(faces_app, ["--help"])
    assert res.exit_code == 0 and "eval" in res.output and "align" in res.output


def test_bad_arguments_fail_clearly(tmp_path):
    res = runner.invoke(faces_app, ["eval", "--model", "bicubic", "--scale", "1"])
    assert res.exit_code == 1 and "scale must be" in res.output
    res = runner.invoke(faces_app, ["align", str(tmp_path), str(tmp_path / "o"), "--template", "x"])
    assert res.exit_code == 1 and "unknown template" in res.output
    res = runner.invoke(
        faces_app, ["eval", "--model", "bicubic", "--scale", "4", "--data", str(tmp_path / "no")]
    )
    assert res.exit_code == 1 and "error" in res.output


def test_eval_cli_writes_json_and_csv(tmp_path, monkeypatch):
    pytest.importorskip("dlib", reason="dlib (pip install dlib-bin) is not installed")
    if not LFW_ZIP.is_file():
        pytest.skip(f"LFW zip absent: {LFW_ZIP} (set SRKIT_DATA)")
    monkeypatch.setenv("SRKIT_CACHE", str(tmp_path / "cache"))
    pairs = tmp_path / "pairs_cli.txt"
    pairs.write_text("1\nAaron_Peirsol\t1\t2\nAaron_Peirsol\t1\tAbdullah_Gul\t1\n")
    args = ["eval", "--model", "bicubic", "--scale", "8", "--data", str(LFW_ZIP)]
    args += ["--pairs", str(pairs), "--workers", "1"]
    args += ["--json", str(tmp_path / "r.json"), "--csv", str(tmp_path / "r.csv")]
    res = runner.invoke(faces_app, args)
    assert res.exit_code == 0, res.output
    assert "bicubic x8" in res.output and "HR-HR verification" in res.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["results"][0]["n_images"] == 3 and data["results"][0]["scale"] == 8
    assert (tmp_path / "r.csv").read_text().splitlines()[-1].startswith("mean,")


def test_align_cli(tmp_path):
    pytest.importorskip("dlib", reason="dlib (pip install dlib-bin) is not installed")
    if not CELEBA.is_dir():
        pytest.skip(f"CelebA samples absent: {CELEBA}")
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.jpg").write_bytes((CELEBA / "000001.jpg").read_bytes())
    res = runner.invoke(faces_app, ["align", str(src), str(tmp_path / "out"), "--size", "64x64"])
    assert res.exit_code == 0, res.output
    assert "1 crops written" in res.output
    from srkit.image.io import read_rgb

    assert read_rgb(tmp_path / "out" / "a.png").shape == (64, 64, 3)


def test_mounted_in_srkit_cli():
    from srkit.cli import app

    res = runner.invoke(app, ["faces", "eval", "--help"])
    assert res.exit_code == 0 and "--degradation" in res.output and "--pairs" in res.output
