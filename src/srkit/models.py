"""The model interface every evaluator and upscaler talks to.

An ``SRModel`` maps a batch of low-resolution RGB images to super-resolved ones:

* input: float32 tensor ``(N, 3, H, W)``, RGB, values in ``[0, 1]`` (uint8 / 255);
* output: float32 tensor ``(N, 3, H * scale, W * scale)``, RGB, nominally in ``[0, 1]``
  (callers clamp and round; models need not).

``SelfEnsemble`` wraps any ``SRModel`` in the x8 geometric self-ensemble (EDSR's "+"): the model
averaged over the flips and transposes of its input.

Networks with other conventions (``[0, 255]`` range, a mean shift, Y-only input) are wrapped by
an adapter that converts on the way in and out, so callers never guess. ``resolve_model`` turns a
command-line ``--model`` value into such a callable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch

from srkit.archs import build, get_spec
from srkit.archs.adapter import NetworkModel
from srkit.image.resize import imresize
from srkit.weights import load
from srkit.zoo import resolve_shipped, upscaling_models


@runtime_checkable
class SRModel(Protocol):
    """LR batch -> SR batch, RGB in [0, 1], with a fixed integer scale."""

    name: str
    scale: int

    def __call__(self, lr: torch.Tensor) -> torch.Tensor: ...


@dataclass
class InterpolationModel:
    """A classical interpolation upscaler (``bicubic`` is MATLAB's imresize)."""

    name: str
    scale: int
    method: str = "bicubic"

    def __call__(self, lr: torch.Tensor) -> torch.Tensor:
        return imresize(lr, scale=self.scale, kernel=self.method)


def _dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    if k & 1:
        x = x.flip(-1)
    if k & 2:
        x = x.flip(-2)
    if k & 4:
        x = x.transpose(-1, -2)
    return x


def _undo_dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    if k & 4:
        x = x.transpose(-1, -2)
    if k & 2:
        x = x.flip(-2)
    if k & 1:
        x = x.flip(-1)
    return x


@dataclass
class SelfEnsemble:
    """An ``SRModel`` that runs ``model`` on the 8 dihedral transforms and averages the outputs."""

    model: SRModel

    @property
    def name(self) -> str:
        return f"{self.model.name}+"

    @property
    def scale(self) -> int:
        return self.model.scale

    def __call__(self, lr: torch.Tensor) -> torch.Tensor:
        total: torch.Tensor | None = None
        with torch.inference_mode():
            for k in range(8):
                out = _undo_dihedral(self.model(_dihedral(lr, k).contiguous()), k).float()
                total = out if total is None else total + out
        assert total is not None
        return total / 8


INTERPOLATION_MODELS: dict[str, str] = {
    "bicubic": "bicubic",
    "bilinear": "bilinear",
    "nearest": "nearest",
}

# Further resolvers (trained networks by name, weight files) are appended by later stages; each
# returns a model or None when the spec is not theirs. Explicit list, no import-time scanning.
ModelResolver = Callable[[str, int], "SRModel | None"]


def _resolve_interpolation(spec: str, scale: int) -> SRModel | None:
    method = INTERPOLATION_MODELS.get(spec.lower())
    if method is None:
        return None
    return InterpolationModel(name=spec.lower(), scale=scale, method=method)


def _resolve_weight_file(spec: str, scale: int) -> SRModel | None:
    """A weight file: srkit ``.safetensors``/``.json``, an official ``.pth``/``.pt``, a ``.mat``."""
    path = Path(spec)
    suffixes = (".pth", ".pt", ".ckpt", ".bin", ".pkl", ".safetensors", ".json", ".mat")
    if path.suffix.lower() not in suffixes and not path.is_file():
        return None
    return load(path, scale=scale)


def _resolve_shipped(spec: str, scale: int | None) -> SRModel | None:
    """A model shipped inside srkit (`srkit models`): repan_x4, repan + scale, or default."""
    return resolve_shipped(spec, scale)


RESOLVERS: list[ModelResolver] = [_resolve_interpolation, _resolve_shipped, _resolve_weight_file]


def random_model(arch: str, scale: int, seed: int = 0) -> SRModel:
    """Architecture ``arch`` at ``scale`` with seeded random weights: for speed measurements
    (``srkit speed --random-init``, the benchmarks), where only the shapes matter."""
    torch.manual_seed(seed)
    spec = get_spec(arch)
    net = build(spec.name, scale=scale)
    return NetworkModel(net, scale, spec.convention, f"{spec.name} (random init)",
                        info={"arch": spec.name})  # fmt: skip


def resolve_model(spec: str, scale: int | None, arch: str | None = None) -> SRModel:
    """Turn a ``--model`` value (a name or a weight file) into an ``SRModel`` for ``scale``.

    Names: ``bicubic``/``bilinear``/``nearest``, a shipped model (``default``, ``repan_x4``, or
    a family such as ``repan`` with ``scale``), else a weight file.
    ``arch`` overrides the architecture detected from a weight file's keys.
    """
    if arch is not None:
        return load(spec, scale=scale, arch=arch)
    for resolver in RESOLVERS:
        model = resolver(spec, scale)
        if model is not None:
            return model
    shipped = sorted({name for m in upscaling_models() for name in (m.family, m.name)})
    known = ", ".join(["default", *shipped, *sorted(INTERPOLATION_MODELS)])
    raise ValueError(
        f"unknown model {spec!r}: expected a weight file or one of {known} (see `srkit models`)"
    )
