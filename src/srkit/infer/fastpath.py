"""A fast start for ``srkit upscale`` on OpenVINO: the same request again runs without PyTorch.

Importing PyTorch and loading the model are most of ``srkit upscale``'s start (about 1.0 of
1.5 s for a 16x16 image on a 2-core Xeon). When a run's model ends up on OpenVINO (``--backend
auto`` picked it, or ``--backend openvino``), ``srkit upscale`` records what it ran
(:func:`remember`) in ``$SRKIT_CACHE/fastpath.json``: the exported (or int8) file, OpenVINO's
settings, the model's name, scale and tile memory estimate. The record is keyed by the request
(model, scale, backend, precision, calibration images, ``--threads``) and by everything that
could change the answer: the thread variables of the environment, the cores, the CPU and its
flags, the srkit, torch, OpenVINO and ONNX Runtime versions and srkit's code; it is used only
while the weight files, the exported file and (for ``auto``) the backend choices are as they
were. The next run with the same key reads the record and runs OpenVINO on NumPy arrays
(:class:`FastUpscaler`, the same compiled model on the same tiles: the same output). An image
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
from srkit.data.builtin import bundled_set5
from srkit.data.sources import files_of
from srkit.image.io import LoadedImage
from srkit.infer.tiled import TiledUpscaler

#: bump when a record's fields change
RECORD_VERSION = 1
#: records kept in the file (one per request, machine and code state; the oldest go first)
RECORDS_KEPT = 32
#: srkit's code that decides what a record holds (an edit makes new keys, so an editable
#: install never runs a record of older code)
_CODE_DIRS = ("deploy", "weights", "archs", "common")
_CODE = ("models.py", "zoo.py", "infer/fastpath.py", "infer/tiled.py", "infer/tiling.py",
         "infer/upscaler.py")  # fmt: skip
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


def _code_stats() -> list[Any]:
    files = [_SRKIT / name for name in _CODE]
    for folder in _CODE_DIRS:
        files += sorted((_SRKIT / folder).glob("*.py"))
    return [[str(f.relative_to(_SRKIT)), _stat(f)] for f in files]


def _calibration_stats(calib: str | None) -> list[Any] | None:
    """Names, sizes and times of the calibration images (int8's key hashes their bytes; any
    change here makes a new record key); None for what the fast start does not serve."""
    files = files_of(Path(calib) if calib is not None else bundled_set5())
    return None if files is None else [[f.name, _stat(f)] for f in files]


@dataclass(frozen=True)
class Request:
    """What a run asked for (only requests the fast start can serve; see :meth:`of`)."""

    model: str  # a name ("default" for none), or a weight file's real path
    scale: int | None
    backend: str
    precision: str | None
    calib: str | None
    threads: int | None  # --threads; None: PyTorch's default (the environment is in the key)

    @classmethod
    def of(
        cls,
        model: Any,
        scale: int | None,
        backend: str,
        precision: str | None,
        calib: Any = None,
        threads: int | None = None,
    ) -> Request | None:
        """The request for these ``srkit upscale`` options; None when the fast start cannot
        serve it (a model object, a torch backend, a calibration list or glob)."""
        if backend not in ("auto", "openvino"):
            return None
        if model is not None and not isinstance(model, (str, os.PathLike)):
            return None
        spec = "default" if model is None else os.fspath(model)
        if os.path.exists(spec):
            spec = os.path.realpath(spec)
        where = os.path.realpath(os.fspath(calib)) if calib is not None else None
        if _calibration_stats(where) is None:
            return None
        return cls(spec, None if scale is None else int(scale), backend, precision, where,
                   None if threads is None else int(threads))  # fmt: skip

    def key(self) -> str:
        facts = {
            **asdict(self),
            "environment": {k: os.environ.get(k) for k in _THREAD_VARIABLES},
            "cores": cores(),
            "cpu": cpu_name(),
            "flags": cpu_flags(),
            "versions": [_version(p) for p in ("srkit", "torch", "openvino", "onnxruntime")],
            "calibration": _calibration_stats(self.calib),
            "code": _code_stats(),
            "record": RECORD_VERSION,
        }
        return json.dumps(facts, sort_keys=True)


#: the environment that sets PyTorch's default thread count
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "SRKIT_SKIP_COMPILE")


def _read() -> dict[str, Any]:
    try:
        data = json.loads(record_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _files_of(model: Any) -> list[str]:
    """The files a model's weights came from (a manifest, its weights file and the files it
    includes, or one file)."""
    info = getattr(model, "info", {}) or {}
    source = info.get("source")
    if not source:
        return []
    files = [str(source)]
    if info.get("weights"):
        files.append(str(Path(source).parent / info["weights"]))
    for entry in info.get("includes") or []:  # a pair's second network, stored once
        files.append(str(Path(source).parent / entry["weights"]))
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
    files = _files_of(upscaler.base_model) + [runner.path]
    if request.backend == "auto":  # a measured choice: re-measured, it may differ
        files.append(str(cache_dir() / "backends.json"))
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
    entries, key = _read(), request.key()
    if entries.get(key) == record:
        return
    entries.pop(key, None)
    entries[key] = record  # the newest last; the oldest go beyond RECORDS_KEPT
    entries = dict(list(entries.items())[-RECORDS_KEPT:])
    with contextlib.suppress(OSError):
        write_text_atomic(record_file(), json.dumps(entries, indent=1) + "\n")


def lookup(request: Request) -> dict[str, Any] | None:
    """The record for ``request`` whose files are all as they were; None otherwise (also for
    a damaged record file)."""
    if not enabled():
        return None
    try:
        record = _read().get(request.key())
        files = record["files"]
        if not files or any(_stat(f) != stat for f, stat in files.items()):
            return None
        cache = record["config"].get("CACHE_DIR")
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
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
    request: Request | None, full: Callable[[], Any], **options: Any
) -> FastUpscaler | None:
    """A :class:`FastUpscaler` for ``request`` if a usable record exists, else None.
    ``full()`` builds the full ``Upscaler`` (for alpha); ``options``: ``tile``, ``overlap``,
    ``png_level``. A record that fails to load (a file OpenVINO refuses) gives None: the caller
    takes the full path, which records anew."""
    record = None if request is None else lookup(request)
    if record is None:
        return None
    try:
        return FastUpscaler(record, full, **options)
    except Exception:  # noqa: BLE001 - any failure: the full path runs and records again
        return None
