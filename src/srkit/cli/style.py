"""``srkit style ...``: neural style transfer (Gatys, feed-forward TransformerNet, AdaIN)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from srkit.cli._app import _fail, app, console, out

style_app = typer.Typer(
    help="Neural style transfer: Gatys optimisation, Johnson's feed-forward networks, AdaIN.",
    no_args_is_help=True,
)
app.add_typer(style_app, name="style")

_NETWORK_HELP = "Loss/encoder network: stlpips_vgg16 (offline default), vgg16:PATH or vgg19:PATH."
_DEFAULT_DATA = ["${SRKIT_DATA}/sr/train/T91", "${SRKIT_DATA}/sr/train/BSDS200"]
_OBJECTIVE_HELP = (
    "auto (relative for the offline trunk, published for an ImageNet file), relative or published."
)
_Objective = Annotated[str, typer.Option(help=_OBJECTIVE_HELP)]
_ContentWeight = Annotated[
    float | None, typer.Option(help="Content weight (default: the objective's).")
]
_StyleWeight = Annotated[
    float | None, typer.Option(help="Style weight (default: the objective's).")
]


def _check_output(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        _fail(f"{path} exists (--overwrite replaces it)")


@style_app.command(
    epilog="Example:\n\n  srkit style gatys --content photo.jpg --style mosaic.jpg -o out.png "
    "--size 256 --steps 50"
)
def gatys(
    content: Annotated[Path, typer.Option(help="Content image.")],
    style: Annotated[Path, typer.Option(help="Style image.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output image file.")],
    size: Annotated[int, typer.Option(help="Longer side of the output, in pixels.")] = 512,
    steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 50,
    optimizer: Annotated[str, typer.Option(help="lbfgs or adam.")] = "lbfgs",
    objective: _Objective = "auto",
    content_weight: _ContentWeight = None,
    style_weight: _StyleWeight = None,
    tv_weight: Annotated[float, typer.Option(help="Weight of total variation.")] = 1e-4,
    network: Annotated[str, typer.Option(help=_NETWORK_HELP)] = "stlpips_vgg16",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace OUTPUT.")] = False,
) -> None:
    """Optimise one image to the content of CONTENT and the style of STYLE (Gatys et al.)."""
    from srkit.style import gatys as run_gatys
    from srkit.style import load_image, save_image

    _check_output(output, overwrite)
    try:
        c, s = load_image(content, size), load_image(style, size)
        result = run_gatys(
            c, s, network=network, steps=steps, optimizer=optimizer,  # type: ignore[arg-type]
            objective=objective, content_weight=content_weight, style_weight=style_weight,
            tv_weight=tv_weight,
        )  # fmt: skip
        save_image(result.image, output)
    except (ValueError, OSError) as error:
        _fail(str(error).splitlines()[0])
    out.print(f"{output}: loss {result.losses[0]:.4g} -> {result.losses[-1]:.4g}")


def _train(task: str, name: str, data: list[str], output: Path, run_dir: Path | None,
           iters: int, batch_size: int, lr: float, device: str, options: dict) -> None:  # fmt: skip
    from srkit.config import ConfigError
    from srkit.train.tasks.style import style_experiment
    from srkit.train.trainer import train_to_file

    if output.suffix != ".safetensors":
        _fail(f"-o {output}: a style model is written as NAME.safetensors (+ NAME.json)")
    raw = style_experiment(task, name, data, iters=iters, batch_size=batch_size, lr=lr,
                           device=device, options=options)  # fmt: skip
    run_dir = run_dir or Path("runs") / name
    try:
        result = train_to_file(raw, run_dir, output)
    except (ConfigError, ValueError, OSError) as error:
        _fail(str(error).splitlines()[0])
    out.print(f"model: {output} ({result.seconds / 60:.1f} min; run: {run_dir})")


@style_app.command(
    epilog="Example:\n\n  srkit style train --style mosaic.jpg --data photos/ "
    "-o mosaic.safetensors --size 128 --iters 500\n\n(the run's config is RUN/config.yaml: "
    "`srkit train RUN/config.yaml` repeats it; an interrupted run resumes from RUN/last.ckpt)"
)
def train(
    style: Annotated[Path, typer.Option(help="The style image.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Model file (.safetensors).")],
    data: Annotated[
        list[str] | None, typer.Option(help="Content images (default: T91 + BSDS200).")
    ] = None,
    size: Annotated[int, typer.Option(help="Training crop side (256 as published).")] = 256,
    style_size: Annotated[int, typer.Option(help="Longer side of the style image.")] = 256,
    iters: Annotated[int, typer.Option(help="Training iterations.")] = 2000,
    batch_size: Annotated[int, typer.Option(help="Images per iteration.")] = 4,
    width: Annotated[int, typer.Option(help="Channels of the first conv (32 published).")] = 32,
    objective: _Objective = "auto",
    content_weight: _ContentWeight = None,
    style_weight: _StyleWeight = None,
    network: Annotated[str, typer.Option(help=_NETWORK_HELP)] = "stlpips_vgg16",
    run_dir: Annotated[Path | None, typer.Option(help="Run folder (default runs/NAME).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
) -> None:
    """Train Johnson's feed-forward TransformerNet for one style (through `srkit train`)."""
    options = {
        "style": str(style), "network": network, "image_size": size, "style_size": style_size,
        "width": width, "objective": objective,
    }  # fmt: skip
    if content_weight is not None:
        options["content_weight"] = content_weight
    if style_weight is not None:
        options["style_weight"] = style_weight
    _train("style", output.stem, data or _DEFAULT_DATA, output, run_dir, iters, batch_size,
           1e-3, device, options)  # fmt: skip


@style_app.command(
    name="train-adain",
    epilog="Example:\n\n  srkit style train-adain --styles styles/ --data photos/ "
    "-o adain.safetensors --size 128 --iters 1000",
)
def train_adain(
    styles: Annotated[list[str], typer.Option(help="Folders (or globs, zips) of style images.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Decoder file (.safetensors).")],
    data: Annotated[
        list[str] | None, typer.Option(help="Content images (default: T91 + BSDS200).")
    ] = None,
    size: Annotated[int, typer.Option(help="Training crop side.")] = 256,
    iters: Annotated[int, typer.Option(help="Training iterations.")] = 2000,
    batch_size: Annotated[int, typer.Option(help="Pairs per iteration.")] = 4,
    width: Annotated[int, typer.Option(help="Divides the decoder's channels (1: published).")] = 1,
    objective: _Objective = "auto",
    style_weight: Annotated[
        float | None, typer.Option(help="Style weight (default: 1 relative, 10 published).")
    ] = None,
    network: Annotated[str, typer.Option(help=_NETWORK_HELP)] = "stlpips_vgg16",
    run_dir: Annotated[Path | None, typer.Option(help="Run folder (default runs/NAME).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
) -> None:
    """Train the AdaIN decoder (any style, any content) through `srkit train`."""
    options = {"styles": list(styles), "network": network, "image_size": size,
               "width": width, "objective": objective}  # fmt: skip
    if style_weight is not None:
        options["style_weight"] = style_weight
    _train("adain", output.stem, data or _DEFAULT_DATA, output, run_dir, iters, batch_size,
           1e-4, device, options)  # fmt: skip


@style_app.command(
    epilog="Examples:\n\n  srkit style apply --model mosaic.safetensors photo.jpg -o out.png\n\n"
    "  srkit style apply --model mosaic.safetensors shots/ -o styled/ --tile 512"
)
def apply(
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders, globs or zips.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder (or file).")],
    model: Annotated[
        str,
        typer.Option(
            help="A feed-forward style model: a .safetensors file or a shipped "
            "name (`srkit models --purpose style`)."
        ),
    ],
    tile: Annotated[int, typer.Option(help="Tile side in pixels (0: whole image).")] = 512,
    tile_overlap: Annotated[int, typer.Option(help="Context pixels around each tile.")] = 32,
    recursive: Annotated[bool, typer.Option("--recursive", help="Descend into folders.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace outputs.")] = False,
) -> None:
    """Stylise images with a trained TransformerNet; each output keeps its input's size."""
    from srkit.infer.stylize import stylize

    try:
        result = stylize(model, inputs, output, tile=tile, overlap=tile_overlap,
                         recursive=recursive, overwrite=overwrite)  # fmt: skip
    except (ValueError, OSError) as error:
        _fail(str(error).splitlines()[0])
    for label, reason in result.failed:
        console.print(f"[red]skipped[/] {label}: {reason}", highlight=False)
    out.print(f"{len(result.written)} written to {output}")
    if result.failed:
        raise typer.Exit(1)


@style_app.command(
    epilog="Example:\n\n  srkit style adain --model adain.safetensors --content photo.jpg "
    "--style la_muse.jpg -o out.png --alpha 0.6"
)
def adain(
    content: Annotated[Path, typer.Option(help="Content image.")],
    style: Annotated[Path, typer.Option(help="Style image.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output image file.")],
    model: Annotated[
        str, typer.Option(help="An AdaIN decoder: a .safetensors file or a shipped name.")
    ],
    alpha: Annotated[float, typer.Option(help="Style strength in [0, 1].")] = 1.0,
    size: Annotated[int, typer.Option(help="Longer side of content and style.")] = 512,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace OUTPUT.")] = False,
) -> None:
    """Any style on any content in one pass: AdaIN of the encoder's relu4_1 features."""
    import torch

    from srkit.features import feature_network
    from srkit.style import AdainModel, load_image, load_style_model, save_image

    _check_output(output, overwrite)
    try:
        decoder, manifest = load_style_model(model)
        if manifest.get("arch") != "adain_decoder":
            raise ValueError(
                f"{model}: {manifest.get('arch')} is not an AdaIN decoder (arch adain_decoder)"
            )
        net = AdainModel(feature_network(manifest.get("encoder", "stlpips_vgg16")), decoder)
        c, s = load_image(content, size), load_image(style, size)
        with torch.no_grad():
            y = net(c, s, alpha).clamp(0, 1)
        save_image(y, output)
    except (ValueError, OSError) as error:
        _fail(str(error).splitlines()[0])
    out.print(f"{output}: alpha {alpha}")
