"""The content and style terms of Gatys optimisation and of feed-forward style training.

Two settings (:data:`OBJECTIVES`):

``published``
    Gatys et al. / Johnson et al. as pytorch/examples ``fast_neural_style`` writes them: content
    is the MSE of relu2_2 features, style the sum over relu1_2/2_2/3_3/4_3 of the mean squared
    difference of Gram matrices (``F F^T / (C H W)``), weighted 1e5 / 1e10. The weights were
    tuned for an ImageNet VGG16; use it with ``vgg16:PATH`` / ``vgg19:PATH``.
``relative``
    The default for the offline ST-LPIPS trunk. Under that trunk the relu4_3 Gram matrix is
    about 1e4 times larger than the others, so the published sum is relu4_3 alone, and that
    layer does not tell a stylised image from its content photo (docs/style.md). Here every
    style term is divided by the energy of its target, so each layer counts alike:
    ``|G(y) - G(s)|^2 / |G(s)|^2`` per layer and scale. Content compares features normalised
    to unit length at each position, as LPIPS does (``|n(f(y)) - n(f(x))|^2`` summed over
    channels, averaged over positions) at relu2_2 and relu5_3: under this trunk a stylised
    photo has far larger activations than its content, so raw feature distances rank a flat
    grey image closer to the photo than the published stylised outputs, while the normalised
    ones rank those outputs closest. The style image is also compared at half size
    (``scales``: larger strokes within the same receptive fields) and by the Gram matrix of its
    pixels (``colour``: the palette, which this trunk's first layers hardly see).

A :class:`StyleObjective` holds the target Gram matrices of one style image, so a training step
computes only the output's features.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from srkit.features import FeatureNet, unit_features
from srkit.losses.perceptual import gram_matrix

STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
CONTENT_LAYER = "relu2_2"
#: a scale > 1 is left out where it would shrink the image's shorter side below this
MIN_SCALED_SIDE = 32


@dataclass(frozen=True)
class ObjectiveSettings:
    """What is compared: layers with their weights, scales, the pixel Gram, normalisation, and
    the default content and style weights that go with them."""

    style_layers: Mapping[str, float]
    content_layers: Mapping[str, float]
    scales: tuple[int, ...] = (1,)
    colour: float = 0.0  # weight of the Gram matrix of the pixels themselves (per scale)
    relative: bool = False
    content_weight: float = 1e5
    style_weight: float = 1e10


OBJECTIVES: dict[str, ObjectiveSettings] = {
    "published": ObjectiveSettings(
        style_layers=dict.fromkeys(STYLE_LAYERS, 1.0),
        content_layers={CONTENT_LAYER: 1.0},
    ),
    "relative": ObjectiveSettings(
        style_layers=dict.fromkeys(STYLE_LAYERS, 1.0),
        content_layers={"relu2_2": 1.0, "relu5_3": 1.0},
        scales=(1, 2),
        colour=3.0,
        relative=True,
        content_weight=0.05,
        style_weight=1.0,
    ),
}


def objective_name(name: str, network: str) -> str:
    """``auto`` -> ``relative`` for the offline ST-LPIPS trunks, ``published`` for an ImageNet
    file; other names are checked and returned."""
    if name == "auto":
        name = "relative" if str(network).startswith("stlpips") else "published"
    if name not in OBJECTIVES:
        raise ValueError(f"objective must be auto or one of {', '.join(OBJECTIVES)}, got {name!r}")
    return name


def objective_for(name: str, network: str) -> ObjectiveSettings:
    """The settings of ``name`` (``auto``, ``published`` or ``relative``; see
    :func:`objective_name`)."""
    return OBJECTIVES[objective_name(name, network)]


def objective_weights(
    settings: ObjectiveSettings, content_weight: float | None, style_weight: float | None
) -> tuple[float, float]:
    """The content and style weights to use: the ones given, else the objective's; both
    must be >= 0."""
    cw = settings.content_weight if content_weight is None else content_weight
    sw = settings.style_weight if style_weight is None else style_weight
    if cw < 0 or sw < 0:
        raise ValueError(f"content and style weights must be >= 0, got {cw}, {sw}")
    return cw, sw


def _rescale(x: torch.Tensor, factor: int) -> torch.Tensor:
    if factor == 1:
        return x
    h, w = x.shape[-2:]
    size = (max(1, round(h / factor)), max(1, round(w / factor)))
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def pixel_features(x: torch.Tensor) -> torch.Tensor:
    """Pixels as a feature map for the colour Gram: centred on mid-grey, in [-2, 2]."""
    return (x - 0.5) * 4.0


class StyleObjective(nn.Module):
    """Content and style terms against one style image (see the module's docstring).

    ``style_loss(y)`` compares each image of the batch ``y`` with the style image's Gram
    matrices (a mean over the batch; a scale is skipped where ``y`` or the style image would
    fall below :data:`MIN_SCALED_SIDE` pixels); ``content_loss(y, x)`` compares ``y`` with the
    content ``x``. Both follow the settings' normalisation. The feature network stays frozen.
    """

    def __init__(self, net: FeatureNet, style: torch.Tensor, settings: ObjectiveSettings) -> None:
        super().__init__()
        names = set(net.layer_names)
        unknown = [k for k in (*settings.style_layers, *settings.content_layers) if k not in names]
        if unknown:
            raise ValueError(f"{net.name} has no layer {', '.join(unknown)}")
        if any(s < 1 for s in settings.scales) or not settings.scales:
            raise ValueError(f"scales must be integers >= 1, got {settings.scales}")
        self.net, self.settings = net, settings
        with torch.no_grad():
            targets = self._grams(style.float())
        self.targets = {k: v[0] for k, v in targets.items()}
        self.norms = {  # what each squared Gram difference is divided by
            k: float(v.pow(2).sum() if settings.relative else v.numel())
            for k, v in self.targets.items()
        }

    def _grams(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        s, grams = self.settings, {}
        for scale in s.scales:
            if scale > 1 and min(x.shape[-2:]) / scale < MIN_SCALED_SIDE:
                continue
            xs = _rescale(x, scale)
            for layer, feats in self.net(xs, list(s.style_layers)).items():
                grams[f"{layer}@{scale}"] = gram_matrix(feats.float())
            if s.colour > 0:
                grams[f"pixels@{scale}"] = gram_matrix(pixel_features(xs))
        return grams

    def _weight(self, key: str) -> float:
        layer = key.split("@")[0]
        return self.settings.colour if layer == "pixels" else self.settings.style_layers[layer]

    def style_loss(self, y: torch.Tensor) -> torch.Tensor:
        grams = {k: v for k, v in self._grams(y).items() if k in self.targets}
        total = y.new_zeros(())
        for key, gram in grams.items():
            target = self.targets[key].to(gram.device)
            diff = (gram - target).pow(2).flatten(1).sum(1).mean()
            total = total + self._weight(key) * diff / self.norms[key]
        return total / (len(grams) if self.settings.relative else 1)

    def content_loss(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        layers = list(self.settings.content_layers)
        fake = self.net(y, layers)
        with torch.no_grad():
            real = self.net(x, layers)
        total = y.new_zeros(())
        for layer, weight in self.settings.content_layers.items():
            if self.settings.relative:
                diff = unit_features(fake[layer].float()) - unit_features(real[layer].float())
                value = diff.pow(2).sum(1).mean()
            else:
                value = (fake[layer].float() - real[layer].float()).pow(2).mean()
            total = total + weight * value
        return total
