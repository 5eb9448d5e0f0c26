"""Inference: ``Upscaler`` (model + tiling + backend + precision + ensemble) and ``upscale``.

``srkit.upscale(image, model=...)`` upscales one image (tensor, array, PIL image, file);
``Upscaler`` keeps the prepared model for many. ``srkit.infer.batch`` runs files, folders, globs
and zips with decoding and encoding overlapped with compute (``srkit upscale``).
"""

from __future__ import annotations

from srkit.infer.upscaler import Upscaler, upscale
from srkit.models import SelfEnsemble

__all__ = ["SelfEnsemble", "Upscaler", "upscale"]
