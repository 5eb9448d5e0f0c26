"""Where `srkit upscale`'s time goes on one large image: network vs everything else.

    PYTHONPATH=src python benchmarks/bench_upscale_share.py [--size 1920x1080] [--model default]
        [--backend auto] [--precision fp32] [--repeat 3]

Writes a synthetic photo-like PNG of ``--size``, then times, in this process:

* ``network``: the model on the whole image in one call (no tiles, no I/O);
* ``network on tiles``: the model's calls alone inside `Upscaler.upscale_array`, summed (the
  tiles the CLI runs: often faster than one call, since a tile's activations stay in cache);
* ``decode``: reading the PNG; ``upscale``: `Upscaler.upscale_array` (tiling, blending, colour
  handling, the network); ``encode``: writing the PNG;

and the wall time of the CLI itself (`srkit upscale IN -o OUT`, a child process: start-up,
model load, decode, tiled inference, streamed encode), and of the CLI on a 16x16 image (its
start-up and model load alone). The CLI rows are the median of ``--repeat`` runs; where the
model runs on OpenVINO, the runs after the first take the fast start without PyTorch
(:mod:`srkit.infer.fastpath`; ``SRKIT_FAST_START=0`` times the full path). The target
is CLI wall <= 1.3 x network; both floors are printed. ``--backend auto`` (the default, as in
the CLI) takes the backend that `srkit upscale` would. Both sides run with the allocator
setting the CLI uses (:func:`srkit.common.allocator.retain_freed_memory`;
``SRKIT_MALLOC=system`` turns it off in both).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from srkit.common.allocator import allocator_state, retain_freed_memory
from srkit.common.machine import cpu_name
from srkit.image import deflate
from srkit.image.io import read_rgb
from srkit.infer.pngstream import PNGStreamWriter
from srkit.infer.upscaler import PNG_LEVEL, Upscaler

REPO = Path(__file__).resolve().parents[1]


def synthetic(width: int, height: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 0.5 + 0.25 * np.sin(x / 37.0) * np.cos(y / 53.0)
    edges = ((x // 97 + y // 61) % 2) * 0.2
    image = np.stack([base + edges, base, 1.0 - base], -1) + rng.normal(0, 0.03, (height, width, 3))
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def write_png(path: Path, pixels: np.ndarray) -> None:
    """The whole image through the writer `srkit upscale` streams its tiles to."""
    writer = PNGStreamWriter(path, pixels.shape[1], pixels.shape[0], pixels.shape[2],
                             level=PNG_LEVEL)  # fmt: skip
    writer.write(pixels)
    writer.close()


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--model", default="default")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--precision", default=None, help="default: fp32 (auto: its choice)")
    parser.add_argument("--repeat", type=int, default=3, help="CLI runs (the median is shown)")
    args = parser.parse_args()
    retain_freed_memory()  # as `srkit` does at start-up
    width, height = (int(v) for v in args.size.split("x"))
    work = Path(tempfile.mkdtemp(prefix="srkit-share-"))
    source = work / "in.png"
    Image.fromarray(synthetic(width, height)).save(source)
    up = Upscaler(args.model, backend=args.backend, precision=args.precision)
    print(f"CPU: {cpu_name()}, {torch.get_num_threads()} threads; {up.name} x{up.scale}, "
          f"{width}x{height} -> {width * up.scale}x{height * up.scale}, "
          f"{up.backend}/{up.precision} (--backend {args.backend}); PNG deflate: "
          f"{deflate.library(PNG_LEVEL)} level {PNG_LEVEL}; "
          f"allocator: {allocator_state()}")  # fmt: skip
    decode, rgb = timed(lambda: read_rgb(source))
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        up.model(x)  # warm-up (OpenVINO compiles one model per input shape)
        network, _ = timed(lambda: up.model(x))
    model, calls = up.model, []

    def timed_model(tile):  # the network's own calls inside the tiled pass
        seconds, result = timed(lambda: model(tile))
        calls.append(seconds)
        return result

    up.upscale_array(rgb)  # warm-up: the tiles' shapes
    up.model = timed_model
    upscale, out = timed(lambda: up.upscale_array(rgb))
    up.model = model
    on_tiles = sum(calls)
    encode, _ = timed(lambda: write_png(work / "out_direct.png", out))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "SRKIT_BACKEND": args.backend}
    command = [sys.executable, "-m", "srkit.cli", "upscale", str(source), "-o", str(work / "o.png"),
               "--model", args.model, "--overwrite"]  # fmt: skip
    if args.precision:
        command += ["--precision", args.precision]

    def median_wall(command: list[str]) -> float:
        walls = []
        for _ in range(args.repeat):
            wall, done = timed(lambda: subprocess.run(command, env=env, capture_output=True,
                                                      text=True))  # fmt: skip
            if done.returncode != 0:
                sys.exit(f"srkit upscale failed: {done.stderr.strip().splitlines()[-1]}")
            walls.append(wall)
        print(f"  {' '.join(Path(c).name for c in command[3:6])}: "
              + ", ".join(f"{w:.2f}" for w in walls) + " s")  # fmt: skip
        return statistics.median(walls)

    cli = median_wall(command)
    tiny = work / "tiny.png"
    Image.fromarray(synthetic(16, 16)).save(tiny)
    command[4:7] = [str(tiny), "-o", str(work / "tiny_out.png")]
    start_up = median_wall(command)
    rows = [
        ("network alone (one call)", network),
        (f"network on the tiles ({len(calls)} calls)", on_tiles),
        ("decode PNG", decode),
        ("Upscaler.upscale_array (tiles + blend + network)", upscale),
        ("encode PNG (srkit's writer, whole image)", encode),
        ("srkit upscale CLI wall", cli),
        ("  of which start-up + model load (16x16 image)", start_up),
    ]
    for label, seconds in rows:
        print(f"{label:52s} {seconds:7.2f} s  {seconds / network:5.2f}x one call  "
              f"{seconds / on_tiles:5.2f}x on tiles")  # fmt: skip


if __name__ == "__main__":
    main()
