"""Training iterations per second: fp32 NCHW vs bf16 autocast + channels_last, on this CPU.

Batch 16 of 48x48 LR patches at x4 (a 192x192 HR target), L1 loss, Adam; forward, backward and
optimizer step are timed after warm-up (data loading excluded: it runs in loader workers).
Usage: python benchmarks/bench_train_speed.py [--archs espcn fsrcnn edsr_baseline a2n]
                                              [--iters 10] [--threads N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn

from srkit.archs import build, get_spec
from srkit.common.machine import cpu_name
from srkit.train.tasks.supervised import network_channels


def iterations_per_second(
    arch: str, precision: str, batch: int, patch: int, scale: int, iters: int, warmup: int
) -> float:
    torch.manual_seed(0)
    net = build(arch, scale=scale)
    convention = get_spec(arch).convention
    channels_last = precision == "bf16"
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    loss_fn = nn.L1Loss()
    lr = torch.rand(batch, 3, patch, patch)
    hr = torch.rand(batch, 3, patch * scale, patch * scale)
    x = convention.to_network(network_channels(lr, convention))
    target = network_channels(hr, convention)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")

    def step() -> None:
        with autocast:
            loss = loss_fn(convention.from_network(net(x).float()), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    return iters / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=["espcn", "fsrcnn", "edsr_baseline", "a2n"])
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=48)
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"batch {args.batch}, {args.patch}x{args.patch} LR, x{args.scale}; iterations/s")
    print(f"{'arch':<16}{'fp32 NCHW':>12}{'bf16 CL':>12}{'gain':>8}")
    rows = []
    for arch in args.archs:
        rates = {}
        for precision in ("fp32", "bf16"):
            rates[precision] = iterations_per_second(
                arch, precision, args.batch, args.patch, args.scale, args.iters, args.warmup
            )
        gain = rates["bf16"] / rates["fp32"]
        print(f"{arch:<16}{rates['fp32']:>12.2f}{rates['bf16']:>12.2f}{gain:>7.2f}x")
        rows.append({"arch": arch, "fp32_nchw": rates["fp32"], "bf16_channels_last": rates["bf16"]})
    if args.json:
        with open(args.json, "w") as stream:
            json.dump({"cpu": cpu_name(), "results": rows}, stream, indent=2)


if __name__ == "__main__":
    main()
