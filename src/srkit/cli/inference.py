"""``srkit upscale`` and ``srkit export``: running models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from srkit.cli._app import _fail, app, console, out


@app.command(
    epilog=(
        "Examples:\n\n"
        "  srkit upscale photo.png -o photo_x4.png\n\n"
        "  srkit upscale photo.png -o photo_x2.png --scale 2 --model repan\n\n"
        "  srkit upscale photo.png -o photo_x4.png --model rlfn_x4.pth\n\n"
        "  srkit upscale shots/ more/*.jpg album.zip -o out/ --model model.safetensors "
        "--recursive --format png --tile 256 --backend openvino --precision int8 --calib shots/"
    )
)
def upscale(
    inputs: Annotated[
        list[str] | None, typer.Argument(help="Image files, folders, globs or .zip archives.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Output folder (a file name for one input)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="A shipped model (`srkit models`; default: srkit's default model), a weight "
            "file (.safetensors/.json, official .pth, .mat) or bicubic."
        ),
    ] = None,
    scale: Annotated[
        list[str] | None, typer.Option(help="Scale (default: the model's; 4 for the default).")
    ] = None,
    tile: Annotated[
        int | None, typer.Option(help="Tile size in input pixels (default: auto; 0: no tiles).")
    ] = None,
    tile_overlap: Annotated[int, typer.Option(help="Context pixels around each tile.")] = 16,
    backend: Annotated[str, typer.Option(help="torch, torch-cl, onnxruntime or openvino.")] = (
        "torch"
    ),
    precision: Annotated[str, typer.Option(help="fp32, bf16 or int8.")] = "fp32",
    calib: Annotated[
        Path | None, typer.Option(help="int8: folder of typical inputs to calibrate on.")
    ] = None,
    ensemble: Annotated[
        bool, typer.Option("--ensemble", help="x8 geometric self-ensemble (slower, +PSNR).")
    ] = False,
    recursive: Annotated[bool, typer.Option("--recursive", help="Descend into folders.")] = False,
    format: Annotated[
        str | None, typer.Option("--format", help="Output format: png (default), jpg, webp, tif.")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace existing output files.")
    ] = False,
) -> None:
    """Upscale images (tiled, bounded memory); exits non-zero if any file failed."""

    from srkit.common.progress import progress_bar
    from srkit.infer.batch import open_inputs, plan_jobs, run_batch
    from srkit.infer.upscaler import Upscaler

    # `--scale` is variadic for bench: `--scale 4 a.png` arrives as --scale 4 --scale a.png
    numbers = [s for s in scale or [] if s.lstrip("-").isdigit()]
    inputs = list(inputs or []) + [s for s in scale or [] if not s.lstrip("-").isdigit()]
    if not inputs:
        _fail("no input images given")
    if output is None:
        _fail("give the output folder (or file) with -o")
    if len(set(numbers)) > 1:
        _fail(f"one scale per run, got {', '.join(numbers)}")
    try:
        upscaler = Upscaler(
            model,
            scale=int(numbers[0]) if numbers else None,
            tile=tile,
            overlap=tile_overlap,
            backend=backend,
            precision=precision,
            ensemble=ensemble,
            calib=calib,
        )
        sources, failed = open_inputs(inputs, recursive=recursive)
        jobs, collisions = plan_jobs(sources, output, format)
    except (ValueError, FileNotFoundError, ImportError, RuntimeError) as error:
        _fail(str(error))
    failed += collisions
    for label, reason in failed:
        console.print(f"[yellow]skipped[/] {label}: {reason}", highlight=False)
    progress = progress_bar(console=console)
    images = progress.add_task("images", total=len(jobs))
    tiles = progress.add_task("tiles", total=1, visible=False)

    def on_image(job, count: int) -> None:
        progress.update(tiles, description=job.name[-40:], total=count, completed=0, visible=True)

    def on_done(job, error: str | None) -> None:
        progress.advance(images)
        if error is not None:
            progress.console.print(f"[red]failed[/] {job.label}: {error}", highlight=False)

    with progress:
        result = run_batch(
            upscaler,
            jobs,
            overwrite=overwrite,
            on_image=on_image,
            on_tile=lambda: progress.advance(tiles),
            on_done=on_done,
        )
    failed_total = len(failed) + len(result.failed)
    out.print(
        f"{len(result.written)} written, {failed_total} failed, {result.tiles} tiles, "
        f"{result.seconds:.1f} s ({upscaler.name}, x{upscaler.scale}, {backend}/{precision})"
    )
    if failed_total:
        raise typer.Exit(1)


@app.command(
    epilog=(
        "Examples:\n\n"
        "  srkit export --model rlfn_x4.pth --format onnx -o rlfn_x4.onnx\n\n"
        "  srkit export --model model.safetensors --format openvino --int8 --calib photos/ "
        "-o deploy/model_int8.xml"
    )
)
def export(
    model: Annotated[str, typer.Option(help="Weight file (.safetensors/.json, official .pth).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output file (.onnx or .xml).")],
    format: Annotated[str, typer.Option("--format", help="onnx or openvino.")] = "onnx",
    int8: Annotated[bool, typer.Option("--int8", help="Static int8 (QDQ) quantisation.")] = False,
    calib: Annotated[
        Path | None, typer.Option(help="int8: folder of typical inputs (default: Set5).")
    ] = None,
    scale: Annotated[list[int] | None, typer.Option(help="Scale (multi-scale files).")] = None,
) -> None:
    """Export a model: ONNX (dynamic height/width) or OpenVINO IR, fp32 or static int8."""
    from srkit.deploy import DeployError
    from srkit.deploy import export as run_export
    from srkit.models import resolve_model

    try:
        sr_model = resolve_model(model, scale[0] if scale else None)
        path = run_export(sr_model, output, format, int8=int8, calib=calib)
    except (DeployError, ValueError, FileNotFoundError) as error:
        _fail(str(error))
    out.print(f"wrote {path}")
