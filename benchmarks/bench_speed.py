"""The `srkit speed` table as Markdown, with the machine's matmul peak beside it.

For each available backend x precision: output MP/s on a 256x256 input, the ratio to eager
fp32 NCHW PyTorch in the same run, the Set5 Y-PSNR, and the convolution throughput achieved
(2 x conv MACs x images/s) as a fraction of the measured matmul peak of the same precision
(fp32 -> fp32 peak, bf16 -> bf16 peak, int8 -> int8 peak).

Usage:
  python benchmarks/bench_speed.py --model ../shared/weights/official/rlfn/rlfn_x4.pth
  python benchmarks/bench_speed.py --arch edsr_baseline --scale 4 --no-psnr   # random weights
  [--size 256] [--calib DIR] [--json FILE] [--backend openvino/int8 ...]

Run it on an otherwise idle machine (`nice` lowers its priority, not others'); the load
average at start and end is printed with the table.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path


def build_model(args):
    from srkit.models import random_model, resolve_model

    if args.arch:
        return random_model(args.arch, args.scale)
    return resolve_model(args.model, args.scale)


def main() -> None:
    from srkit.archs.catalog import count_macs
    from srkit.common.allocator import retain_freed_memory
    from srkit.common.machine import machine_summary
    from srkit.deploy.peak import matmul_peak
    from srkit.deploy.speed import measure, write_json

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="weight file")
    parser.add_argument("--arch", help="architecture with random weights (speed only)")
    parser.add_argument("--scale", type=int, default=None)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--calib", default=None)
    parser.add_argument("--no-psnr", action="store_true")
    parser.add_argument("--min-time", type=float, default=3.0)
    parser.add_argument("--backend", action="append", help="backend/precision, repeatable")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not args.model and not args.arch:
        parser.error("give --model FILE or --arch NAME")
    if args.arch and args.scale is None:
        args.scale = 4
    retain_freed_memory()  # as `srkit speed` does (SRKIT_MALLOC=system: glibc's default)
    model = build_model(args)
    load_start = os.getloadavg()
    peak = matmul_peak()
    combos = None
    if args.backend:
        combos = [tuple(b.split("/", 1)) for b in args.backend]
    results = measure(
        model,
        size=args.size,
        combos=combos,
        psnr=not args.no_psnr,
        calib=args.calib,
        min_time=args.min_time,
        on_result=lambda r: print(f"  {r.backend}/{r.precision}: {r.mp_per_s} MP/s "
                                  f"{r.error or ''}", file=sys.stderr),
    )  # fmt: skip
    load_end = os.getloadavg()
    channels = model.convention.in_channels
    macs = count_macs(model.net, (1, channels, args.size, args.size))
    peak_of = {"fp32": peak["fp32_gflops"], "bf16": peak["bf16_gflops"], "int8": peak["int8_gops"]}
    info = machine_summary(speed=True)
    print(f"\n{model.name}, {args.size}x{args.size} -> x{model.scale}; {macs / 1e9:.1f} GMAC/image")
    print(f"CPU: {info['cpu']} ({info['cpu_flags']}), {info['threads']} threads, "
          f"torch {info['torch']}")  # fmt: skip
    print(f"load average at start {load_start[0]:.2f}, at end {load_end[0]:.2f}")
    print(
        f"matmul peak ({peak['n']}x{peak['n']}): fp32 {peak['fp32_gflops']} GFLOP/s, "
        f"bf16 {peak['bf16_gflops']} GFLOP/s, int8 {peak['int8_gops']} GOP/s "
        f"({peak['int8_via']})\n"
    )
    print("| backend | precision | MP/s | vs eager fp32 | Set5 PSNR | conv GFLOP/s | % of peak |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        if r.error:
            print(f"| {r.backend} | {r.precision} | — | — | — | — | {r.error} |")
            continue
        images_per_s = 1000.0 / r.ms_per_image
        achieved = 2 * macs * images_per_s / 1e9
        ref = peak_of.get(r.precision)
        share = f"{100 * achieved / ref:.0f}%" if ref else "—"
        psnr = f"{r.set5_psnr:.3f}" if math.isfinite(r.set5_psnr) else "—"
        print(
            f"| {r.backend} | {r.precision} | {r.mp_per_s:.3f} | {r.ratio_vs_eager_fp32:.2f}x "
            f"| {psnr} | {achieved:.0f} | {share} |"
        )
    if args.json is not None:
        write_json(
            results,
            args.json,
            model=model.name,
            size=args.size,
            gmac_per_image=macs / 1e9,
            matmul_peak=peak,
            machine=info,
            load_average_start=load_start,
            load_average_end=load_end,
        )
        print(f"\nJSON: {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
