"""Batch upscaling: files, folders, globs and zip archives in; mirrored names out.

Decoding runs ahead in a background thread and encoding behind in another, so both overlap with
the model. A file that cannot be read, upscaled or written is reported and skipped; an existing
output is never overwritten unless asked, and ``skip_existing`` counts it as done (outputs are
written atomically, so an existing one is whole: a rerun resumes). ``BatchResult.records`` holds
one :class:`FileRecord` per input, which ``write_report`` saves as CSV or JSON.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from srkit.common.files import write_text_atomic
from srkit.data.prefetch import prefetched
from srkit.data.sources import (
    LIST_SUFFIXES,
    FileSource,
    FolderSource,
    GlobSource,
    ImageSource,
    ListFileSource,
    ZipSource,
)
from srkit.image.io import IMAGE_EXTENSIONS, LoadedImage
from srkit.infer.sink import Sink as _Sink

if TYPE_CHECKING:
    from srkit.infer.upscaler import Upscaler

FORMATS = ("png", "jpg", "jpeg", "webp", "tif", "tiff", "bmp")
_GLOB_MAGIC = re.compile(r"[*?[]")
_PREFETCH = 2


@dataclass
class Job:
    """One image to upscale: where it comes from and where it goes."""

    source: ImageSource
    name: str
    target: Path

    @property
    def label(self) -> str:
        try:
            return self.source.label(self.name)
        except KeyError:
            return self.name


@dataclass(frozen=True)
class FileRecord:
    """What became of one input: ``status`` is written, skipped (output already there) or
    failed (``reason`` says why)."""

    input: str
    output: str
    status: str
    reason: str = ""
    tiles: int = 0
    seconds: float = 0.0


@dataclass
class BatchResult:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (input, reason)
    skipped: list[Path] = field(default_factory=list)  # done by an earlier run
    seconds: float = 0.0
    tiles: int = 0
    records: list[FileRecord] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def add(self, job: Job, status: str, reason: str = "", tiles: int = 0, seconds=0.0) -> None:
        """Count one finished job (written, skipped or failed) and keep its record."""
        if status == "written":
            self.written.append(job.target)
        elif status == "skipped":
            self.skipped.append(job.target)
        else:
            self.failed.append((job.label, reason))
        self.records.append(
            FileRecord(job.label, str(job.target), status, reason, tiles, round(seconds, 4))
        )


REPORT_FIELDS = ("input", "output", "status", "reason", "tiles", "seconds")


def write_report(path: str | os.PathLike, records: list[FileRecord]) -> Path:
    """One row per input: ``.json`` (``{"files": [...]}``) or CSV (any other extension)."""
    path = Path(path)
    rows = [{k: getattr(r, k) for k in REPORT_FIELDS} for r in records]
    if path.suffix.lower() == ".json":
        return write_text_atomic(path, json.dumps({"files": rows}, indent=2) + "\n")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=REPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return write_text_atomic(path, buffer.getvalue(), newline="")


class _SingleFile(FileSource):
    """One image file named on the command line."""


def _single_file(path: Path) -> ImageSource:
    return _SingleFile(path.name, {path.name: path}, str(path))


def open_inputs(
    inputs: list[str], recursive: bool = False
) -> tuple[list[ImageSource], list[tuple[str, str]]]:
    """Sources for ``inputs`` (files, folders, globs, zips) and the inputs that failed."""
    sources: list[ImageSource] = []
    failed: list[tuple[str, str]] = []
    for spec in inputs:
        path = Path(spec)
        try:
            if path.is_dir():
                sources.append(FolderSource(path, recursive=recursive))
            elif path.is_file():
                if path.suffix.lower() == ".zip":
                    sources.append(ZipSource(path))
                elif path.suffix.lower() in LIST_SUFFIXES:
                    sources.append(ListFileSource(path))
                else:  # an explicit file is tried as an image whatever its extension
                    sources.append(_single_file(path))
            elif _GLOB_MAGIC.search(spec):
                sources.append(GlobSource(spec))
            else:
                failed.append((spec, "no such file or folder"))
        except (OSError, ValueError) as error:
            failed.append((spec, str(error)))
    return sources, failed


def check_format(fmt: str | None) -> str | None:
    """``fmt`` as an output extension (``"PNG"``, ``".png"`` -> ``"png"``), or a ``ValueError``."""
    if fmt is None:
        return None
    fmt = fmt.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"unknown output format {fmt!r}; choose from {', '.join(FORMATS)}")
    return fmt


def plan_jobs(
    sources: list[ImageSource],
    out: str | os.PathLike,
    fmt: str | None = None,
    keep_tree: bool = False,
) -> tuple[list[Job], list[tuple[str, str]]]:
    """Targets mirroring each input's name under ``out`` (``fmt``: extension, default png).

    A single input file with ``out`` ending in an image extension is written to ``out`` itself.
    ``keep_tree``: each folder, glob, zip or list input keeps its own folder under ``out``
    (``photos/2024/a.jpg`` -> ``out/photos/2024/a.png``), so inputs never collide.
    """
    out = Path(out)
    fmt = check_format(fmt)
    total = sum(len(s) for s in sources)
    single = total == 1 and isinstance(sources[0], FileSource) and len(sources) == 1
    out_is_file = out.suffix.lower() in IMAGE_EXTENSIONS
    if out_is_file and not single:
        raise ValueError(f"-o {out}: a file name, but there are {total} images; give a folder")
    jobs: list[Job] = []
    failed: list[tuple[str, str]] = []
    seen: dict[Path, str] = {}
    for source in sources:
        for name in source.names:
            if out_is_file:
                target = out
            else:
                rel = PurePosixPath(name.replace("\\", "/"))
                if keep_tree and not isinstance(source, _SingleFile):
                    rel = PurePosixPath(source.name) / rel
                target = out.joinpath(*rel.parts).with_suffix("." + (fmt or "png"))
            job = Job(source, name, target)
            if target in seen:
                reason = f"output {target} would also be written by {seen[target]}"
                failed.append((job.label, reason))
                continue
            seen[target] = job.label
            jobs.append(job)
    return jobs, failed


def run_batch(
    upscaler: Upscaler,
    jobs: list[Job],
    *,
    overwrite: bool = False,
    on_image: Callable[[Job, int], None] | None = None,
    on_tile: Callable[[], None] | None = None,
    on_done: Callable[[Job, str | None], None] | None = None,
    skip_existing: bool = False,
) -> BatchResult:
    """Upscale every job. ``on_image(job, tiles)`` when one starts, ``on_tile()`` per tile,
    ``on_done(job, error_or_None)`` once its file is written, skipped or has failed.
    ``skip_existing``: an output that exists is left as it is and counted as skipped."""
    result = BatchResult()
    start = time.perf_counter()
    sink = _Sink()
    pending: list[tuple[Job, Callable[[], Path], int, float]] = []

    def finish(job: Job, wait: Callable[[], Path], tiles: int, began: float) -> None:
        try:
            wait()
            error = None
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
            error = _reason(exc)
        seconds = time.perf_counter() - began
        if error is None:
            result.add(job, "written", tiles=tiles, seconds=seconds)
        else:
            result.add(job, "failed", error, tiles, seconds)
        if on_done is not None:
            on_done(job, error)

    def report(job: Job, error: str) -> None:
        result.add(job, "failed", error)
        if on_done is not None:
            on_done(job, error)

    todo = []
    for job in pending_jobs(jobs, result, overwrite, skip_existing, on_done):
        if job.target.exists() and not overwrite:
            report(job, f"output {job.target} exists (pass --overwrite to replace it)")
        else:
            todo.append(job)
    try:
        for job, image in _decoded(todo):
            if isinstance(image, Exception):
                report(job, _reason(image))
                continue
            # finish earlier files whose encoding is done, keeping the order of reports
            while pending and len(pending) > 1:
                finish(*pending.pop(0))
            began = time.perf_counter()
            try:
                plan = upscaler.plan(image.height, image.width, image.channels)
                if on_image is not None:
                    on_image(job, plan.count)
                result.tiles += plan.count
                wait = upscaler.write(
                    image, job.target, overwrite=overwrite, on_tile=on_tile, sink=sink
                )
            except Exception as exc:  # noqa: BLE001
                report(job, _reason(exc))
                continue
            pending.append((job, wait, plan.count, began))
        while pending:
            finish(*pending.pop(0))
    finally:
        sink.close()
    result.seconds = time.perf_counter() - start
    return result


def pending_jobs(
    jobs: list[Job],
    result: BatchResult,
    overwrite: bool,
    skip_existing: bool,
    on_done: Callable[[Job, str | None], None] | None = None,
) -> list[Job]:
    """The jobs still to run: with ``skip_existing`` (and not ``overwrite``) a job whose output
    exists is recorded in ``result`` as skipped (and ``on_done(job, None)``) instead."""
    todo = []
    for job in jobs:
        if skip_existing and not overwrite and job.target.exists():
            result.add(job, "skipped", "output exists")
            if on_done is not None:
                on_done(job, None)
        else:
            todo.append(job)
    return todo


def _reason(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    if isinstance(error, MemoryError):
        return "out of memory (try a smaller --tile)"
    return text


def _decoded(jobs: list[Job]) -> Iterator[tuple[Job, LoadedImage | Exception]]:
    """Decode ahead of use in a background thread."""

    def load(job: Job) -> LoadedImage | Exception:
        try:
            return job.source.read(job.name)
        except Exception as error:  # noqa: BLE001 - reported per file
            return error

    return prefetched(jobs, load, depth=_PREFETCH)
