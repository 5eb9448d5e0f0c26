"""ONNX Runtime and OpenVINO as ``nn.Module``-shaped callables (so ``NetworkModel`` wraps them).

OpenVINO compiles one static-shape model per input size it sees (faster than a dynamic one), up
to ``STATIC_SHAPES`` sizes, then one dynamic model for the rest. On CPUs with bf16 support
OpenVINO would silently run fp32 models in bf16: the precision hint is always set explicitly.
An int8 model's float layers (the first, last and cheap convolutions) run in bf16 where the CPU
has bf16 instructions (:func:`int8_float_hint`; on an AMX Xeon fp32 runs at a seventh of bf16).
An OpenVINO module may be called from several threads at once (`srkit faces eval` scores faces
on worker threads): the process runs one OpenVINO inference at a time (compiling included).
Each inference already uses every thread (the latency hint), so nothing is lost, and requests
of one compiled model first run concurrently can hang in OpenVINO's input copy.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from srkit.deploy.common import require

STATIC_SHAPES = 12
_OPENVINO_RUN = threading.Lock()  # one OpenVINO compile or inference at a time in this process


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
    """An OpenVINO model on CPU with an explicit inference precision (``f32`` or ``bf16``).

    ``compiled_cache``: a folder where OpenVINO keeps the compiled models (its ``CACHE_DIR``;
    keyed by OpenVINO on the model, shape, settings and its own version), so a later run
    imports one instead of compiling it (0.19 -> 0.08 s per shape for RepAN x4 int8)."""

    def __init__(
        self,
        model_path: str | Path,
        precision: str = "f32",
        threads: int | None = None,
        compiled_cache: str | Path | None = None,
    ) -> None:
        super().__init__()
        ov = require("openvino", "the openvino backend")
        self._ov = ov
        self.core = ov.Core()
        self.path = str(model_path)
        self.model = self.core.read_model(self.path)
        self.config = {
            "INFERENCE_PRECISION_HINT": precision,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": threads or _threads(),
        }
        if compiled_cache is not None:
            self.config["CACHE_DIR"] = str(compiled_cache)
        self._static: OrderedDict[tuple[int, ...], object] = OrderedDict()
        self._dynamic = None
        self._requests: dict[int, object] = {}  # one infer request per compiled model

    def _compile(self, shape: tuple[int, ...]):
        compiled = self._static.get(shape)
        if compiled is not None:
            return compiled
        if len(self._static) >= STATIC_SHAPES:
            if self._dynamic is None:
                self._dynamic = self.core.compile_model(self.model, "CPU", self.config)
            return self._dynamic
        model = self.model.clone()
        model.reshape({model.inputs[0].get_any_name(): self._ov.PartialShape(list(shape))})
        compiled = self.core.compile_model(model, "CPU", self.config)
        self._static[shape] = compiled
        return compiled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feed = np.ascontiguousarray(x.detach().float().numpy())
        with _OPENVINO_RUN:
            compiled = self._compile(tuple(feed.shape))
            request = self._requests.get(id(compiled))
            if request is None:
                request = self._requests[id(compiled)] = compiled.create_infer_request()
            request.infer({0: feed})
            out = np.asarray(request.get_output_tensor(0).data).copy()
        return torch.from_numpy(out)


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
