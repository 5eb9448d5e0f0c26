"""``srkit speed``: every available backend x precision of one model in one run.

For each combination: output megapixels per second on a ``size`` x ``size`` input (median of
timed runs after warm-up), the ratio to eager fp32 NCHW PyTorch measured in the same run, the
largest difference from torch fp32 on that input, and the Set5 Y-PSNR (modern convention).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from srkit.bench.runner import evaluate_model
from srkit.common.files import write_text_atomic
from srkit.data.builtin import bundled_set5
from srkit.deploy import SUPPORTED, available_backends, prepare
from srkit.deploy.common import DeployError
from srkit.image.io import read_rgb, to_tensor

DEFAULT_COMBOS: tuple[tuple[str, str], ...] = (
    ("torch", "fp32"),
    ("torch-cl", "fp32"),
    ("torch", "bf16"),
    ("torch-compile", "fp32"),
    ("torch-compile", "bf16"),
    ("onnxruntime", "fp32"),
    ("onnxruntime", "int8"),
    ("openvino", "fp32"),
    ("openvino", "bf16"),
    ("openvino", "int8"),
)


@dataclass
class SpeedResult:
    backend: str
    precision: str
    mp_per_s: float
    ratio_vs_eager_fp32: float
    set5_psnr: float
    ms_per_image: float = math.nan
    max_abs_vs_fp32: float = math.nan
    prepare_s: float = math.nan
    error: str | None = None

    def record(self) -> dict:
        data = asdict(self)
        for key, value in data.items():  # NaN is not JSON
            if isinstance(value, float) and not math.isfinite(value):
                data[key] = None
        return data


def time_model(model, x: torch.Tensor, min_time: float = 2.0, min_runs: int = 3) -> float:
    """Fastest seconds per call (after one warm-up call) over at least ``min_time`` seconds.

    The fastest run, not the median: on a machine shared with other work it is the run least
    disturbed by it, so it estimates what the backend itself can do.
    """
    with torch.inference_mode():
        model(x)
        times: list[float] = []
        start = time.perf_counter()
        while len(times) < min_runs or time.perf_counter() - start < min_time:
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
            if len(times) >= 50:
                break
    return min(times)


def set5_psnr(model, scale: int) -> float:
    return float(evaluate_model(model, bundled_set5(), scale, convention="modern").psnr)


def _sample(size: int, seed: int = 0) -> torch.Tensor:
    """A natural-image crop (Set5 butterfly, tiled if needed) as the timing input."""
    try:
        rgb = to_tensor(read_rgb(bundled_set5() / "butterfly.png")).unsqueeze(0)
        reps = math.ceil(size / min(rgb.shape[-2:]))
        rgb = rgb.repeat(1, 1, reps, reps)
        return rgb[:, :, :size, :size].contiguous()
    except Exception:  # noqa: BLE001 - any image will do for timing
        return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed))


def measure(
    model,
    *,
    size: int = 256,
    combos: Sequence[tuple[str, str]] | None = None,
    psnr: bool = True,
    calib: str | Path | None = None,
    min_time: float = 2.0,
    rounds: int = 3,
    on_result: Callable[[SpeedResult], None] | None = None,
) -> list[SpeedResult]:
    """Measure ``model`` on every available backend x precision (or ``combos``).

    Every backend is prepared first; then ``rounds`` rounds time each in turn for
    ``min_time / rounds`` seconds and keep its fastest call, so a change in the machine's load
    during the run affects all backends alike rather than whichever ran at that moment.
    """
    available = set(available_backends())
    if os.environ.get("SRKIT_SKIP_COMPILE") and combos is None:
        available.discard("torch-compile")
    wanted = list(combos) if combos is not None else list(DEFAULT_COMBOS)
    if ("torch", "fp32") in wanted:
        wanted.remove(("torch", "fp32"))
    wanted.insert(0, ("torch", "fp32"))  # the reference comes first
    x = _sample(size)
    scale = int(model.scale)
    out_mp = (size * scale) ** 2 / 1e6
    with torch.inference_mode():
        reference = model(x)
    results: list[SpeedResult] = []
    ready: list[tuple[SpeedResult, object]] = []
    for backend, precision in wanted:
        if backend not in SUPPORTED or precision not in SUPPORTED[backend]:
            continue
        result = SpeedResult(backend, precision, math.nan, math.nan, math.nan)
        results.append(result)
        if backend not in available:
            result.error = "not installed"
            continue
        t0 = time.perf_counter()
        try:
            deployed = prepare(model, backend, precision, calib=calib)
            with torch.inference_mode():
                out = deployed(x)  # also compiles / warms up
            result.prepare_s = round(time.perf_counter() - t0, 2)
            result.max_abs_vs_fp32 = float((out.float() - reference).abs().max())
            ready.append((result, deployed))
        except (DeployError, RuntimeError, ValueError, OSError, ImportError) as error:
            message = str(error).strip().splitlines()[0][:200] if str(error) else repr(error)
            result.error = message
    best: dict[int, float] = {}
    for _ in range(max(1, rounds)):
        for index, (result, deployed) in enumerate(ready):
            try:
                seconds = time_model(deployed, x, min_time=min_time / max(1, rounds))
            except (RuntimeError, ValueError) as error:
                result.error = str(error).strip().splitlines()[0][:200]
                continue
            best[index] = min(best.get(index, math.inf), seconds)
    base = best.get(0) if ready and ready[0][0] is results[0] else None
    for index, (result, deployed) in enumerate(ready):
        if result.error is not None or index not in best:
            continue
        seconds = best[index]
        result.mp_per_s = round(out_mp / seconds, 4)
        result.ms_per_image = round(seconds * 1000, 2)
        if base is not None:
            result.ratio_vs_eager_fp32 = round(base / seconds, 3)
        if psnr:
            result.set5_psnr = round(set5_psnr(deployed, scale), 3)
    if on_result:
        for result in results:
            on_result(result)
    return results


def write_json(results: Sequence[SpeedResult], path: str | Path, **meta) -> None:
    payload = {"results": [r.record() for r in results], **meta}
    write_text_atomic(path, json.dumps(payload, indent=2) + "\n")
