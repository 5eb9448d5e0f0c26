"""The work behind ``srkit serve``: the model catalogue, checked uploads and a job queue.

A job is one uploaded image (or LR/HR pair) run through several models. Jobs run one at a time
(``workers`` threads, 1 by default) in submission order, so two uploads at once queue instead of
sharing the memory; each job has a folder inside the server's own temporary folder, holding its
inputs and results as PNG files, and the oldest finished jobs' folders are deleted beyond
``keep_jobs``. The figures are those of ``srkit bench``: PSNR/SSIM on the BT.601 Y channel
(modern convention) with ``scale`` pixels of border removed; in ``degrade`` mode the LR is made
from the HR exactly as the benchmark makes it (mod-crop, MATLAB bicubic, rounded to uint8).
"""

from __future__ import annotations

import queue
import secrets
import shutil
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from srkit.bench.protocol import matlab_bicubic_lr
from srkit.image.io import ImageReadError, LoadedImage, read_image, write_image
from srkit.infer.upscaler import Upscaler
from srkit.metrics import mod_crop, psnr_ssim
from srkit.models import resolve_model
from srkit.zoo import upscaling_models

MODES = ("upscale", "degrade", "pair")
SCALES = (2, 3, 4)


class InputError(ValueError):
    """Bad input from the page: shown to the user as it is (one line)."""


@dataclass(frozen=True)
class Settings:
    max_pixels: int = 4_000_000  # per uploaded image
    max_upload_bytes: int = 32 << 20  # the whole request
    max_models: int = 8  # per job
    max_queued: int = 8  # jobs waiting; more are refused
    keep_jobs: int = 16  # finished jobs whose files are kept
    workers: int = 1  # jobs run at once
    tile: int | None = None  # tile size (None: auto, bounded memory)


def catalogue() -> list[dict[str, Any]]:
    """Every model the page offers: the shipped ones (`srkit models`) and bicubic per scale."""
    entries = [
        {
            "name": m.name,
            "family": m.family,
            "purpose": m.purpose,
            "scale": m.scale,
            "params": m.params,
            "default": m.default,
            "set5_psnr": m.set5_psnr,
            "set5_ssim": m.set5_ssim,
            "input_size": list(m.input_size) if m.input_size else None,
        }
        for m in upscaling_models()
    ]
    for scale in SCALES:
        entries.append(
            {
                "name": "bicubic",
                "family": "bicubic",
                "purpose": "interpolation",
                "scale": scale,
                "params": 0,
                "default": False,
                "set5_psnr": None,
                "set5_ssim": None,
                "input_size": None,
            }
        )
    return entries


def check_models(names: list[str], scale: int, settings: Settings) -> list[str]:
    """The chosen model names, checked against the catalogue at ``scale``."""
    if scale not in SCALES:
        raise InputError(f"scale x{scale} is not offered (choose {', '.join(map(str, SCALES))})")
    if not names:
        raise InputError("pick at least one model")
    if len(names) > settings.max_models:
        raise InputError(f"{len(names)} models picked; at most {settings.max_models} per run")
    known = {e["name"] for e in catalogue() if e["scale"] == scale}
    for name in names:
        if name not in known:
            raise InputError(
                f"unknown model {name!r} at x{scale} (the models at x{scale}: "
                f"{', '.join(sorted(known))})"
            )
    if len(set(names)) != len(names):
        raise InputError("a model is picked twice")
    return names


def decode_upload(data: bytes, filename: str, settings: Settings) -> LoadedImage:
    """An uploaded file -> ``LoadedImage``, or an ``InputError`` that says what is wrong."""
    label = Path(filename or "upload").name
    try:
        return read_image(data, name=label, max_pixels=settings.max_pixels)
    except ImageReadError as error:
        if error.reason == "too many pixels":
            raise InputError(
                f"{label}: too large ({error.detail.split(' > ')[0]} pixels); this server "
                f"takes at most {settings.max_pixels:,} pixels per image (srkit serve "
                "--max-pixels)"
            ) from None
        raise InputError(str(error)) from None


def _rgb_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).unsqueeze(0)


@dataclass
class Job:
    """One upload through several models; ``state``: queued, running, done or error."""

    id: str
    folder: Path
    mode: str
    scale: int
    models: list[str]
    lr: LoadedImage | None = None
    hr: LoadedImage | None = None
    state: str = "queued"
    error: str = ""
    message: str = ""
    progress: float = 0.0
    results: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None

    def to_json(self, position: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "position": position,  # jobs ahead of this one (0: next or running)
            "progress": round(self.progress, 4),
            "message": self.message,
            "error": self.error,
            "mode": self.mode,
            "scale": self.scale,
            "models": self.models,
            "inputs": self.inputs,
            "results": self.results,
            "started": self.started,
            "finished": self.finished,
        }


class JobQueue:
    """Runs jobs in submission order on ``settings.workers`` threads; models are loaded once."""

    def __init__(self, root: Path, settings: Settings) -> None:
        self.root = Path(root)
        self.settings = settings
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._upscalers: OrderedDict[tuple[str, int], Upscaler] = OrderedDict()
        self._model_lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._loop, name=f"srkit-serve-{i}", daemon=True)
            for i in range(settings.workers)
        ]
        for thread in self._threads:
            thread.start()

    # ------------------------------------------------------------------ submission

    def submit(
        self,
        mode: str,
        scale: int,
        models: list[str],
        image: LoadedImage,
        hr: LoadedImage | None = None,
    ) -> Job:
        if mode not in MODES:
            raise InputError(f"unknown mode {mode!r} (choose {', '.join(MODES)})")
        check_models(models, scale, self.settings)
        lr, hr = self._inputs(mode, scale, image, hr)
        with self._lock:
            waiting = sum(j.state == "queued" for j in self.jobs.values())
            if waiting >= self.settings.max_queued:
                raise InputError(f"the server is busy ({waiting} jobs waiting); try again soon")
            job_id = secrets.token_hex(8)
            folder = self.root / job_id
            folder.mkdir(parents=True)
            job = Job(job_id, folder, mode, scale, models, lr=lr, hr=hr)
            self.jobs[job_id] = job
        self._save_inputs(job)
        self._queue.put(job)
        return job

    def _inputs(
        self, mode: str, scale: int, image: LoadedImage, hr: LoadedImage | None
    ) -> tuple[LoadedImage, LoadedImage | None]:
        if mode == "upscale":
            return image, None
        if mode == "degrade":
            rgb = image.to_rgb8()
            if min(rgb.shape[:2]) < scale * 12:
                raise InputError(
                    f"{image.name}: {rgb.shape[1]}x{rgb.shape[0]} is too small to score at "
                    f"x{scale} (at least {scale * 12} pixels a side)"
                )
            hr_rgb = mod_crop(_rgb_tensor(rgb), scale)
            lr_rgb = matlab_bicubic_lr(hr_rgb, scale)[0].permute(1, 2, 0).numpy()
            hr_img = _loaded(hr_rgb[0].permute(1, 2, 0).numpy(), image.name)
            return _loaded(lr_rgb, image.name), hr_img
        if hr is None:
            raise InputError("LR + HR mode: upload the HR image too")
        want = (image.height * scale, image.width * scale)
        if (hr.height, hr.width) != want:
            raise InputError(
                f"{hr.name} is {hr.width}x{hr.height}; at x{scale} the HR of a "
                f"{image.width}x{image.height} LR must be {want[1]}x{want[0]}"
            )
        return image, hr

    def _save_inputs(self, job: Job) -> None:
        assert job.lr is not None
        job.files["input.png"] = self._write(job, "input.png", job.lr)
        job.inputs["input"] = {
            "url": f"/api/jobs/{job.id}/files/input.png",
            "width": job.lr.width,
            "height": job.lr.height,
            "name": job.lr.name,
        }
        if job.hr is not None:
            job.files["hr.png"] = self._write(job, "hr.png", job.hr)
            job.inputs["hr"] = {
                "url": f"/api/jobs/{job.id}/files/hr.png",
                "width": job.hr.width,
                "height": job.hr.height,
                "name": job.hr.name,
            }

    @staticmethod
    def _write(job: Job, name: str, image: LoadedImage) -> Path:
        pixels = image.pixels if image.alpha is None else np.dstack([image.pixels, image.alpha])
        depth = 16 if image.pixels.dtype == np.uint16 else 8
        return write_image(job.folder / name, pixels, bit_depth=depth)

    # ------------------------------------------------------------------ status

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self.jobs.get(job_id)

    def position(self, job: Job) -> int:
        with self._lock:
            if job.state != "queued":
                return 0
            ahead = [j for j in self.jobs.values() if j.state in ("queued", "running")]
            return ahead.index(job) if job in ahead else 0

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=30)

    # ------------------------------------------------------------------ work

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            job.state, job.started = "running", time.time()
            try:
                self._run(job)
                job.state = "done"
            except Exception as error:  # noqa: BLE001 - shown on the page as one line
                job.state, job.error = "error", str(error) or type(error).__name__
            finally:
                job.finished, job.progress = time.time(), 1.0
                job.lr = job.hr = None  # the files stay; the arrays go
                self._forget_old()

    def _upscaler(self, name: str, scale: int) -> Upscaler:
        key = (name, scale)
        with self._model_lock:
            if key not in self._upscalers:
                model = resolve_model(name, scale)
                self._upscalers[key] = Upscaler(model, tile=self.settings.tile)
                while len(self._upscalers) > 8:
                    self._upscalers.popitem(last=False)
            self._upscalers.move_to_end(key)
            return self._upscalers[key]

    def _run(self, job: Job) -> None:
        lr = job.lr
        assert lr is not None
        hr_rgb = None if job.hr is None else _rgb_tensor(job.hr.to_rgb8())
        count = len(job.models)
        for i, name in enumerate(job.models):
            job.message = f"{name} ({i + 1} of {count})"
            job.progress = i / count
            began = time.perf_counter()
            entry: dict[str, Any] = {"model": name, "error": ""}
            try:
                upscaler = self._upscaler(name, job.scale)
                plan = upscaler.plan(lr.height, lr.width, lr.channels + (lr.alpha is not None))
                done = [0]

                def on_tile(done=done, total=plan.count, i=i) -> None:
                    done[0] += 1
                    job.progress = (i + done[0] / max(total, 1)) / count

                result = upscaler.upscale_image(lr, on_tile=on_tile)
                file = f"sr_{i}_{name}.png"
                job.files[file] = self._write(job, file, result)
                entry.update(
                    url=f"/api/jobs/{job.id}/files/{file}",
                    download=f"{Path(lr.name).stem}_x{job.scale}_{name}.png",
                    width=result.width,
                    height=result.height,
                    tiles=plan.count,
                )
                if hr_rgb is not None:
                    sr = _rgb_tensor(result.to_rgb8())
                    p, s = psnr_ssim(sr, hr_rgb, border=job.scale)
                    entry.update(psnr=round(float(p[0]), 4), ssim=round(float(s[0]), 5))
            except Exception as error:  # noqa: BLE001 - one model's failure is shown on its card
                entry["error"] = str(error) or type(error).__name__
            entry["seconds"] = round(time.perf_counter() - began, 3)
            job.results.append(entry)
        job.message = "done"

    def _forget_old(self) -> None:
        with self._lock:
            finished = [j for j in self.jobs.values() if j.state in ("done", "error")]
            for job in finished[: max(0, len(finished) - self.settings.keep_jobs)]:
                shutil.rmtree(job.folder, ignore_errors=True)
                del self.jobs[job.id]


def _loaded(rgb: np.ndarray, name: str) -> LoadedImage:
    return LoadedImage(np.ascontiguousarray(rgb), None, 8, None, None, name)


__all__ = [
    "MODES",
    "InputError",
    "Job",
    "JobQueue",
    "Settings",
    "catalogue",
    "check_models",
    "decode_upload",
]
