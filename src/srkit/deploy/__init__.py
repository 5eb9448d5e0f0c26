"""Deployment: the same model on several backends and precisions, export and int8.

``prepare(model, backend, precision)`` returns an ``SRModel`` (RGB in [0, 1]) that runs the
model's network on:

=================  =====================  ============================================
backend            precisions             what runs
=================  =====================  ============================================
``torch``          fp32, bf16             eager NCHW; bf16: channels_last + autocast
``torch-cl``       fp32, bf16             channels_last memory format
``torch-compile``  fp32, bf16             ``torch.compile`` (Inductor), frozen weights
``onnxruntime``    fp32, int8             ONNX Runtime CPU; int8: static QDQ
``openvino``       fp32, bf16, int8       OpenVINO CPU; int8: the same QDQ model, its
                                          float layers in bf16 where the CPU has bf16
=================  =====================  ============================================

onnxruntime and openvino are optional (``pip install 'srkit[deploy]'``) and imported only
when used. int8 is calibrated on ``calib`` (a folder of typical inputs; the bundled Set5 when
``None``). The exported and calibrated files are kept between runs (:mod:`srkit.deploy.cache`).
See ``docs/deploy.md``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from srkit.deploy.cache import (
    arrays_digest,
    cached_file,
    compiled_model_dir,
    deploy_cache_dir,
    key_digest,
    remake_on_failure,
    weights_digest,
)
from srkit.deploy.common import (
    PRECISIONS,
    DeployError,
    as_network_model,
    calibration_batches,
    calibration_files,
    core_of,
    installed_version,
    work_dir,
    wrap,
)
from srkit.deploy.export import (
    EXPORT_VERSION,
    OPSET,
    QUANTISER,
    export,
    export_onnx,
    export_openvino,
    quantize_int8,
)
from srkit.deploy.runtimes import (
    OpenVINOModule,
    OrtModule,
    int8_float_hint,
    onnx_available,
    onnxruntime_available,
    openvino_available,
)
from srkit.deploy.torch_backends import prepare_torch

BACKENDS = ("torch", "torch-cl", "torch-compile", "onnxruntime", "openvino")

SUPPORTED: dict[str, tuple[str, ...]] = {
    "torch": ("fp32", "bf16"),
    "torch-cl": ("fp32", "bf16"),
    "torch-compile": ("fp32", "bf16"),
    "onnxruntime": ("fp32", "int8"),
    "openvino": ("fp32", "bf16", "int8"),
}

__all__ = [
    "BACKENDS",
    "PRECISIONS",
    "SUPPORTED",
    "DeployError",
    "available_backends",
    "export",
    "export_onnx",
    "export_openvino",
    "prepare",
    "quantize_int8",
]


def available_backends() -> list[str]:
    """Backends whose packages are installed."""
    found = ["torch", "torch-cl", "torch-compile"]
    if onnx_available() and onnxruntime_available():
        found.append("onnxruntime")
    if onnx_available() and openvino_available():
        found.append("openvino")
    return found


def prepare(
    model,
    backend: str = "torch",
    precision: str = "fp32",
    *,
    calib: str | Path | None = None,
    cache: str | Path | None = None,
):
    """``model`` on ``backend`` at ``precision``. The ONNX and int8 files are kept in
    ``cache`` (default: ``$SRKIT_CACHE/deploy``, see :mod:`srkit.deploy.cache`) and reused by
    later runs with the same weights, calibration crops and toolchain."""
    if backend not in SUPPORTED:
        raise DeployError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise DeployError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    if precision not in SUPPORTED[backend]:
        raise DeployError(
            f"backend {backend} runs {', '.join(SUPPORTED[backend])}, not {precision}"
        )
    if backend == "torch" and precision == "fp32":
        return model
    net_model = as_network_model(model, f"backend {backend}/{precision}")
    if backend.startswith("torch"):
        return prepare_torch(net_model, backend, precision)
    kept = work_dir(cache) if cache is not None else deploy_cache_dir()  # None: not writable
    folder = kept or work_dir(None)
    source, hit, remake = _deploy_file(net_model, precision, calib, folder)
    if backend == "onnxruntime":
        module = remake_on_failure(source, hit, OrtModule, remake)
        return wrap(net_model, module, f"onnxruntime/{precision}", file=str(source))
    hint = int8_float_hint() if precision == "int8" else {"fp32": "f32", "bf16": "bf16"}[precision]
    compiled = compiled_model_dir(kept) if kept is not None else None
    module = remake_on_failure(
        source, hit, lambda p: OpenVINOModule(p, precision=hint, compiled_cache=compiled), remake
    )
    return wrap(net_model, module, f"openvino/{precision}", file=str(source))


def export_key(net_model) -> str:
    """The cache key of a model's fp32 ONNX export: its tensors and everything else the graph
    depends on (build options such as ``repan_pair``'s ``mix``, which holds no tensor)."""
    return key_digest({
        "weights": weights_digest(core_of(net_model)), "scale": net_model.scale,
        "convention": repr(net_model.convention), "name": net_model.name,
        "arch": net_model.info.get("arch"), "options": net_model.info.get("options"),
        "opset": OPSET, "torch": torch.__version__,
        "export": EXPORT_VERSION,
    })  # fmt: skip


def _deploy_file(net_model, precision: str, calib, folder: Path):
    """The ONNX file ``precision`` runs (fp32, or the calibrated int8 QDQ model) from the
    deployment cache (:mod:`srkit.deploy.cache`), made when missing; returns ``(path, hit,
    remake)``, ``remake()`` making it again."""
    stem = f"{Path(net_model.name).name}_x{net_model.scale}"
    fp32_key = export_key(net_model)
    fp32_path = folder / f"{stem}-{fp32_key}.onnx"

    def make_fp32() -> Path:
        return cached_file(fp32_path, lambda p: export_onnx(net_model, p))[0]

    if precision != "int8":
        hit = fp32_path.is_file() and fp32_path.stat().st_size > 0
        return make_fp32(), hit, make_fp32
    ort_version = installed_version("onnxruntime", "int8 quantisation")

    @functools.cache
    def batches() -> list:  # decoded only when the key needs them or the model is made
        return calibration_batches(
            calib, net_model.convention.channels, QUANTISER["samples"], QUANTISER["crop"]
        )

    files = calibration_files(calib)
    int8_key = key_digest({
        "onnx": fp32_key, "onnxruntime": ort_version, "quantiser": QUANTISER,
        "calibration": {"files": files} if files is not None else arrays_digest(batches()),
    })  # fmt: skip
    int8_path = folder / f"{stem}-{int8_key}.int8.onnx"

    def make_int8() -> Path:
        return cached_file(
            int8_path, lambda p: quantize_int8(net_model, make_fp32(), p, batches=batches())
        )[0]

    if int8_path.is_file() and int8_path.stat().st_size > 0:
        return int8_path, True, make_int8
    return make_int8(), False, make_int8


__all__ += ["as_network_model", "core_of", "wrap"]
