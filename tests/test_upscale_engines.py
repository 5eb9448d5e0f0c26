"""srkit upscale's batch options (--keep-tree, --skip-existing, --report) and --engine ray on a
private Ray instance on loopback with 2 workers: the same bytes as --engine local."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srkit.image.io import read_image, write_image

ASSETS = Path(__file__).resolve().parents[1] / "src" / "srkit" / "assets" / "Set5"
SRC = str(Path(__file__).resolve().parents[1] / "src")


def make_tree(root: Path) -> list[str]:
    """Small crops of the bundled Set5 in a folder tree: RGB, gray, RGBA, one broken file."""
    (root / "a" / "deep").mkdir(parents=True)
    names = []
    for i, (name, rel) in enumerate(
        [("baby", "baby.png"), ("bird", "a/bird.png"), ("head", "a/deep/head.png")]
    ):
        pixels = read_image(ASSETS / f"{name}.png").pixels[40 + i * 8 : 100 + i * 8, 30:102]
        write_image(root / rel, pixels)
        names.append(rel)
    gray = read_image(ASSETS / "woman.png").pixels[60:108, 40:90].mean(axis=2)
    write_image(root / "a" / "gray.png", gray.astype(np.uint8))
    rgba = np.dstack(
        [read_image(ASSETS / "butterfly.png").pixels[:50, :60], np.full((50, 60), 200)]
    )
    Image.fromarray(rgba.astype(np.uint8), "RGBA").save(root / "a" / "deep" / "alpha.png")
    (root / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return [*names, "a/gray.png", "a/deep/alpha.png"]


def srkit(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "srkit.cli", "upscale", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def outputs(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*.png")}


def test_keep_tree_report_and_resume(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from srkit.cli import _expand_variadic, app

    good = make_tree(tmp_path / "photos")
    out, report = tmp_path / "out", tmp_path / "report.csv"
    args = ["upscale", str(tmp_path / "photos"), "-o", str(out), "--model", "espcn_x4"]
    run = CliRunner().invoke(app, _expand_variadic([*args, "--keep-tree", "--report", str(report)]))
    assert run.exit_code == 1, run.output  # the broken file
    assert "5 written, 1 failed" in run.output
    assert sorted(outputs(out)) == sorted(f"photos/{n}" for n in good)
    rows = {r["input"]: r for r in csv.DictReader(report.open())}
    broken = rows[str(tmp_path / "photos" / "a" / "broken.png")]
    assert broken["status"] == "failed" and "PNG" in broken["reason"] and broken["output"]
    assert {r["status"] for k, r in rows.items() if "broken" not in k} == {"written"}
    assert read_image(out / "photos/a/deep/alpha.png").alpha is not None
    # a rerun with --skip-existing does nothing but the broken file; a deleted output comes back
    (out / "photos" / "a" / "bird.png").unlink()
    again = [*args, "--keep-tree", "--skip-existing", "--report", str(tmp_path / "r.json")]
    run = CliRunner().invoke(app, _expand_variadic(again))
    assert "1 written, 4 skipped (done), 1 failed" in run.output, run.output
    statuses = [f["status"] for f in json.loads((tmp_path / "r.json").read_text())["files"]]
    assert sorted(statuses) == ["failed", "skipped", "skipped", "skipped", "skipped", "written"]
    # without --skip-existing an existing output is an error, as before
    run = CliRunner().invoke(app, _expand_variadic([*args, "--keep-tree"]))
    assert "0 written, 6 failed" in run.output and "exists (pass --overwrite" in run.output


@pytest.mark.slow
def test_ray_engine_on_a_loopback_cluster_matches_local(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="--engine ray needs Ray: pip install 'srkit[ray]'")
    make_tree(tmp_path / "photos")
    local = srkit("photos", "-o", "local", "--keep-tree", "--threads", "1", cwd=tmp_path)
    assert "5 written, 1 failed" in local.stdout, local.stderr
    # a private Ray instance on 127.0.0.1 with two actors of one thread each
    args = ["photos", "-o", "ray", "--keep-tree", "--threads", "1", "--engine", "ray"]
    args += ["--workers", "2"]
    run = srkit(*args, "--report", "ray.json", cwd=tmp_path)
    assert run.returncode == 1, run.stderr  # the broken file
    assert "5 written, 1 failed" in run.stdout and "ray" in run.stdout
    assert "broken.png" in run.stderr and "Traceback" not in run.stderr
    ray_files, local_files = outputs(tmp_path / "ray"), outputs(tmp_path / "local")
    assert sorted(ray_files) == sorted(local_files) and len(ray_files) == 5
    for name, data in local_files.items():
        assert ray_files[name] == data, name  # bit-identical files
    files = json.loads((tmp_path / "ray.json").read_text())["files"]
    assert sorted(f["status"] for f in files) == ["failed"] + ["written"] * 5
    # resume: a rerun skips what is done and redoes one deleted output
    (tmp_path / "ray" / "photos" / "baby.png").unlink()
    rerun = srkit(*args, "--skip-existing", cwd=tmp_path)
    assert "1 written, 4 skipped (done), 1 failed" in rerun.stdout, rerun.stdout
    assert outputs(tmp_path / "ray") == local_files


def test_an_unreachable_ray_address_is_a_one_line_error(tmp_path: Path) -> None:
    """ray.init retries an address where nothing listens for ever; srkit checks it first."""
    pytest.importorskip("ray", reason="--engine ray needs Ray: pip install 'srkit[ray]'")
    import socket

    from typer.testing import CliRunner

    from srkit.cli import _expand_variadic, app

    with socket.socket() as probe:  # a free loopback port, closed again: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    make_tree(tmp_path / "photos")
    args = ["upscale", str(tmp_path / "photos"), "-o", str(tmp_path / "out"), "--model",
            "espcn_x4", "--engine", "ray", "--address", f"127.0.0.1:{port}"]  # fmt: skip
    run = CliRunner().invoke(app, _expand_variadic(args))
    assert run.exit_code != 0
    assert f"127.0.0.1:{port}" in run.output and "nothing answers" in run.output, run.output
    assert "Traceback" not in run.output and not (tmp_path / "out").exists()
