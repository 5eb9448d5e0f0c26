"""Shipped models: every file loads, matches its sha256, beats bicubic and reproduces its manifest;
names resolve; `srkit models`; the default model is what `upscale`/`bench` use."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import srkit
import srkit.zoo as zoo
from srkit.archs import build
from srkit.bench import run_benchmark
from srkit.cli import app
from srkit.data.builtin import bundled_set5
from srkit.models import resolve_model
from srkit.weights import save_model
from srkit.weights.native import PURPOSES, load_native, sha256_file

SHIPPED = zoo.shipped_models()
UPSCALERS = zoo.upscaling_models()  # the style models: tests/test_style.py
STYLE = tuple(m for m in SHIPPED if m.purpose == "style")
BICUBIC: dict[tuple[int, str], float] = {}


def bicubic_psnr(scale: int, convention: str) -> float:
    if (scale, convention) not in BICUBIC:
        (result,) = run_benchmark("bicubic", [bundled_set5()], [scale], convention=convention)
        BICUBIC[scale, convention] = result.psnr
    return BICUBIC[scale, convention]


def test_srkit_ships_one_default_per_scale_under_30_mb() -> None:
    assert SHIPPED, "no shipped models found in srkit/assets/models"
    defaults = {m.scale: m.name for m in SHIPPED if m.default and m.purpose == "general"}
    assert sorted(defaults) == [2, 3, 4]
    faces = {m.scale: m.name for m in SHIPPED if m.default and m.purpose == "face"}
    assert faces == {4: "face_x4", 8: "face_x8"}  # one default per purpose and scale
    total = sum(m.weights_path.stat().st_size + m.path.stat().st_size for m in SHIPPED)
    assert total < 30e6


@pytest.mark.parametrize("model", UPSCALERS, ids=[m.name for m in UPSCALERS])
def test_shipped_model_loads_verifies_and_reproduces_its_manifest(model: zoo.ShippedModel) -> None:
    manifest = model.manifest
    assert sha256_file(model.weights_path) == manifest["sha256"]
    net, scale, _, _ = load_native(model.path, verify=True)
    assert scale == model.scale
    assert sum(p.numel() for p in net.parameters()) == model.params
    recipe = manifest["training_recipe"]
    for key in ("config", "iterations", "wall_seconds", "machine", "training_data"):
        assert recipe.get(key) is not None, f"{model.name}: manifest lacks training_recipe.{key}"
    for convention, psnr, ssim in (
        ("modern", model.set5_psnr, model.set5_ssim),
        ("legacy", model.set5_psnr_legacy, model.set5_ssim_legacy),
    ):
        (result,) = run_benchmark(model.name, [bundled_set5()], [scale], convention=convention)
        assert result.n == 5
        assert result.psnr == pytest.approx(psnr, abs=0.005), convention
        assert result.ssim == pytest.approx(ssim, abs=5e-5), convention
        # blind models train for real-world LR, fixed-size face networks (pfsrnet) on aligned
        # 16 x 16 faces only: for them bicubic Set5 is a sanity check, not their task
        if model.purpose != "blind" and model.input_size is None:
            assert result.psnr > bicubic_psnr(scale, convention) + 0.5
        else:  # it super-resolves, not breaks, clean LR
            assert result.psnr > bicubic_psnr(scale, convention) - 2.5


def test_corrupted_shipped_file_is_refused(tmp_path: Path) -> None:
    model = UPSCALERS[0]
    shutil.copy(model.path, tmp_path / model.path.name)
    data = bytearray(model.weights_path.read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / model.weights_path.name).write_bytes(bytes(data))
    with pytest.raises(Exception, match="sha256"):
        load_native(tmp_path / model.path.name)


# --------------------------------------------------------------------------- names (fake zoo)


@pytest.fixture
def fake_zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A zoo of two tiny families: tiny (x2 default, x4) and other (x2)."""
    torch.manual_seed(0)
    entries = []
    for name, scale, default in (("tiny_x2", 2, True), ("tiny_x4", 4, True), ("other_x2", 2, 0)):
        net = build("espcn", scale=scale, n1=4, n2=4)
        manifest = save_model(
            net, tmp_path / f"{name}.safetensors", arch="espcn", scale=scale,
            options={"n1": 4, "n2": 4}, name=name,
        )  # fmt: skip
        data = json.loads(manifest.read_text())
        data["scores"] = {"set5": {"modern": {"psnr": 20.0 + scale, "ssim": 0.5}}}
        manifest.write_text(json.dumps(data))
        entries.append({"name": name, **({"default": True} if default else {})})
    (tmp_path / "index.json").write_text(json.dumps({"models": entries}))
    monkeypatch.setattr(zoo, "MODELS_DIR", tmp_path)
    monkeypatch.setattr(zoo, "INDEX", tmp_path / "index.json")
    zoo.shipped_models.cache_clear()
    yield tmp_path
    zoo.shipped_models.cache_clear()


def test_names_resolve_by_name_family_and_default(fake_zoo: Path) -> None:
    assert zoo.find_model("tiny_x4", None).name == "tiny_x4"
    assert zoo.find_model("tiny", 2).name == "tiny_x2"
    assert zoo.find_model("TINY", 4).name == "tiny_x4"
    assert zoo.find_model("other", None).name == "other_x2"
    assert zoo.find_model("default", 2).name == "tiny_x2"
    assert zoo.find_model("default", None).name == "tiny_x4"  # upscale's default scale is 4
    assert zoo.find_model("nonesuch", 2) is None
    with pytest.raises(ValueError, match="give a scale"):
        zoo.find_model("tiny", None)
    with pytest.raises(ValueError, match="not x3"):
        zoo.find_model("tiny", 3)
    with pytest.raises(ValueError, match="x4 model; asked for x2"):
        zoo.find_model("tiny_x4", 2)
    with pytest.raises(ValueError, match="no default model for x3"):
        zoo.find_model("default", 3)
    model = resolve_model("tiny", 4)
    assert model.name == "tiny_x4" and model.scale == 4
    with pytest.raises(ValueError, match="tiny_x2"):
        resolve_model("tyni", 2)  # the error lists what is shipped


def test_two_defaults_at_one_scale_are_an_error(fake_zoo: Path) -> None:
    index = json.loads((fake_zoo / "index.json").read_text())
    index["models"][2]["default"] = True
    (fake_zoo / "index.json").write_text(json.dumps(index))
    zoo.shipped_models.cache_clear()
    with pytest.raises(ValueError, match="two defaults at x2"):
        zoo.shipped_models()


def test_models_command_json_schema(fake_zoo: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["models", "--json", str(tmp_path / "m.json")])
    assert result.exit_code == 0, result.output
    listed = json.loads((tmp_path / "m.json").read_text())["models"]
    assert [m["name"] for m in listed] == ["tiny_x2", "tiny_x4", "other_x2"]
    assert listed[1] == {
        "name": "tiny_x4", "arch": "espcn", "scale": 4, "purpose": "general",
        "input_size": None, "params": listed[1]["params"], "default": True,
        "set5_psnr": 24.0, "set5_ssim": 0.5, "recipe": None,
    }  # fmt: skip
    assert all(isinstance(m["params"], int) and m["params"] > 0 for m in listed)
    table = CliRunner().invoke(app, ["models"])
    assert table.exit_code == 0 and "tiny_x4" in table.output and "24.000" in table.output


def test_every_shipped_model_names_its_recipe() -> None:
    repo = Path(__file__).resolve().parents[1]
    for model in SHIPPED:
        assert model.recipe == f"recipes/{model.name}.yaml" and (repo / model.recipe).is_file()
        record = model.manifest["training_recipe"]["recipe"]
        assert record["path"] == model.recipe and record["model"] == model.name
        assert (
            record["stages"][-1].split(":")[1]
            == model.manifest["training_recipe"]["stages"][-1]["name"]
        )


def test_every_shipped_manifest_states_its_purpose() -> None:
    for model in SHIPPED:
        purpose = json.loads(model.path.read_text())["purpose"]
        assert purpose == model.purpose, model.name
        # a fixed input size only for aligned-face networks (pfsrnet: 16 x 16 crops)
        assert model.input_size is None or purpose == "face", model.name
        # the task that trained it decides: PSNR training is general, a GAN perceptual
        task = model.manifest["training_recipe"]["config"].get("task", "supervised")
        purposes = {
            "supervised": "general",
            "gan": "perceptual",
            "style": "style",
            "adain": "style",
            "face": "face",
            "face_gan": "face",
            "landmarks": "landmarks",
            "blind_sr": "blind",
            "blind_gan": "blind",
        }
        config = model.manifest["training_recipe"]["config"]
        stated = (config.get(task) or {}).get("purpose")  # supervised.purpose, when set
        assert purpose == (stated or purposes[task]), model.name
    assert {m.purpose for m in SHIPPED} <= set(PURPOSES)


@pytest.mark.parametrize("model", STYLE, ids=[m.name for m in STYLE])
def test_shipped_style_model_loads_by_name_and_verifies(model: zoo.ShippedModel) -> None:
    from srkit.style import load_style_model

    net, manifest = load_style_model(model.name)
    assert manifest["sha256"] == sha256_file(model.weights_path) and model.scale == 1
    assert sum(p.numel() for p in net.parameters()) == model.params
    recipe = manifest["training_recipe"]
    for key in ("config", "iterations", "wall_seconds", "machine", "training_data"):
        assert recipe.get(key) is not None, f"{model.name}: manifest lacks training_recipe.{key}"
    with pytest.raises(ValueError, match="not an upscaler"):
        resolve_model(model.name, None)


def _add_face_model(zoo_dir: Path, name: str = "face_x4", default: bool = True) -> None:
    """A fixed-size face model without Set5 scores beside the general ones of the fake zoo."""
    from srkit.archs import InputConvention

    torch.manual_seed(1)
    save_model(
        build("espcn", scale=4, n1=4, n2=4), zoo_dir / f"{name}.safetensors", arch="espcn",
        scale=4, options={"n1": 4, "n2": 4}, name=name, purpose="face",
        convention=InputConvention("y", 1.0, None, input_size=(32, 32)),
    )  # fmt: skip
    index = json.loads((zoo_dir / "index.json").read_text())
    index["models"].append({"name": name, **({"default": True} if default else {})})
    (zoo_dir / "index.json").write_text(json.dumps(index))
    zoo.shipped_models.cache_clear()


def test_models_purpose_column_filter_and_json(fake_zoo: Path, tmp_path: Path) -> None:
    _add_face_model(fake_zoo)  # a second default at x4, but of another purpose
    table = CliRunner().invoke(app, ["models"])
    assert table.exit_code == 0, table.output
    assert "face 32x32" in table.output and "general" in table.output and "face_x4" in table.output
    result = CliRunner().invoke(app, ["models", "--purpose", "face", "--json", "-"])
    assert result.exit_code == 0, result.output
    (face,) = json.loads(result.output)["models"]
    assert face["name"] == "face_x4" and face["purpose"] == "face"
    assert face["input_size"] == [32, 32] and face["set5_psnr"] is None
    general = CliRunner().invoke(app, ["models", "--purpose", "general", "--json", "-"])
    assert [m["name"] for m in json.loads(general.output)["models"]] == [
        "tiny_x2", "tiny_x4", "other_x2"
    ]  # fmt: skip
    none = CliRunner().invoke(app, ["models", "--purpose", "style"])
    assert none.exit_code == 0 and "no shipped style models" in none.output
    bad = CliRunner().invoke(app, ["models", "--purpose", "faces"])
    assert bad.exit_code == 1
    assert "unknown purpose 'faces'; one of general, perceptual, face, blind, style" in bad.output
    assert "Traceback" not in bad.output
    # resolved by name like any shipped model; `default` stays the general model
    assert zoo.find_model("face", None).name == "face_x4"
    assert zoo.find_model("default", 4).name == "tiny_x4"
    assert zoo.default_model(4, purpose="face").name == "face_x4"
    model = resolve_model("face_x4", 4)
    assert model.convention.input_size == (32, 32) and model.info["purpose"] == "face"


def test_manifest_without_purpose_reads_as_general(fake_zoo: Path) -> None:
    path = fake_zoo / "tiny_x2.json"
    data = json.loads(path.read_text())
    assert data.pop("purpose") == "general"
    path.write_text(json.dumps(data))
    zoo.shipped_models.cache_clear()
    assert zoo.find_model("tiny_x2", None).purpose == "general"
    data["purpose"] = "cartoon"
    path.write_text(json.dumps(data))
    zoo.shipped_models.cache_clear()
    with pytest.raises(ValueError, match="unknown purpose 'cartoon'"):
        zoo.shipped_models()


def test_general_models_need_set5_scores(fake_zoo: Path) -> None:
    path = fake_zoo / "tiny_x2.json"
    data = json.loads(path.read_text())
    data["scores"] = {}
    path.write_text(json.dumps(data))
    zoo.shipped_models.cache_clear()
    with pytest.raises(ValueError, match="shipped without Set5 scores"):
        zoo.shipped_models()


def test_default_model_is_what_upscale_and_bench_use(fake_zoo: Path) -> None:
    image = np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    implicit = srkit.upscale(image)
    explicit = srkit.upscale(image, model=fake_zoo / "tiny_x4.safetensors")
    assert implicit.shape == (48, 40, 3)
    np.testing.assert_array_equal(implicit, explicit)
    assert srkit.upscale(image, scale=2).shape == (24, 20, 3)
    result = CliRunner().invoke(app, ["bench", "--scale", "2"])
    assert result.exit_code == 0, result.output
    assert "tiny" in result.output  # the default x2 model, shown by family


def test_bench_runs_several_models_in_one_table() -> None:
    args = ["bench", "--model", "bicubic", "nearest", "--scale", "2", "3"]
    from srkit.cli import _expand_variadic

    expanded = _expand_variadic(args)
    assert expanded.count("--model") == 2
    assert _expand_variadic(["upscale", "--model", "a", "b.png"]).count("--model") == 1
    result = CliRunner().invoke(app, expanded)
    assert result.exit_code == 0, result.output
    assert "bicubic" in result.output and "nearest" in result.output
    assert "33.682" in result.output  # bicubic x2 on Set5
