"""Neural style transfer: Gatys optimisation, Johnson's feed-forward TransformerNet and AdaIN
(see docs/style.md). Training goes through srkit's engine (tasks ``style`` and ``adain``)."""

from srkit.style.core import (
    ADAIN_LAYERS,
    DEFAULT_NETWORK,
    AdainModel,
    adain_losses,
    gatys,
    load_image,
    load_style_model,
    save_image,
    save_style_model,
)
from srkit.style.nets import AdainDecoder, TransformerNet, adain, channel_stats
from srkit.style.objective import (
    CONTENT_LAYER,
    OBJECTIVES,
    STYLE_LAYERS,
    StyleObjective,
    objective_for,
)

__all__ = [
    "ADAIN_LAYERS",
    "CONTENT_LAYER",
    "DEFAULT_NETWORK",
    "OBJECTIVES",
    "STYLE_LAYERS",
    "AdainDecoder",
    "AdainModel",
    "StyleObjective",
    "TransformerNet",
    "adain",
    "adain_losses",
    "channel_stats",
    "gatys",
    "objective_for",
    "load_image",
    "load_style_model",
    "save_image",
    "save_style_model",
]
