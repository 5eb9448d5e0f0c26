"""ONNX Runtime and OpenVINO as ``nn.Module``-shaped callables (so ``NetworkModel`` wraps them).

OpenVINO runs through :class:`srkit.common.openvino.OpenVINORunner` (static shapes, explicit
precision hint, one inference at a time per process). An int8 model's float layers (the first,
last and cheap convolutions) run in bf16 where the CPU has bf16 instructions
(:func:`int8_float_hint`; on an AMX Xeon fp32 runs at a seventh of bf16).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import nn

from srkit.common.openvino import OpenVINORunner
from srkit.deploy.common import require


def _threads() -> int:
    return max(1, torch.get_num_threads())


class OrtModule(nn.Module):
    """An ONNX Runtime session over ``lr`` -> ``sr`` float32."""

    def __init__(self, onnx_path: str | Path, threads: int | None = None) -> None:
        super().__init__()
        ort = require("onnxruntime", "the onnxruntime backend")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or _threads()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = str(onnx_path)
        self.session = ort.InferenceSession(
            self.path, sess_options=options, providers=["CPUExecutionProvider"]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feed = np.ascontiguousarray(x.detach().float().numpy())
        return torch.from_numpy(self.session.run(None, {"lr": feed})[0])


@functools.cache
def int8_float_hint() -> str:
    """OpenVINO's inference precision for an int8 model's float layers on this CPU: ``bf16``
    where OpenVINO reports native bf16 (AVX-512 bf16, AMX), else ``f32``."""
    ov = require("openvino", "the openvino backend")
    capabilities = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return "bf16" if "BF16" in capabilities else "f32"


class OpenVINOModule(nn.Module):
    """:class:`srkit.common.openvino.OpenVINORunner` as an ``nn.Module`` (torch in and out),
    on as many threads as torch uses. ``compiled_cache``: OpenVINO's ``CACHE_DIR`` (a later run
    imports the compiled model instead of compiling it: 0.19 -> 0.08 s per shape for RepAN x4
    int8)."""

    def __init__(
        self,
        model_path: str | Path,
        precision: str = "f32",
        threads: int | None = None,
        compiled_cache: str | Path | None = None,
    ) -> None:
        super().__init__()
        require("openvino", "the openvino backend")
        self.runner = OpenVINORunner(model_path, precision, threads or _threads(), compiled_cache)
        self.path = self.runner.path
        self.config = self.runner.config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.runner(x.detach().float().numpy()))


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported, found without importing it (ONNX alone takes
    about 1.5 s to import; ``--backend auto`` asks on every run)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def openvino_available() -> bool:
    return _installed("openvino")


def onnxruntime_available() -> bool:
    return _installed("onnxruntime")


def onnx_available() -> bool:
    return _installed("onnx")
