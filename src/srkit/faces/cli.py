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
    metrics: Annotated[
        str | None,
        typer.Option(help="More per-face metrics: lpips, lpips_vgg, msssim, niqe (comma list)."),
    ] = None,
    backend: Annotated[
        list[str] | None,
        typer.Option(help="Score on these backends (torch/fp32: eager), e.g. openvino/int8."),
    ] = None,
) -> None:
    """Score SR models by how well super-resolved faces keep their identity.

    HR = 128x128 crop aligned by dlib's 5 landmarks; LR = MATLAB bicubic of it (uint8); SR by the
    model; identity distance/cosine of SR vs HR (dlib ResNet, HR landmarks), PSNR/SSIM on Y;
    with pairs, verification accuracy at 0.6 and at the best threshold; the 68-point landmark
    error of SR vs HR (dlib's shape predictor, NME); time per face. See docs/faces.md.
    """
    from srkit.deploy import DeployError
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
                metrics=metrics.split(",") if metrics else None,
                backends=backend or None,
                progress=True,
                log=lambda msg: _out.print(msg, highlight=False, markup=False),
            )
    except (
        MissingModelError,
        FaceNotFoundError,
        ImageReadError,
        FileNotFoundError,
        ValueError,
        ImportError,
        DeployError,
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


@faces_app.command(
    "restore",
    epilog=(
        "Examples:\n\n"
        "  srkit faces restore group.jpg -o group_x4.png\n\n"
        "  srkit faces restore photos/ -o restored/ --model face_x4 --background bicubic\n\n"
        "  srkit faces restore crops/ -o out/ --aligned --model face_x8 --scale 8\n\n"
        "  srkit faces restore old.jpg -o new.png --fidelity 0.5 --pixel-model face_pixel_x4"
    ),
)
def restore_(
    source: Annotated[str, typer.Argument(help="A photo, or a folder/zip/glob of photos.")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Output image (one photo) or folder.")
    ],
    scale: Annotated[int, typer.Option(help="Upscaling factor of the whole photo.")] = 4,
    model: Annotated[str, typer.Option(help="Face model (a name or weight file).")] = "face_x4",
    background: Annotated[
        str, typer.Option(help="Background: a general model (name or file), or bicubic.")
    ] = "default",
    fidelity: Annotated[
        float | None,
        typer.Option(help="0..1: blend of --pixel-model (1) and the identity model (0)."),
    ] = None,
    pixel_model: Annotated[
        str | None, typer.Option(help="Pixel-loss face model that --fidelity blends in.")
    ] = None,
    only_center_face: Annotated[
        bool, typer.Option("--only-center-face", help="Restore only the face nearest the centre.")
    ] = False,
    aligned: Annotated[
        bool, typer.Option("--aligned", help="Inputs are aligned face crops: no detection.")
    ] = False,
    min_face: Annotated[int, typer.Option(help="Skip faces smaller than this (px).")] = 16,
    detector: Annotated[str, typer.Option(help="hog, cnn or both (default).")] = "both",
) -> None:
    """Super-resolve whole photos: every face by a face model, the rest by a general model.

    Faces are found by dlib (HOG and CNN), aligned by their 5 landmarks, super-resolved and pasted
    back with a feathered mask over the background upscaled by --background. See docs/faces.md.
    """
    from srkit.common.progress import progress_bar
    from srkit.data.sources import SourceError, open_source
    from srkit.faces.paths import MissingModelError
    from srkit.faces.restore import FaceRestorer, restore_images
    from srkit.image.io import ImageWriteError
    from srkit.weights import WeightsError

    if fidelity is not None and pixel_model is None:
        if not model.startswith("face_"):
            _fail("--fidelity needs --pixel-model (the pixel-loss face model to blend with)")
        pixel_model = model.replace("face_", "face_pixel_", 1)
    try:
        restorer = FaceRestorer(
            model,
            scale=scale,
            background=background,
            pixel_model=pixel_model,
            fidelity=fidelity,
            detector=detector,
            only_center_face=only_center_face,
            min_face=min_face,
        )
        total = len(open_source(source, recursive=True))
        progress = progress_bar(console=_err)
        with progress:
            task = progress.add_task("restore", total=total)
            report = restore_images(
                source,
                output,
                restorer,
                aligned=aligned,
                on_image=lambda n: progress.advance(task, n),
            )
    except (
        MissingModelError,
        SourceError,
        FileNotFoundError,
        ValueError,
        WeightsError,
        ImageWriteError,
    ) as error:
        _fail(str(error))
    for name, why in report.failed.items():
        _err.print(f"[yellow]skipped[/] {name}: {why}", highlight=False)
    for name, count in report.faces.items():
        small = report.small.get(name, 0)
        note = f" ({small} under {min_face} px left to the background)" if small else ""
        what = "aligned crop" if aligned else f"{count} face{'s' if count != 1 else ''}"
        _out.print(f"{name}: {what}{note}", highlight=False)
    _out.print(
        f"{len(report.written)} written to {output}, {sum(report.faces.values())} faces, "
        f"{len(report.failed)} skipped",
        highlight=False,
    )
    if not report.written:
        raise typer.Exit(1)
