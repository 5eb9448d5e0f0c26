"""``srkit degrade apply``: a learned degradation (an H2L file of
:mod:`srkit.train.tasks.degradation`) over image files, folders, globs and zips: each HR image
becomes an LR image at 1/4 of its size.

An HR image whose sides are not multiples of 4 is cropped to them (bottom and right, the SR
mod-crop). Each image gets its own noise, seeded by ``seed`` and its name, so the same input and
seed give the same LR wherever it runs; an H2L whose manifest names a ``jpeg_quality`` range
also JPEG-compresses each LR at a quality drawn from that seed (the LR files are written
losslessly: PNG unless ``fmt`` says otherwise). Nothing is written unless every input can be
read and degraded: the LR images (1/16 of the HR pixels) are made in memory first, then
written, each atomically.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from srkit.common.progress import progress_bar
from srkit.image.io import write_image
from srkit.infer.batch import open_inputs, plan_jobs
from srkit.train.tasks.degradation import degrade_tensor, draw_qualities, load_h2l

MIN_SIDE = 8  # HR pixels: the H2L's two stride-2 stages need at least this


@dataclass
class DegradeResult:
    written: list[Path] = field(default_factory=list)
    model: str = ""


def image_seed(seed: int, name: str) -> int:
    """The noise seed of image ``name`` (stable across runs, machines and input order)."""
    return int(np.random.default_rng([seed, zlib.crc32(name.encode())]).integers(2**62))


@torch.no_grad()
def degrade_array(
    net, rgb: np.ndarray, seed: int, jpeg_quality: list[int] | None = None
) -> np.ndarray:
    """RGB uint8 ``(H, W, 3)`` -> the LR uint8 ``(H // 4, W // 4, 3)`` of the H2L ``net``, with
    a JPEG round trip at a quality drawn (from ``seed``) in ``jpeg_quality`` when given."""
    height, width = (rgb.shape[0] // net.scale) * net.scale, (rgb.shape[1] // net.scale) * net.scale
    if min(height, width) < MIN_SIDE:
        raise ValueError(f"{rgb.shape[1]} x {rgb.shape[0]} pixels: an HR image needs >= {MIN_SIDE}")
    crop = np.ascontiguousarray(rgb[:height, :width])
    x = torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255.0
    noise = net.draw_noise(1, height, width, generator=torch.Generator().manual_seed(seed))
    qualities = draw_qualities(jpeg_quality, np.random.default_rng([seed, 3]), 1)
    lr = degrade_tensor(net, x, noise, qualities=qualities)
    return (lr[0].permute(1, 2, 0) * 255).round().byte().numpy()


def degrade_files(
    model: str | os.PathLike,
    inputs: list[str],
    out: str | os.PathLike,
    *,
    seed: int = 0,
    recursive: bool = False,
    overwrite: bool = False,
    fmt: str | None = None,
    show_progress: bool = True,
) -> DegradeResult:
    """Degrade every input image into ``out`` (a file for one input, else a folder).

    Raises ``ValueError`` (one line, naming the input) for a missing or wrong model, no images,
    an unreadable or too small input, or an existing output without ``overwrite``; then nothing
    has been written.
    """
    net, manifest = load_h2l(model)
    sources, failed = open_inputs(inputs, recursive=recursive)
    if failed:
        label, reason = failed[0]
        raise ValueError(f"{label}: {reason}")
    jobs, unplanned = plan_jobs(sources, out, fmt=fmt) if sources else ([], [])
    if unplanned:
        label, reason = unplanned[0]
        raise ValueError(f"{label}: {reason}")
    if not jobs:
        raise ValueError(f"no images in {', '.join(inputs)}")
    if not overwrite:
        for job in jobs:
            if job.target.exists():
                raise ValueError(f"{job.target} exists (--overwrite replaces it)")
    results: list[tuple[Path, np.ndarray]] = []
    with progress_bar(enabled=show_progress) as progress:
        task = progress.add_task("degrading", total=len(jobs))
        for job in jobs:
            try:
                rgb = job.source.read(job.name).to_rgb8()
                lr = degrade_array(
                    net, rgb, image_seed(seed, job.name), manifest.get("jpeg_quality")
                )
                results.append((job.target, lr))
            except (OSError, ValueError, RuntimeError) as error:
                raise ValueError(f"{job.label}: {str(error).splitlines()[0]}") from None
            progress.advance(task)
    written = []
    for target, lr in results:
        target.parent.mkdir(parents=True, exist_ok=True)
        written.append(write_image(target, lr))
    return DegradeResult(written, str(manifest.get("name", "")))


def h2l_bench_degradation(model: str | os.PathLike, seed: int = 0):
    """A learned degradation as ``srkit bench --degradation`` uses one: uint8 HR ``(N, 3, H,
    W)`` (sides multiples of 4) -> uint8 LR at x4, with its JPEG when the H2L has one; each
    image's noise and JPEG quality are seeded by its content, so the pairs are the same on every
    run and in any order (paired evaluation on the learned camera). Raises ``ValueError`` for a
    file that is not an H2L; the returned function raises it for a scale other than the H2L's."""
    net, manifest = load_h2l(model)

    def degrade(hr: torch.Tensor, scale: int) -> torch.Tensor:
        if scale != net.scale:
            raise ValueError(f"{model}: a x{net.scale} degradation, asked for x{scale}")
        out = []
        for image in hr:
            rgb = image.permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
            digest = zlib.crc32(np.ascontiguousarray(rgb).tobytes())
            draw = int(np.random.default_rng([seed, digest]).integers(2**62))
            lr = degrade_array(net, rgb, draw, manifest.get("jpeg_quality"))
            out.append(torch.from_numpy(lr).permute(2, 0, 1))
        return torch.stack(out).to(hr.dtype)

    return degrade
