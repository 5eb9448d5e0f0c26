"""Throughput of `srkit upscale` on a folder: --engine local vs --engine ray (1 and 2 workers),
and video frames/s. Run by hand: python benchmarks/bench_upscale_engines.py [FOLDER]
(default: $SRKIT_DATA/sr/val/Set5); prints each command and its summary line."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from srkit.common.machine import cpu_name

FOLDER = (
    Path(sys.argv[1])
    if len(sys.argv) > 1
    else Path(os.environ.get("SRKIT_DATA", "../shared/data")) / "sr" / "val" / "Set5"
)
RUNS = [
    ["--threads", "2"],
    ["--threads", "1"],
    ["--engine", "ray", "--workers", "1", "--threads", "1"],
    ["--engine", "ray", "--workers", "2", "--threads", "1"],
    ["--engine", "ray", "--workers", "1", "--threads", "2"],
]

print("CPU:", cpu_name(), os.cpu_count(), "cores")
with tempfile.TemporaryDirectory() as tmp:
    for i, extra in enumerate(RUNS):
        command = [
            sys.executable,
            "-m",
            "srkit.cli",
            "upscale",
            str(FOLDER),
            "-o",
            f"{tmp}/{i}",
            *extra,
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        print(
            "srkit upscale", FOLDER, *extra, "->", done.stdout.strip() or done.stderr.strip()[-300:]
        )
