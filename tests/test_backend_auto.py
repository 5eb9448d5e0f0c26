"""``--backend auto``: the fastest backend within the accuracy budget, measured once and cached."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import srkit.deploy.speed as speed
from srkit.archs import build, get_spec
from srkit.archs.adapter import NetworkModel
from srkit.cli import app
from srkit.deploy.auto import choose_backend, pick, weights_digest
from srkit.deploy.speed import SpeedResult
from srkit.infer.upscaler import Upscaler
from srkit.models import resolve_model


def result(backend, precision, mp, psnr, error=None):
    return SpeedResult(backend, precision, mp, math.nan, psnr, error=error)


FAKE = [
    result("torch", "fp32", 1.0, 30.00),
    result("torch", "bf16", 5.0, 29.90),  # fastest, but 0.10 dB down: outside the budget
    result("openvino", "int8", 3.0, 29.97),  # within 0.05 dB: the pick
    result("onnxruntime", "int8", 9.0, math.nan, error="broken"),
    result("torch-cl", "fp32", 1.2, 30.00),
]


def test_pick_takes_the_fastest_within_the_budget():
    assert (pick(FAKE).backend, pick(FAKE).precision) == ("openvino", "int8")
    assert pick(FAKE, budget_db=0.2).precision == "bf16"
    assert pick(FAKE, budget_db=0.0).backend == "torch-cl"
    assert pick([result("torch", "fp32", 1.0, 30.0, error="x")]) is None
    assert pick([]) is None


def tiny(seed=0, scale=2):
    torch.manual_seed(seed)
    net = build("espcn", scale=scale, n1=4, n2=4).eval()
    return NetworkModel(net, scale, get_spec("espcn").convention, f"tiny{seed}")


@pytest.fixture
def fake_measure(monkeypatch):
    calls = []

    def measure(model, *, combos, **kwargs):
        calls.append([tuple(c) for c in combos])
        return [r for r in FAKE if (r.backend, r.precision) in combos or r.backend == "torch"]

    monkeypatch.setattr(speed, "measure", measure)
    monkeypatch.setattr("srkit.deploy.available_backends",
                        lambda: ["torch", "torch-cl", "onnxruntime", "openvino"])  # fmt: skip
    return calls


def test_the_choice_is_measured_once_then_cached(tmp_path, fake_measure):
    cache = tmp_path / "backends.json"
    heard = []
    first = choose_backend(tiny(), cache=cache, log=heard.append)
    assert first.label == "openvino/int8" and len(fake_measure) == 1 and heard
    assert first.fp32_psnr == 30.0 and first.measured_s is not None
    assert ("torch-compile", "bf16") not in fake_measure[0]  # not installed: not timed
    again = choose_backend(tiny(), cache=cache)
    assert again.label == "openvino/int8" and len(fake_measure) == 1
    assert again.reason.endswith("(cached)") and again.measured_s is None
    other = choose_backend(tiny(seed=1), cache=cache)  # other weights: measured for themselves
    assert len(fake_measure) == 2 and other.label == "openvino/int8"
    choose_backend(tiny(), cache=cache, refresh=True)
    assert len(fake_measure) == 3
    only = choose_backend(tiny(), cache=cache, precision="fp32")  # one precision only
    assert only.label == "torch-cl/fp32" and all(p == "fp32" for _, p in fake_measure[-1])
    entries = json.loads(cache.read_text())
    assert len(entries) == 3 and all("AMD" in k or "[" in k for k in entries)
    cache.write_text("not json")  # a damaged cache is measured again, not an error
    assert choose_backend(tiny(), cache=cache).label == "openvino/int8"


def test_nothing_to_measure_runs_as_is(tmp_path, fake_measure):
    bicubic = resolve_model("bicubic", 2)
    assert choose_backend(bicubic, cache=tmp_path / "c.json").label == "torch/fp32"
    assert not fake_measure and not (tmp_path / "c.json").exists()


def test_weights_digest_follows_the_weights():
    a, b = tiny(0).net, tiny(0).net
    assert weights_digest(a) == weights_digest(b)
    with torch.no_grad():
        next(b.parameters())[0].add_(1e-6)
    assert weights_digest(a) != weights_digest(b)


def test_weights_digest_takes_scalar_buffers():
    """A 0-dim integer buffer (pfsrnet's progressive stage) is hashed too, by its value."""
    a, b = tiny(0).net, tiny(0).net
    a.register_buffer("stage", torch.tensor(2))
    b.register_buffer("stage", torch.tensor(2))
    assert weights_digest(a) == weights_digest(b)
    b.stage.fill_(3)
    assert weights_digest(a) != weights_digest(b)


def test_upscaler_and_cli_use_the_choice(tmp_path, fake_measure, monkeypatch):
    monkeypatch.setenv("SRKIT_CACHE", str(tmp_path / "cache"))
    chosen = []

    def prepare(model, backend, precision, **kwargs):
        chosen.append((backend, precision))
        return model  # the eager model stands in for the chosen backend

    monkeypatch.setattr("srkit.infer.upscaler.prepare", prepare)
    up = Upscaler(tiny(), backend="auto")
    assert (up.backend, up.precision) == ("openvino", "int8") and chosen == [("openvino", "int8")]
    assert (tmp_path / "cache" / "backends.json").is_file()
    weights = tmp_path / "tiny.safetensors"
    from srkit.weights import save_model

    save_model(tiny().net, weights, arch="espcn", scale=2, options={"n1": 4, "n2": 4})
    image = tmp_path / "in.png"
    Image.fromarray(np.zeros((12, 10, 3), np.uint8)).save(image)
    monkeypatch.delenv("SRKIT_BACKEND", raising=False)  # the CLI's default: auto
    out = CliRunner().invoke(app, ["upscale", str(image), "-o", str(tmp_path / "o.png"),
                                   "--model", str(weights)])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "backend: openvino/int8 (fastest within 0.05 dB" in out.output
    assert Image.open(tmp_path / "o.png").size == (20, 24)


REAL = """
import json, sys
import torch
from srkit.archs import build, get_spec
from srkit.archs.adapter import NetworkModel
from srkit.deploy.auto import choose_backend
from pathlib import Path
torch.manual_seed(0)
net = build("espcn", scale=2, n1=4, n2=4).eval()
model = NetworkModel(net, 2, get_spec("espcn").convention, "tiny0")
choice = choose_backend(model, cache=Path(sys.argv[1]), min_time=0.2, size=32)
print(json.dumps({"backend": choice.backend, "precision": choice.precision,
                  "set5_psnr": choice.set5_psnr, "fp32_psnr": choice.fp32_psnr,
                  "candidates": choice.candidates}))
"""


@pytest.mark.slow
def test_a_real_measurement_picks_an_installed_backend_within_the_budget(tmp_path):
    # in a child process: the OpenVINO / ONNX Runtime thread pools stay out of the test worker
    env = {**os.environ, "SRKIT_SKIP_COMPILE": "1"}  # compiling is timed by `srkit speed`
    done = subprocess.run([sys.executable, "-c", REAL, str(tmp_path / "c.json")], env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    choice = json.loads(done.stdout.strip().splitlines()[-1])
    measured = {(c["backend"], c["precision"]): c for c in choice["candidates"]}
    assert ("torch", "fp32") in measured and (choice["backend"], choice["precision"]) in measured
    assert choice["set5_psnr"] >= choice["fp32_psnr"] - 0.05
    kept = [
        c
        for c in choice["candidates"]
        if c["error"] is None and c["set5_psnr"] >= choice["fp32_psnr"] - 0.05
    ]
    fastest = max(kept, key=lambda c: c["mp_per_s"])
    assert (fastest["backend"], fastest["precision"]) == (choice["backend"], choice["precision"])
    assert (tmp_path / "c.json").is_file()
