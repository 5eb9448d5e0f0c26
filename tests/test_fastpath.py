"""The fast start of `srkit upscale`: a request that ran on OpenVINO runs again without PyTorch,
with the same output; a changed weight file, alpha and SRKIT_FAST_START=0 take the full path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srkit.archs import build
from srkit.deploy import available_backends
from srkit.infer import fastpath

pytestmark = pytest.mark.skipif(
    "openvino" not in available_backends(), reason="OpenVINO is not installed"
)

SRC = Path(__file__).resolve().parents[1] / "src"
# the CLI in a process where importing torch fails: the fast start must not need it
NO_TORCH = (
    "import sys; sys.modules['torch'] = None; sys.argv = ['srkit'] + sys.argv[1:]; "
    "from srkit.cli import main; main()"
)


def _weights(tmp_path: Path) -> Path:
    from srkit.weights import save_model

    torch.manual_seed(0)
    net = build("edsr_baseline", scale=2, blocks=1, features=8)
    options = {"blocks": 1, "features": 8}
    return save_model(net, tmp_path / "tiny", arch="edsr_baseline", scale=2, options=options)


def _srkit(args: list[str], cache: Path, *, no_torch: bool = False, **env: str):
    environment = {**os.environ, "PYTHONPATH": str(SRC), "SRKIT_CACHE": str(cache), **env}
    program = ["-c", NO_TORCH] if no_torch else ["-m", "srkit.cli"]
    return subprocess.run([sys.executable, *program, *args], env=environment,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def _image(path: Path, mode: str = "RGB", size=(37, 29)) -> Path:
    rng = np.random.default_rng(0)
    channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
    pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels, mode).save(path)
    return path


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> dict:
    """One full run on OpenVINO (which records), the weights, the cache and its output."""
    tmp_path = tmp_path_factory.mktemp("fast")
    weights, cache = _weights(tmp_path), tmp_path / "cache"
    source = _image(tmp_path / "in.png")
    args = ["upscale", str(source), "-o", str(tmp_path / "full.png"), "--model", str(weights),
            "--backend", "openvino", "--tile", "16"]  # fmt: skip
    done = _srkit(args, cache)
    assert done.returncode == 0, done.stderr
    return {"tmp": tmp_path, "weights": weights, "cache": cache, "source": source, "args": args}


def test_the_second_run_needs_no_torch_and_gives_the_same_file(recorded) -> None:
    records = json.loads((recorded["cache"] / "fastpath.json").read_text())
    assert len(records) == 1
    (record,) = records.values()
    assert record["backend"] == "openvino" and record["scale"] == 2
    out = recorded["tmp"] / "fast.png"
    args = [*recorded["args"][:3], str(out), *recorded["args"][4:]]
    done = _srkit(args, recorded["cache"], no_torch=True)
    assert done.returncode == 0, done.stderr
    full = np.asarray(Image.open(recorded["tmp"] / "full.png"))
    np.testing.assert_array_equal(np.asarray(Image.open(out)), full)  # the same compiled model


def test_gray_and_alpha_images_through_the_fast_start(recorded) -> None:
    tmp = recorded["tmp"]
    for mode, no_torch in (("L", True), ("RGBA", False)):  # alpha: the full path, in the run
        source = _image(tmp / f"{mode}.png", mode)
        outs = {}
        for how, env in (("fast", {}), ("full", {"SRKIT_FAST_START": "0"})):
            outs[how] = tmp / f"{mode}_{how}.png"
            args = [*recorded["args"][:1], str(source), "-o", str(outs[how]),
                    *recorded["args"][4:]]  # fmt: skip
            done = _srkit(args, recorded["cache"], no_torch=no_torch and how == "fast", **env)
            assert done.returncode == 0, done.stderr
        fast, full = (np.asarray(Image.open(outs[k])) for k in ("fast", "full"))
        assert fast.shape == (58, 74) + (() if mode == "L" else (4,))
        np.testing.assert_array_equal(fast, full)


def test_a_changed_weight_file_is_not_served_from_the_record(recorded, monkeypatch) -> None:
    monkeypatch.setenv("SRKIT_CACHE", str(recorded["cache"]))
    request = fastpath.Request.of(str(recorded["weights"]), None, "openvino", None)
    assert fastpath.lookup(request) is not None
    manifest = recorded["weights"].with_suffix(".json")
    stat = manifest.stat()
    os.utime(manifest, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    try:
        assert fastpath.lookup(request) is None
    finally:
        os.utime(manifest, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert fastpath.lookup(request) is not None
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # torch's default threads would change
    assert fastpath.lookup(request) is None
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv("SRKIT_FAST_START", "0")
    assert fastpath.lookup(request) is None


def test_a_damaged_record_file_means_the_full_path(recorded, monkeypatch, tmp_path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("SRKIT_CACHE", str(cache))
    request = fastpath.Request.of(str(recorded["weights"]), None, "openvino", None)
    (cache / "fastpath.json").write_text(json.dumps({request.key(): {"files": 3}}))
    assert fastpath.lookup(request) is None
    (cache / "fastpath.json").write_text("{not json")
    assert fastpath.lookup(request) is None


def test_the_calibration_images_are_part_of_the_key(tmp_path) -> None:
    calib = tmp_path / "calib"
    calib.mkdir()
    _image(calib / "a.png")
    first = fastpath.Request.of("repan_x4", 4, "auto", "int8", calib)
    assert first is not None
    before = first.key()
    _image(calib / "b.png")  # int8 would be calibrated again: another model
    assert fastpath.Request.of("repan_x4", 4, "auto", "int8", calib).key() != before
    assert fastpath.Request.of("repan_x4", 4, "auto", "int8", tmp_path / "list.txt") is None


def test_requests_the_fast_start_cannot_serve() -> None:
    assert fastpath.Request.of("repan_x4", 4, "torch", None) is None  # a torch backend
    assert fastpath.Request.of(object(), 4, "auto", None) is None  # a model object
    request = fastpath.Request.of(None, None, "auto", "int8", threads=2)
    assert request is not None and request.model == "default" and request.threads == 2
