"""Time `srkit bench` against a plain float64 NumPy/SciPy implementation of the same protocol.

Makes N synthetic ~1024x768 PNG images (smooth structure, edges and texture), then in one run:

* `srkit bench --model bicubic --scale 4 --data DIR` as a user runs it (a subprocess, so start-up
  and image decoding are counted);
* the NumPy reference from tests/numpy_reference.py on the same files (decode included).

Prints both wall times, the ratio and both mean PSNR/SSIM (which must agree).
Usage: python benchmarks/bench_eval_speed.py [--n 100] [--scale 4] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import numpy_reference  # noqa: E402
from srkit.common.machine import cpu_name  # noqa: E402


def make_image(rng: np.random.Generator, height: int = 768, width: int = 1024) -> np.ndarray:
    """Structure at several scales plus hard edges, so bicubic is neither perfect nor hopeless."""
    image = np.zeros((height, width, 3), dtype=np.float64)
    for cells, weight in ((6, 120.0), (24, 60.0), (96, 30.0)):
        coarse = rng.random((cells * 3 // 4 + 1, cells + 1, 3)).astype(np.float32)
        planes = [
            np.asarray(Image.fromarray(coarse[..., c]).resize((width, height), Image.BICUBIC))
            for c in range(3)
        ]
        image += weight * np.stack(planes, axis=-1)
    for _ in range(12):  # rectangles with sharp borders
        y0, x0 = rng.integers(0, height - 50), rng.integers(0, width - 50)
        y1, x1 = y0 + rng.integers(20, 200), x0 + rng.integers(20, 200)
        image[y0:y1, x0:x1] += rng.uniform(-60, 60, size=3)
    image += rng.normal(0, 4, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def numpy_protocol(files: list[Path], scale: int) -> tuple[float, float]:
    psnrs, ssims = [], []
    for path in files:
        hr = np.asarray(Image.open(path).convert("RGB"))
        p, s = numpy_reference.evaluate_bicubic(hr, scale)
        psnrs.append(p)
        ssims.append(s)
    return float(np.mean(psnrs)), float(np.mean(ssims))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="number of images (default 100)")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the images here")
    parser.add_argument("--skip-numpy", action="store_true", help="time srkit only")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="srkit-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    files = sorted(workdir.glob("*.png"))
    if len(files) < args.n:
        rng = np.random.default_rng(0)
        for i in range(args.n):
            Image.fromarray(make_image(rng)).save(workdir / f"img{i:03d}.png", compress_level=1)
        files = sorted(workdir.glob("*.png"))
    files = files[: args.n]
    if len(files) != len(list(workdir.glob("*.png"))):
        subset = workdir / f"first{args.n}"
        subset.mkdir(exist_ok=True)
        for f in files:
            target = subset / f.name
            if not target.exists():
                target.symlink_to(f)
        data_dir = subset
    else:
        data_dir = workdir

    srkit = Path(sys.executable).parent / "srkit"
    summary = workdir / "summary.json"
    start = time.perf_counter()
    subprocess.run(
        [
            str(srkit),
            "bench",
            "--model",
            "bicubic",
            "--scale",
            str(args.scale),
            "--data",
            str(data_dir),
            "--json",
            str(summary),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    srkit_seconds = time.perf_counter() - start
    result = json.loads(summary.read_text())["results"][0]

    print(f"CPU: {cpu_name()}, {len(files)} images of 1024x768, bicubic x{args.scale}")
    psnr, ssim = result["psnr"], result["ssim"]
    print(f"srkit bench : {srkit_seconds:7.2f} s  PSNR {psnr:.4f}  SSIM {ssim:.5f}")
    if args.skip_numpy:
        return
    start = time.perf_counter()
    ref_psnr, ref_ssim = numpy_protocol(files, args.scale)
    numpy_seconds = time.perf_counter() - start
    print(f"NumPy (f64) : {numpy_seconds:7.2f} s  PSNR {ref_psnr:.4f}  SSIM {ref_ssim:.5f}")
    print(f"speed-up    : {numpy_seconds / srkit_seconds:.1f}x (target >= 7x, srkit <= 10 s)")
    print(f"|dPSNR| = {abs(ref_psnr - psnr):.2e} dB, |dSSIM| = {abs(ref_ssim - ssim):.2e}")


if __name__ == "__main__":
    main()
