"""Neural style transfer: Gatys optimisation, Johnson's feed-forward TransformerNet and AdaIN
(see docs/style.md). Training goes through srkit's engine (tasks ``style`` and ``adain``)."""

from srkit.style.core import (
    ADAIN_LAYERS,
    CONTENT_LAYER,
    DEFAULT_NETWORK,
    STYLE_LAYERS,
    AdainModel,
    adain_losses,
    gatys,
    load_image,
    load_style_model,
    save_image,
    save_style_model,
)
from srkit.style.nets import AdainDecoder, TransformerNet, adain, channel_stats

__all__ = [
    "ADAIN_LAYERS",
    "CONTENT_LAYER",
    "DEFAULT_NETWORK",
    "STYLE_LAYERS",
    "AdainDecoder",
    "AdainModel",
    "TransformerNet",
    "adain",
    "adain_losses",
    "channel_stats",
    "gatys",
    "load_image",
    "load_style_model",
    "save_image",
    "save_style_model",
]
