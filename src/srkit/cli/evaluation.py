"""``srkit bench``, ``srkit compare`` and ``srkit speed``: scoring models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from srkit.cli._app import _fail, app, console, out


@app.command(
    epilog=(
        "Examples:\n\n"
        "  srkit bench                       (srkit's default models, x2 x3 x4, Set5)\n\n"
        "  srkit bench --model bicubic --scale 2 3 4\n\n"
        "  srkit bench --model repan espcn official/IMDN_x4.pth --scale 4\n\n"
        "  srkit bench --model repan --scale 4 --ensemble   (the self-ensemble, as repan_x4+)\n\n"
        "  srkit bench --model bicubic --scale 4 --data ~/datasets/Set14 B100.zip "
        "--convention legacy --csv set14.csv --json set14.json\n\n"
        "  srkit bench --model repan --scale 4 --data ~/datasets/RealSR   (holds LR/ and HR/)\n\n"
        "  srkit bench --model repan --scale 4 --lr ~/x4/LR --data ~/x4/HR --pair-crop\n\n"
        "  srkit bench --model blind_camera_x4 --scale 4 --degradation camera_h2l.safetensors"
        "   (LR made by a learned degradation)"
    )
)
def bench(
    model: Annotated[
        list[str] | None,
        typer.Option(
            help="One or more models, side by side: default (srkit's default model per "
            "scale), a shipped model (`srkit "
            "models`), bicubic/bilinear/nearest, or a weight file (srkit .safetensors, official "
            ".pth/.pt, LapSRN .mat)."
        ),
    ] = None,
    scale: Annotated[
        list[int] | None, typer.Option(help="One or more scales: --scale 2 3 4 (default).")
    ] = None,
    data: Annotated[
        list[str] | None,
        typer.Option(
            help="Datasets: folders, globs, .zip, list files or HDF5 (default: bundled Set5). "
            "A folder holding LR/ and HR/ is LR/HR pairs, matched by file stem."
        ),
    ] = None,
    lr: Annotated[
        Path | None,
        typer.Option(
            help="LR images paired by file stem with the one --data (the HR): scored as given, "
            "no degradation."
        ),
    ] = None,
    pair_crop: Annotated[
        bool,
        typer.Option(
            "--pair-crop",
            help="Paired data: crop an HR larger than scale x LR at the top left (as BasicSR "
            "evaluates RealSR-style sets) instead of failing.",
        ),
    ] = False,
    convention: Annotated[
        str,
        typer.Option(help="modern: Y in float (default); legacy: Y rounded to uint8."),
    ] = "modern",
    channel: Annotated[str, typer.Option(help="y (papers) or rgb.")] = "y",
    border: Annotated[
        int | None, typer.Option(help="Pixels cropped at each side (default: the scale).")
    ] = None,
    csv: Annotated[Path | None, typer.Option(help="Write per-image scores here.")] = None,
    json: Annotated[Path | None, typer.Option(help="Write the JSON summary here.")] = None,
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Report unreadable images and go on.")
    ] = False,
    degradation: Annotated[
        Path | None,
        typer.Option(
            help="Degradation YAML, or a learned H2L (.safetensors, `srkit degrade learn`), "
            "making the LR (default: MATLAB bicubic)."
        ),
    ] = None,
    arch: Annotated[
        str | None,
        typer.Option(help="Architecture of a weight file (default: detected from its keys)."),
    ] = None,
    ensemble: Annotated[
        bool,
        typer.Option(
            "--ensemble",
            help="Score the x8 geometric self-ensemble (flips and transposes averaged, 8x the "
            "time), reported as NAME+ like the papers' EDSR+ rows.",
        ),
    ] = False,
    metrics: Annotated[
        str,
        typer.Option(
            help="Comma-separated: psnr,ssim (always) and lpips (ST-LPIPS AlexNet), lpips_vgg, "
            "lpips_std:ALEXNET.pth (standard LPIPS), msssim, niqe.",
        ),
    ] = "psnr,ssim",
) -> None:
    """Evaluate a model on datasets and scales, exactly as SR papers do.

    LR inputs are MATLAB-bicubic downscales of the mod-cropped HR, rounded to uint8 (paired
    data: the stored LR, whose HR must be exactly `scale` times larger); SR outputs are rounded
    to uint8; PSNR/SSIM are taken on the BT.601 Y channel with `scale` pixels of border removed.
    """

    from srkit.bench.report import metrics_table, results_table, write_csv, write_json
    from srkit.bench.runner import run_benchmark
    from srkit.common.progress import progress_bar
    from srkit.data.builtin import bundled_set5
    from srkit.image.io import ImageReadError
    from srkit.metrics.select import parse_metrics

    datasets = data or [str(bundled_set5())]
    options: dict = {"lr": lr, "pair_crop": pair_crop}
    if lr is not None and len(datasets) != 1:
        _fail(f"--lr pairs with one --data (the HR images), got {len(datasets)}")
    if degradation is not None:
        from srkit.bench.engine import DegradationStep
        from srkit.config import ConfigError
        from srkit.data.degrade import Degradation, bench_degradation

        try:
            if degradation.suffix in (".safetensors", ".json"):  # a learned H2L
                from srkit.infer.degrade import h2l_bench_degradation

                pipeline = h2l_bench_degradation(degradation)
            else:
                pipeline = bench_degradation(Degradation.from_yaml(degradation))
        except (ConfigError, ValueError) as error:
            _fail(f"{degradation}: {str(error).splitlines()[0]}")
        named = DegradationStep(lambda hr, s, _first: pipeline(hr, s), degradation.stem)
        options["degradation"] = named
    if scale is None:
        try:
            scale = _paired_scale(datasets, lr)
        except (ValueError, FileNotFoundError, NotADirectoryError) as error:
            _fail(str(error))
    scales = sorted(set(scale or [2, 3, 4]))
    if any(s < 1 for s in scales):
        _fail(f"scales must be positive integers, got {scales}")
    try:
        options["metrics"] = parse_metrics(metrics)
    except (ValueError, FileNotFoundError) as error:
        _fail(f"--metrics: {error}")
    progress = progress_bar(console=console)
    tasks: list = []

    def on_dataset(source) -> None:
        tasks.append(progress.add_task(source.name, total=len(source) * len(scales)))

    results = []
    try:
        with progress:
            for spec in model or ["default"]:
                results += run_benchmark(
                    spec,
                    datasets,
                    scales,
                    convention=convention,
                    channel=channel,
                    border=border,
                    skip_bad=skip_bad,
                    arch=arch,
                    ensemble=ensemble,
                    on_dataset=on_dataset,
                    **options,
                    on_image=lambda steps: progress.advance(tasks[-1], steps),
                )
    except (ImageReadError, ValueError, FileNotFoundError, NotADirectoryError) as error:
        _fail(str(error))
    out.print(results_table(results, convention))
    extra = metrics_table(results)
    if extra is not None:
        out.print(extra)
    for result in results:
        for name in result.skipped:
            console.print(f"[yellow]skipped[/] {result.dataset}/{name} (unreadable)")
    if csv is not None:
        write_csv(results, csv)
        console.print(f"per-image scores: {csv}")
    if json is not None:
        write_json(results, json)
        console.print(f"summary: {json}")


def _paired_scale(datasets: list[str], lr: Path | None) -> list[int] | None:
    """The scale of paired data given without --scale (None: not paired, use the default)."""
    from srkit.bench.runner import pair_scale
    from srkit.data.pairs import open_dataset

    found: set[int] = set()
    for spec in datasets:
        with open_dataset(spec, lr) as source:
            if source.paired:
                found.add(pair_scale(source))
    if len(found) > 1:
        raise ValueError(f"paired datasets of different scales {sorted(found)}: give --scale")
    return sorted(found) or None


@app.command(
    epilog=(
        "Examples:\n\n"
        "  srkit compare -o demo/\n\n"
        "  srkit compare photo.png --model rlfn_x4.pth --scale 4 -o out/ --crop 120 80 48\n\n"
        "  srkit compare --model repan_x4 --model repan_gan_x4 --metrics lpips,niqe -o out/"
    )
)
def compare(
    image: Annotated[
        Path | None, typer.Argument(help="HR image (default: the bundled Set5 butterfly).")
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            help="Shipped model name, weight file (.safetensors/.json, official .pth) or bicubic "
            "(default: srkit's default model for the scale); repeat it for several columns "
            "(--model repan_x4 --model repan_gan_x4)."
        ),
    ] = None,
    scale: Annotated[list[str] | None, typer.Option(help="Scale factor (default: 4).")] = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Output folder (default: the current one).")
    ] = Path("."),
    crop: Annotated[
        tuple[int, int, int] | None,
        typer.Option(
            metavar="X Y W",
            help="Zoomed square: left, top, side in HR pixels (default: the most detailed).",
        ),
    ] = None,
    metrics: Annotated[
        str,
        typer.Option(
            help="Scores under each column beside the Y-PSNR, as srkit bench --metrics: lpips, "
            "lpips_vgg, lpips_std:ALEXNET.pth, msssim, niqe.",
        ),
    ] = "psnr",
) -> None:
    """Show what SR does on one image: bicubic | model(s) | HR with a zoomed crop and scores.

    The HR is downscaled exactly as `srkit bench` does (MATLAB bicubic, rounded to uint8); the
    PSNRs are the ones `srkit bench` reports for that image. Writes OUT/<stem>_x<scale>_<model>.png
    and OUT/<stem>_x<scale>_compare.png.
    """
    from srkit.data.builtin import bundled_set5
    from srkit.infer.compare import compare as run_compare

    # `--scale` is variadic for bench: `--scale 4 a.png` arrives as --scale 4 --scale a.png
    numbers = [s for s in scale or [] if s.lstrip("-").isdigit()]
    images = ([str(image)] if image is not None else []) + [
        s for s in scale or [] if not s.lstrip("-").isdigit()
    ]
    if len(images) > 1:
        _fail(f"one image per run, got {', '.join(images)}")
    if len(set(numbers)) > 1:
        _fail(f"one scale per run, got {', '.join(numbers)}")
    try:
        source = Path(images[0]) if images else bundled_set5() / "butterfly.png"
        result = run_compare(
            source,
            list(model) if model else None,
            int(numbers[0]) if numbers else 4,
            output,
            crop=crop,
            metrics=metrics,
        )
    except (ValueError, OSError, ImportError) as error:  # ImageReadError is a ValueError
        _fail(str(error))
    x, y, side = result.crop
    pad = max(len(column.name) for column in result.columns)
    lines = [f"{source.name} x{result.scale} ({result.width}x{result.height}), as srkit bench:"]
    for column in result.columns:
        scores = "".join(f"  {name} {value:.4f}" for name, value in column.scores.items())
        lines.append(f"  {column.name:<{pad}}  {column.psnr:6.2f} dB{scores}")
    lines.append(f"zoom: {side}x{side} at ({x}, {y}), {result.zoom}x")
    lines += [f"wrote {column.path}" for column in result.columns if column.path is not None]
    lines.append(f"wrote {result.compare_path}")
    for line in lines:
        out.print(line, highlight=False, soft_wrap=True)  # never break paths


@app.command(
    epilog=(
        "Examples:\n\n"
        "  srkit speed --model rlfn_x4.pth --size 256 --json speed.json\n\n"
        "  srkit speed --model edsr_baseline --random-init --scale 4 --no-psnr"
    )
)
def speed(
    model: Annotated[
        str, typer.Option(help="Weight file, or an architecture name with --random-init.")
    ],
    size: Annotated[int, typer.Option(help="Input side in pixels (square).")] = 256,
    scale: Annotated[list[int] | None, typer.Option(help="Scale (default: the model's).")] = None,
    json: Annotated[Path | None, typer.Option(help="Write the results as JSON here.")] = None,
    backend: Annotated[
        list[str] | None,
        typer.Option(help="Only these backend/precision pairs, e.g. openvino/int8."),
    ] = None,
    calib: Annotated[
        Path | None, typer.Option(help="int8 calibration images (default: bundled Set5).")
    ] = None,
    psnr: Annotated[bool, typer.Option(help="Also score each backend on Set5.")] = True,
    random_init: Annotated[
        bool,
        typer.Option(
            "--random-init",
            help="Build an architecture with random weights (speed only: its PSNR means nothing).",
        ),
    ] = False,
    peak: Annotated[bool, typer.Option(help="Also measure the matmul peak.")] = True,
    min_time: Annotated[float, typer.Option(help="Seconds of timed runs per backend.")] = 2.0,
) -> None:
    """Measure every available backend x precision: MP/s, ratio to eager fp32, Set5 PSNR."""
    from rich.table import Table

    from srkit.common.machine import machine_summary
    from srkit.deploy.speed import measure, write_json

    s = scale[0] if scale else None
    try:
        if random_init:
            from srkit.models import random_model

            sr_model = random_model(model, s or 4)
            console.print("[yellow]random weights: speed only, the PSNR column means nothing")
        else:
            from srkit.models import resolve_model

            sr_model = resolve_model(model, s)
    except (ValueError, KeyError, FileNotFoundError) as error:
        _fail(str(error))
    combos = None
    if backend:
        combos = [tuple(b.split("/", 1)) if "/" in b else (b, "fp32") for b in backend]
    table = Table(title=f"{sr_model.name} x{sr_model.scale}, {size}x{size} input")
    for column in ("backend", "precision", "MP/s", "vs eager fp32", "Set5 PSNR", "max |diff|"):
        table.add_column(column, justify="left" if column in ("backend", "precision") else "right")

    def show(r) -> None:
        if r.error:
            console.print(f"[yellow]{r.backend}/{r.precision}[/]: {r.error}", highlight=False)
        else:
            console.print(f"{r.backend}/{r.precision}: {r.mp_per_s:.3f} MP/s", highlight=False)

    results = measure(
        sr_model,
        size=size,
        combos=combos,
        psnr=psnr,
        calib=calib,
        min_time=min_time,
        on_result=show,
    )
    for r in results:
        if r.error is None:
            table.add_row(
                r.backend,
                r.precision,
                f"{r.mp_per_s:.3f}",
                f"{r.ratio_vs_eager_fp32:.2f}x",
                f"{r.set5_psnr:.3f}" if r.set5_psnr == r.set5_psnr else "-",  # NaN: not scored
                f"{r.max_abs_vs_fp32:.1e}",
            )
    out.print(table)
    from srkit.deploy.auto import BUDGET_DB, pick

    chosen = pick(results) if psnr else None
    if chosen is not None:
        out.print(
            f"--backend auto picks {chosen.backend}/{chosen.precision}: the fastest within "
            f"{BUDGET_DB} dB of eager fp32 on Set5 ({chosen.ratio_vs_eager_fp32:.2f}x)"
        )
    meta: dict = {
        "model": sr_model.name,
        "scale": sr_model.scale,
        "size": size,
        "machine": machine_summary(speed=True),
        "auto_choice": None if chosen is None else f"{chosen.backend}/{chosen.precision}",
    }
    if peak:
        from srkit.deploy.peak import matmul_peak

        meta["matmul_peak"] = matmul_peak()
        out.print(f"matmul peak: {meta['matmul_peak']}")
    if json is not None:
        write_json(results, json, **meta)
        console.print(f"results: {json}")
