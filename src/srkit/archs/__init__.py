"""Super-resolution networks of the seed papers, one module per network, and their registry.

``build(name, scale=..., **options)`` makes a plain ``nn.Module`` mapping an LR tensor in the
arch's :class:`InputConvention` to the SR tensor; ``NetworkModel`` (``srkit.archs.adapter``)
wraps one into an ``SRModel`` (RGB in [0, 1]).
"""

from __future__ import annotations

from srkit.archs.common import ArchSpec, InputConvention, Reference
from srkit.archs.registry import ARCHS, build, count_params, get_spec

__all__ = ["ARCHS", "ArchSpec", "InputConvention", "Reference", "build", "count_params", "get_spec"]
