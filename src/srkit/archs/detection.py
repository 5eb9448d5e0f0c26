"""Recognising an architecture from a state dict's key names and tensor shapes (as spandrel does).

Each architecture module that can read its authors' checkpoints declares a :class:`KeyDetector`
in its ``ArchSpec``: a function that looks at a state dict (names and shapes only, no file
reading) and returns a :class:`Detected` (the arch, its options read off the shapes, the keys
renamed to srkit's modules) or ``None`` when the keys are not that family's. Reading files and
loading the tensors is ``srkit.weights``'s job; it calls these detectors.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from srkit.archs.common import InputConvention

StateDict = dict[str, torch.Tensor]


class DetectionError(ValueError):
    """The keys are this family's, but the file is a variant srkit cannot build."""


@dataclass
class Detected:
    """What a foreign checkpoint holds, in srkit's terms."""

    arch: str
    options: dict[str, Any]
    scale: int | None  # None: the file does not fix the scale (multi-scale or scale-agnostic)
    scales: tuple[int, ...]  # scales the file can serve
    state: StateDict  # keys renamed to srkit's modules
    convention: InputConvention
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.options.items())
        scale = f"x{self.scale}" if self.scale else "/".join(f"x{s}" for s in self.scales)
        return f"{self.arch} {scale} ({opts})"


@dataclass(frozen=True)
class KeyDetector:
    """One family's checkpoint detector.

    ``family`` names it in errors (one detector may serve several specs: ``edsr`` and
    ``edsr_baseline``); ``signature`` lists the keys it is recognised by; ``detect(state,
    where)`` returns a :class:`Detected` or ``None`` and raises :class:`DetectionError` (with
    ``where`` in the message) for a variant of the family that srkit does not implement.
    """

    family: str
    signature: str
    detect: Callable[[StateDict, str], Detected | None]


# --- helpers for the detectors ---------------------------------------------------------------


def indices(state: StateDict, pattern: str) -> list[int]:
    """The sorted distinct integers that ``pattern``'s first group matches in the keys."""
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in state if (m := rx.match(k))})


Rule = tuple[str, str | Callable[[re.Match[str]], str]]


def rename(state: StateDict, rules: list[Rule]) -> StateDict:
    """Keys rewritten by the first rule (regex, replacement) that matches each."""
    out: StateDict = {}
    for key, value in state.items():
        new = key
        for pattern, repl in rules:
            new, n = re.subn(pattern, repl, new)
            if n:
                break
        out[new] = value
    return out


def drop(state: StateDict, prefixes: tuple[str, ...]) -> StateDict:
    return {k: v for k, v in state.items() if not k.startswith(prefixes)}


def shuffle_scale(out_channels: int, channels: int, where: str) -> int:
    """The scale of a pixel-shuffle upsampler with ``out_channels`` = channels x scale^2."""
    s = math.isqrt(out_channels // channels)
    if s * s * channels != out_channels or s < 2:
        raise DetectionError(
            f"{where}: upsampler has {out_channels} output channels, which is not "
            f"{channels} x scale^2 for an integer scale"
        )
    return s


def mean_shift(state: StateDict, prefix: str, sign: int, where: str) -> tuple[float, tuple]:
    """Read an EDSR/CARN MeanShift 1 x 1 conv: returns (value_range, mean in [0, 1] units)."""
    weight = state[f"{prefix}weight"].reshape(3, 3).double()
    bias = state[f"{prefix}bias"].double() * sign
    if not torch.allclose(weight, torch.eye(3, dtype=torch.float64), atol=1e-6):
        raise DetectionError(
            f"{where}: {prefix}weight is not an identity (rgb_std != 1 unsupported)"
        )
    value_range = 255.0 if bias.abs().max() > 1.5 else 1.0
    return value_range, tuple(round(float(b) / value_range, 6) for b in bias)
