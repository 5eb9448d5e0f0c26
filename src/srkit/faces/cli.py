"""``srkit faces``: the face-SR commands (a typer sub-app mounted by ``srkit.cli``).

Thin layer: arguments in, :func:`srkit.faces.evaluate.run_faces_eval` /
:func:`srkit.faces.batch.align_images` called, results printed. Heavy imports happen inside the
commands so that ``srkit --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

faces_app = typer.Typer(
    name="faces",
    help="Face SR: identity-preserving evaluation on LFW or a folder, face alignment.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_err = Console(stderr=True)
_out = Console()


def _fail(message: str, code: int = 1) -> None:
    _err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _box(text: str | None) -> tuple[int, int, int, int] | None:
    if text is None:
        return None
    try:
        vals = tuple(int(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        vals = ()
    if len(vals) != 4:
        _fail(f"--fallback-box takes LEFT,TOP,RIGHT,BOTTOM pixels, got {text!r}")
    return vals  # type: ignore[return-value]


@faces_app.command(
    "eval",
    epilog=(
        "Examples:\n\n"
        "  srkit faces eval --model bicubic --scale 8\n\n"
        "  srkit faces eval --model weights/x8.safetensors --scale 8 --pairs pairs.txt "
        "--csv x8.csv --json x8.json\n\n"
        "  srkit faces eval --model bicubic --scale 4 --data ~/faces --degradation jpeg.yaml"
    ),
)
def eval_(
    model: Annotated[
        list[str], typer.Option(help="bicubic, bilinear, nearest or a weight file (repeatable).")
    ],
    scale: Annotated[list[int], typer.Option(help="Scale factor: 4 (32x32 LR) or 8 (16x16 LR).")],
    data: Annotated[
        str | None,
        typer.Option(help="LFW zip/folder (default: $SRKIT_DATA/faces/lfw) or a face folder."),
    ] = None,
    pairs: Annotated[
        Path | None,
        typer.Option(help="LFW pairs list (default pairsDevTest.txt; pairs.txt: 10-fold)."),
    ] = None,
    degradation: Annotated[
        Path | None,
        typer.Option(help="Degradation pipeline YAML (default: MATLAB bicubic, uint8)."),
    ] = None,
    csv: Annotated[Path | None, typer.Option(help="Per-image CSV (ends with a mean row).")] = None,
    json: Annotated[Path | None, typer.Option(help="JSON summary.")] = None,
    embedder: Annotated[
        str, typer.Option(help="Identity network: dlib (default) or an .onnx face model.")
    ] = "dlib",
    workers: Annotated[
        int | None, typer.Option(help="Worker threads (default: torch's thread count).")
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Recompute the HR stage, write no cache.")
    ] = False,
) -> None:
    """Score SR models by how well super-resolved faces keep their identity.

    HR = 128x128 crop aligned by dlib's 5 landmarks; LR = MATLAB bicubic of it (uint8); SR by the
    model; identity distance/cosine of SR vs HR (dlib ResNet, HR landmarks), PSNR/SSIM on Y;
    with pairs, verification accuracy at 0.6 and at the best threshold. See docs/faces.md.
    """
    from srkit.faces.degrade import load_degradation
    from srkit.faces.detect import FaceNotFoundError
    from srkit.faces.evaluate import run_faces_eval
    from srkit.faces.paths import MissingModelError
    from srkit.image.io import ImageReadError

    if any(s < 2 for s in scale):
        _fail(f"scale must be an integer >= 2, got {scale}")
    try:
        deg = load_degradation(degradation)
        for s in sorted(set(scale)):
            run_faces_eval(
                model,
                s,
                data=data,
                pairs=pairs,
                degradation=deg,
                csv_path=_per_scale(csv, s, scale),
                json_path=_per_scale(json, s, scale),
                embedder=embedder,
                workers=workers,
                use_cache=not no_cache,
                progress=True,
                log=lambda msg: _out.print(msg, highlight=False),
            )
    except (
        MissingModelError,
        FaceNotFoundError,
        ImageReadError,
        FileNotFoundError,
        ValueError,
        ImportError,
    ) as error:
        _fail(str(error))
    for path in (csv, json):
        if path is not None:
            _err.print(
                f"written: {path}" if len(set(scale)) == 1 else f"written: {path} (per scale)"
            )


def _per_scale(path: Path | None, s: int, scales: list[int]) -> Path | None:
    if path is None or len(set(scales)) == 1:
        return path
    return path.with_name(f"{path.stem}_x{s}{path.suffix}")


@faces_app.command(
    "align",
    epilog=(
        "Examples:\n\n"
        "  srkit faces align photos/ crops/ --template arcface\n\n"
        "  srkit faces align $SRKIT_DATA/faces/lfw/lfw-deepfunneled.zip lfw128/ "
        "--fallback-box 67,80,175,187"
    ),
)
def align_(
    source: Annotated[str, typer.Argument(help="Folder, zip, glob or list file of images.")],
    output: Annotated[Path, typer.Argument(help="Output folder (sub-folders are kept).")],
    template: Annotated[
        str, typer.Option(help="facesr128 (default), dlib150, sphereface/cosface, arcface.")
    ] = "facesr128",
    size: Annotated[
        str | None, typer.Option(help="Output HxW, e.g. 224x192 (default: the template's).")
    ] = None,
    fallback_box: Annotated[
        str | None, typer.Option(help="L,T,R,B box used when no face is detected.")
    ] = None,
    ext: Annotated[str, typer.Option(help="Output format: .png or .jpg.")] = ".png",
) -> None:
    """Write aligned face crops (cp2tform 'similarity' to a template) for every image."""
    from srkit.common.progress import progress_bar
    from srkit.data.sources import SourceError, open_source
    from srkit.faces.align import TEMPLATES
    from srkit.faces.batch import align_images
    from srkit.faces.paths import MissingModelError

    if template not in TEMPLATES:
        _fail(f"unknown template {template!r}: choose from {', '.join(sorted(TEMPLATES))}")
    hw = None
    if size is not None:
        try:
            h, w = (int(v) for v in size.lower().split("x"))
            hw = (h, w)
        except ValueError:
            _fail(f"--size takes HxW, e.g. 224x192, got {size!r}")
    box = _box(fallback_box)
    try:
        total = len(open_source(source, recursive=True))
        progress = progress_bar(console=_err)
        with progress:
            task = progress.add_task("align", total=total)
            report = align_images(
                source,
                output,
                template,
                size=hw,
                fallback_box=box,
                ext=ext if ext.startswith(".") else f".{ext}",
                on_image=lambda n: progress.advance(task, n),
            )
    except (MissingModelError, SourceError, FileNotFoundError, ValueError) as error:
        _fail(str(error))
    for name, why in report.failed.items():
        _err.print(f"[yellow]skipped[/] {name}: {why}", highlight=False)
    _out.print(
        f"{len(report.written)} crops written to {output} ({len(report.fallback)} from the "
        f"fallback box, {len(report.failed)} skipped)"
    )
