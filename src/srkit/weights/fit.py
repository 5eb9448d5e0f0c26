"""Exact state-dict loading with one clear error naming what was expected and what was found."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from srkit.archs.common import InputConvention
from srkit.archs.registry import build, get_spec
from srkit.weights.errors import WeightsError

_MAX_LISTED = 6


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return shown + (f" (+{more} more)" if more > 0 else "")


def check_fit(
    expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], what: str
) -> None:
    """Raise one ``WeightsError`` naming every missing, unexpected and mis-shaped tensor."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k}: expected {tuple(expected[k].shape)}, found {tuple(state[k].shape)}"
        for k in expected
        if k in state and tuple(expected[k].shape) != tuple(state[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = [f"{what}: the file's tensors do not fit the architecture"]
        parts.append(f"expected {len(expected)} tensors, found {len(state)}")
        if missing:
            parts.append(f"missing from the file: {_listing(missing)}")
        if unexpected:
            parts.append(f"not in the architecture: {_listing(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches: {_listing(shapes)}")
        raise WeightsError("; ".join(parts))


def load_exact(net: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    """``net.load_state_dict(state, strict=True)`` with every mismatch named in one error.

    ``what`` describes the source and the architecture it was taken for, e.g.
    ``"IMDN_x4.pth (detected: imdn x4, features=64, blocks=6)"``.
    """
    expected = net.state_dict()
    check_fit(expected, state, what)
    net.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)


def build_fitted(
    arch: str, scale: int, options: Mapping[str, Any], state: Mapping[str, torch.Tensor], what: str
) -> nn.Module:
    """``build(arch, scale, **options)`` holding ``state`` exactly, or one ``WeightsError``.

    The options come from a file (a manifest, or shapes read off a checkpoint), so the network is
    first built on the meta device, which allocates nothing, and compared with the file's tensors:
    a file cannot make srkit allocate a network larger than the file itself.
    """
    empty = [k for k, v in state.items() if v.numel() == 0]
    if empty:
        raise WeightsError(f"{what}: tensors without elements: {_listing(empty)}")
    elements = sum(v.numel() for v in state.values())
    for key, value in options.items():
        # Every size-like option (features, blocks, depth, ...) counts at least one weight.
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number and abs(value) > max(elements, 16):
            raise WeightsError(
                f"{what}: option {key}={value} is larger than the file's {elements} weights"
            )
    try:
        with torch.device("meta"):
            probe = build(arch, scale=scale, **options)
    except (TypeError, ValueError, KeyError, RuntimeError, ArithmeticError) as err:
        detail = f"cannot build {arch} x{scale} with {dict(options)} ({err})"
        raise WeightsError(f"{what}: {detail}") from None
    check_fit(probe.state_dict(), state, what)
    net = build(arch, scale=scale, **options)
    load_exact(net, state, what)
    return net


def check_convention(
    arch: str, options: Mapping[str, Any], convention: InputConvention, what: str
) -> None:
    """The input convention must feed the network its number of channels (RGB 3, Y 1)."""
    channels = get_spec(arch).options(**options).get("channels")
    if channels is not None and channels != convention.in_channels:
        raise WeightsError(
            f"{what}: the input convention is {convention.channels!r} "
            f"({convention.in_channels} channels) but the network takes {channels}"
        )
