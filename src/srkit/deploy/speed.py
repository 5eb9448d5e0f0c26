"""``srkit speed``: every available backend x precision of one model in one run.

For each combination: output megapixels per second on a ``size`` x ``size`` input (median of
timed runs after warm-up), the ratio to eager fp32 NCHW PyTorch measured in the same run, the
largest difference from torch fp32 on that input, and the Set5 Y-PSNR (modern convention).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from srkit.deploy import SUPPORTED, available_backends, prepare
from srkit.deploy.common import DeployError

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
    """Median seconds per call after two warm-up calls."""
    for _ in range(2):
        model(x)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - t0)
        if len(times) >= 50:
            break
    return statistics.median(times)


def set5_psnr(model, scale: int) -> float:
    from srkit.bench.runner import evaluate_model
    from srkit.data.builtin import bundled_set5

    return float(evaluate_model(model, bundled_set5(), scale, convention="modern").psnr)


def _sample(size: int, seed: int = 0) -> torch.Tensor:
    """A natural-image crop (Set5 butterfly, tiled if needed) as the timing input."""
    from srkit.data.builtin import bundled_set5
    from srkit.image.io import read_rgb, to_tensor

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
    on_result: Callable[[SpeedResult], None] | None = None,
) -> list[SpeedResult]:
    """Measure ``model`` on every available backend x precision (or ``combos``)."""
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
    base_rate = math.nan
    for backend, precision in wanted:
        if backend not in SUPPORTED or precision not in SUPPORTED[backend]:
            continue
        if backend not in available:
            result = SpeedResult(
                backend, precision, math.nan, math.nan, math.nan, error="not installed"
            )
            results.append(result)
            if on_result:
                on_result(result)
            continue
        t0 = time.perf_counter()
        try:
            deployed = prepare(model, backend, precision, calib=calib)
            with torch.inference_mode():
                out = deployed(x)  # also compiles / warms up
            prepare_s = time.perf_counter() - t0
            seconds = time_model(deployed, x, min_time=min_time)
            rate = out_mp / seconds
            if backend == "torch" and precision == "fp32":
                base_rate = rate
            diff = float((out.float() - reference).abs().max())
            score = set5_psnr(deployed, scale) if psnr else math.nan
            result = SpeedResult(
                backend,
                precision,
                round(rate, 4),
                round(rate / base_rate, 3) if math.isfinite(base_rate) else math.nan,
                round(score, 3) if math.isfinite(score) else math.nan,
                ms_per_image=round(seconds * 1000, 2),
                max_abs_vs_fp32=diff,
                prepare_s=round(prepare_s, 2),
            )
        except (DeployError, RuntimeError, ValueError, OSError, ImportError) as error:
            message = str(error).strip().splitlines()[0][:200] if str(error) else repr(error)
            result = SpeedResult(backend, precision, math.nan, math.nan, math.nan, error=message)
        results.append(result)
        if on_result:
            on_result(result)
    # The machine's load can change during a run: time the reference again at the end and
    # take its faster figure, so no ratio is flattered by a slow first measurement.
    if results and results[0].error is None and len(results) > 1:
        again = out_mp / time_model(model, x, min_time=min_time)
        if again > base_rate:
            base_rate = again
            results[0].mp_per_s = round(again, 4)
            for r in results:
                if r.error is None:
                    r.ratio_vs_eager_fp32 = round(r.mp_per_s / base_rate, 3)
    return results


def write_json(results: Sequence[SpeedResult], path: str | Path, **meta) -> None:
    payload = {"results": [r.record() for r in results], **meta}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2) + "\n")


def machine_info() -> dict:
    import platform

    name = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        found = [
            f
            for f in ("avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "avx512f")
            if f" {f}" in text
        ]
        flags = " ".join(found)
    except OSError:
        pass
    return {
        "cpu": name,
        "cpu_flags": flags,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
