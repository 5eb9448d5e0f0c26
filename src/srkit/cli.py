"""The ``srkit`` command line: parses arguments and calls the library, nothing more.

Each command imports the library inside its body, so that ``srkit --help`` starts without torch.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    name="srkit",
    help="Super-resolution toolkit: paper-exact evaluation, training and fast CPU inference.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True, soft_wrap=True)  # never break paths in messages
out = Console()

# Options that take several values after one flag (`--scale 2 3 4`), as SR users type them.
_VARIADIC_OPTIONS = {"--scale", "--data"}
_VARIADIC_BY_COMMAND = {
    "bench": {"--model"},  # several models side by side in one table
    "models": {"--update-docs"},  # several Markdown files
}


def _expand_variadic(argv: list[str]) -> list[str]:
    """Rewrite ``--scale 2 3 4`` as ``--scale 2 --scale 3 --scale 4`` for click."""
    command = next((token for token in argv if not token.startswith("-")), None)
    variadic = _VARIADIC_OPTIONS | _VARIADIC_BY_COMMAND.get(command or "", set())
    expanded: list[str] = []
    current: str | None = None
    for token in argv:
        if token == "--":
            current = None
            expanded.append(token)
        elif token in variadic:
            current = token
            expanded.append(token)
        elif current is not None and not token.startswith("-") and expanded[-1] != current:
            expanded.extend([current, token])
        else:
            if token.startswith("-"):
                current = None
            expanded.append(token)
    return expanded


def _fail(message: str, code: int = 1) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


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
        "  srkit bench --model repan --scale 4 --lr ~/x4/LR --data ~/x4/HR --pair-crop"
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
        typer.Option(help="Degradation YAML making the LR (default: MATLAB bicubic)."),
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
            pipeline = bench_degradation(Degradation.from_yaml(degradation))
        except ConfigError as error:
            _fail(f"{degradation}: {error}")
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
        "  srkit train recipes/espcn_x3.yaml   # every stage, from nothing to the shipped file\n\n"
        "  srkit train recipes/espcn_x3.yaml --iters-scale 0.01   # a smoke run of the chain\n\n"
        "  srkit train recipes/repan_x4.yaml --stage 2 --device cuda\n\n"
        "  srkit train my_stage.yaml --out runs/mine --resume --set data.batch_size=8\n\n"
        "  torchrun --nproc_per_node=2 -m srkit.cli train my_stage.yaml"
    )
)
def train(
    config: Annotated[
        Path, typer.Argument(help="A recipe (recipes/<model>.yaml) or one stage's YAML.")
    ],
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Output folder (default: runs/<name>; recipes: runs/recipes/<model>/<stage>).",
        ),
    ] = None,
    iters: Annotated[
        int | None, typer.Option(help="One stage: override train.iters; the schedule follows.")
    ] = None,
    iters_scale: Annotated[
        float | None,
        typer.Option(help="Recipes: shorten every stage by this factor (a smoke run)."),
    ] = None,
    stage: Annotated[
        int | None, typer.Option(help="Recipes: run only stage N (1-based); its start must exist.")
    ] = None,
    checkpoint_every: Annotated[
        int | None, typer.Option(help="Write OUT/last.ckpt every N iterations.")
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Continue from OUT/last.ckpt (bit-exact; recipes always do)."
        ),
    ] = False,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config key: --set optimizers.g.lr=2e-4."),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(help="auto (the GPU if torch sees one), cpu, cuda or cuda:N."),
    ] = None,
) -> None:
    """Train a model: a recipe's whole chain of stages, or one stage; exports
    <name>.safetensors + .json."""
    from srkit.config import ConfigError
    from srkit.train.experiment import load_experiment
    from srkit.train.recipe import RecipeRunner, is_recipe
    from srkit.train.trainer import resolve_device
    from srkit.train.trainer import train as run_training

    overrides = [*(set_ or []), *([f"train.device={device}"] if device else [])]
    if is_recipe(config):
        if iters is not None or checkpoint_every is not None:
            _fail("--iters and --checkpoint-every are for one stage; recipes take --iters-scale")
        try:
            runner = RecipeRunner(
                out_dir or Path("runs/recipes"), iters_scale=iters_scale or 1.0,
                overrides=overrides, echo=out.print,
            )  # fmt: skip
            model = runner.run(config, only_stage=stage)
        except (ConfigError, ValueError, OSError) as error:
            _fail(f"{config}: {error}")
        out.print(f"model: {model}")
        return
    if stage is not None or iters_scale is not None:
        _fail(
            f"{config} is one stage, not a recipe (no 'stages:'): "
            "--stage and --iters-scale do not apply"
        )
    try:
        experiment = load_experiment(config, overrides=overrides, iters=iters)
        resolve_device(experiment.train.device)
    except (ConfigError, ValueError) as error:
        _fail(f"{config}: {error}")
    out_dir = out_dir or Path("runs") / experiment.name
    try:
        result = run_training(experiment, out_dir, resume=resume, checkpoint_every=checkpoint_every)
    except (ConfigError, ValueError, OSError) as error:  # bad data, a checkpoint that does not fit
        _fail(f"{config}: {error}")
    if result.validation:
        last = result.validation[-1]["val"]
        summary = ", ".join(f"{k} {v['psnr']:.3f} dB" for k, v in last.items() if "psnr" in v)
        out.print(f"validation at iteration {result.iterations}: {summary}")
    out.print(f"model: {result.model_path} ({result.seconds / 60:.1f} min)")


@app.command(
    epilog=(
        "Examples:\n\n"
        "  srkit ship recipes/espcn_x3.yaml   # the recipe's last stage, trained by srkit train\n\n"
        "  srkit ship runs/mine/mine.safetensors --name mine_x4 --default --paper 31.5"
    )
)
def ship(
    source: Annotated[
        Path,
        typer.Argument(help="A recipe, a recipe stage's folder, or a run's .safetensors/.json."),
    ],
    name: Annotated[
        str | None, typer.Option(help="Shipped name (default: the recipe's model or the run's).")
    ] = None,
    default: Annotated[
        bool | None,
        typer.Option("--default/--no-default", help="Make it the default of its scale."),
    ] = None,
    paper: Annotated[
        float | None, typer.Option(help="The paper's Set5 PSNR, kept for tables.")
    ] = None,
    runs: Annotated[Path, typer.Option(help="Where srkit train put the recipes' runs.")] = Path(
        "runs/recipes"
    ),
    into: Annotated[
        Path | None, typer.Option(help="Models folder (default: srkit's own assets/models).")
    ] = None,
) -> None:
    """Ship a trained model into srkit: copy it, measure its Set5 figures (both conventions),
    record its recipe and list it in index.json."""
    from srkit.config import ConfigError
    from srkit.train.ship import ship as ship_model
    from srkit.zoo import MODELS_DIR

    try:
        manifest = ship_model(
            source, name=name, default=default, paper=paper, models_dir=into or MODELS_DIR,
            runs=runs,
        )  # fmt: skip
    except (ConfigError, ValueError, OSError) as error:
        _fail(f"{source}: {error}")
    modern = manifest["scores"]["set5"]["modern"]
    legacy = manifest["scores"]["set5"]["legacy"]
    out.print(
        f"shipped {manifest['name']} (x{manifest['scale']}, {manifest['params']:,} params): "
        f"Set5 {modern['psnr']:.3f} / {modern['ssim']:.4f} (legacy {legacy['psnr']:.3f} / "
        f"{legacy['ssim']:.4f})"
    )


@app.command(
    epilog=(
        "Examples:\n\n"
        "  srkit prepare ~/DIV2K/DIV2K_train_HR data/div2k_sub --size 480 --stride 240\n\n"
        "  srkit prepare $SRKIT_DATA/sr/train/T91 data/t91.h5 --lr-scale 3"
    )
)
def prepare(
    source: Annotated[str, typer.Argument(help="Folder, glob, zip, list file or HDF5.")],
    output: Annotated[Path, typer.Argument(help="Output folder, or a .h5 file.")],
    size: Annotated[int, typer.Option(help="Sub-image side; 0 keeps whole images.")] = 0,
    stride: Annotated[int, typer.Option(help="Step between sub-images.")] = 0,
    lr_scale: Annotated[
        int | None, typer.Option(help="HDF5 only: also store MATLAB-bicubic LR at this scale.")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace OUTPUT.")] = False,
) -> None:
    """Cut images into sub-images and/or pack them into HDF5 for training."""
    from srkit.train.prepare import prepare as run_prepare

    try:
        count = run_prepare(
            source, output, size=size, stride=stride, lr_scale=lr_scale, overwrite=overwrite
        )
    except (ValueError, FileExistsError, FileNotFoundError, ImportError) as error:
        _fail(str(error))
    out.print(f"wrote {count} images to {output}")


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
        "  srkit compare -o demo/\n\n"
        "  srkit compare photo.png --model rlfn_x4.pth --scale 4 -o out/ --crop 120 80 48"
    )
)
def compare(
    image: Annotated[
        Path | None, typer.Argument(help="HR image (default: the bundled Set5 butterfly).")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Shipped model name, weight file (.safetensors/.json, official .pth) or bicubic "
            "(default: srkit's default model for the scale)."
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
) -> None:
    """Show what SR does on one image: bicubic | model | HR with a zoomed crop and Y-PSNR.

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
        result = run_compare(source, model, int(numbers[0]) if numbers else 4, output, crop=crop)
    except (ValueError, OSError, ImportError) as error:  # ImageReadError is a ValueError
        _fail(str(error))
    x, y, side = result.crop
    pad = max(len("bicubic"), len(result.model))
    lines = [
        f"{source.name} x{result.scale} ({result.width}x{result.height}), Y-PSNR as srkit bench:",
        f"  {'bicubic':<{pad}}  {result.psnr_bicubic:6.2f} dB",
        f"  {result.model:<{pad}}  {result.psnr_model:6.2f} dB",
        f"zoom: {side}x{side} at ({x}, {y}), {result.zoom}x",
        f"wrote {result.sr_path}",
        f"wrote {result.compare_path}",
    ]
    for line in lines:
        out.print(line, highlight=False, soft_wrap=True)  # never break paths


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
            import torch

            from srkit.archs import build, get_spec
            from srkit.archs.adapter import NetworkModel

            torch.manual_seed(0)
            spec = get_spec(model)
            s = s or 4
            sr_model = NetworkModel(
                build(spec.name, scale=s),
                s,
                spec.convention,
                f"{spec.name} (random init)",
                info={"arch": spec.name},
            )
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
    meta: dict = {
        "model": sr_model.name,
        "scale": sr_model.scale,
        "size": size,
        "machine": machine_summary(speed=True),
    }
    if peak:
        from srkit.deploy.peak import matmul_peak

        meta["matmul_peak"] = matmul_peak()
        out.print(f"matmul peak: {meta['matmul_peak']}")
    if json is not None:
        write_json(results, json, **meta)
        console.print(f"results: {json}")


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
        typer.Option(help="Only the models for: general, perceptual, face, blind or style."),
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


# `srkit faces eval` / `srkit faces align`: the face-SR sub-app (srkit.faces.cli, light to import).
from srkit.faces.cli import faces_app  # noqa: E402

app.add_typer(faces_app, name="faces")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    app(args=_expand_variadic(args), prog_name="srkit")


if __name__ == "__main__":
    main()
