"""Paper-style tables, per-image CSV and the JSON summary of ``srkit bench``."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path

from rich.table import Table

from srkit.bench.runner import DatasetResult
from srkit.common.files import write_text_atomic


def results_table(results: Sequence[DatasetResult], convention: str) -> Table:
    """Rows: model x dataset; columns: each scale's PSNR/SSIM (the layout of SR papers)."""
    scales = sorted({r.scale for r in results})
    table = Table(title=f"Y-PSNR (dB) / SSIM, {convention} convention, border = scale")
    table.add_column("model")
    table.add_column("dataset")
    for scale in scales:
        table.add_column(f"x{scale}", justify="right")
    rows: dict[tuple[str, str], dict[int, DatasetResult]] = {}
    for result in results:
        # one row per model family, as papers print them: repan_x2 .. repan_x4 -> repan
        label = result.model.removesuffix(f"_x{result.scale}")
        rows.setdefault((label, result.dataset), {})[result.scale] = result
    for (model, dataset), by_scale in rows.items():
        cells = []
        for scale in scales:
            r = by_scale.get(scale)
            cells.append("-" if r is None or r.n == 0 else f"{r.psnr:.3f} / {r.ssim:.4f}")
        table.add_row(model, dataset, *cells)
    return table


def _number(value: float, digits: int) -> str:
    return "inf" if math.isinf(value) else f"{value:.{digits}f}"


def _extra_number(value: float, digits: int) -> str:
    return "" if math.isnan(value) else _number(value, digits)


def _extra_names(results: Sequence[DatasetResult]) -> list[str]:
    """The metrics beyond PSNR/SSIM of any result, in first-seen order."""
    return list(dict.fromkeys(name for r in results for name in r.extra))


def metrics_table(results: Sequence[DatasetResult]) -> Table | None:
    """Rows: model x dataset x scale; columns: the ``--metrics`` beyond PSNR/SSIM."""
    names = _extra_names(results)
    if not names:
        return None
    table = Table(title="Further metrics (LPIPS, NIQE: lower is better; MS-SSIM: higher)")
    for column in ("model", "dataset", "scale"):
        table.add_column(column)
    for name in names:
        table.add_column(name, justify="right")
    for r in results:
        cells = [_extra_number(r.extra.get(name, math.nan), 4) or "-" for name in names]
        table.add_row(r.model, r.dataset, f"x{r.scale}", *cells)
    return table


def write_csv(results: Sequence[DatasetResult], path: str | Path) -> None:
    """One row per image; each (model, dataset, scale) group ends with its ``mean`` row."""
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    extra = _extra_names(results)
    writer.writerow(
        ["model", "dataset", "scale", "image", "height", "width", "psnr", "ssim", *extra]
    )
    for r in results:
        for score in r.per_image:
            writer.writerow(
                [
                    r.model,
                    r.dataset,
                    r.scale,
                    score.image,
                    score.height,
                    score.width,
                    _number(score.psnr, 4),
                    f"{score.ssim:.6f}",
                    *(_extra_number(score.extra.get(name, math.nan), 6) for name in extra),
                ]
            )
        writer.writerow(
            [r.model, r.dataset, r.scale, "mean", "", "", _number(r.psnr, 4), f"{r.ssim:.6f}"]
            + [_extra_number(r.extra.get(name, math.nan), 6) for name in extra]
        )
    write_text_atomic(path, buffer.getvalue(), newline="")


def summary_json(results: Sequence[DatasetResult]) -> dict:
    """``{"results": [{model, dataset, scale, psnr, ssim, n, seconds, skipped, <metrics>}]}``."""
    return {"results": [r.summary() for r in results]}


def write_json(results: Sequence[DatasetResult], path: str | Path) -> None:
    write_text_atomic(path, json.dumps(summary_json(results), indent=2) + "\n")
