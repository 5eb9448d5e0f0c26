"""Corrupt weight files given as ``--model``: one-line error, non-zero exit, no output file.

Each case is a file a user could plausibly pass (a truncated download, a hand-edited manifest, a
checkpoint of another program); ``upscale`` and ``bench`` must both refuse it cleanly.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from srkit.archs import build
from srkit.cli import _expand_variadic, app
from srkit.data.builtin import bundled_set5
from srkit.weights import WeightsError, load, save_model


def _tiny_native(folder: Path) -> Path:
    torch.manual_seed(0)
    net = build("espcn", scale=2, n1=8, n2=4)
    return save_model(net, folder / "tiny_x2", arch="espcn", scale=2, options={"n1": 8, "n2": 4})


def _rewrite_manifest(manifest: Path, **changes) -> Path:
    data = json.loads(manifest.read_text())
    data.update(changes)
    manifest.write_text(json.dumps(data))
    return manifest


def _safetensors_bytes(header: dict, data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def truncated_foreign(folder: Path) -> Path:
    """An official-style .safetensors (no manifest) cut short, as a broken download is."""
    path = folder / "rlfn_x4.safetensors"
    save_file({"conv_1.weight": torch.zeros(52, 3, 3, 3)}, str(path))
    path.write_bytes(path.read_bytes()[:300])
    return path


def truncated_native_sha_updated(folder: Path) -> Path:
    """A native file cut short whose manifest was 'fixed' to the new sha256."""
    manifest = _tiny_native(folder)
    weights = manifest.with_suffix(".safetensors")
    weights.write_bytes(weights.read_bytes()[:200])
    return _rewrite_manifest(manifest, sha256=hashlib.sha256(weights.read_bytes()).hexdigest())


def truncated_native(folder: Path) -> Path:
    manifest = _tiny_native(folder)
    weights = manifest.with_suffix(".safetensors")
    weights.write_bytes(weights.read_bytes()[:200])
    return weights


def manifest_json_broken(folder: Path) -> Path:
    manifest = _tiny_native(folder)
    manifest.write_text(manifest.read_text()[:40])
    return manifest


def manifest_is_a_list(folder: Path) -> Path:
    manifest = _tiny_native(folder)
    manifest.write_text("[1, 2, 3]")
    return manifest


def manifest_scale_is_text(folder: Path) -> Path:
    return _rewrite_manifest(_tiny_native(folder), scale="two")


def manifest_unknown_arch(folder: Path) -> Path:
    return _rewrite_manifest(_tiny_native(folder), arch="swinir")


def manifest_options_not_an_object(folder: Path) -> Path:
    return _rewrite_manifest(_tiny_native(folder), options=[8, 4])


def manifest_option_of_the_wrong_type(folder: Path) -> Path:
    return _rewrite_manifest(_tiny_native(folder), options={"n1": "eight"})


def manifest_huge_option(folder: Path) -> Path:
    """Options that would build a network far larger than the file (a memory bomb)."""
    return _rewrite_manifest(_tiny_native(folder), options={"n1": 10**9, "n2": 4})


def manifest_bad_convention(folder: Path) -> Path:
    return _rewrite_manifest(_tiny_native(folder), input_convention={"channels": "cmyk"})


def manifest_includes_not_a_list(folder: Path) -> Path:
    return _rewrite_manifest(_tiny_native(folder), includes={"prefix": "second."})


def manifest_includes_a_missing_file(folder: Path) -> Path:
    entry = {"prefix": "second.", "weights": "gone.safetensors", "sha256": "0" * 64}
    return _rewrite_manifest(_tiny_native(folder), includes=[entry])


def manifest_includes_its_own_tensors(folder: Path) -> Path:
    """An ``includes`` entry whose tensors clash with the weights file's names."""
    manifest = _tiny_native(folder)
    data = json.loads(manifest.read_text())
    entry = {"prefix": "", "weights": data["weights"], "sha256": data["sha256"]}
    return _rewrite_manifest(manifest, includes=[entry])


def header_lies_about_offsets(folder: Path) -> Path:
    path = folder / "offsets.safetensors"
    header = {"w": {"dtype": "F32", "shape": [64, 3, 3, 3], "data_offsets": [0, 6912]}}
    path.write_bytes(_safetensors_bytes(header, b"\0" * 64))
    return path


def header_shape_disagrees_with_offsets(folder: Path) -> Path:
    path = folder / "shape.safetensors"
    header = {"w": {"dtype": "F32", "shape": [1000, 1000], "data_offsets": [0, 16]}}
    path.write_bytes(_safetensors_bytes(header, b"\0" * 16))
    return path


def header_length_beyond_file(folder: Path) -> Path:
    path = folder / "length.safetensors"
    path.write_bytes(struct.pack("<Q", 2**40) + b"{}")
    return path


def header_not_json(folder: Path) -> Path:
    path = folder / "text.safetensors"
    path.write_bytes(struct.pack("<Q", 8) + b"\xff\xfenot{")
    return path


def pth_not_a_zip(folder: Path) -> Path:
    path = folder / "model.pth"
    path.write_bytes(b"this is a README, not a checkpoint\n" * 10)
    return path


def pth_zip_of_something_else(folder: Path) -> Path:
    path = folder / "model.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "hello")
    return path


def pth_disallowed_global(folder: Path) -> Path:
    """A pickle whose reduce calls os.system: weights_only refuses it, nothing runs."""

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > pwned.txt",))

    path = folder / "evil.pth"
    path.write_bytes(pickle.dumps({"w": Evil()}, protocol=2))
    return path


def pth_whole_module(folder: Path) -> Path:
    path = folder / "whole.pth"
    torch.save(torch.nn.Conv2d(3, 3, 3), path)
    return path


def pth_signature_without_the_rest(folder: Path) -> Path:
    """IMDN's signature keys but not the upsampler the detector reads next."""
    path = folder / "imdn_x4.pth"
    state = {"fea_conv.weight": torch.zeros(64, 3, 3, 3), "IMDB1.c1.weight": torch.zeros(64)}
    torch.save(state, path)
    return path


def pth_signature_of_the_wrong_rank(folder: Path) -> Path:
    path = folder / "rlfn_x4.pth"
    state = {"conv_1.weight": torch.zeros(52), "block_1.esa.conv_f.weight": torch.zeros(1)}
    torch.save(state, path)
    return path


def pth_huge_derived_network(folder: Path) -> Path:
    """Shapes that make the detector ask for a network of ~150 GB from a file of 0.8 MB: it is
    sized on the meta device and refused before anything is allocated."""
    path = folder / "imdn_x2.pth"
    state = {
        "fea_conv.weight": torch.zeros(65536, 3, 1, 1),
        "IMDB1.c1.weight": torch.zeros(1),
        "upsampler.0.weight": torch.zeros(12, 1, 1, 1),
    }
    torch.save(state, path)
    return path


CASES: list[Callable[[Path], Path]] = [
    truncated_foreign,
    truncated_native,
    truncated_native_sha_updated,
    manifest_json_broken,
    manifest_is_a_list,
    manifest_scale_is_text,
    manifest_unknown_arch,
    manifest_options_not_an_object,
    manifest_option_of_the_wrong_type,
    manifest_huge_option,
    manifest_bad_convention,
    manifest_includes_not_a_list,
    manifest_includes_a_missing_file,
    manifest_includes_its_own_tensors,
    header_lies_about_offsets,
    header_shape_disagrees_with_offsets,
    header_length_beyond_file,
    header_not_json,
    pth_not_a_zip,
    pth_zip_of_something_else,
    pth_disallowed_global,
    pth_whole_module,
    pth_signature_without_the_rest,
    pth_signature_of_the_wrong_rank,
    pth_huge_derived_network,
]


def _assert_one_line_error(result, path: Path) -> None:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert path.name in lines[0] or path.stem in lines[0], lines[0]


@pytest.mark.parametrize("make", CASES, ids=[case.__name__ for case in CASES])
def test_load_raises_weights_error(make, tmp_path: Path) -> None:
    path = make(tmp_path)
    with pytest.raises(WeightsError):
        load(path, scale=2)
    assert not (Path.cwd() / "pwned.txt").exists()


@pytest.mark.parametrize("make", CASES, ids=[case.__name__ for case in CASES])
def test_upscale_refuses_cleanly(make, tmp_path: Path) -> None:
    path = make(tmp_path)
    out = tmp_path / "out"
    image = str(bundled_set5() / "bird.png")
    args = ["upscale", image, "-o", str(out / "bird.png"), "--model", str(path)]
    result = CliRunner().invoke(app, _expand_variadic(args))
    _assert_one_line_error(result, path)
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("make", CASES, ids=[case.__name__ for case in CASES])
def test_bench_refuses_cleanly(make, tmp_path: Path) -> None:
    path = make(tmp_path)
    report = tmp_path / "report.json"
    args = ["bench", "--model", str(path), "--scale", "2", "--json", str(report)]
    result = CliRunner().invoke(app, _expand_variadic(args))
    _assert_one_line_error(result, path)
    assert not report.exists()


def test_unknown_arch_override_is_a_one_line_error(tmp_path: Path) -> None:
    manifest = _tiny_native(tmp_path)
    args = ["bench", "--model", str(manifest), "--arch", "swinir", "--scale", "2"]
    result = CliRunner().invoke(app, _expand_variadic(args))
    _assert_one_line_error(result, manifest)
    assert "unknown architecture 'swinir'" in result.output


def test_a_valid_file_still_loads(tmp_path: Path) -> None:
    """The checks above reject only broken files: the same tiny model, intact, loads and runs."""
    model = load(_tiny_native(tmp_path))
    assert model.scale == 2
    assert model(torch.rand(1, 3, 8, 8)).shape == (1, 3, 16, 16)


def test_forced_arch_reads_srkit_keys_with_the_arch_convention(tmp_path: Path) -> None:
    """``--arch espcn`` on a plain state dict of srkit's ESPCN: a Y network, fed Y (not RGB)."""
    torch.manual_seed(0)
    net = build("espcn", scale=2)
    torch.save(net.state_dict(), tmp_path / "mine_x2.pth")
    model = load(tmp_path / "mine_x2.pth", arch="espcn")
    assert model.convention.channels == "y"
    assert model(torch.rand(1, 3, 8, 8)).shape == (1, 3, 16, 16)
