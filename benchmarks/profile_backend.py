"""Where a backend's time goes: one forward pass under ``torch.profiler``, by kind of work.

    PYTHONPATH=src python benchmarks/profile_backend.py --arch edsr_baseline --scale 4 \\
        --backend torch-compile/bf16 [--backend torch/bf16 ...] [--size 128] [--rows 12]
    PYTHONPATH=src python benchmarks/profile_backend.py --model repan_x4 --backend torch/bf16

For each PyTorch backend (``torch``, ``torch-cl``, ``torch-compile``; ONNX Runtime and OpenVINO
run outside PyTorch's profiler) it prints the wall time of one call, the share of self time
in convolutions (oneDNN), pixel shuffles, Inductor's generated kernels (the compiled graph's own
time: elementwise loops, layout copies), other ATen operators and the rest (Python, dispatch),
then the largest operators. Runs with the allocator setting of the ``srkit`` command
(``SRKIT_MALLOC=system`` for glibc's default).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from srkit.common.allocator import allocator_state, retain_freed_memory
from srkit.common.machine import cpu_name

KINDS = (
    ("convolution", ("convolution", "conv2d")),
    ("pixel shuffle", ("pixel_shuffle",)),
    ("compiled kernels", ("CompiledFxGraph",)),
)


def kind_of(name: str) -> str:
    for kind, keys in KINDS:
        if any(key in name for key in keys):
            return kind
    return "other ATen" if name.startswith(("aten::", "mkldnn::")) else "rest"


def main() -> None:
    from srkit.deploy import prepare
    from srkit.models import random_model, resolve_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="a shipped model or weight file")
    parser.add_argument("--arch", help="an architecture with random weights")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--backend", action="append", required=True, help="backend/precision")
    parser.add_argument("--rows", type=int, default=10)
    args = parser.parse_args()
    if not args.model and not args.arch:
        parser.error("give --model NAME or --arch NAME")
    retain_freed_memory()
    if args.arch:
        model = random_model(args.arch, args.scale)
    else:
        model = resolve_model(args.model, args.scale)
    print(f"CPU: {cpu_name()}, {torch.get_num_threads()} threads, allocator {allocator_state()}; "
          f"{model.name}, {args.size}x{args.size} input")  # fmt: skip
    channels = 1 if model.convention.channels == "y" else 3  # Y-only networks take luma
    x = torch.rand(1, channels, args.size, args.size)
    for label in args.backend:
        backend, precision = label.split("/", 1)
        if backend not in ("torch", "torch-cl", "torch-compile"):
            raise SystemExit(f"{label}: only PyTorch backends run under torch.profiler")
        net = prepare(model, backend, precision).net
        with torch.inference_mode():
            for _ in range(2):  # compile, warm caches
                net(x)
            start = time.perf_counter()
            net(x)
            wall = time.perf_counter() - start
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                net(x)
        events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
        total = sum(e.self_cpu_time_total for e in events)
        shares: dict[str, float] = {}
        for event in events:
            kind = kind_of(event.key)
            shares[kind] = shares.get(kind, 0.0) + event.self_cpu_time_total
        print(f"\n{label}: {1000 * wall:.1f} ms per call")
        for kind, value in sorted(shares.items(), key=lambda kv: -kv[1]):
            print(f"  {kind:18s} {100 * value / total:5.1f}%")
        print("  largest operators (self time):")
        for event in sorted(events, key=lambda e: -e.self_cpu_time_total)[: args.rows]:
            print(f"    {event.key[:48]:48s} {event.self_cpu_time_total / 1000:8.1f} ms "
                  f"x{event.count}")  # fmt: skip


if __name__ == "__main__":
    main()
