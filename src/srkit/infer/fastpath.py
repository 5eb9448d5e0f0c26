"""A fast start for ``srkit upscale`` on OpenVINO: the same request again runs without PyTorch.

Importing PyTorch and loading the model are most of ``srkit upscale``'s start (about 1.2 of
1.4 s for a 16x16 image on a 2-core Xeon). When a run's model ends up on OpenVINO (``--backend
auto`` picked it, or ``--backend openvino``), :class:`srkit.infer.upscaler.Upscaler` records
what it ran in ``$SRKIT_CACHE/fastpath.json``: the exported (or int8) file, OpenVINO's
settings, the model's name, scale and tile memory estimate. The record is keyed by the request
(model, scale, backend, precision, calibration folder) and by everything that could change
the answer: the size and time of the weight files and of the exported file, the CPU and its
flags, the threads, the srkit, torch and OpenVINO versions and srkit's deployment code. The next
run with the same key reads the record and runs OpenVINO on NumPy arrays
(:class:`FastUpscaler`, the same compiled model on the same input: the same output). An image
with alpha, which needs PyTorch's MATLAB-bicubic resize, goes to the full ``Upscaler``, built
when first needed. ``SRKIT_FAST_START=0`` turns this off.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from srkit.common.bands import cores
from srkit.common.files import cache_dir, write_text_atomic
from srkit.common.machine import cpu_flags, cpu_name
from srkit.image.io import LoadedImage
from srkit.infer.tiled import TiledUpscaler

#: bump when a record's fields change
RECORD_VERSION = 1
#: srkit's files whose code decides what a record holds: an edit makes new keys
_CODE = (
    "deploy/__init__.py", "deploy/auto.py", "deploy/export.py", "deploy/tails.py",
    "deploy/runtimes.py", "deploy/cache.py", "common/openvino.py", "infer/fastpath.py",
    "infer/tiled.py", "infer/tiling.py", "infer/upscaler.py", "archs/adapter.py", "zoo.py",
)  # fmt: skip
_SRKIT = Path(__file__).resolve().parents[1]


def enabled() -> bool:
    return os.environ.get("SRKIT_FAST_START", "1") not in ("0", "false", "no", "off")


def record_file() -> Path:
    return cache_dir() / "fastpath.json"


def _stat(path: str | os.PathLike) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def default_threads() -> int:
    """The threads torch starts with here, as far as it can be told without torch: the
    ``OMP_NUM_THREADS`` setting, else the cores this process may use. A record is written under
    torch's real count, so where the two differ the records are simply never found."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else cores()


@dataclass(frozen=True)
class Request:
    """What a run asked for (only requests the fast start can serve; see :meth:`of`)."""

    model: str  # a name ("default" for none), or a weight file's real path
    scale: int | None
    backend: str
    precision: str | None
    calib: str | None

    @classmethod
    def of(
        cls,
        model: Any,
        scale: int | None,
        backend: str,
        precision: str | None,
        calib: Any = None,
        ensemble: bool = False,
        cache: Any = None,
    ) -> Request | None:
        """The request for these ``Upscaler`` arguments; None when the fast start cannot serve
        it (a model object, the self-ensemble, a private deployment cache, a torch backend)."""
        if ensemble or cache is not None or backend not in ("auto", "openvino"):
            return None
        if model is not None and not isinstance(model, (str, os.PathLike)):
            return None
        spec = "default" if model is None else os.fspath(model)
        if os.path.exists(spec):
            spec = os.path.realpath(spec)
        where = os.path.realpath(os.fspath(calib)) if calib is not None else None
        return cls(spec, None if scale is None else int(scale), backend, precision, where)

    def key(self, threads: int) -> str:
        facts = {
            **asdict(self),
            "threads": threads,
            "cpu": cpu_name(),
            "flags": cpu_flags(),
            "versions": [_version(p) for p in ("srkit", "torch", "openvino")],
            "code": [_stat(_SRKIT / name) for name in _CODE],
            "record": RECORD_VERSION,
        }
        return json.dumps(facts, sort_keys=True)


def _read() -> dict[str, Any]:
    try:
        data = json.loads(record_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _files_of(model: Any) -> list[str]:
    """The files a model's weights came from (a manifest and its weights file, or one file)."""
    info = getattr(model, "info", {}) or {}
    source = info.get("source")
    if not source:
        return []
    files = [str(source)]
    if info.get("weights"):
        files.append(str(Path(source).parent / info["weights"]))
    return files


def remember(request: Request, upscaler: Any) -> None:
    """Record ``upscaler`` (a ready :class:`~srkit.infer.upscaler.Upscaler`) for ``request``
    when its model runs on OpenVINO; silently nothing otherwise (or on a read-only cache)."""
    if not enabled():
        return
    model = upscaler.model
    runner = getattr(getattr(model, "net", None), "runner", None)
    convention = getattr(model, "convention", None)
    if runner is None or convention is None or upscaler.input_size is not None:
        return
    if convention.channels != "rgb" or convention.value_range != 1.0 or convention.mean:
        return
    import torch  # the Upscaler has it loaded already

    files = _files_of(upscaler.base_model) + [runner.path]
    stats = [_stat(f) for f in files]
    if not files or any(s is None for s in stats):
        return
    choice = upscaler.backend_choice
    record = {
        "name": upscaler.name,
        "scale": upscaler.scale,
        "backend": upscaler.backend,
        "precision": upscaler.precision,
        "choice": None if choice is None else {"label": choice.label, "reason": choice.reason},
        "file": runner.path,
        "config": {k: v for k, v in runner.config.items()},
        "bytes_per_pixel": upscaler.bytes_per_pixel(),
        "files": dict(zip(files, stats, strict=True)),
    }
    entries, key = _read(), request.key(torch.get_num_threads())
    if entries.get(key) == record:
        return
    entries[key] = record
    with contextlib.suppress(OSError):
        write_text_atomic(record_file(), json.dumps(entries, indent=1) + "\n")


def lookup(request: Request, threads: int | None = None) -> dict[str, Any] | None:
    """The record for ``request`` with ``threads`` (default: :func:`default_threads`) whose
    files are all as they were; None otherwise."""
    if not enabled():
        return None
    record = _read().get(request.key(threads or default_threads()))
    if not isinstance(record, dict):
        return None
    files = record.get("files") or {}
    if not files or any(_stat(f) != stat for f, stat in files.items()):
        return None
    cache = record.get("config", {}).get("CACHE_DIR")
    if cache is not None and not os.access(cache, os.W_OK):
        return None
    return record


@dataclass
class _Choice:
    label: str
    reason: str


class FastUpscaler(TiledUpscaler):
    """An ``Upscaler`` (tiles, colour, streamed PNG) over a recorded OpenVINO model, without
    PyTorch. ``full()`` gives the full ``Upscaler`` for what this one does not do (alpha)."""

    def __init__(
        self,
        record: dict[str, Any],
        full: Callable[[], Any],
        *,
        tile: int | None = None,
        overlap: int = 16,
        png_level: int = 2,
    ) -> None:
        from srkit.common.openvino import OpenVINORunner

        self._setup_tiles(tile, overlap, None, None, png_level)
        self.scale = int(record["scale"])
        self._name = str(record["name"])
        self.backend, self.precision = record["backend"], record["precision"]
        choice = record.get("choice")
        self.backend_choice = None
        if choice:
            self.backend_choice = _Choice(choice["label"], choice["reason"].removesuffix(
                " (cached)") + " (cached)")  # fmt: skip
        config = record["config"]
        self.runner = OpenVINORunner(
            record["file"],
            config["INFERENCE_PRECISION_HINT"],
            config["INFERENCE_NUM_THREADS"],
            config.get("CACHE_DIR"),
        )
        self._bytes = float(record["bytes_per_pixel"])
        self._make_full = full
        self._full: Any = None

    @property
    def name(self) -> str:
        return self._name

    def bytes_per_pixel(self) -> float:
        return self._bytes

    def full(self) -> Any:
        if self._full is None:
            self._full = self._make_full()
        return self._full

    def _tile_fn(self, color_channels: int) -> Callable[[np.ndarray], np.ndarray]:
        runner = self.runner

        def run(tile: np.ndarray) -> np.ndarray:
            if tile.shape[1] != color_channels:
                raise ValueError("the fast start upscales no alpha")  # write() sends it on
            rgb = np.repeat(tile, 3, axis=1) if color_channels == 1 else tile
            out = runner(rgb)
            return out.mean(axis=1, keepdims=True, dtype=np.float32) if color_channels == 1 else out

        return run

    def write(self, image: LoadedImage, target, **options: Any):
        if image.alpha is not None:
            return self.full().write(image, target, **options)
        return super().write(image, target, **options)


def fast_upscaler(
    model: str | None,
    scale: int | None,
    backend: str,
    precision: str | None,
    calib: Any,
    threads: int | None,
    full: Callable[[], Any],
    **options: Any,
) -> FastUpscaler | None:
    """A :class:`FastUpscaler` for this request if a usable record exists, else None.
    ``options``: ``tile``, ``overlap``, ``png_level``. A record that fails to load (a file
    OpenVINO refuses) gives None: the caller takes the full path, which records anew."""
    request = Request.of(model, scale, backend, precision, calib)
    if request is None:
        return None
    record = lookup(request, threads)
    if record is None:
        return None
    try:
        return FastUpscaler(record, full, **options)
    except Exception:  # noqa: BLE001 - any failure: the full path runs and records again
        return None
