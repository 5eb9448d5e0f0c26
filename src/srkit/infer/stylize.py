"""``srkit style apply``: a feed-forward style model over files, folders, globs and zips,
tiled like ``srkit upscale`` (the tiling of :mod:`srkit.infer.tiling` at scale 1).

It lives in ``infer`` (above ``style`` in the layers) so it reuses the upscaler's input
planning and tile blending. Instance normalisation makes a tile's statistics its own, so tiles
differ slightly in tone; the blended seams hide that, and ``tile=0`` runs the whole image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from srkit.common.progress import progress_bar
from srkit.infer.batch import open_inputs, plan_jobs
from srkit.infer.tiling import assemble, plan_tiles, run_tiled
from srkit.style import load_style_model, save_image

DEFAULT_TILE = 512


@dataclass
class StylizeResult:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


@torch.no_grad()
def stylize_tensor(
    net: torch.nn.Module, x: torch.Tensor, tile: int = DEFAULT_TILE, overlap: int = 32
) -> torch.Tensor:
    """``(1, 3, H, W)`` -> the stylised ``(1, 3, H, W)``, in tiles of at most ``tile`` pixels."""
    height, width = x.shape[-2:]
    if tile <= 0 or max(height, width) <= tile:
        return net(x).clamp(0, 1)
    plan = plan_tiles(height, width, 1, tile, overlap)

    def read(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        return np.ascontiguousarray(x[..., y0:y1, x0:x1].detach().float().cpu().numpy())

    def run(tile: np.ndarray) -> np.ndarray:
        out = net(torch.from_numpy(tile).to(x.device)).clamp(0, 1)
        return out.detach().float().cpu().numpy()

    blocks = run_tiled(run, read, plan)
    return torch.from_numpy(assemble(blocks, 3, height, width)).to(x.device)


def stylize(
    model: str | os.PathLike,
    inputs: list[str],
    out: str | os.PathLike,
    *,
    tile: int = DEFAULT_TILE,
    overlap: int = 32,
    recursive: bool = False,
    overwrite: bool = False,
    show_progress: bool = True,
) -> StylizeResult:
    """Stylise every input image into ``out`` (a file for one input, else a folder)."""
    net, manifest = load_style_model(model)
    if manifest.get("arch") != "transformer_net":
        raise ValueError(
            f"{model}: {manifest.get('arch')} is not a feed-forward style model "
            "(arch transformer_net)"
        )
    sources, failed = open_inputs(inputs, recursive=recursive)
    jobs, unplanned = plan_jobs(sources, out) if sources else ([], [])
    result = StylizeResult(failed=failed + unplanned)
    with progress_bar(enabled=show_progress) as progress:
        task = progress.add_task("stylising", total=len(jobs))
        for job in jobs:
            if job.target.exists() and not overwrite:
                result.failed.append((job.label, f"{job.target} exists (--overwrite replaces)"))
            else:
                try:
                    rgb = job.source.read(job.name).to_rgb8()
                    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]
                    y = stylize_tensor(net, x.float() / 255.0, tile, overlap)
                    result.written.append(save_image(y, job.target))
                except (OSError, ValueError, RuntimeError) as error:
                    result.failed.append((job.label, str(error).splitlines()[0]))
            progress.advance(task)
    return result
