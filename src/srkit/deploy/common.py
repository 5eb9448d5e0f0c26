"""Pieces every backend shares: the normalised core network, wrapping, optional imports."""

from __future__ import annotations

import atexit
import hashlib
import importlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from srkit.archs.adapter import NetworkModel
from srkit.archs.common import InputConvention
from srkit.data.builtin import bundled_set5
from srkit.data.sources import files_of, open_source
from srkit.image.color import rgb_to_ycbcr
from srkit.image.io import ImageReadError, to_tensor
from srkit.models import SRModel
from srkit.weights.native import sha256_file

PRECISIONS = ("fp32", "bf16", "int8")


class DeployError(RuntimeError):
    """A backend, precision or export that cannot be used here, with the reason."""


def require(module: str, what: str) -> Any:
    """Import an optional dependency or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        package = {"onnxruntime": "onnxruntime", "openvino": "openvino", "onnx": "onnx"}.get(
            module.split(".")[0], module
        )
        raise DeployError(
            f"{what} needs {package}, which is not installed: pip install 'srkit[deploy]' "
            f"(or pip install {package})"
        ) from error


def installed_version(module: str, what: str) -> str:
    """The installed version of an optional dependency, read from its metadata without
    importing it (ONNX Runtime takes 40 ms to import; a cache key needs only its version), or
    :func:`require`'s error when it is missing."""
    from importlib import metadata

    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return require(module, what).__version__


class CoreNet(nn.Module):
    """The network with its value range and mean folded in: [0, 1] in, [0, 1] out.

    Channels are the network's own (3 for RGB networks, 1 for Y-only ones). This is what gets
    exported and what every backend runs; the Y/CbCr split stays in ``NetworkModel``.
    """

    def __init__(self, net: nn.Module, convention: InputConvention) -> None:
        super().__init__()
        self.net = net
        self.value_range = float(convention.value_range)
        mean = convention.mean
        shift = torch.zeros(convention.in_channels) if mean is None else torch.tensor(mean)
        self.register_buffer("shift", (shift * self.value_range).view(1, -1, 1, 1).float())
        self.has_mean = mean is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x * self.value_range
        if self.has_mean:
            h = h - self.shift
        out = self.net(h)
        if self.has_mean:
            out = out + self.shift
        return out / self.value_range


def as_network_model(model: SRModel, what: str) -> NetworkModel:
    if isinstance(model, NetworkModel):
        return model
    raise DeployError(
        f"{what} runs trained networks (a weight file); {getattr(model, 'name', model)!r} is not"
    )


def core_of(model: NetworkModel) -> CoreNet:
    return CoreNet(model.net, model.convention).eval()


def identity_convention(model: NetworkModel) -> InputConvention:
    return InputConvention(model.convention.channels, 1.0, None, model.convention.input_size)


def wrap(model: NetworkModel, module: nn.Module, tag: str, **info: Any) -> NetworkModel:
    """An ``SRModel`` running ``module`` (a [0, 1] -> [0, 1] core) with ``model``'s colour path."""
    return NetworkModel(
        module,
        model.scale,
        identity_convention(model),
        f"{model.name}[{tag}]",
        info={**model.info, "deploy": tag, **info},
    )


def work_dir(cache: str | Path | None) -> Path:
    """``cache`` or a temporary folder removed at exit."""
    if cache is not None:
        path = Path(cache)
        path.mkdir(parents=True, exist_ok=True)
        return path
    path = Path(tempfile.mkdtemp(prefix="srkit-deploy-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def calibration_files(calib: str | Path | None) -> str | None:
    """A digest of the calibration images' files (names and bytes): a folder's files or one
    file (an image, a zip); ``None`` for a list file (its images live elsewhere), a glob or a
    missing path, which the crops themselves then key. Hashing the files instead of decoding
    crops keeps ``srkit upscale`` from decoding the calibration set on every run (0.14 s for
    the bundled Set5), and the key stays the same across installs and copies."""
    path = Path(calib).expanduser() if calib is not None else bundled_set5()
    try:
        files = files_of(path)
        if files is None:
            return None
        digest = hashlib.sha256()
        for file in files:
            digest.update(f"{file.name}:{sha256_file(file)};".encode())
    except OSError:
        return None
    return digest.hexdigest()


def calibration_batches(
    calib: str | Path | None,
    channels: str,
    count: int = 32,
    size: int = 96,
    seed: int = 0,
) -> list[np.ndarray]:
    """``count`` crops ``(1, C, size, size)`` float32 in [0, 1] (Y for Y-only networks) from the
    images under ``calib`` (a folder, glob, zip or list); the bundled Set5 when ``None``."""
    rng = np.random.default_rng(seed)
    source = open_source(str(calib) if calib is not None else str(bundled_set5()))
    names = source.names
    crops: list[np.ndarray] = []
    with source:
        for i in range(count):
            name = names[i % len(names)]
            try:
                image = source.read(name)
            except ImageReadError:
                continue
            rgb = to_tensor(image.to_rgb8()).unsqueeze(0)
            _, _, h, w = rgb.shape
            ch, cw = min(size, h), min(size, w)
            y0 = int(rng.integers(0, h - ch + 1))
            x0 = int(rng.integers(0, w - cw + 1))
            crop = rgb[:, :, y0 : y0 + ch, x0 : x0 + cw]
            if channels == "y":
                crop = rgb_to_ycbcr(crop)[:, :1]
            crops.append(crop.contiguous().numpy())
    if not crops:
        raise DeployError(f"{calib}: no readable calibration images")
    return crops
