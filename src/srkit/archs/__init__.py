"""Super-resolution networks of the seed papers, one module per network, and their registry.

Each architecture module declares its ``SPECS`` (``ArchSpec``: class, paper build defaults,
scales, input convention, reference, published parameter counts, and the ``KeyDetector`` that
recognises its authors' checkpoints); ``srkit.archs.registry.MODULES`` lists those modules.
``build(name, scale=..., **options)`` makes a plain ``nn.Module`` mapping an LR tensor in the
arch's :class:`InputConvention` to the SR tensor; ``NetworkModel`` (``srkit.archs.adapter``)
wraps one into an ``SRModel`` (RGB in [0, 1]).
"""

from __future__ import annotations

from srkit.archs.common import ArchSpec, InputConvention, Reference
from srkit.archs.detection import Detected, KeyDetector
from srkit.archs.registry import ARCHS, MODULES, build, count_params, detectors, get_spec

__all__ = [
    "ARCHS",
    "MODULES",
    "ArchSpec",
    "Detected",
    "InputConvention",
    "KeyDetector",
    "Reference",
    "build",
    "count_params",
    "detectors",
    "get_spec",
]
