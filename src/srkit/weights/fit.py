"""Exact state-dict loading with one clear error naming what was expected and what was found."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from srkit.weights.errors import WeightsError

_MAX_LISTED = 6


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return shown + (f" (+{more} more)" if more > 0 else "")


def load_exact(net: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    """``net.load_state_dict(state, strict=True)`` with every mismatch named in one error.

    ``what`` describes the source and the architecture it was taken for, e.g.
    ``"IMDN_x4.pth (detected: imdn x4, features=64, blocks=6)"``.
    """
    expected = net.state_dict()
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
    net.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)
