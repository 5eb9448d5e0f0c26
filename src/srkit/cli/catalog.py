"""``srkit models``, ``srkit archs`` and ``srkit version``: what srkit has."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from srkit.cli._app import _fail, app, console, out


@app.command(
    epilog=(
        "Examples:\n\n"
        "  srkit models\n\n"
        "  srkit models --purpose face\n\n"
        "  srkit models --json models.json\n\n"
        "  srkit models --markdown   # the table docs/models.md shows\n\n"
        "  srkit models --update-docs README.md docs/*.md   # rewrite the generated tables\n\n"
        "  srkit bench --model repan_x4 --scale 4"
    )
)
def models(
    json_out: Annotated[
        str | None,
        typer.Option("--json", help="Write the list as JSON to this file (- for stdout)."),
    ] = None,
    purpose: Annotated[
        str | None,
        typer.Option(
            help="Only the models for: general, perceptual, face, blind, style or landmarks."
        ),
    ] = None,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the table as Markdown (as the docs show it).")
    ] = False,
    update_docs: Annotated[
        list[Path] | None,
        typer.Option(
            "--update-docs",
            help="Rewrite the generated tables (<!-- generated: NAME --> blocks) of these "
            "Markdown files from the manifests.",
        ),
    ] = None,
) -> None:
    """List the trained models shipped with srkit (offline, usable by name)."""
    from srkit.common.files import write_text_atomic
    from srkit.zoo import models_for, models_markdown, refresh_generated

    try:
        shipped = models_for(purpose)
    except (ValueError, OSError) as error:
        _fail(str(error))
    if update_docs:
        for path in update_docs:
            try:
                text = path.read_text(encoding="utf-8")
                fresh = refresh_generated(text)
            except (ValueError, OSError) as error:
                _fail(f"{path}: {error}")
            if fresh != text:
                write_text_atomic(path, fresh)
                console.print(f"updated {path}")
        return
    if markdown:
        out.print(models_markdown(shipped), end="", highlight=False, soft_wrap=True, markup=False)
        return
    if json_out is not None:
        import json

        text = json.dumps({"models": [m.to_json() for m in shipped]}, indent=2)
        if json_out == "-":
            out.print(text, highlight=False, soft_wrap=True)
        else:
            write_text_atomic(json_out, text + "\n")
            console.print(f"wrote {json_out}")
        return
    from rich.table import Table

    table = Table(title="srkit's shipped models (Set5, Y channel, border = scale)")
    columns = ("name", "arch", "purpose", "scale", "params", "default", "PSNR / SSIM", "legacy")
    for column in columns:
        table.add_column(
            column,
            justify="left" if column in ("name", "arch", "purpose") else "right",
            no_wrap=True,
        )
    for m in shipped:
        legacy = (
            f"{m.set5_psnr_legacy:.3f} / {m.set5_ssim_legacy:.4f}"
            if m.set5_psnr_legacy is not None and m.set5_ssim_legacy is not None
            else "-"
        )
        size = m.input_size
        table.add_row(
            m.name,
            m.arch,
            m.purpose + (f" {size[1]}x{size[0]}" if size else ""),  # a fixed input, W x H
            f"x{m.scale}",
            f"{m.params:,}",
            "yes" if m.default else "",
            f"{m.set5_psnr:.3f} / {m.set5_ssim:.4f}"
            if m.set5_psnr is not None and m.set5_ssim is not None
            else "-",
            legacy,
        )
    Console(width=max(110, out.width)).print(table)  # names and figures are never cut
    if not shipped:
        console.print(
            f"[yellow]no shipped {purpose} models in this installation"
            if purpose
            else "[yellow]no shipped models in this installation"
        )


@app.command()
def archs(
    size: Annotated[int, typer.Option(help="LR input side for the MAC count.")] = 256,
) -> None:
    """List the architectures: params per scale, MACs for a SIZE x SIZE input, papers."""
    from srkit.archs.catalog import print_catalog

    print_catalog(size=size)


@app.command()
def version() -> None:
    """Print srkit's version."""
    from srkit import __version__

    out.print(__version__)
