"""What machine a figure was measured on: every reported speed names its CPU."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from srkit.common.allocator import allocator_state

#: CPU features that decide bf16 / int8 speed (oneDNN, ONNX Runtime, OpenVINO kernels).
SPEED_FLAGS = ("avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "avx512f")


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_name() -> str:
    """The CPU model, e.g. ``AMD EPYC 9R14`` (from /proc/cpuinfo where available)."""
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_flags() -> str:
    """The :data:`SPEED_FLAGS` this CPU has, space-separated ("" where /proc/cpuinfo is absent)."""
    text = _cpuinfo()
    return " ".join(f for f in SPEED_FLAGS if f" {f}" in text)


def machine_summary(*, speed: bool = False) -> dict[str, object]:
    """CPU, cores, torch threads and version; ``speed=True`` adds the CPU's :data:`SPEED_FLAGS`
    and the load average, which bear on a timing."""
    import torch  # here only: the CPU facts above are read without it

    summary: dict[str, object] = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    if speed:
        summary["cpu_flags"] = cpu_flags()
        summary["allocator"] = allocator_state()
        summary["load_average"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return summary
