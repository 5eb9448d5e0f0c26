"""``srkit train``, ``srkit ship`` and ``srkit prepare``: making models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from srkit.cli._app import _fail, app, out


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
    """Train a model: a recipe's whole chain of stages, or one stage (.safetensors + .json)."""
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
        if summary:  # tasks without PSNR validation (style) report nothing here
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
    """Ship a trained model into srkit: copy it, score it on Set5, list it with its recipe."""
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
    if manifest.get("purpose") == "face":
        manifest = _face_scores(manifest, into or MODELS_DIR)
    what = f"shipped {manifest['name']} ({manifest['purpose']}, x{manifest['scale']}, "
    what += f"{manifest['params']:,} params)"
    set5 = manifest.get("scores", {}).get("set5")
    if set5 is None:  # same-size networks (style, landmarks): no Set5 figures
        out.print(what)
        return
    modern, legacy = set5["modern"], set5["legacy"]
    out.print(
        f"{what}: Set5 {modern['psnr']:.3f} / {modern['ssim']:.4f} (legacy {legacy['psnr']:.3f} / "
        f"{legacy['ssim']:.4f})"
    )


def _face_scores(manifest: dict, models_dir: Path) -> dict:
    """A face model's LFW figures (``srkit faces eval`` on pairsDevTest), into its manifest."""
    from srkit.common.machine import machine_summary
    from srkit.faces.evaluate import run_faces_eval
    from srkit.train.ship import add_scores
    from srkit.zoo import FACE_SCORES

    name, scale = manifest["name"], int(manifest["scale"])
    path = models_dir / manifest["weights"]
    try:
        (row,) = run_faces_eval([str(path)], scale, metrics=["lpips"], log=None)["results"]
    except (FileNotFoundError, ValueError, ImportError) as error:
        out.print(f"[yellow]no LFW figures for {name}[/]: {error}")
        return manifest
    keep = ("n_images", "id_distance", "id_cosine", "verif_acc_06", "verif_acc_best", "psnr",
            "ssim", "landmark_nme", "lpips", "ms_per_face")  # fmt: skip
    figures = {k: (round(row[k], 5) if isinstance(row[k], float) else row[k]) for k in keep}
    figures["measured_by"] = f"srkit faces eval --model {name} --scale {scale} --metrics lpips"
    figures["machine"] = machine_summary()
    manifest = add_scores(name, FACE_SCORES, figures, models_dir)
    out.print(
        f"{name} on {row['dataset']}: id distance {figures['id_distance']:.4f}, verification "
        f"{100 * figures['verif_acc_06']:.1f}% at 0.6, landmark NME {figures['landmark_nme']:.4f}"
    )
    return manifest


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
