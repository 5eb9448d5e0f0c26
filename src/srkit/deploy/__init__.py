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
``openvino``       fp32, bf16, int8       OpenVINO CPU; int8: the same QDQ model
=================  =====================  ============================================

onnxruntime and openvino are optional (``pip install 'srkit[deploy]'``) and imported only
when used. int8 is calibrated on ``calib`` (a folder of typical inputs; the bundled Set5 when
``None``). See ``docs/deploy.md``.
"""

from __future__ import annotations

from pathlib import Path

from srkit.deploy.common import PRECISIONS, DeployError, as_network_model, core_of, work_dir, wrap
from srkit.deploy.export import export, export_onnx, export_openvino, quantize_int8
from srkit.deploy.runtimes import (
    OpenVINOModule,
    OrtModule,
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
    """``model`` on ``backend`` at ``precision`` (files go to ``cache``, a temp folder if None)."""
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
    folder = work_dir(cache)
    stem = folder / f"{Path(net_model.name).name}_x{net_model.scale}"
    onnx_fp32 = export_onnx(net_model, stem.with_suffix(".onnx"))
    source = onnx_fp32
    if precision == "int8":
        int8_path = stem.with_name(stem.name + "_int8.onnx")
        source = quantize_int8(net_model, onnx_fp32, int8_path, calib)
    if backend == "onnxruntime":
        return wrap(net_model, OrtModule(source), f"onnxruntime/{precision}", file=str(source))
    hint = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}[precision]
    module = OpenVINOModule(source, precision=hint)
    return wrap(net_model, module, f"openvino/{precision}", file=str(source))


__all__ += ["as_network_model", "core_of", "wrap"]
