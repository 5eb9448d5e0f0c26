"""Upscale a 7680x4320 image x4 with `srkit upscale` and report peak RSS and wall time.

Makes a synthetic 8K PNG (smooth structure, edges and texture), then runs `srkit upscale` on it
in a child process (so the figures are the CLI's own: model load, decode, tiled inference,
streamed PNG encode) and reports the child's peak resident memory (ru_maxrss) and wall time.
Goal: peak RSS < 4 GB for the default model (srkit's shipped default x4, `srkit models`).

Usage:
  python benchmarks/bench_upscale.py [--model default|NAME|FILE]
      [--backend openvino --precision int8] [--tile 256] [--size 7680x4320] [--workdir DIR]
      [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = "default"  # srkit's default x4 model


def make_image(path: Path, width: int, height: int, seed: int = 0) -> None:
    """Smooth colour fields, hard-edged shapes and fine texture, built in row bands."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((height // 256 + 2, width // 256 + 2, 3)).astype(np.float32)
    field = np.stack(
        [
            np.asarray(Image.fromarray(coarse[..., c]).resize((width, height), Image.BICUBIC))
            for c in range(3)
        ],
        axis=-1,
    )
    image = np.empty((height, width, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:256, 0:width]
    for y0 in range(0, height, 256):
        rows = slice(y0, min(height, y0 + 256))
        n = rows.stop - rows.start
        band = field[rows] * 180.0 + 30.0
        stripes = ((xx[:n] // 37 + (yy[:n] + y0) // 53) % 2) * 30.0
        noise = rng.normal(0.0, 6.0, (n, width, 3))
        band += stripes[..., None] + noise
        image[rows] = np.clip(band, 0, 255).astype(np.uint8)
    Image.fromarray(image).save(path, compress_level=1)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG header; the chunk CRCs are checked too (Pillow's
    ``verify``, with the decompression-bomb limit lifted for this one file)."""
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise SystemExit(f"{path}: not a PNG")
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with Image.open(path) as image:
            image.verify()
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--size", default="7680x4320")
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--tile", type=int, default=None)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    work = args.workdir or Path(tempfile.mkdtemp(prefix="srkit-bench-upscale-"))
    work.mkdir(parents=True, exist_ok=True)
    source = work / f"input_{width}x{height}.png"
    if not source.is_file():
        t0 = time.perf_counter()
        make_image(source, width, height)
        print(f"made {source} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    target = work / "output_x4.png"
    target.unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "srkit.cli", "upscale", str(source), "-o", str(target),
        "--model", args.model, "--backend", args.backend, "--precision", args.precision,
    ]  # fmt: skip
    if args.tile is not None:
        command += ["--tile", str(args.tile)]
    env = dict(os.environ, SRKIT_MAX_PIXELS="none")
    t0 = time.perf_counter()
    completed = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(completed.stdout.strip())
    print(f"child peak RSS {peak_kib * 1024 / 1e9:.3f} GB, wall {wall:.1f} s", file=sys.stderr)
    if completed.returncode != 0:
        print(completed.stderr[-3000:], file=sys.stderr)
        raise SystemExit(completed.returncode)
    out_size = png_size(target)
    record = {
        "input": f"{width}x{height}",
        "output": f"{out_size[0]}x{out_size[1]}",
        "model": args.model,
        "backend": f"{args.backend}/{args.precision}",
        "tile": args.tile or "auto",
        "wall_s": round(wall, 1),
        "peak_rss_gb": round(peak_kib * 1024 / 1e9, 3),
        "output_mb": round(target.stat().st_size / 1e6, 1),
        "load_average": list(os.getloadavg()),
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(record, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    target.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
