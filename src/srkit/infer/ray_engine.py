"""Bulk upscaling on a Ray cluster (``srkit upscale DIR -o OUT --engine ray``).

The driver (the machine running ``srkit upscale``) plans the jobs exactly as the local engine
does, reads each input file's bytes and sends them to a pool of Ray actors; each actor builds
its ``Upscaler`` once (the model travels through Ray's object store, so worker nodes need srkit
but not the weight file), decodes, upscales (tiled, on its backend) and encodes with the same
code as ``--engine local``, and sends the encoded file back; the driver writes it atomically.
Nothing but srkit itself has to exist on the worker nodes: no shared file system.

Outputs are bit-identical to ``--engine local`` run with the same ``threads``: the driver fixes
the tile plan's memory budget for every worker, and each actor runs ``torch`` with ``threads``
threads (oneDNN's convolutions sum in an order that depends on the thread count, so a 1-thread
and a 2-thread run can differ in the last bit of a few pixels).

Needs ``pip install 'srkit[ray]'`` on the driver and on every node.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from srkit.common.bands import set_threads
from srkit.common.files import write_bytes_atomic
from srkit.infer.batch import BatchResult, Job, _reason, pending_jobs
from srkit.infer.tiling import available_memory
from srkit.infer.upscaler import Upscaler

_LOOPBACK = "127.0.0.1"
_PER_WORKER = 2  # jobs queued on each actor, so it never waits for the driver


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ImportError("--engine ray needs Ray: pip install 'srkit[ray]'") from None
    return ray


class UpscaleWorker:
    """One Ray actor: one ``Upscaler`` (one model load), many files."""

    def __init__(self, model: Any, options: dict[str, Any], threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        set_threads(threads)  # the blending's bands too
        self.upscaler = Upscaler(model, **options)

    def run(self, name: str, data: bytes, suffix: str) -> tuple[bytes | None, int, float, str]:
        """Encoded input -> (encoded output, tiles, seconds, error); the error is "" on success."""
        from srkit.image.io import read_image

        began = time.perf_counter()
        try:
            image = read_image(data, name=name)
            tiles = self.upscaler.plan(image.height, image.width, image.channels).count
            with tempfile.TemporaryDirectory(prefix="srkit-ray-") as folder:
                path = Path(folder) / f"out{suffix}"
                self.upscaler.write(image, path)()
                return path.read_bytes(), tiles, time.perf_counter() - began, ""
        except Exception as error:  # noqa: BLE001 - reported per file by the driver
            return None, 0, time.perf_counter() - began, _reason(error)


def check_reachable(host: str, port: int, timeout: float = 10.0) -> None:
    """Raise ConnectionError unless a TCP connection to ``host:port`` opens within ``timeout``."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as error:
        raise ConnectionError(
            f"nothing answers at {host}:{port} within {timeout:g} s ({error.strerror or error})"
        ) from None


def connect(address: str | None, cpus: int | None) -> tuple[Any, bool]:
    """``ray`` connected to ``address`` (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``) or, for
    None, to a new local instance of ``cpus`` CPUs; returns whether we started it."""
    ray = import_ray()
    if ray.is_initialized():
        return ray, False
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    try:
        if address is None:  # a private instance, on loopback only
            ray.init(num_cpus=cpus, include_dashboard=False, _node_ip_address=_LOOPBACK, **options)
            return ray, True
        host, _, port = address.split("://")[-1].rpartition(":")
        if host and port.isdigit():
            check_reachable(host, int(port))  # ray.init would retry an unreachable one forever
        if host in (_LOOPBACK, "localhost"):  # a cluster on this machine's loopback
            options["_node_ip_address"] = _LOOPBACK
        ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = "a local Ray instance" if address is None else f"the Ray cluster at {address}"
        raise RuntimeError(f"cannot reach {where}: {str(error).splitlines()[0]}") from None
    return ray, False


def run_ray(
    upscaler: Upscaler,
    jobs: list[Job],
    *,
    address: str | None = None,
    workers: int | None = None,
    threads: int = 1,
    overwrite: bool = False,
    skip_existing: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_done: Callable[[Job, str | None], None] | None = None,
) -> BatchResult:
    """Upscale ``jobs`` on Ray actors running ``upscaler``'s model and settings.

    ``workers``: actors (default: the cluster's CPUs // ``threads``); ``threads``: torch threads
    (and Ray CPUs) per actor. ``on_start(workers)`` once the actors exist, ``on_done`` as in
    :func:`srkit.infer.batch.run_batch`.
    """
    if threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    result = BatchResult()
    start = time.perf_counter()
    todo: deque[Job] = deque()
    for job in pending_jobs(jobs, result, overwrite, skip_existing, on_done):
        if job.target.exists() and not overwrite:
            _failed(result, job, f"output {job.target} exists (pass --overwrite)", on_done)
        else:
            todo.append(job)
    if not todo:
        result.seconds = time.perf_counter() - start
        return result
    ray, started = connect(address, None if workers is None else workers * threads)
    try:
        if workers is None:
            cpus = int(ray.cluster_resources().get("CPU", 1))
            workers = max(1, cpus // threads)
        workers = min(workers, len(todo))
        options = {
            "tile": upscaler.tile,
            "overlap": upscaler.overlap,
            "blend": upscaler.blend,
            "backend": upscaler.backend,
            "precision": upscaler.precision,
            "ensemble": _is_ensemble(upscaler),
            "png_level": upscaler.png_level,
            # the driver's budget, so that every worker cuts the same tiles as a local run
            "memory_budget": upscaler.memory_budget or min(1 << 30, available_memory() // 4),
        }
        model_ref = ray.put(upscaler.base_model)
        actor_class = ray.remote(num_cpus=threads)(UpscaleWorker)
        actors = [actor_class.remote(model_ref, options, threads) for _ in range(workers)]
        if on_start is not None:
            on_start(workers)
        _dispatch(ray, actors, todo, result, on_done)
    finally:
        if started:
            ray.shutdown()
    result.seconds = time.perf_counter() - start
    return result


def _is_ensemble(upscaler: Upscaler) -> bool:
    from srkit.models import SelfEnsemble

    return isinstance(upscaler.model, SelfEnsemble)


def _failed(result: BatchResult, job: Job, reason: str, on_done) -> None:
    result.add(job, "failed", reason)
    if on_done is not None:
        on_done(job, reason)


def _dispatch(ray: Any, actors: list[Any], todo: deque[Job], result: BatchResult, on_done) -> None:
    """Keep ``_PER_WORKER`` jobs queued on every live actor until ``todo`` is empty."""
    inflight: dict[Any, tuple[Job, Any]] = {}

    def submit(actor: Any) -> None:
        while todo:
            job = todo.popleft()
            try:
                data = job.source.read_bytes(job.name)
            except Exception as error:  # noqa: BLE001 - an unreadable file is reported
                _failed(result, job, _reason(error), on_done)
                continue
            ref = actor.run.remote(job.label, data, job.target.suffix)
            inflight[ref] = (job, actor)
            return

    for actor in actors:
        for _ in range(_PER_WORKER):
            submit(actor)
    while inflight:
        ready, _ = ray.wait(list(inflight), num_returns=1)
        job, actor = inflight.pop(ready[0])
        try:
            data, tiles, seconds, error = ray.get(ready[0])
        except ray.exceptions.RayError as failure:  # the actor died (killed node, OOM):
            # its file fails, and it gets no more work; the other actors take the rest
            _failed(result, job, f"Ray worker failed: {str(failure).splitlines()[0]}", on_done)
            continue
        if not error:
            try:
                write_bytes_atomic(job.target, data)
            except OSError as failure:
                error = _reason(failure)
        result.tiles += tiles
        if error:
            result.add(job, "failed", error, tiles, seconds)
        else:
            result.add(job, "written", tiles=tiles, seconds=seconds)
        if on_done is not None:
            on_done(job, error or None)
        submit(actor)
    while todo:  # every actor died
        _failed(result, todo.popleft(), "no Ray worker left", on_done)
