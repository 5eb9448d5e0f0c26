"""The deployment cache: the ONNX export and the calibrated int8 model of a network are made
once and reused, keyed by the weights and the calibration crops; a damaged file is made again;
a cache that cannot be written falls back to a temporary folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from PIL import Image

import srkit.deploy as deploy
from srkit.archs import build, get_spec
from srkit.archs.adapter import NetworkModel
from srkit.deploy import available_backends, prepare
from srkit.deploy.cache import cached_file, deploy_cache_dir


def tiny(seed: int = 0) -> NetworkModel:
    torch.manual_seed(seed)
    net = build("edsr_baseline", scale=2, blocks=1, features=8)
    convention = get_spec("edsr_baseline").convention
    return NetworkModel(net, 2, convention, "tiny", info={"arch": "edsr_baseline"})


@pytest.fixture
def counted(monkeypatch):
    """Counts the exports and calibrations that really run."""
    calls = {"onnx": 0, "int8": 0}
    export_onnx, quantize_int8 = deploy.export_onnx, deploy.quantize_int8

    def counting_export(*args, **kwargs):
        calls["onnx"] += 1
        return export_onnx(*args, **kwargs)

    def counting_quantize(*args, **kwargs):
        calls["int8"] += 1
        return quantize_int8(*args, **kwargs)

    monkeypatch.setattr(deploy, "export_onnx", counting_export)
    monkeypatch.setattr(deploy, "quantize_int8", counting_quantize)
    return calls


def _need(backend: str) -> None:
    if backend not in available_backends():
        pytest.skip(f"{backend} is not installed")


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_int8_is_calibrated_once_and_reused(backend, tmp_path, monkeypatch, counted):
    _need(backend)
    monkeypatch.setenv("SRKIT_CACHE", str(tmp_path / "cache"))
    x = torch.rand(1, 3, 20, 24)
    first = prepare(tiny(), backend, "int8")(x)
    assert counted == {"onnx": 1, "int8": 1}
    folder = tmp_path / "cache" / "deploy"
    files = sorted(f for f in folder.iterdir() if f.is_file())
    assert [f.suffix for f in files] == [".onnx", ".onnx"]  # the fp32 export and the int8 model
    compiled = folder / "openvino-compiled"
    if backend == "openvino":  # OpenVINO keeps the compiled model for the next run
        assert compiled.is_dir() and any(compiled.iterdir())
        blobs = sorted(compiled.iterdir())
    else:
        assert not compiled.exists()
    again = prepare(tiny(), backend, "int8")(x)
    assert counted == {"onnx": 1, "int8": 1}  # nothing made again
    assert torch.equal(first, again)
    assert sorted(f for f in folder.iterdir() if f.is_file()) == files
    if backend == "openvino":  # imported, not compiled again: no new blob
        assert sorted(compiled.iterdir()) == blobs


def test_other_weights_or_calibration_images_get_their_own_files(tmp_path, monkeypatch, counted):
    _need("onnxruntime")
    monkeypatch.setenv("SRKIT_CACHE", str(tmp_path / "cache"))
    prepare(tiny(0), "onnxruntime", "int8")
    prepare(tiny(1), "onnxruntime", "int8")  # other weights: another export and calibration
    assert counted == {"onnx": 2, "int8": 2}
    calib = tmp_path / "calib"
    calib.mkdir()
    Image.new("RGB", (64, 48), (200, 30, 90)).save(calib / "flat.png")
    prepare(tiny(0), "onnxruntime", "int8", calib=calib)  # same export, other calibration
    assert counted == {"onnx": 2, "int8": 3}
    prepare(tiny(0), "onnxruntime", "fp32")  # the fp32 export is the one int8 started from
    assert counted == {"onnx": 2, "int8": 3}
    names = [f.name for f in (tmp_path / "cache" / "deploy").iterdir()]
    assert len(names) == 5 and sum(n.endswith(".int8.onnx") for n in names) == 3
    Image.new("RGB", (64, 48), (20, 130, 90)).save(calib / "flat.png")  # an edited image
    os.utime(calib / "flat.png", ns=(1, 1))
    prepare(tiny(0), "onnxruntime", "int8", calib=calib)
    assert counted == {"onnx": 2, "int8": 4}


def test_a_cache_hit_does_not_decode_the_calibration_images(tmp_path, monkeypatch, counted):
    """The int8 key comes from the calibration files' names, sizes and times: a run that finds
    its model decodes nothing (the crops are read only to quantise)."""
    _need("onnxruntime")
    monkeypatch.setenv("SRKIT_CACHE", str(tmp_path / "cache"))
    x = torch.rand(1, 3, 16, 16)
    first = prepare(tiny(), "onnxruntime", "int8")(x)

    def refuse(*args, **kwargs):
        raise AssertionError("calibration images decoded on a cache hit")

    monkeypatch.setattr(deploy, "calibration_batches", refuse)
    assert torch.equal(prepare(tiny(), "onnxruntime", "int8")(x), first)
    assert counted == {"onnx": 1, "int8": 1}


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_a_damaged_cached_file_is_made_again(backend, tmp_path, monkeypatch, counted):
    _need(backend)
    monkeypatch.setenv("SRKIT_CACHE", str(tmp_path / "cache"))
    x = torch.rand(1, 3, 16, 16)
    good = prepare(tiny(), backend, "int8")(x)
    (int8,) = (tmp_path / "cache" / "deploy").glob("*.int8.onnx")
    int8.write_bytes(b"not an onnx file")
    assert torch.equal(prepare(tiny(), backend, "int8")(x), good)
    assert counted["int8"] == 2
    assert int8.stat().st_size > 1000


def test_an_unwritable_cache_falls_back_to_a_temporary_folder(tmp_path, monkeypatch):
    _need("onnxruntime")
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("SRKIT_CACHE", str(blocker / "cache"))
    assert deploy_cache_dir() is None
    deployed = prepare(tiny(), "onnxruntime", "fp32")
    assert not Path(deployed.info["file"]).is_relative_to(blocker)
    x = torch.rand(1, 3, 12, 12)
    assert float((deployed(x) - tiny()(x)).abs().max()) < 1e-4


def test_a_failed_make_leaves_no_file(tmp_path):
    target = tmp_path / "model.onnx"

    def fails(path: Path) -> None:
        path.write_bytes(b"half")
        raise RuntimeError("calibration failed")

    with pytest.raises(RuntimeError, match="calibration failed"):
        cached_file(target, fails)
    assert list(tmp_path.iterdir()) == []
    path, hit = cached_file(target, lambda p: p.write_bytes(b"whole"))
    assert (path, hit, path.read_bytes()) == (target, False, b"whole")
    assert cached_file(target, lambda p: p.write_bytes(b"other")) == (target, True)


def test_compiled_models_folder_is_trimmed_and_refused_when_unusable(tmp_path):
    from srkit.deploy.cache import COMPILED_KEEP, compiled_model_dir

    folder = tmp_path / "openvino-compiled"
    folder.mkdir()
    for i in range(COMPILED_KEEP + 6):
        blob = folder / f"{i:03d}.blob"
        blob.write_bytes(b"x")
        os.utime(blob, ns=(i * 10**9, i * 10**9))
    assert compiled_model_dir(tmp_path) == folder
    kept = sorted(p.name for p in folder.iterdir())
    assert len(kept) == COMPILED_KEEP and kept[0] == "006.blob"  # the six oldest went
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "openvino-compiled").write_text("a file where the folder would go")
    assert compiled_model_dir(blocked) is None  # OpenVINO then runs without a CACHE_DIR
