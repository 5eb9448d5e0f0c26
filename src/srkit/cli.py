"""The ``srkit`` command line: parses arguments and calls the library, nothing more."""

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
console = Console(stderr=True)
out = Console()

# Options that take several values after one flag (`--scale 2 3 4`), as SR users type them.
_VARIADIC_OPTIONS = {"--scale", "--data"}


def _expand_variadic(argv: list[str]) -> list[str]:
    """Rewrite ``--scale 2 3 4`` as ``--scale 2 --scale 3 --scale 4`` for click."""
    expanded: list[str] = []
    current: str | None = None
    for token in argv:
        if token == "--":
            current = None
            expanded.append(token)
        elif token in _VARIADIC_OPTIONS:
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
        "  srkit bench --model bicubic --scale 2 3 4\n\n"
        "  srkit bench --model bicubic --scale 4 --data ~/datasets/Set14 B100.zip "
        "--convention legacy --csv set14.csv --json set14.json"
    )
)
def bench(
    model: Annotated[
        str,
        typer.Option(help="bicubic, bilinear, nearest, or a weight file."),
    ] = "bicubic",
    scale: Annotated[
        list[int] | None, typer.Option(help="One or more scales: --scale 2 3 4 (default).")
    ] = None,
    data: Annotated[
        list[str] | None,
        typer.Option(
            help="Datasets: folders, globs, .zip, list files or HDF5 (default: bundled Set5)."
        ),
    ] = None,
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
) -> None:
    """Evaluate a model on datasets and scales, exactly as SR papers do.

    LR inputs are MATLAB-bicubic downscales of the mod-cropped HR, rounded to uint8; SR outputs
    are rounded to uint8; PSNR/SSIM are taken on the BT.601 Y channel with `scale` pixels of
    border removed.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from srkit.bench.report import results_table, write_csv, write_json
    from srkit.bench.runner import run_benchmark
    from srkit.data.builtin import bundled_set5
    from srkit.image.io import ImageReadError

    datasets = data or [str(bundled_set5())]
    scales = sorted(set(scale or [2, 3, 4]))
    if any(s < 1 for s in scales):
        _fail(f"scales must be positive integers, got {scales}")
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    tasks: list = []

    def on_dataset(source) -> None:
        tasks.append(progress.add_task(source.name, total=len(source) * len(scales)))

    try:
        with progress:
            results = run_benchmark(
                model,
                datasets,
                scales,
                convention=convention,
                channel=channel,
                border=border,
                skip_bad=skip_bad,
                on_dataset=on_dataset,
                on_image=lambda steps: progress.advance(tasks[-1], steps),
            )
    except (ImageReadError, ValueError, FileNotFoundError, NotADirectoryError) as error:
        _fail(str(error))
    out.print(results_table(results, convention))
    for result in results:
        for name in result.skipped:
            console.print(f"[yellow]skipped[/] {result.dataset}/{name} (unreadable)")
    if csv is not None:
        write_csv(results, csv)
        console.print(f"per-image scores: {csv}")
    if json is not None:
        write_json(results, json)
        console.print(f"summary: {json}")


@app.command()
def version() -> None:
    """Print srkit's version."""
    from srkit import __version__

    out.print(__version__)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    app(args=_expand_variadic(args), prog_name="srkit")


if __name__ == "__main__":
    main()
