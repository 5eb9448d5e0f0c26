"""Inference: ``Upscaler`` (model + tiling + backend + precision + ensemble) and ``upscale``.

``srkit.upscale(image, model=...)`` upscales one image (tensor, array, PIL image, file);
``Upscaler`` keeps the prepared model for many. ``srkit.infer.batch`` runs files, folders, globs
and zips with decoding and encoding overlapped with compute (``srkit upscale``).

The names are loaded on first use, so that the torch-free modules of this package (tiling, the
PNG writer, :mod:`srkit.infer.fastpath`) import without PyTorch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SelfEnsemble", "Upscaler", "upscale"]


def __getattr__(name: str) -> Any:
    if name in ("Upscaler", "upscale"):
        from srkit.infer import upscaler

        return getattr(upscaler, name)
    if name == "SelfEnsemble":
        from srkit.models import SelfEnsemble

        return SelfEnsemble
    raise AttributeError(f"module 'srkit.infer' has no attribute {name!r}")
