"""Datasets: where images come from (:mod:`srkit.data.sources`, LR/HR pairs in
:mod:`srkit.data.pairs`) and bundled samples.

The names below are imported on first use so that ``import srkit.data`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "ImageSource": "srkit.data.sources",
    "PairedSource": "srkit.data.pairs",
    "open_dataset": "srkit.data.pairs",
    "open_pairs": "srkit.data.pairs",
    "SourceError": "srkit.data.sources",
    "UnsafeArchiveError": "srkit.data.sources",
    "open_source": "srkit.data.sources",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'srkit.data' has no attribute {name!r}")
