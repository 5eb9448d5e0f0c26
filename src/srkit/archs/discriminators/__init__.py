"""GAN discriminators, apart from the SR registry (they have no scale and no input convention).

Each module here declares ``SPECS``, a tuple of :class:`~srkit.archs.common.DiscriminatorSpec`;
:data:`MODULES` lists them and :data:`DISCRIMINATORS` is the name -> spec table.
``build_discriminator(name, **options)`` makes a plain ``nn.Module`` from RGB images in [0, 1]
to logits (one per image, or one per patch or pixel).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from torch import nn

from srkit.archs.common import DiscriminatorSpec
from srkit.archs.discriminators import patchgan, pfsrnet, unet, vgg

MODULES: tuple[ModuleType, ...] = (vgg, unet, patchgan, pfsrnet)

DISCRIMINATORS: dict[str, DiscriminatorSpec] = {
    spec.name: spec for module in MODULES for spec in module.SPECS
}


def get_discriminator_spec(name: str) -> DiscriminatorSpec:
    try:
        return DISCRIMINATORS[name.lower().replace("-", "_")]
    except KeyError:
        known = ", ".join(DISCRIMINATORS)
        raise KeyError(f"unknown discriminator {name!r}; known: {known}") from None


def build_discriminator(name: str, **options: Any) -> nn.Module:
    """Build discriminator ``name``; unknown options raise with the accepted ones named."""
    spec = get_discriminator_spec(name)
    return spec.cls(**spec.options(**options))


__all__ = ["DISCRIMINATORS", "MODULES", "DiscriminatorSpec", "build_discriminator",
           "get_discriminator_spec"]  # fmt: skip
