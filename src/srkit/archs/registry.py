"""The architecture registry: an explicit tuple of architecture modules, no import-time scanning.

Each module in :data:`MODULES` declares ``SPECS``, a tuple of :class:`ArchSpec` (usually one; a
module may declare variants that share a class, as ``edsr`` / ``edsr_baseline``). A spec holds
the class, the paper's build defaults, the scales, the input convention, the paper and its
published parameter counts, and (for archs whose authors' checkpoints srkit reads) the
``detector`` that recognises those files from their key names and shapes. Adding an
architecture is one module with its ``SPECS`` plus its line here and its test.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from torch import nn

from srkit.archs import (
    a2n,
    bulat,
    carn,
    dbpn,
    drcn,
    edsr,
    espcn,
    fsrcnn,
    imdn,
    lapsrn,
    pfsrnet,
    repan,
    rlfn,
    rrdb,
    srcnn,
    srdensenet,
    srgan_leftthomas,
    srresnet,
    vdsr,
    waveletsrnet,
)
from srkit.archs.common import ArchSpec
from srkit.archs.detection import KeyDetector

MODULES: tuple[ModuleType, ...] = (
    srcnn,
    fsrcnn,
    espcn,
    vdsr,
    drcn,
    lapsrn,
    srdensenet,
    srresnet,
    srgan_leftthomas,
    edsr,
    dbpn,
    rrdb,
    a2n,
    imdn,
    rlfn,
    carn,
    repan,
    pfsrnet,
    waveletsrnet,
    bulat,
)


def _collect(modules: tuple[ModuleType, ...]) -> dict[str, ArchSpec]:
    specs: dict[str, ArchSpec] = {}
    for module in modules:
        for spec in module.SPECS:
            if spec.name in specs:
                raise RuntimeError(f"architecture {spec.name!r} is declared twice")
            specs[spec.name] = spec
    return specs


ARCHS: dict[str, ArchSpec] = _collect(MODULES)


def detectors() -> tuple[KeyDetector, ...]:
    """The distinct checkpoint detectors, in registry order (one per family)."""
    seen: dict[str, KeyDetector] = {}
    for spec in ARCHS.values():
        if spec.detector is not None:
            seen.setdefault(spec.detector.family, spec.detector)
    return tuple(seen.values())


def get_spec(name: str) -> ArchSpec:
    key = name.lower().replace("-", "_")
    try:
        return ARCHS[key]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; known: {', '.join(ARCHS)}") from None


def build(name: str, scale: int | None = None, **options: Any) -> nn.Module:
    """Build architecture ``name`` at ``scale`` (default: the first scale with a published count).

    Unknown options and unsupported scales raise with the accepted values named.
    """
    spec = get_spec(name)
    if scale is None:
        scale = next(iter(spec.published_params), spec.scales[0])
    if scale not in spec.scales:
        raise ValueError(f"{spec.name} supports scales {spec.scales}, got {scale}")
    return spec.cls(scale=scale, **spec.options(**options))


def count_params(model: nn.Module, counted: str = "all") -> int:
    """Parameters of ``model``; ``counted="weights"`` counts only conv/linear weights."""
    if counted == "all":
        return sum(p.numel() for p in model.parameters())
    kinds = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, kinds))
