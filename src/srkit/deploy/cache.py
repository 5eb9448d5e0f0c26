"""Deployment files kept between runs: a network's ONNX export and its calibrated int8 model.

Exporting a network to ONNX and calibrating its int8 model take seconds to tens of seconds
(RepAN x4: about 18 s on one core), and ``srkit upscale --backend auto`` picks an int8 backend
on most CPUs, so every run would pay them again. :func:`cached_file` keeps each file under
``$SRKIT_CACHE/deploy`` (default ``~/.cache/srkit/deploy``), named by a digest of everything that
makes it: the network's tensors, its input convention and scale, the exporter (opset, torch
version) and, for int8, the calibration crops themselves, the quantiser's settings and the
ONNX Runtime version. Other weights, other calibration images or another toolchain give another
name, never a stale file. Files appear whole (written beside themselves, then renamed); one that
fails to load is made again (:func:`remake_on_failure`). A read-only home falls back to a
temporary folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from srkit.common.files import atomic_path, cache_dir

T = TypeVar("T")


def deploy_cache_dir() -> Path | None:
    """``$SRKIT_CACHE/deploy``, created; None when it cannot be written."""
    folder = cache_dir() / "deploy"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK) else None


#: compiled OpenVINO models kept at most (one per input shape; the oldest go first)
COMPILED_KEEP = 64


def compiled_model_dir(folder: str | os.PathLike) -> Path | None:
    """``folder/openvino-compiled``, created, for OpenVINO's ``CACHE_DIR``; ``None`` when it
    cannot be written (OpenVINO would fail every compile). Each input shape adds a compiled
    model, so the folder is trimmed to its :data:`COMPILED_KEEP` most recently written."""
    path = Path(folder) / "openvino-compiled"
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK):
            return None
        entries = sorted(path.iterdir(), key=lambda p: p.stat().st_mtime_ns)
        for old in entries[: max(0, len(entries) - COMPILED_KEEP)]:
            old.unlink(missing_ok=True)
    except OSError:
        return None
    return path


def weights_digest(net: torch.nn.Module) -> str:
    """sha256 of the network's tensors (names, shapes, dtypes and bytes), in ``state_dict``
    order: the same weights give the same key whatever file they came from."""
    h = hashlib.sha256()
    for name, tensor in net.state_dict().items():
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def arrays_digest(arrays: Sequence[np.ndarray]) -> str:
    """sha256 of a list of arrays (shapes, dtypes and bytes), in order."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}:{a.dtype};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def key_digest(parts: dict[str, Any]) -> str:
    """A short, stable digest of a JSON-able description."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def cached_file(path: Path, make: Callable[[Path], Any]) -> tuple[Path, bool]:
    """``path`` if it exists, else ``make(temporary)`` renamed onto it; returns ``(path, hit)``."""
    if path.is_file() and path.stat().st_size > 0:
        return path, True
    with atomic_path(path) as temporary:
        make(temporary)
    return path, False


def remake_on_failure(
    path: Path, hit: bool, use: Callable[[Path], T], remake: Callable[[], Path]
) -> T:
    """``use(path)``; when a file read from the cache fails to load, delete it, make it again
    (``remake``) and use that. A file made in this run that fails raises as it is."""
    try:
        return use(path)
    except Exception:
        if not hit:
            raise
    path.unlink(missing_ok=True)
    return use(remake())
