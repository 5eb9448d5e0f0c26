"""srkit.deploy: every backend matches torch fp32; export, int8, speed table, clear errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from srkit.archs import build, get_spec
from srkit.archs.adapter import NetworkModel
from srkit.deploy import DeployError, available_backends, export, export_onnx, prepare
from srkit.infer import Upscaler
from srkit.models import InterpolationModel


def tiny(arch: str = "edsr_baseline", scale: int = 2) -> NetworkModel:
    torch.manual_seed(0)
    options = {"edsr_baseline": {"blocks": 1, "features": 8}, "espcn": {"n1": 8, "n2": 4}}[arch]
    net = build(arch, scale=scale, **options)
    return NetworkModel(net, scale, get_spec(arch).convention, f"tiny_{arch}", info={"arch": arch})


FP32_BACKENDS = ["torch-cl", "onnxruntime", "openvino"]


def _need(backend: str) -> None:
    if backend not in available_backends():
        pytest.skip(f"{backend} is not installed")


@pytest.mark.parametrize("arch", ["edsr_baseline", "espcn"])
@pytest.mark.parametrize("backend", FP32_BACKENDS)
def test_fp32_backends_match_torch(backend: str, arch: str, tmp_path: Path) -> None:
    _need(backend)
    model = tiny(arch)
    x = torch.rand(1, 3, 23, 31)
    deployed = prepare(model, backend, "fp32", cache=tmp_path)
    assert deployed.scale == model.scale
    for shape in ((1, 3, 23, 31), (2, 3, 17, 12)):  # dynamic sizes and batch
        x = torch.rand(*shape)
        out = deployed(x)
        assert out.shape == model(x).shape
        assert float((out - model(x)).abs().max()) < 1e-4


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("r", "channels"), [(2, 16), (3, 27), (4, 48)])
def test_channels_last_pixel_shuffle_matches_pixel_shuffle(r: int, channels: int, dtype) -> None:
    from srkit.deploy.torch_backends import ChannelsLastPixelShuffle

    shuffle = ChannelsLastPixelShuffle(r)
    x = torch.randn(2, channels, 5, 7).to(dtype)
    expected = torch.nn.functional.pixel_shuffle(x, r)
    cl = x.contiguous(memory_format=torch.channels_last)
    out = shuffle(cl)
    assert torch.equal(out, expected)  # the same values, bit for bit
    assert out.is_contiguous(memory_format=torch.channels_last)  # and still channels_last
    assert torch.equal(shuffle(x), expected)  # NCHW input: the plain shuffle


def test_channels_last_backends_replace_every_pixel_shuffle() -> None:
    from srkit.deploy.torch_backends import ChannelsLastPixelShuffle

    model = tiny(scale=4)  # two x2 shuffles in EDSR's upsampler
    assert sum(type(m) is torch.nn.PixelShuffle for m in model.net.modules()) == 2
    deployed = prepare(model, "torch-cl", "fp32")
    modules = list(deployed.net.modules())
    assert not any(type(m) is torch.nn.PixelShuffle for m in modules)
    assert sum(isinstance(m, ChannelsLastPixelShuffle) for m in modules) == 2
    assert sum(type(m) is torch.nn.PixelShuffle for m in model.net.modules()) == 2  # a copy
    x = torch.rand(1, 3, 9, 11)
    assert float((deployed(x) - model(x)).abs().max()) < 1e-5


@pytest.mark.parametrize(
    ("backend", "precision", "tolerance"),
    [
        ("torch", "bf16", 0.03),
        ("openvino", "bf16", 0.03),
        ("onnxruntime", "int8", 0.08),
        ("openvino", "int8", 0.08),
    ],
)
def test_reduced_precisions_run_close(backend, precision, tolerance, tmp_path: Path) -> None:
    _need(backend)
    model = tiny()
    x = torch.rand(1, 3, 20, 20)
    deployed = prepare(model, backend, precision, cache=tmp_path)
    diff = float((deployed(x) - model(x)).abs().max())
    assert 0 < diff < tolerance  # really reduced (not silently fp32), still the same model


def test_onnx_export_has_dynamic_sizes_and_metadata(tmp_path: Path) -> None:
    _need("onnxruntime")
    import onnx
    import onnxruntime as ort

    model = tiny("espcn", scale=3)
    path = export_onnx(model, tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["srkit.scale"] == "3" and meta["srkit.channels"] == "y"
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["n", 1, "h", "w"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for h, w in ((9, 14), (40, 21)):
        y = torch.rand(1, 1, h, w)
        got = session.run(None, {"lr": y.numpy()})[0]
        assert got.shape == (1, 1, 3 * h, 3 * w)
        with torch.inference_mode():
            want = model.run_net(y).numpy()
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_export_int8_and_openvino_files(tmp_path: Path) -> None:
    _need("openvino")
    _need("onnxruntime")
    model = tiny()
    q = export(model, tmp_path / "q.onnx", "onnx", int8=True)
    import onnx

    ops = {n.op_type for n in onnx.load(str(q)).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    xml = export(model, tmp_path / "ov" / "m.xml", "openvino")
    assert xml.is_file() and xml.with_suffix(".bin").is_file()
    from srkit.deploy.runtimes import OpenVINOModule

    module = OpenVINOModule(xml)
    y = torch.rand(1, 3, 13, 11)
    with torch.inference_mode():
        torch.testing.assert_close(module(y), model.run_net(y), atol=1e-4, rtol=0)


def test_openvino_int8_runs_its_float_layers_in_bf16_where_the_cpu_has_it(tmp_path: Path) -> None:
    _need("openvino")
    _need("onnxruntime")
    import openvino as ov

    from srkit.deploy.runtimes import int8_float_hint

    native = "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    assert int8_float_hint() == ("bf16" if native else "f32")
    model = tiny()
    deployed = prepare(model, "openvino", "int8", cache=tmp_path)
    assert deployed.net.config["INFERENCE_PRECISION_HINT"] == int8_float_hint()
    fp32 = prepare(model, "openvino", "fp32", cache=tmp_path)
    assert fp32.net.config["INFERENCE_PRECISION_HINT"] == "f32"
    x = torch.rand(1, 3, 16, 16)
    with torch.inference_mode():
        assert float((deployed(x) - model(x)).abs().max()) < 0.05


def test_upscaler_on_other_backend_tiles_like_torch(tmp_path: Path) -> None:
    _need("onnxruntime")
    x = torch.rand(1, 3, 30, 26)
    ref = Upscaler(tiny(), tile=0).upscale_tensor(x)
    up = Upscaler(tiny(), tile=12, overlap=12, backend="onnxruntime", cache_dir=tmp_path)
    torch.testing.assert_close(up.upscale_tensor(x), ref, atol=1e-4, rtol=0)


def test_clear_errors(monkeypatch) -> None:
    with pytest.raises(DeployError, match="not int8|runs fp32, bf16"):
        prepare(tiny(), "torch", "int8")
    with pytest.raises(DeployError, match="unknown backend"):
        prepare(tiny(), "tensorrt", "fp32")
    with pytest.raises(DeployError, match="weight file"):
        prepare(InterpolationModel("bicubic", 2), "onnxruntime", "fp32")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    from srkit.deploy.runtimes import OrtModule

    with pytest.raises(DeployError, match=r"pip install 'srkit\[deploy\]'"):
        OrtModule("missing.onnx")


def test_speed_table_json(tmp_path: Path) -> None:
    from srkit.deploy.speed import measure, write_json

    combos = [("torch", "fp32"), ("torch-cl", "fp32"), ("torch", "bf16"), ("nope", "fp32")]
    results = measure(tiny(), size=32, combos=combos, min_time=0.05, psnr=True)
    assert [(r.backend, r.precision) for r in results] == combos[:3]
    assert results[0].ratio_vs_eager_fp32 == 1.0
    for r in results:
        assert r.error is None and r.mp_per_s > 0 and 5 < r.set5_psnr < 60
    assert results[1].max_abs_vs_fp32 < 1e-4
    write_json(results, tmp_path / "s.json")
    data = json.loads((tmp_path / "s.json").read_text())
    row = data["results"][0]
    assert {"backend", "precision", "mp_per_s", "ratio_vs_eager_fp32", "set5_psnr"} <= set(row)
    assert isinstance(row["mp_per_s"], float) and isinstance(row["set5_psnr"], float)


def test_int8_keeps_first_last_and_cheap_convs_in_float(tmp_path: Path) -> None:
    _need("onnxruntime")
    from srkit.deploy.export import sensitive_convs

    torch.manual_seed(0)
    net = build("rlfn", scale=2, blocks=1, features=16, esa_channels=4)
    model = NetworkModel(net, 2, get_spec("rlfn").convention, "tiny_rlfn", info={"arch": "rlfn"})
    path = export_onnx(model, tmp_path / "r.onnx")
    keep = sensitive_convs(path)
    assert "/net/conv_1/Conv" in keep  # the first
    assert any("upsampler" in name for name in keep)  # the last
    assert any("esa" in name for name in keep)  # the attention branch is cheap
    assert not any("c1_r" in name for name in keep)  # the main 3x3 convolutions are int8


def test_int8_keeps_1x1_fusions_in_float(tmp_path: Path) -> None:
    _need("onnxruntime")
    from srkit.deploy.export import sensitive_convs

    torch.manual_seed(0)
    net = build("repan", scale=2).eval()
    net.fuse()  # exported as it ships: plain convolutions
    model = NetworkModel(net, 2, get_spec("repan").convention, "repan", info={"arch": "repan"})
    path = export_onnx(model, tmp_path / "r.onnx")
    keep = sensitive_convs(path)
    assert "/net/fusion/Conv" in keep  # 1x1 over the concatenated blocks, not cheap in weights
    assert "/net/body/body.0/conv1/Conv" not in keep


def _conv_names(path: Path) -> list[str]:
    import onnx

    return [n.name for n in onnx.load(str(path)).graph.node if n.op_type == "Conv"]


def _tail_weight_is_int8(path: Path, tail: str) -> bool:
    import onnx

    graph = onnx.load(str(path)).graph
    node = next(n for n in graph.node if n.name == tail)
    producers = {out: n.op_type for n in graph.node for out in n.output}
    return producers.get(node.input[1]) == "DequantizeLinear"


def test_wide_folded_tail_is_found_and_narrow_tails_are_not(tmp_path: Path) -> None:
    _need("onnxruntime")
    from srkit.deploy.export import wide_tail_conv

    torch.manual_seed(0)
    net = build("edsr_baseline", scale=2, blocks=1, features=16)  # 16 -> 3 folds to 64 -> 12
    edsr = NetworkModel(net, 2, get_spec("edsr_baseline").convention, "e", info={"arch": "edsr"})
    path = export_onnx(edsr, tmp_path / "e.onnx")
    assert wide_tail_conv(path) == _conv_names(path)[-1]
    net = build("rlfn", scale=2, blocks=1, features=16, esa_channels=4)  # conv, then the shuffle
    rlfn = NetworkModel(net, 2, get_spec("rlfn").convention, "r", info={"arch": "rlfn"})
    assert wide_tail_conv(export_onnx(rlfn, tmp_path / "r.onnx")) is None


@pytest.mark.parametrize(("allowed", "quantised"), [(1e9, True), (0.0, False)])
def test_int8_quantises_a_wide_tail_only_within_the_error_allowed(
    tmp_path: Path, monkeypatch, allowed: float, quantised: bool
) -> None:
    _need("onnxruntime")
    from srkit.deploy.export import QUANTISER, quantize_int8, sensitive_convs

    monkeypatch.setitem(QUANTISER, "wide_tail_error", allowed)
    torch.manual_seed(0)
    net = build("edsr_baseline", scale=2, blocks=1, features=16)
    model = NetworkModel(net, 2, get_spec("edsr_baseline").convention, "e", info={"arch": "e"})
    source = export_onnx(model, tmp_path / "e.onnx")
    first, tail = _conv_names(source)[0], _conv_names(source)[-1]
    assert tail in sensitive_convs(source)  # the last convolution: float by default
    batches = [np.random.default_rng(i).random((1, 3, 24, 24), dtype=np.float32) for i in range(4)]
    out = quantize_int8(model, source, tmp_path / "e.int8.onnx", batches=batches)
    assert _tail_weight_is_int8(out, tail) is quantised
    assert not _tail_weight_is_int8(out, first)  # the first stays float either way
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.int8.onnx", "e.onnx"]  # no trial left


def test_cli_export_and_speed(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from srkit.cli import _expand_variadic, app
    from srkit.weights import save_model

    _need("onnxruntime")
    torch.manual_seed(0)
    net = build("edsr_baseline", scale=2, blocks=1, features=8)
    weights = save_model(
        net, tmp_path / "tiny", arch="edsr_baseline", scale=2, options={"blocks": 1, "features": 8}
    )
    runner = CliRunner()
    args = ["export", "--model", str(weights), "--format", "onnx", "-o", str(tmp_path / "e.onnx")]
    result = runner.invoke(app, _expand_variadic(args))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "e.onnx").is_file()
    args = [
        "speed", "--model", str(weights), "--size", "32", "--no-psnr", "--no-peak",
        "--min-time", "0.05", "--backend", "torch/fp32", "--backend", "onnxruntime/fp32",
        "--json", str(tmp_path / "speed.json"),
    ]  # fmt: skip
    result = runner.invoke(app, _expand_variadic(args))
    assert result.exit_code == 0, result.output
    payload = json.loads((tmp_path / "speed.json").read_text())
    assert {"cpu", "cpu_flags", "threads", "torch", "load_average"} <= set(payload["machine"])
    rows = payload["results"]
    assert [(r["backend"], r["precision"]) for r in rows] == [
        ("torch", "fp32"),
        ("onnxruntime", "fp32"),
    ]
    assert rows[1]["max_abs_vs_fp32"] < 1e-4 and rows[1]["mp_per_s"] > 0


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_runtime_backends_serve_several_threads_at_once(backend: str, tmp_path: Path) -> None:
    """`srkit faces eval` calls one deployed model from worker threads; each call must get its
    own answer (OpenVINO runs them one at a time: a shared request would be "busy", and requests
    first run concurrently can hang)."""
    from concurrent.futures import ThreadPoolExecutor

    _need(backend)
    model = tiny()
    deployed = prepare(model, backend, "fp32", cache=tmp_path)
    torch.manual_seed(0)
    inputs = [torch.rand(1, 3, 16, 16) for _ in range(24)]
    expected = [model(x) for x in inputs]
    with ThreadPoolExecutor(4) as pool:
        outputs = list(pool.map(deployed, inputs))
    for out, ref in zip(outputs, expected, strict=True):
        assert float((out - ref).abs().max()) < 1e-4
