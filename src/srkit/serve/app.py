"""The web application of ``srkit serve``: a Starlette app, one page of our own, a JSON API.

Routes: ``GET /`` the page (``static/``: HTML, CSS, JS; no CDN, works offline), ``GET
/api/models`` the catalogue, ``POST /api/jobs`` (multipart: ``image``, optional ``hr``,
``mode``, ``scale``, ``models`` comma-separated) -> ``{"id"}``, ``GET /api/jobs/ID`` its state,
progress and results, ``GET /api/jobs/ID/files/NAME`` an input or result PNG (``?download=1``
as an attachment). Every error is a JSON ``{"error": "one line"}`` with a 4xx status; nothing
the page sends can make the server print a traceback or write outside its temporary folder.
"""

from __future__ import annotations

import logging
import re
import signal
import tempfile
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from srkit.serve.jobs import InputError, JobQueue, Settings, catalogue, decode_upload

STATIC = Path(__file__).resolve().parent / "static"
_FILE_NAME = re.compile(r"^[A-Za-z0-9_.+-]+\.png$")
log = logging.getLogger("srkit.serve")


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class _TooLarge(Exception):
    pass


class _Stopped(Exception):
    pass


def _stop(signum: int, frame: Any) -> None:
    raise _Stopped


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused past ``limit`` bytes (checked as it arrives)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(root: Path, settings: Settings | None = None) -> Starlette:
    """The app, its jobs kept under ``root`` (which must be the server's own folder)."""
    settings = settings or Settings()
    root = Path(root)
    jobs = JobQueue(root / "jobs", settings)
    models = catalogue()

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    async def list_models(request: Request) -> Response:
        limits = {
            "max_pixels": settings.max_pixels,
            "max_upload_bytes": settings.max_upload_bytes,
            "max_models": settings.max_models,
        }
        return JSONResponse({"models": models, "limits": limits})

    async def submit(request: Request) -> Response:
        limit = settings.max_upload_bytes
        try:
            body = await _read_body(request, limit)
        except _TooLarge:
            mib = limit / (1 << 20)
            return _error(f"the upload is over this server's limit of {mib:g} MiB", 413)

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            form = await Request(request.scope, replay).form(max_files=2, max_fields=8)
        except Exception as error:  # noqa: BLE001 - a malformed form is the client's error
            return _error(f"cannot read the upload: {str(error) or type(error).__name__}")
        image, hr = form.get("image"), form.get("hr")
        if image is None or isinstance(image, str):
            return _error("choose an image to upload")
        mode = str(form.get("mode") or "upscale")
        names = [n.strip() for n in str(form.get("models") or "").split(",") if n.strip()]
        try:
            scale = int(str(form.get("scale") or "4"))
        except ValueError:
            return _error(f"scale {form.get('scale')!r} is not a number")
        try:
            lr_data = await image.read()
            lr = await run_in_threadpool(decode_upload, lr_data, image.filename, settings)
            hr_img = None
            if mode == "pair" and hr is not None and not isinstance(hr, str):
                hr_data = await hr.read()
                hr_img = await run_in_threadpool(decode_upload, hr_data, hr.filename, settings)
            job = await run_in_threadpool(jobs.submit, mode, scale, names, lr, hr_img)
        except InputError as error:
            return _error(str(error))
        finally:
            await form.close()
        return JSONResponse({"id": job.id, "position": jobs.position(job)})

    async def status(request: Request) -> Response:
        job = jobs.get(request.path_params["job"])
        if job is None:
            return _error("no such job (finished jobs are kept for a while only)", 404)
        return JSONResponse(job.to_json(jobs.position(job)))

    async def file(request: Request) -> Response:
        job = jobs.get(request.path_params["job"])
        name = request.path_params["name"]
        if job is None or not _FILE_NAME.match(name) or name not in job.files:
            return _error("no such file", 404)
        headers = {"Cache-Control": "no-store"}
        if request.query_params.get("download"):
            stem = Path(job.inputs["input"]["name"]).stem
            download = next(
                (r["download"] for r in job.results if r.get("url", "").endswith(name)), None
            )
            return FileResponse(
                job.files[name],
                media_type="image/png",
                filename=download or f"{stem}_{name}",
                headers=headers,
            )
        return FileResponse(job.files[name], media_type="image/png", headers=headers)

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error("not found", 404)

    async def failure(request: Request, exc: Exception) -> Response:
        log.error("srkit serve: %s: %s", type(exc).__name__, exc)
        return _error(f"internal error: {str(exc) or type(exc).__name__}", 500)

    routes = [
        Route("/", index),
        Route("/api/models", list_models),
        Route("/api/jobs", submit, methods=["POST"]),
        Route("/api/jobs/{job}", status),
        Route("/api/jobs/{job}/files/{name}", file),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        jobs.close()

    app = Starlette(
        routes=routes,
        exception_handlers={404: not_found, Exception: failure},
        lifespan=lifespan,
    )
    app.state.jobs = jobs
    app.state.settings = settings
    return app


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: Settings | None = None,
    tmp_dir: str | Path | None = None,
    on_ready: Any = None,
) -> None:
    """Run the server until interrupted; its folder (``tmp_dir``: made inside it) is deleted at
    the end. Python's temporary files (upload spooling) go there too."""
    import shutil

    import uvicorn

    root = Path(tempfile.mkdtemp(prefix="srkit-serve-", dir=tmp_dir))
    previous = tempfile.tempdir
    tempfile.tempdir = str(root)  # spooled uploads and any other temporary file stay inside
    try:
        app = create_app(root, settings)
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
        server = uvicorn.Server(config)
        if on_ready is not None:
            on_ready(root)
        # uvicorn re-raises the signal that stopped it once it has shut down: let that end
        # this function normally, so that the folder below is deleted
        if threading.current_thread() is threading.main_thread():
            previous_term = signal.signal(signal.SIGTERM, _stop)
        try:
            server.run()
        except (KeyboardInterrupt, _Stopped):
            pass
        finally:
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, previous_term)
    finally:
        tempfile.tempdir = previous
        shutil.rmtree(root, ignore_errors=True)
