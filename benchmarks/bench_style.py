"""Time each style-transfer mode on one 512x512 image (CPU by default).

    PYTHONPATH=src python benchmarks/bench_style.py [--size 512] [--gatys-steps 2]

Feed-forward (TransformerNet, width 32) and AdaIN (published decoder) are timed with untrained
weights: the time does not depend on the weights. Gatys is timed per Adam step (one forward and
backward of the loss network) and per L-BFGS step (up to 20 of them).
"""

from __future__ import annotations

import argparse
import time

import torch

from srkit.common.machine import cpu_name
from srkit.features import feature_network
from srkit.style import AdainDecoder, AdainModel, TransformerNet, gatys


def timed(fn, repeat: int = 2) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--gatys-steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.rand(1, 3, args.size, args.size)
    net = feature_network("stlpips_vgg16")
    print(f"CPU: {cpu_name()}, {args.threads} threads, {args.size}x{args.size}")
    with torch.no_grad():
        ff = TransformerNet().eval()
        print(f"feed-forward (TransformerNet): {timed(lambda: ff(x)):.2f} s")
        model = AdainModel(net, AdainDecoder().eval())
        print(f"AdaIN (alpha 1): {timed(lambda: model(x, x)):.2f} s")
    for optimizer in ("adam", "lbfgs"):
        steps = args.gatys_steps
        start = time.perf_counter()
        gatys(x, x.flip(-1), network=net, steps=steps, optimizer=optimizer, show_progress=False)
        per_step = (time.perf_counter() - start) / steps
        print(f"Gatys {optimizer}: {per_step:.2f} s per step ({steps} steps)")


if __name__ == "__main__":
    main()
