"""Weight files: srkit's own format, official-checkpoint detection and key mapping, clear errors."""

from __future__ import annotations

import json
import re

import pytest
import safetensors  # noqa: F401  (in the dev extra: these tests must run, not skip)
import torch
from torch import nn

import srkit
from srkit.archs import build
from srkit.archs.adapter import NetworkModel
from srkit.models import resolve_model
from srkit.weights import WeightsError, load, load_network, read_manifest, save_model


def _same_outputs(a: nn.Module, b: nn.Module, channels: int = 3, scale_255: bool = False) -> None:
    x = torch.rand(1, channels, 16, 17) * (255.0 if scale_255 else 1.0)
    with torch.no_grad():
        torch.testing.assert_close(a.eval()(x), b.eval()(x))


def _seeded(name: str, scale: int, **options) -> nn.Module:
    torch.manual_seed(1)
    net = build(name, scale=scale, **options)
    with torch.no_grad():  # non-trivial values everywhere (biases included)
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return net.eval()


# --- srkit's own format ----------------------------------------------------------------------


def test_native_round_trip(tmp_path) -> None:
    net = _seeded("imdn", 3, blocks=2, features=16)
    manifest = save_model(
        net,
        tmp_path / "tiny_imdn",
        arch="imdn",
        scale=3,
        options={"blocks": 2, "features": 16},
        training_recipe={"data": "T91", "iterations": 10},
        scores={"Set5": {"psnr": 30.0}},
    )
    assert manifest == tmp_path / "tiny_imdn.json"
    meta = read_manifest(manifest)
    assert meta["arch"] == "imdn" and meta["scale"] == 3
    assert meta["options"] == {"blocks": 2, "features": 16, "channels": 3}
    assert meta["params"] == sum(p.numel() for p in net.parameters())
    assert meta["input_convention"] == {"channels": "rgb", "value_range": 1.0, "mean": None}
    assert meta["training_recipe"]["data"] == "T91" and meta["scores"]["Set5"]["psnr"] == 30.0
    assert re.fullmatch(r"[0-9a-f]{64}", meta["sha256"])
    for path in (manifest, tmp_path / "tiny_imdn.safetensors"):
        model = srkit.load(path)
        assert isinstance(model, NetworkModel) and model.scale == 3 and model.name == "tiny_imdn"
        _same_outputs(model.net, net)
    lr = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(
        resolve_model(str(manifest), 3)(lr), NetworkModel(net, 3, model.convention, "x")(lr)
    )


def test_native_detects_tampering_and_wrong_scale(tmp_path) -> None:
    net = _seeded("rlfn", 2, blocks=1, features=8, esa_channels=4)
    manifest = save_model(
        net,
        tmp_path / "m",
        arch="rlfn",
        scale=2,
        options={"blocks": 1, "features": 8, "esa_channels": 4},
    )
    with pytest.raises(WeightsError, match="an x2 rlfn model; asked for x4"):
        load(manifest, scale=4)
    data = bytearray((tmp_path / "m.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / "m.safetensors").write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256 .* does not match the manifest"):
        load(manifest)


def test_native_multi_scale_carn_m_serves_every_scale(tmp_path) -> None:
    net = _seeded("carn_m", 2, features=8, groups=2)
    manifest = save_model(
        net, tmp_path / "c", arch="carn_m", scale=2, options={"features": 8, "groups": 2}
    )
    assert load(manifest, scale=4).scale == 4


def test_save_model_rejects_mismatched_options(tmp_path) -> None:
    net = build("imdn", scale=2, blocks=2, features=16)
    with pytest.raises(WeightsError, match="does not match build"):
        save_model(net, tmp_path / "bad", arch="imdn", scale=2)


def test_manifest_purpose_scale_and_input_size_are_checked(tmp_path) -> None:
    net = _seeded("imdn", 2, blocks=1, features=16)
    options = {"blocks": 1, "features": 16}
    with pytest.raises(WeightsError, match="unknown purpose 'gan'; one of general, perceptual"):
        save_model(net, tmp_path / "m", arch="imdn", scale=2, options=options, purpose="gan")
    path = save_model(net, tmp_path / "m", arch="imdn", scale=2, options=options)
    data = json.loads(path.read_text())
    assert data["purpose"] == "general" and "input_size" not in data["input_convention"]
    for key, value, error in (
        ("purpose", "gan", "unknown purpose 'gan'"),
        ("scale", 0, "manifest field 'scale' must be 1..16, got 0"),
        ("input_convention", {"input_size": [128]}, "'input_convention'.*input_size must be"),
    ):
        path.write_text(json.dumps({**data, key: value}))
        with pytest.raises(WeightsError, match=error):
            load(path)
    old = {k: v for k, v in data.items() if k != "purpose"}  # manifests from before purposes
    path.write_text(json.dumps(old))
    assert read_manifest(path)["purpose"] == "general"
    assert load(path).info["purpose"] == "general"


def test_manifest_must_be_srkit(tmp_path) -> None:
    (tmp_path / "x.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(WeightsError, match="not an srkit manifest"):
        load(tmp_path / "x.json")


# --- official checkpoints, synthesised with the authors' key names ----------------------------


def _official_imdn(net: nn.Module) -> dict:
    out = {}
    for k, v in net.state_dict().items():
        k = re.sub(r"^blocks\.(\d+)\.", lambda m: f"IMDB{int(m.group(1)) + 1}.", k)
        k = k.replace("fuse.0.", "c.0.").replace("lr_conv.", "LR_conv.")
        out["module." + k] = v
    return out


def _official_rlfn(net: nn.Module) -> dict:
    return {
        re.sub(r"^blocks\.(\d+)\.", lambda m: f"block_{int(m.group(1)) + 1}.", k): v
        for k, v in net.state_dict().items()
    }


def _official_carn_m(net: nn.Module, mean=(0.4488, 0.4371, 0.4040)) -> dict:
    out = {}
    for k, v in net.state_dict().items():
        k = re.sub(r"^blocks\.(\d)\.res\.body\.", lambda m: f"b{int(m.group(1)) + 1}.b1.body.", k)
        k = re.sub(
            r"^blocks\.(\d)\.c(\d)\.0\.",
            lambda m: f"b{int(m.group(1)) + 1}.c{m.group(2)}.body.0.",
            k,
        )
        k = re.sub(r"^c(\d)\.0\.", r"c\1.body.0.", k)
        k = re.sub(r"^upsample\.x(\d)\.", r"upsample.up\1.body.", k)
        out[k] = v
    eye = torch.eye(3).view(3, 3, 1, 1)
    out["sub_mean.shifter.weight"], out["sub_mean.shifter.bias"] = eye, -torch.tensor(mean)
    out["add_mean.shifter.weight"], out["add_mean.shifter.bias"] = eye, torch.tensor(mean)
    return out


def _official_edsr(net: nn.Module, rgb_range: float = 255.0) -> dict:
    out = dict(net.state_dict())
    mean = torch.tensor((0.4488, 0.4371, 0.4040)) * rgb_range
    out["sub_mean.weight"], out["sub_mean.bias"] = torch.eye(3).view(3, 3, 1, 1), -mean
    out["add_mean.weight"], out["add_mean.bias"] = torch.eye(3).view(3, 3, 1, 1), mean
    return out


def _esrgan_old(net: nn.Module) -> dict:
    rules = [
        (r"^body\.(\d+)\.rdb(\d)\.", r"RRDB_trunk.\1.RDB\2."),
        (r"^conv_body\.", "trunk_conv."),
        (r"^conv_up1\.", "upconv1."),
        (r"^conv_up2\.", "upconv2."),
        (r"^conv_hr\.", "HRconv."),
    ]
    out = {}
    for k, v in net.state_dict().items():
        for pat, rep in rules:
            k = re.sub(pat, rep, k)
        out[k] = v
    return out


CASES = [
    # (arch, scale, small options, official-key converter, wrapper, expected arch)
    ("imdn", 4, {"blocks": 2, "features": 16}, _official_imdn, None, "imdn"),
    ("rlfn", 2, {"blocks": 2, "features": 52, "esa_channels": 4}, _official_rlfn, None, "rlfn"),
    ("rlfn_s", 4, {"blocks": 1, "features": 48, "esa_channels": 4}, _official_rlfn, None, "rlfn_s"),
    (
        "a2n",
        4,
        {"blocks": 2, "features": 8, "up_features": 8},
        lambda n: n.state_dict(),
        None,
        "a2n",
    ),
    ("edsr_baseline", 3, {"blocks": 2, "features": 8}, _official_edsr, None, "edsr_baseline"),
    ("rrdb", 4, {"blocks": 1, "features": 8, "growth": 4}, _esrgan_old, None, "rrdb"),
    (
        "rrdb",
        2,
        {"blocks": 1, "features": 8, "growth": 4},
        lambda n: n.state_dict(),
        "params_ema",
        "rrdb",
    ),
]


@pytest.mark.parametrize(("arch", "scale", "opts", "convert", "wrapper", "expected"), CASES)
def test_official_layouts_are_detected_and_mapped(
    tmp_path, arch, scale, opts, convert, wrapper, expected
):
    net = _seeded(arch, scale, **opts)
    state = convert(net)
    path = tmp_path / f"official_{arch}.pth"
    torch.save({wrapper: state} if wrapper else state, path)
    loaded, s, convention, info = load_network(path)
    assert (info["arch"], s) == (expected, scale)
    for key, value in opts.items():
        assert info["options"][key] == value
    _same_outputs(loaded, net, scale_255=convention.value_range == 255.0)


def test_official_carn_m_mean_shift_becomes_the_convention(tmp_path) -> None:
    net = _seeded("carn_m", 2, features=8, groups=2)
    torch.save(_official_carn_m(net), tmp_path / "carn_m.pth")
    with pytest.raises(WeightsError, match="does not record its scale"):
        load(tmp_path / "carn_m.pth")
    model = load(tmp_path / "carn_m.pth", scale=3)
    assert model.convention.mean == (0.4488, 0.4371, 0.404) and model.convention.value_range == 1.0
    assert model.info["options"]["groups"] == 2 and model.info["options"]["multi_scale"] is True
    net.scale = 3
    _same_outputs(model.net, net)


def test_official_edsr_rgb_range_read_from_mean_shift(tmp_path) -> None:
    net = _seeded("edsr", 2, blocks=1, features=256)
    torch.save(_official_edsr(net, rgb_range=1.0), tmp_path / "edsr_x2.pt")
    model = load(tmp_path / "edsr_x2.pt")
    assert model.info["arch"] == "edsr" and model.info["options"]["res_scale"] == 0.1
    assert model.convention.value_range == 1.0


def test_a2n_scale_from_caller_or_file_name(tmp_path) -> None:
    net = _seeded("a2n", 3, blocks=1, features=8, up_features=8)
    torch.save(net.state_dict(), tmp_path / "weights.pt")
    with pytest.raises(WeightsError, match="does not record its scale.*x2, x3"):
        load(tmp_path / "weights.pt")
    assert load(tmp_path / "weights.pt", scale=3).scale == 3
    torch.save(net.state_dict(), tmp_path / "aan_x3.pt")
    assert load(tmp_path / "aan_x3.pt").scale == 3
    with pytest.raises(WeightsError, match="file name says x3; asked for x2"):
        load(tmp_path / "aan_x3.pt", scale=2)


# --- errors ----------------------------------------------------------------------------------


def test_pickle_needing_code_is_refused(tmp_path) -> None:
    torch.save(nn.Conv2d(3, 3, 3), tmp_path / "whole_model.pth")
    with pytest.raises(WeightsError, match="needs code execution.*weights_only=True"):
        load(tmp_path / "whole_model.pth")


def test_unknown_architecture_names_what_was_expected(tmp_path) -> None:
    torch.save(
        {"encoder.weight": torch.zeros(3, 3), "decoder.bias": torch.zeros(3)}, tmp_path / "u.pth"
    )
    with pytest.raises(WeightsError) as err:
        load(tmp_path / "u.pth")
    msg = str(err.value)
    assert "no known architecture matches this file's 2 tensors" in msg
    assert "encoder.weight" in msg and "fea_conv.weight" in msg and "arch=NAME" in msg


def test_tensors_that_do_not_fit_are_listed(tmp_path) -> None:
    state = _official_imdn(_seeded("imdn", 2, blocks=2, features=16))
    state["module.IMDB1.c2.weight"] = torch.zeros(16, 11, 3, 3)
    del state["module.IMDB2.c5.bias"]
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(WeightsError) as err:
        load(tmp_path / "broken.pth")
    msg = str(err.value)
    assert "do not fit" in msg and "read as imdn x2" in msg
    assert "missing from the file: blocks.1.c5.bias" in msg
    assert "blocks.0.c2.weight: expected (16, 12, 3, 3), found (16, 11, 3, 3)" in msg


def test_arch_override_that_does_not_fit(tmp_path) -> None:
    torch.save(_official_imdn(_seeded("imdn", 2, blocks=2, features=16)), tmp_path / "imdn.pth")
    with pytest.raises(WeightsError, match=r"read as rlfn x2.*do not fit.*expected \d+ tensors"):
        load(tmp_path / "imdn.pth", arch="rlfn", scale=2)
    assert load(tmp_path / "imdn.pth", arch="imdn").info["arch"] == "imdn"


def test_wrong_scale_and_missing_file(tmp_path) -> None:
    torch.save(_official_imdn(_seeded("imdn", 2, blocks=1, features=16)), tmp_path / "i.pth")
    with pytest.raises(WeightsError, match="holds an x2 imdn model; asked for x4"):
        resolve_model(str(tmp_path / "i.pth"), 4)
    with pytest.raises(WeightsError, match="no such file"):
        resolve_model(str(tmp_path / "absent.pth"), 2)
    with pytest.raises(ValueError, match="unknown model"):
        resolve_model("not-a-model", 2)


def test_non_tensor_container_is_explained(tmp_path) -> None:
    torch.save({"epoch": 3, "optimizer": {"lr": 0.1}}, tmp_path / "ckpt.pth")
    with pytest.raises(WeightsError, match="expected a dict of tensors.*found keys epoch"):
        load(tmp_path / "ckpt.pth")


def test_foreign_safetensors_without_manifest_is_detected(tmp_path) -> None:
    from safetensors.torch import save_file

    net = _seeded("rlfn", 4, blocks=1, features=48, esa_channels=4)
    save_file(_official_rlfn(net), str(tmp_path / "rlfn_s.safetensors"))
    model = load(tmp_path / "rlfn_s.safetensors")
    assert model.info["arch"] == "rlfn_s" and model.scale == 4
    _same_outputs(model.net, net, scale_255=True)


def test_plain_srkit_state_dict_loads_with_arch_override(tmp_path) -> None:
    net = _seeded("vdsr", 3, depth=3, features=8)
    torch.save(net.state_dict(), tmp_path / "vdsr.pth")
    with pytest.raises(WeightsError, match="no known architecture"):
        load(tmp_path / "vdsr.pth")
    with pytest.raises(WeightsError, match="do not fit"):  # default depth 20 != 3
        load(tmp_path / "vdsr.pth", arch="vdsr", scale=3)


def test_srkit_has_no_other_lazy_attributes() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = srkit.nope
