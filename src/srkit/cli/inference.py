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
        "--recursive --format png --tile 256 --backend openvino --precision int8 --calib shots/\n\n"
        "  srkit upscale photos/ -o out/ --keep-tree --skip-existing --report out/report.csv\n\n"
        "  srkit upscale photos/ -o out/ --engine ray --workers 2 --threads 1\n\n"
        "  srkit upscale photos/ -o out/ --engine ray --address auto   # a running cluster\n\n"
        "  srkit upscale clip.mp4 -o clip_x4.mp4 --frames 0:250"
    )
)
def upscale(
    inputs: Annotated[
        list[str] | None,
        typer.Argument(help="Image files, folders, globs, .zip archives, .txt lists; or a video."),
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
    backend: Annotated[
        str,
        typer.Option(
            help="auto (the fastest installed backend within 0.05 dB of fp32 on Set5, timed "
            "once per CPU and model, then cached), torch, torch-cl, torch-compile, onnxruntime "
            "or openvino.",
            envvar="SRKIT_BACKEND",
        ),
    ] = "auto",
    precision: Annotated[
        str | None,
        typer.Option(help="fp32, bf16 or int8 (default: fp32; with auto, any that passes)."),
    ] = None,
    calib: Annotated[
        Path | None, typer.Option(help="int8: folder of typical inputs to calibrate on.")
    ] = None,
    ensemble: Annotated[
        bool, typer.Option("--ensemble", help="x8 geometric self-ensemble (slower, +PSNR).")
    ] = False,
    recursive: Annotated[bool, typer.Option("--recursive", help="Descend into folders.")] = False,
    keep_tree: Annotated[
        bool,
        typer.Option(
            "--keep-tree",
            help="Descend into folders and write each input under a folder of its name "
            "(photos/2024/a.jpg -> OUT/photos/2024/a.png).",
        ),
    ] = False,
    format: Annotated[
        str | None, typer.Option("--format", help="Output format: png (default), jpg, webp, tif.")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace existing output files.")
    ] = False,
    skip_existing: Annotated[
        bool,
        typer.Option(
            "--skip-existing", help="Leave outputs that exist (an earlier run's) and go on: resume."
        ),
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(help="Write one row per input (written/skipped/failed) to this .csv/.json."),
    ] = None,
    engine: Annotated[str, typer.Option(help="local (this process) or ray (Ray actors).")] = (
        "local"
    ),
    address: Annotated[
        str | None,
        typer.Option(help="ray: a running cluster (auto, HOST:PORT); default: start a local one."),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="ray: actors (default: the cluster's CPUs // --threads).")
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(help="torch threads per process (local: all cores; ray: 1 per actor)."),
    ] = None,
    frames: Annotated[
        str | None, typer.Option(help="Video: frames A:B (A to B-1, 0-based) only.")
    ] = None,
    crf: Annotated[int, typer.Option(help="Video: H.264/VP9 quality (lower is better).")] = 18,
    png_level: Annotated[
        int,
        typer.Option(help="PNG deflate level, 0-9 (1-2: fast; 3-9: zlib's, a few % smaller)."),
    ] = 2,
) -> None:
    """Upscale images or a video (tiled, bounded memory); exits non-zero if any file failed."""

    from srkit.infer.video import is_video

    # `--scale` is variadic for bench: `--scale 4 a.png` arrives as --scale 4 --scale a.png
    numbers = [s for s in scale or [] if s.lstrip("-").isdigit()]
    inputs = list(inputs or []) + [s for s in scale or [] if not s.lstrip("-").isdigit()]
    if not inputs:
        _fail("no input images given")
    if output is None:
        _fail("give the output folder (or file) with -o")
    if len(set(numbers)) > 1:
        _fail(f"one scale per run, got {', '.join(numbers)}")
    if engine not in ("local", "ray"):
        _fail(f"--engine {engine!r}: choose local or ray")
    video = any(is_video(i) and Path(i).is_file() for i in inputs)
    if video and (len(inputs) > 1 or engine != "local"):
        _fail("a video is upscaled alone, with --engine local: one video input per run")
    if frames is not None and not video:
        _fail("--frames is for a video input")
    if threads is not None and threads < 1:
        _fail(f"--threads must be >= 1, got {threads}")
    wanted_scale = int(numbers[0]) if numbers else None
    local_threads = threads if engine == "local" else None  # ray: per worker
    if local_threads is not None:
        from srkit.common.bands import set_threads

        set_threads(local_threads)

    def full_upscaler():
        from srkit.infer.upscaler import Upscaler

        if local_threads is not None:
            import torch

            torch.set_num_threads(local_threads)
        return Upscaler(
            model,
            scale=wanted_scale,
            tile=tile,
            overlap=tile_overlap,
            backend=backend,
            precision=precision,
            ensemble=ensemble,
            calib=calib,
            on_message=lambda text: console.print(text, highlight=False),
            png_level=png_level,
        )

    upscaler = request = None
    if engine == "local" and not video and not ensemble:
        from srkit.infer import fastpath

        request = fastpath.Request.of(model, wanted_scale, backend, precision, calib, threads)
        # the same request as an earlier run on OpenVINO: no PyTorch to import
        upscaler = fastpath.fast_upscaler(
            request, full_upscaler, tile=tile, overlap=tile_overlap, png_level=png_level
        )
    try:
        if upscaler is None:
            upscaler = full_upscaler()
            if request is not None:
                fastpath.remember(request, upscaler)  # the next such run starts at once
    except (ValueError, FileNotFoundError, ImportError, RuntimeError) as error:
        _fail(str(error))
    if upscaler.backend_choice is not None:
        console.print(
            f"backend: {upscaler.backend_choice.label} ({upscaler.backend_choice.reason})",
            highlight=False,
        )
    if video:
        _upscale_video(upscaler, Path(inputs[0]), output, frames, crf, overwrite)
        return
    _upscale_images(
        upscaler,
        inputs,
        output,
        recursive=recursive or keep_tree,
        keep_tree=keep_tree,
        fmt=format,
        overwrite=overwrite,
        skip_existing=skip_existing,
        report=report,
        engine=engine,
        ray_options={"address": address, "workers": workers, "threads": threads or 1},
        label=f"{upscaler.backend}/{upscaler.precision}",
    )


def _upscale_images(
    upscaler, inputs, output, *, recursive, keep_tree, fmt, overwrite, skip_existing, report,
    engine, ray_options, label,
) -> None:  # fmt: skip
    from srkit.common.progress import progress_bar
    from srkit.infer.batch import check_format, open_inputs, plan_jobs, run_batch, write_report

    try:
        check_format(fmt)
        sources, failed = open_inputs(inputs, recursive=recursive)
        jobs, collisions = (
            plan_jobs(sources, output, fmt, keep_tree=keep_tree) if sources else ([], [])
        )
    except (ValueError, FileNotFoundError) as error:
        _fail(str(error))
    failed += collisions
    for name, reason in failed:
        console.print(f"[yellow]skipped[/] {name}: {reason}", highlight=False)
    progress = progress_bar(console=console, remaining=True)
    images = progress.add_task("images", total=len(jobs))
    tiles = progress.add_task("tiles", total=1, visible=False)

    def on_image(job, count: int) -> None:
        progress.update(tiles, description=job.name[-40:], total=count, completed=0, visible=True)

    def on_done(job, error: str | None) -> None:
        progress.advance(images)
        if error is not None:
            progress.console.print(f"[red]failed[/] {job.label}: {error}", highlight=False)

    def on_start(count: int) -> None:
        progress.update(images, description=f"images ({count} Ray workers)")

    with progress:
        try:
            if engine == "ray":
                from srkit.infer.ray_engine import run_ray

                result = run_ray(
                    upscaler,
                    jobs,
                    overwrite=overwrite,
                    skip_existing=skip_existing,
                    on_start=on_start,
                    on_done=on_done,
                    **ray_options,
                )
                label += f", ray: {ray_options['threads']} thread(s) per worker"
            else:
                result = run_batch(
                    upscaler,
                    jobs,
                    overwrite=overwrite,
                    on_image=on_image,
                    on_tile=lambda: progress.advance(tiles),
                    on_done=on_done,
                    skip_existing=skip_existing,
                )
        except (ImportError, RuntimeError, ValueError) as error:
            progress.stop()
            _fail(str(error))
    if report is not None:
        from srkit.infer.batch import FileRecord

        early = [FileRecord(name, "", "failed", reason) for name, reason in failed]
        write_report(report, early + result.records)
    failed_total = len(failed) + len(result.failed)
    skipped = f"{len(result.skipped)} skipped (done), " if result.skipped else ""
    rate = len(result.written) / result.seconds if result.seconds > 0 else 0.0
    out.print(
        f"{len(result.written)} written, {skipped}{failed_total} failed, {result.tiles} tiles, "
        f"{result.seconds:.1f} s, {rate:.2f} images/s ({upscaler.name}, x{upscaler.scale}, "
        f"{label})",
        soft_wrap=True,
    )
    if failed_total:
        raise typer.Exit(1)


def _upscale_video(upscaler, source: Path, output: Path, frames, crf: int, overwrite) -> None:
    from srkit.common.progress import progress_bar
    from srkit.infer.video import parse_frames, upscale_video

    progress = progress_bar("{task.fields[fps]}", console=console, remaining=True)
    task = progress.add_task("frames", total=None, fps="")
    began = [0.0]

    def on_start(total: int | None) -> None:
        import time

        began[0] = time.perf_counter()
        progress.update(task, total=total)

    def on_frame() -> None:
        import time

        done = progress.tasks[0].completed + 1
        fps = done / max(time.perf_counter() - began[0], 1e-9)
        progress.update(task, advance=1, fps=f"{fps:.2f} frames/s")

    try:
        span = parse_frames(frames)
        with progress:
            result = upscale_video(
                upscaler,
                source,
                output,
                frames=span,
                overwrite=overwrite,
                crf=crf,
                on_start=on_start,
                on_frame=on_frame,
            )
    except (ValueError, FileNotFoundError, FileExistsError, ImportError) as error:
        _fail(str(error))
    audio = f", {result.audio_streams} audio stream(s) copied" if result.audio_streams else ""
    out.print(
        f"wrote {result.path}: {result.frames} frames {result.width}x{result.height}{audio}, "
        f"{result.seconds:.1f} s, {result.fps:.2f} frames/s ({upscaler.name}, x{upscaler.scale})",
        soft_wrap=True,
    )


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
