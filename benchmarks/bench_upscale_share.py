"""Where `srkit upscale`'s time goes on one large image: network vs everything else.

    PYTHONPATH=src python benchmarks/bench_upscale_share.py [--size 1920x1080] [--model default]
        [--backend torch] [--precision fp32]

Writes a synthetic photo-like PNG of ``--size``, then times, in this process:

* ``network``: the model on the whole image in one call (no tiles, no I/O): the floor;
* ``decode``: reading the PNG; ``upscale``: `Upscaler.upscale_array` (tiling, blending, colour
  handling, the network); ``encode``: writing the PNG;

and the wall time of the CLI itself (`srkit upscale IN -o OUT`, a child process: start-up,
model load, decode, tiled inference, streamed encode), and of the CLI on a 16x16 image (its
start-up and model load alone). The target is CLI wall <= 1.3 x network. Both sides run with
the allocator setting the CLI uses (:func:`srkit.common.allocator.retain_freed_memory`;
``SRKIT_MALLOC=system`` turns it off in both).
"""

from __future__ import annotations

import argparse
import os
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
from srkit.infer.upscaler import Upscaler

REPO = Path(__file__).resolve().parents[1]


def synthetic(width: int, height: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 0.5 + 0.25 * np.sin(x / 37.0) * np.cos(y / 53.0)
    edges = ((x // 97 + y // 61) % 2) * 0.2
    image = np.stack([base + edges, base, 1.0 - base], -1) + rng.normal(0, 0.03, (height, width, 3))
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--model", default="default")
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--precision", default="fp32")
    args = parser.parse_args()
    retain_freed_memory()  # as `srkit` does at start-up
    width, height = (int(v) for v in args.size.split("x"))
    work = Path(tempfile.mkdtemp(prefix="srkit-share-"))
    source = work / "in.png"
    Image.fromarray(synthetic(width, height)).save(source)
    up = Upscaler(args.model, backend=args.backend, precision=args.precision)
    print(f"CPU: {cpu_name()}, {torch.get_num_threads()} threads; {up.name} x{up.scale}, "
          f"{width}x{height} -> {width * up.scale}x{height * up.scale}, "
          f"{args.backend}/{args.precision}; PNG deflate: {deflate.BACKEND}; "
          f"allocator: {allocator_state()}")  # fmt: skip
    decode, rgb = timed(lambda: read_rgb(source))
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        up.model(x[..., :64, :64])  # warm-up
        network, _ = timed(lambda: up.model(x))
    upscale, out = timed(lambda: up.upscale_array(rgb))
    encode, _ = timed(lambda: Image.fromarray(out).save(work / "out_direct.png"))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "SRKIT_BACKEND": args.backend}
    command = [sys.executable, "-m", "srkit.cli", "upscale", str(source), "-o", str(work / "o.png"),
               "--model", args.model, "--precision", args.precision]  # fmt: skip
    cli, done = timed(lambda: subprocess.run(command, env=env, capture_output=True, text=True))
    if done.returncode != 0:
        sys.exit(f"srkit upscale failed: {done.stderr.strip().splitlines()[-1]}")
    tiny = work / "tiny.png"
    Image.fromarray(synthetic(16, 16)).save(tiny)
    command[4:7] = [str(tiny), "-o", str(work / "tiny_out.png")]
    start_up, _ = timed(lambda: subprocess.run(command, env=env, capture_output=True, check=True))
    rows = [
        ("network alone (one call)", network),
        ("decode PNG", decode),
        ("Upscaler.upscale_array (tiles + blend + network)", upscale),
        ("encode PNG (PIL, whole image)", encode),
        ("srkit upscale CLI wall", cli),
        ("  of which start-up + model load (16x16 image)", start_up),
    ]
    for label, seconds in rows:
        print(f"{label:52s} {seconds:7.2f} s  {seconds / network:5.2f}x network")


if __name__ == "__main__":
    main()
