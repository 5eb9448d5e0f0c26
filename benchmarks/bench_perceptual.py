"""The perceptual x4 table: bicubic, the default x4 (PSNR-trained), the leftthomas SRGAN
generator (the most used PyTorch SRGAN, an official yardstick) and srkit's perceptual model(s),
on Set5, one run: Y-PSNR / SSIM (modern), LPIPS (ST-LPIPS AlexNet and VGG16 trunks), NIQE,
parameters and milliseconds per 256x256 LR input (fp32 eager, median of 5, this machine's
threads). Optional ``--crops DIR`` writes ``srkit compare`` panels of the Set5 images.

Usage:
  python benchmarks/bench_perceptual.py [--weights ../shared/weights/official] [--json FILE]
      [--crops docs/img]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from srkit.bench.runner import evaluate_model
from srkit.common.machine import cpu_name
from srkit.data.builtin import bundled_set5, official_weights_dir
from srkit.infer.compare import compare
from srkit.metrics.select import parse_metrics
from srkit.models import resolve_model
from srkit.zoo import default_model, models_for

LEFTTHOMAS = "srgan_leftthomas/netG_epoch_4_100.pth"
METRICS = "lpips,lpips_vgg,niqe"


def milliseconds(model, side: int = 256, runs: int = 5) -> float | None:
    net = getattr(model, "net", None)
    if net is None:
        return None
    channels = 1 if model.convention.channels == "y" else 3
    x = torch.rand(1, channels, side, side)
    times = []
    with torch.inference_mode():
        net(x)
        for _ in range(runs):
            start = time.perf_counter()
            net(x)
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=official_weights_dir())
    parser.add_argument("--json", type=Path)
    parser.add_argument("--crops", type=Path, help="write srkit compare panels here")
    args = parser.parse_args()
    rows = [("bicubic", "bicubic")]
    rows.append((default_model(4).name + " (default, PSNR)", default_model(4).name))
    official = args.weights / LEFTTHOMAS
    if official.is_file():
        rows.append(("leftthomas SRGAN (official)", str(official)))
    else:
        print(f"note: {official} not found; the leftthomas row is skipped")
    rows += [(m.name + " (perceptual)", m.name) for m in models_for("perceptual") if m.scale == 4]
    metrics = parse_metrics(METRICS)
    print(f"CPU: {cpu_name()}, {torch.get_num_threads()} threads")
    print(
        "| model | params | Set5 PSNR / SSIM (Y) | LPIPS alex | LPIPS vgg | NIQE | ms / 256² LR |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    results = []
    for label, spec in rows:
        model = resolve_model(spec, 4)
        result = evaluate_model(model, bundled_set5(), metrics=metrics)
        net = getattr(model, "net", None)
        params = sum(p.numel() for p in net.parameters()) if net is not None else 0
        ms = milliseconds(model)
        extra = result.extra
        results.append({"model": label, "spec": spec, "params": params, "psnr": result.psnr,
                        "ssim": result.ssim, **extra, "ms_256": ms})  # fmt: skip
        print(
            f"| {label} | {params:,} | {result.psnr:.3f} / {result.ssim:.4f} | "
            f"{extra['lpips']:.4f} | {extra['lpips_vgg']:.4f} | {extra['niqe']:.3f} | "
            + (f"{ms:.0f} |" if ms is not None else "- |"),
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_name(), "rows": results}, indent=2) + "\n")
    if args.crops:
        specs = [spec for _, spec in rows[1:]]
        for stem in ("butterfly", "baby"):
            out = compare(bundled_set5() / f"{stem}.png", specs, 4, args.crops, metrics="lpips")
            for column in out.columns:  # keep the panel only
                if column.path is not None:
                    column.path.unlink()
            print(f"wrote {out.compare_path}")


if __name__ == "__main__":
    main()
