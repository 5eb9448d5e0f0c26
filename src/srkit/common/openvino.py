"""An OpenVINO model on the CPU with NumPy in and out (no PyTorch: the fast start of
``srkit upscale`` runs it alone; ``srkit.deploy.runtimes.OpenVINOModule`` wraps it for torch).

OpenVINO compiles one static-shape model per input size it sees (faster than a dynamic one), up
to ``STATIC_SHAPES`` sizes, then one dynamic model for the rest. On CPUs with bf16 support
OpenVINO would silently run fp32 models in bf16: the precision hint is always set explicitly.
The process runs one OpenVINO inference at a time (compiling included): each already uses every
thread (the latency hint), and requests of one compiled model first run concurrently can hang
in OpenVINO's input copy (`srkit faces eval` scores faces on worker threads).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

STATIC_SHAPES = 12
_RUN = threading.Lock()  # one OpenVINO compile or inference at a time in this process


def openvino() -> Any:
    """The ``openvino`` module, or an ImportError that says how to install it."""
    try:
        import openvino as ov
    except ImportError as error:
        raise ImportError(
            "the openvino backend needs OpenVINO: pip install 'srkit[deploy]'"
        ) from error
    return ov


class OpenVINORunner:
    """``runner(x)``: float32 NCHW in, the model's first output out (a copy).

    ``precision``: OpenVINO's inference precision hint (``f32`` or ``bf16``). ``compiled_cache``:
    a folder where OpenVINO keeps the compiled models (its ``CACHE_DIR``, keyed by OpenVINO on
    the model, shape, settings and its own version), so a later run imports one instead of
    compiling it."""

    def __init__(
        self,
        model_path: str | Path,
        precision: str = "f32",
        threads: int = 1,
        compiled_cache: str | Path | None = None,
    ) -> None:
        ov = openvino()
        self._ov = ov
        self.core = ov.Core()
        self.path = str(model_path)
        self.model = self.core.read_model(self.path)
        self.config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": precision,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": max(1, int(threads)),
        }
        if compiled_cache is not None:
            self.config["CACHE_DIR"] = str(compiled_cache)
        self._static: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self._dynamic = None
        self._requests: dict[int, Any] = {}  # one infer request per compiled model

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

    def __call__(self, x: np.ndarray) -> np.ndarray:
        feed = np.ascontiguousarray(x, dtype=np.float32)
        with _RUN:
            compiled = self._compile(tuple(feed.shape))
            request = self._requests.get(id(compiled))
            if request is None:
                request = self._requests[id(compiled)] = compiled.create_infer_request()
            request.infer({0: feed})
            return np.asarray(request.get_output_tensor(0).data).copy()
