"""``srkit degrade ...``: learn an unknown camera's degradation from unpaired images, apply it,
and measure how well it matches (Bulat et al., ECCV 2018; docs/blind.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from srkit.cli._app import _fail, app, out

degrade_app = typer.Typer(
    help="Learned degradations (HR -> LR): learn a camera's from unpaired images, apply it, "
    "compare LR sets.",
    no_args_is_help=True,
)
app.add_typer(degrade_app, name="degrade")

_DEFAULT_HR = ["${SRKIT_DATA}/sr/train/T91", "${SRKIT_DATA}/sr/train/BSDS200"]


@degrade_app.command(
    epilog="Examples:\n\n  srkit degrade learn --lr camera_lr/ -o camera_h2l.safetensors\n\n"
    "  srkit degrade learn --hr photos/ --lr camera_lr/ -o h2l.safetensors --iters 500 "
    "--batch-size 8 --patch 64\n\n(the run's config is RUN/config.yaml: `srkit train "
    "RUN/config.yaml` repeats it; an interrupted run resumes from RUN/last.ckpt)"
)
def learn(
    lr: Annotated[list[str], typer.Option(help="Real LR images of the camera (folders, zips).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="H2L model file (.safetensors).")],
    hr: Annotated[
        list[str] | None, typer.Option(help="Clean HR images, unpaired (default: T91 + BSDS200).")
    ] = None,
    iters: Annotated[int, typer.Option(help="Training iterations.")] = 1000,
    batch_size: Annotated[int, typer.Option(help="Patches per iteration.")] = 16,
    patch: Annotated[
        int, typer.Option(help="HR patch side (a multiple of 4; LR: patch / 4).")
    ] = 64,
    adversarial_weight: Annotated[float, typer.Option(help="Weight of the GAN term.")] = 0.05,
    seed: Annotated[int, typer.Option(help="Seed of the run.")] = 0,
    run_dir: Annotated[Path | None, typer.Option(help="Run folder (default runs/NAME).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
) -> None:
    """Train a High-to-Low GAN (task degradation) that turns clean HR into LR like --lr's: the
    recipe's settings (colours kept, the discriminator on detail, the files' own JPEG, gradient
    clipping); `srkit train RUN/config.yaml --set ...` changes any of them."""
    import glob
    import os

    from srkit.config import ConfigError
    from srkit.train.tasks.degradation import degradation_experiment
    from srkit.train.trainer import train_to_file

    def check_lr(experiment) -> None:
        for spec in experiment.task_options.lr_data:
            if not (os.path.exists(spec) or glob.glob(spec)):
                raise ConfigError(f"--lr: {spec} does not exist")

    if output.suffix != ".safetensors":
        _fail(f"-o {output}: an H2L model is written as NAME.safetensors (+ NAME.json)")
    run_dir = run_dir or Path("runs") / output.stem
    try:
        raw = degradation_experiment(
            output.stem, hr or _DEFAULT_HR, lr, iters=iters, batch_size=batch_size,
            patch=patch, seed=seed, adversarial_weight=adversarial_weight, device=device,
        )  # fmt: skip
        result = train_to_file(raw, run_dir, output, check=check_lr)
    except (ConfigError, ValueError, OSError) as error:
        _fail(str(error).splitlines()[0])
    out.print(f"H2L model: {output} ({result.seconds / 60:.1f} min; run: {run_dir})")


@degrade_app.command(
    epilog="Examples:\n\n  srkit degrade apply --model camera_h2l.safetensors photo.png -o lr.png"
    "\n\n  srkit degrade apply --model camera_h2l.safetensors hr_folder/ -o lr_folder/ --seed 3"
)
def apply(
    inputs: Annotated[list[str], typer.Argument(help="HR image files, folders, globs or zips.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output file or folder.")],
    model: Annotated[str, typer.Option(help="An H2L model (.safetensors or .json).")],
    seed: Annotated[int, typer.Option(help="Seed of the noise (per image, with its name).")] = 0,
    recursive: Annotated[bool, typer.Option("--recursive", help="Descend into folders.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace outputs.")] = False,
) -> None:
    """Degrade HR images with a learned H2L: each LR is 1/4 of its HR's size (sides cropped to
    multiples of 4). Nothing is written unless every input can be degraded."""
    from srkit.infer.degrade import degrade_files

    try:
        result = degrade_files(model, inputs, output, seed=seed, recursive=recursive,
                               overwrite=overwrite)  # fmt: skip
    except (ValueError, OSError) as error:
        _fail(str(error).splitlines()[0])
    out.print(f"{len(result.written)} written to {output}")


@degrade_app.command(
    epilog="Examples:\n\n  srkit degrade compare camera_lr/ generated_lr/\n\n"
    "  srkit degrade compare camera_lr/ generated_lr/ --classifier --steps 300"
)
def compare(
    real: Annotated[str, typer.Argument(help="The real LR images (folder, zip, glob).")],
    fake: Annotated[str, typer.Argument(help="The generated LR images.")],
    classifier: Annotated[
        bool, typer.Option("--classifier", help="Also train a real-vs-fake patch classifier.")
    ] = False,
    steps: Annotated[int, typer.Option(help="Classifier training steps.")] = 300,
    patch: Annotated[int, typer.Option(help="Classifier patch side.")] = 32,
    limit: Annotated[int, typer.Option(help="At most this many images of each set (0: all).")] = 0,
    seed: Annotated[int, typer.Option(help="Classifier seed.")] = 0,
) -> None:
    """Match statistics of two LR sets (noise, sharpness, JPEG blockiness, colour): each set's
    mean +- std and the difference; --classifier adds a domain classifier's held-out accuracy
    (0.5: indistinguishable)."""
    from rich.table import Table

    from srkit.data.sources import open_source
    from srkit.metrics.lr_stats import compare_sets, domain_classifier_accuracy

    def read(spec: str) -> list:
        images = []
        with open_source(spec) as source:
            for name in source.names[: limit or None]:
                images.append(source.read(name).to_rgb8())
        return images

    try:
        real_images, fake_images = read(real), read(fake)
        rows = compare_sets(real_images, fake_images)
        accuracy = (
            domain_classifier_accuracy(
                real_images, fake_images, patch=patch, steps=steps, seed=seed
            )  # fmt: skip
            if classifier
            else None
        )
    except (ValueError, OSError) as error:
        _fail(str(error).splitlines()[0])
    table = Table(title=f"{real} ({len(real_images)}) vs {fake} ({len(fake_images)})")
    for column in ("statistic", "real mean ± std", "fake mean ± std", "fake - real", "/ real std"):
        table.add_column(column, justify="left" if column == "statistic" else "right")
    for row in rows:
        table.add_row(
            row.name,
            f"{row.real.mean:.4g} ± {row.real.std:.3g}",
            f"{row.fake.mean:.4g} ± {row.fake.std:.3g}",
            f"{row.difference:+.4g}",
            f"{row.relative:+.2f}",
        )
    out.print(table)
    if accuracy is not None:
        out.print(
            f"domain classifier accuracy (held out): {accuracy:.3f}  (0.5: indistinguishable)"
        )
