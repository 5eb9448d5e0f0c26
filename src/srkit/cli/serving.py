"""``srkit serve``: the local web page."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

import typer

from srkit.cli._app import _fail, app, console


@app.command(
    epilog=(
        "Examples:\n\n"
        "  srkit serve                      # http://127.0.0.1:8000\n\n"
        "  srkit serve --port 8080 --max-pixels 8000000 --max-upload-mb 64\n\n"
        "  srkit serve --host 0.0.0.0       # reachable from other machines: trusted networks only"
    )
)
def serve(
    host: Annotated[str, typer.Option(help="Address to bind (default: loopback only).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    max_pixels: Annotated[
        int, typer.Option(help="Largest uploaded image, in pixels (width x height).")
    ] = 4_000_000,
    max_upload_mb: Annotated[float, typer.Option(help="Largest upload, in MiB.")] = 32.0,
    max_models: Annotated[int, typer.Option(help="Most models per run.")] = 8,
    tile: Annotated[
        int | None, typer.Option(help="Tile size in input pixels (default: auto).")
    ] = None,
    tmp_dir: Annotated[
        Path | None,
        typer.Option(help="Where the server makes its temporary folder (default: the system's)."),
    ] = None,
) -> None:
    """A local web page: upload an image, compare models side by side, PSNR/SSIM, download."""
    try:
        from srkit.serve.app import serve as run_server
        from srkit.serve.jobs import Settings
    except ImportError as error:
        _fail(f"srkit serve needs the app extra: pip install 'srkit[app]' ({error})")
    if not 0 < port < 65536:
        _fail(f"--port {port}: expected 1..65535")
    if max_pixels < 1 or max_upload_mb <= 0 or max_models < 1:
        _fail("--max-pixels, --max-upload-mb and --max-models must be positive")
    if tmp_dir is not None and not tmp_dir.is_dir():
        _fail(f"--tmp-dir {tmp_dir}: no such folder")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        console.print(
            f"[yellow]warning:[/] binding {host}: anyone who can reach this address can use "
            "the server (it has no login)"
        )
    settings = Settings(
        max_pixels=max_pixels,
        max_upload_bytes=int(max_upload_mb * (1 << 20)),
        max_models=max_models,
        tile=tile,
    )

    def ready(root: Path) -> None:
        console.print(f"srkit serve: http://{host}:{port}/  (files in {root}; Ctrl+C stops)")

    try:
        run_server(host, port, settings, tmp_dir=tmp_dir, on_ready=ready)
    except OSError as error:
        _fail(f"cannot serve on {host}:{port}: {error}")
