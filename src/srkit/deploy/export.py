"""Export: ONNX with dynamic height and width, OpenVINO IR, static int8.

The exported graph is the network with its value range and mean folded in (:class:`CoreNet`):
input ``lr`` ``(N, C, H, W)`` float32 in [0, 1], output ``sr`` ``(N, C, sH, sW)`` in [0, 1], where
C is 3 (RGB) or 1 (Y, for Y-only networks: the caller splits and merges Y/CbCr). Metadata
properties record ``srkit.scale``, ``srkit.channels``, ``srkit.arch`` and ``srkit.name``.

ONNX uses the TorchScript exporter at opset 17: pixel shuffle becomes ``DepthToSpace`` (CRD
mode), and H/W stay symbolic. Networks that resize with a precomputed MATLAB bicubic matrix
inside the graph (SRCNN, VDSR, DRCN) cannot be exported with dynamic sizes. A narrowing
convolution after a pixel shuffle (EDSR's convolution to RGB) is exported folded before it
(:mod:`srkit.deploy.tails`: the same outputs, without the wide tensor at the output size).

int8: static quantisation (QDQ, per-channel int8 weights, uint8 activations, 99.999th
percentile ranges; the first, last and cheap convolutions stay in float) with ONNX Runtime's
quantiser, calibrated on crops of a folder of typical input images. The same QDQ model runs on
ONNX Runtime and, converted, on OpenVINO.
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from srkit.archs.adapter import NetworkModel
from srkit.deploy.common import (
    DeployError,
    as_network_model,
    calibration_batches,
    core_of,
    require,
)
from srkit.deploy.tails import fold_tails

OPSET = 17
# what the deployment cache (srkit.deploy.cache) keys files on besides their inputs: bump
# EXPORT_VERSION when export_onnx writes other files, QUANTISER when quantize_int8's defaults or
# sensitive_convs change
EXPORT_VERSION = 2  # 2: upsampling tails folded (srkit.deploy.tails)
QUANTISER: dict = {"version": 2, "samples": 32, "crop": 96, "keep_float": "auto",
                   "method": "percentile", "op_types": ["Conv"], "percentile": 99.999,
                   "wide_tail_error": 1.25}  # fmt: skip
PRE_UPSAMPLING = ("srcnn", "vdsr", "drcn")


def _arch(model: NetworkModel) -> str:
    return str(model.info.get("arch", ""))


def export_onnx(model, path: str | Path, *, opset: int = OPSET, check: bool = True) -> Path:
    """Write ``model``'s core as ONNX with dynamic N, H and W; returns the path.

    ``check`` runs the file once on ONNX Runtime (when installed) at a size other than the
    tracing size and compares with PyTorch, so a graph with baked-in sizes fails here.
    """
    model = as_network_model(model, "ONNX export")
    require("onnx", "ONNX export")
    if _arch(model) in PRE_UPSAMPLING:
        raise DeployError(
            f"{model.name}: {_arch(model)} upscales with a fixed bicubic matrix inside the "
            "network, which ONNX cannot express for dynamic sizes"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    core = copy.deepcopy(core_of(model))
    fold_tails(core)  # exact; the runtimes never see the wide tensor at the output size
    channels = model.convention.in_channels
    sample = torch.rand(1, channels, 48, 40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            core,
            (sample,),
            str(path),
            dynamo=False,
            input_names=["lr"],
            output_names=["sr"],
            dynamic_axes={"lr": {0: "n", 2: "h", 3: "w"}, "sr": {0: "n", 2: "sh", 3: "sw"}},
            opset_version=opset,
            do_constant_folding=True,
        )
    import onnx

    proto = onnx.load(str(path))
    meta = {
        "srkit.scale": str(model.scale),
        "srkit.channels": model.convention.channels,
        "srkit.arch": _arch(model),
        "srkit.name": model.name,
        "srkit.io": "float32 in [0, 1]",
    }
    for key, value in meta.items():
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save(proto, str(path))
    if check:
        _check_dynamic(core, path, channels)
    return path


def _check_dynamic(core, path: Path, channels: int) -> None:
    try:
        import onnxruntime as ort
    except ImportError:
        return
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.rand(1, channels, 29, 35)
    got = session.run(None, {"lr": x.numpy()})[0]
    with torch.inference_mode():
        want = core(x).numpy()
    if got.shape != want.shape or not np.allclose(got, want, atol=1e-3):
        raise DeployError(f"{path}: the exported graph does not reproduce the network at 29x35")


def sensitive_convs(onnx_path: str | Path, cheap: float = 0.125) -> list[str]:
    """Convolutions kept in float by default: the first and the last (SR networks lose most
    of their int8 accuracy there), the cheap ones (fewer than ``cheap`` times the weights of
    the largest: attention branches such as RLFN's ESA) and every 1x1 convolution. Those cost
    accuracy when quantised and save little time; a 1x1 fusion of concatenated block outputs
    (IMDN, RepAN) sees features of very different ranges through one activation scale
    (RepAN x4: -0.060 dB on Set5 with its fusion in int8, -0.033 without)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    convs = [n for n in graph.node if n.op_type == "Conv"]
    if not convs:
        return []
    sizes = {i.name: int(numpy_helper.to_array(i).size) for i in graph.initializer}
    weights = {n.name: sizes.get(n.input[1], 0) for n in convs}
    largest = max(weights.values()) or 1
    keep = {convs[0].name, convs[-1].name}
    keep.update(name for name, count in weights.items() if count < cheap * largest)
    shapes = {i.name: tuple(i.dims) for i in graph.initializer}
    keep.update(n.name for n in convs if shapes.get(n.input[1], ())[2:] == (1, 1))
    return sorted(keep)


def wide_tail_conv(onnx_path: str | Path) -> str | None:
    """The network's last convolution when it narrows a wide map right before the final pixel
    shuffle (``C -> c`` with ``C >= 4 c``, its output read by a DepthToSpace): the shape of a
    tail folded by :mod:`srkit.deploy.tails`. Its name, else None.

    Kept in float, such a convolution makes the int8 model hand its widest tensor over in
    float (EDSR-baseline x4: 256 channels at twice the input size), which on OpenVINO costs
    more than the convolution itself; :func:`quantize_int8` tries it in int8."""
    import onnx

    graph = onnx.load(str(onnx_path)).graph
    convs = [n for n in graph.node if n.op_type == "Conv"]
    if not convs:
        return None
    last = convs[-1]
    shapes = {i.name: tuple(i.dims) for i in graph.initializer}
    weight = shapes.get(last.input[1], ())
    readers = [n for n in graph.node if last.output[0] in n.input]
    if len(weight) != 4 or weight[1] < 4 * weight[0]:
        return None
    return last.name if readers and all(n.op_type == "DepthToSpace" for n in readers) else None


def _outputs(onnx_path: str | Path, batches: list[np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(
        str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    return [session.run(None, {"lr": batch})[0] for batch in batches]


def _mean_squared(got: list[np.ndarray], want: list[np.ndarray]) -> float:
    errors = [
        float(np.mean((g.astype(np.float64) - w) ** 2)) for g, w in zip(got, want, strict=True)
    ]
    return sum(errors) / max(1, len(errors))


def quantize_int8(
    model,
    onnx_fp32: str | Path,
    out: str | Path,
    calib: str | Path | None = None,
    *,
    samples: int = QUANTISER["samples"],
    crop: int = QUANTISER["crop"],
    keep_float: list[str] | str | None = QUANTISER["keep_float"],
    method: str = QUANTISER["method"],
    op_types: tuple[str, ...] | None = tuple(QUANTISER["op_types"]),
    batches: list[np.ndarray] | None = None,
) -> Path:
    """Static int8 QDQ model from ``onnx_fp32``, calibrated on crops of ``calib`` images
    (or on ``batches``, crops already cut by :func:`calibration_batches`).

    ``keep_float``: node names left in float; ``"auto"``: :func:`sensitive_convs`, except a
    wide folded tail (:func:`wide_tail_conv`), which is quantised too when that adds at most
    ``QUANTISER["wide_tail_error"]`` times the int8 error on the calibration crops (measured
    against the float model; it takes one more calibration); ``None``: quantise every
    convolution. ``method``: ``minmax`` or ``percentile`` (99.999%).
    ``op_types``: operators quantised (default: convolutions only; additions, attention
    products and activations stay in float; ``None``: everything ONNX Runtime can quantise).
    """
    model = as_network_model(model, "int8 quantisation")
    quant = require("onnxruntime.quantization", "int8 quantisation")
    if batches is None:
        batches = calibration_batches(calib, model.convention.channels, samples, crop)

    class Reader(quant.CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(batches)

        def get_next(self):
            batch = next(self._it, None)
            return None if batch is None else {"lr": batch}

        def rewind(self) -> None:
            self._it = iter(batches)

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pre = out.with_name(out.stem + ".pre.onnx")
    try:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        quant_pre_process(str(onnx_fp32), str(pre), skip_symbolic_shape=True)
        source = pre
    except Exception:  # noqa: BLE001 - pre-processing is an optimisation only
        source = Path(onnx_fp32)
    auto = keep_float == "auto"
    if auto:
        keep_float = sensitive_convs(source)
    methods = {
        "minmax": quant.CalibrationMethod.MinMax,
        "percentile": quant.CalibrationMethod.Percentile,
    }
    if method not in methods:
        raise DeployError(f"unknown calibration method {method!r}: {', '.join(methods)}")
    import contextlib
    import io

    def run(target: Path, keep: list[str] | None) -> None:
        with contextlib.redirect_stdout(io.StringIO()):  # the calibrator prints its progress
            _quantize(quant, source, target, Reader(), keep, methods[method], method, op_types)

    try:
        run(out, keep_float)
        tail = wide_tail_conv(source) if auto else None
        if tail is not None and tail in keep_float:
            _try_tail_in_int8(out, onnx_fp32, batches, lambda p: run(p, [
                name for name in keep_float if name != tail]))  # fmt: skip
    finally:
        pre.unlink(missing_ok=True)
    return out


def _try_tail_in_int8(out: Path, onnx_fp32, batches, quantise) -> None:
    """Replace ``out`` by ``quantise(trial)``'s model when that adds at most
    ``QUANTISER["wide_tail_error"]`` times ``out``'s error; a failing trial keeps ``out``."""
    trial = out.with_name(out.stem + ".tail.onnx")
    try:
        quantise(trial)
        want = _outputs(onnx_fp32, batches)
        limit = QUANTISER["wide_tail_error"] * _mean_squared(_outputs(out, batches), want)
        if _mean_squared(_outputs(trial, batches), want) <= limit:
            os.replace(trial, out)
    except Exception:  # noqa: BLE001 - the float-tail model is already written and valid
        return
    finally:
        trial.unlink(missing_ok=True)


def _quantize(quant, source, out, reader, keep_float, calibrate_method, method, op_types):
    quant.quantize_static(
        str(source),
        str(out),
        reader,
        quant_format=quant.QuantFormat.QDQ,
        activation_type=quant.QuantType.QUInt8,
        weight_type=quant.QuantType.QInt8,
        per_channel=True,
        calibrate_method=calibrate_method,
        nodes_to_exclude=list(keep_float or []),
        op_types_to_quantize=list(op_types) if op_types else None,
        extra_options={"CalibPercentile": QUANTISER["percentile"]}
        if method == "percentile"
        else None,
    )


def export_openvino(model, path: str | Path, *, int8_onnx: str | Path | None = None) -> Path:
    """OpenVINO IR (``.xml`` + ``.bin``) of ``model`` (or of an int8 QDQ ONNX file)."""
    model = as_network_model(model, "OpenVINO export")
    ov = require("openvino", "OpenVINO export")
    path = Path(path).with_suffix(".xml")
    path.parent.mkdir(parents=True, exist_ok=True)
    if int8_onnx is None:
        source = export_onnx(model, path.with_suffix(".onnx"), check=False)
    else:
        source = Path(int8_onnx)
    ov_model = ov.convert_model(str(source))
    ov_model.set_rt_info(str(model.scale), ["srkit", "scale"])
    ov_model.set_rt_info(model.convention.channels, ["srkit", "channels"])
    ov.save_model(ov_model, str(path), compress_to_fp16=False)
    if int8_onnx is None:
        source.unlink(missing_ok=True)
    return path


def export(
    model,
    out: str | Path,
    fmt: str = "onnx",
    *,
    int8: bool = False,
    calib: str | Path | None = None,
) -> Path:
    """``srkit export``: ``fmt`` ``onnx`` or ``openvino``, fp32 or static int8."""
    out = Path(out)
    if fmt == "onnx":
        if not int8:
            return export_onnx(model, out.with_suffix(".onnx"))
        fp32 = export_onnx(model, out.with_name(out.stem + ".fp32.onnx"))
        try:
            return quantize_int8(model, fp32, out.with_suffix(".onnx"), calib)
        finally:
            fp32.unlink(missing_ok=True)
    if fmt == "openvino":
        if not int8:
            return export_openvino(model, out)
        fp32 = export_onnx(model, out.with_name(out.stem + ".fp32.onnx"))
        q = out.with_name(out.stem + ".int8.onnx")
        try:
            quantize_int8(model, fp32, q, calib)
            return export_openvino(model, out, int8_onnx=q)
        finally:
            fp32.unlink(missing_ok=True)
            q.unlink(missing_ok=True)
    raise DeployError(f"unknown export format {fmt!r}: onnx or openvino")
