"""Training losses, their registry, and the weighted sums that tasks build from YAML.

A loss term compares the network's output with one field of the batch (``target``: ``hr`` by
default, ``teacher`` for distillation, ...) in the channels it names, and may read further batch
fields it declares (a facial attention loss reads ``heatmaps``). What a term needs is checked when
the task starts, so a configuration that cannot work fails before the first iteration::

    losses:
      g:
        - {name: l1, weight: 1.0}
        - {name: charbonnier, weight: 0.5, options: {eps: 1.0e-3}}
        - {name: mse, weight: 0.9, target: teacher}

``LOSSES`` is an explicit name -> :class:`LossSpec` dict; a new loss is one more entry. The
feature losses (``perceptual``, ``lpips``, ``style``, ``contextual``) and ``tv`` live in
:mod:`srkit.losses.perceptual`; ``identity`` (face SR) in :mod:`srkit.faces.identity`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from srkit.image.color import rgb_to_y
from srkit.losses.perceptual import (
    ContextualLoss,
    LPIPSLoss,
    PerceptualLoss,
    StyleLoss,
    TotalVariationLoss,
)
from srkit.metrics.sr import crop_border


class FacialAttentionLoss(nn.Module):
    """PFSRNet's facial attention loss (Kim et al., BMVC 2019): the pixel error weighted by the
    sum of the HR's landmark heatmaps (``batch.heatmaps``, ``(N, K, h, w)``, upsampled to the
    image), so the error at the eyes, nose, mouth and jaw line is what counts; ``base`` adds a
    uniform weight everywhere (0: attention only, as published). ``criterion``: l1 or l2."""

    def __init__(self, criterion: str = "l2", base: float = 0.0) -> None:
        super().__init__()
        if criterion not in ("l1", "l2"):
            raise ValueError(f"attention loss: criterion must be l1 or l2, got {criterion!r}")
        if base < 0:
            raise ValueError(f"attention loss: base must be >= 0, got {base}")
        self.criterion, self.base = criterion, base

    def weights(self, heatmaps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        attention = heatmaps.sum(1, keepdim=True).clamp(max=1.0)
        attention = nn.functional.interpolate(attention, size=size, mode="bilinear")
        return self.base + attention

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, batch: Any) -> torch.Tensor:
        if batch.heatmaps is None:
            raise ValueError("attention loss: the batch has no heatmaps")
        diff = sr - hr
        error = diff.abs() if self.criterion == "l1" else diff.pow(2)
        return (self.weights(batch.heatmaps.to(sr.dtype), sr.shape[-2:]) * error).mean()


class CharbonnierLoss(nn.Module):
    """``mean(sqrt((sr - hr)^2 + eps^2))``: a differentiable L1 (LapSRN, A2N)."""

    def __init__(self, eps: float = 1e-3) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        return torch.sqrt((sr - hr).pow(2) + self.eps**2).mean()


@dataclass(frozen=True)
class LossSpec:
    """How to build a loss and what it needs.

    ``needs``: batch fields read besides the target; such a loss is called
    ``loss(sr, target, batch)``, the others ``loss(sr, target)``. ``rgb``: the loss only works on
    three-channel images (feature networks), so a Y-channel network cannot use it.
    ``target=False``: the loss judges the output alone (total variation) and is called
    ``loss(sr)``, or ``loss(sr, batch)`` when it ``needs`` fields (identity: the HR embedding is
    a batch field, not an image); its term's ``target`` is not read. ``face``: the loss judges
    a whole aligned face (its landmarks, heatmaps or identity), so a progressive face task
    applies it to the full-size output only.
    """

    factory: Callable[..., nn.Module] | str  # or "package.module:Class"
    needs: tuple[str, ...] = ()
    rgb: bool = False
    target: bool = True
    face: bool = False

    def build(self, **options: Any) -> nn.Module:
        factory = self.factory
        if isinstance(factory, str):
            module, _, attr = factory.partition(":")
            factory = getattr(importlib.import_module(module), attr)
        return factory(**options)


LOSSES: dict[str, LossSpec] = {
    "l1": LossSpec(nn.L1Loss),
    "l2": LossSpec(nn.MSELoss),
    "mse": LossSpec(nn.MSELoss),
    "charbonnier": LossSpec(CharbonnierLoss),
    "attention": LossSpec(FacialAttentionLoss, needs=("heatmaps",), face=True),
    "perceptual": LossSpec(PerceptualLoss, rgb=True),
    "lpips": LossSpec(LPIPSLoss, rgb=True),
    "style": LossSpec(StyleLoss, rgb=True),
    "contextual": LossSpec(ContextualLoss, rgb=True),
    "tv": LossSpec(TotalVariationLoss, target=False),
    # Wavelet-SRNet's (options: levels = log2 of the scale); imported when used, with srkit.archs
    "wavelet": LossSpec("srkit.losses.wavelet:WaveletLoss"),
    # a loss of a higher layer, named by its path and imported when a term uses it
    # PFSRNet's heatmap loss: landmark heatmaps of SR vs HR through a frozen network
    "heatmap": LossSpec("srkit.faces.heatmapnet:HeatmapLoss", rgb=True, face=True),
    "identity": LossSpec(
        "srkit.faces.identity:IdentityLoss",
        needs=("landmarks", "identity"),
        rgb=True,
        target=False,
        face=True,
    ),
}

Channels = Literal["native", "y", "rgb"]


@dataclass
class LossTerm:
    name: str
    weight: float = 1.0
    target: str = "hr"  # the batch field the output is compared with
    # native: the network's own channels (Y for Y-only networks); y: BT.601 luma of both sides;
    # rgb: colour (only for networks that output RGB)
    channels: Channels = "native"
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in LOSSES:
            raise ValueError(f"unknown loss {self.name!r}; known: {', '.join(sorted(LOSSES))}")
        if self.weight < 0:
            raise ValueError(f"loss {self.name}: weight must be >= 0, got {self.weight}")

    @property
    def label(self) -> str:
        """The key of this term in logs: ``l1``, ``mse@teacher``."""
        return self.name if self.target == "hr" else f"{self.name}@{self.target}"


def _term_channels(term: LossTerm, net_channels: str) -> str:
    """``rgb`` or ``y``: what the two compared images are converted to."""
    if term.channels == "native":
        return net_channels
    return term.channels


def check_terms(
    terms: list[LossTerm], *, net_channels: str, fields: set[str], where: str = "losses"
) -> None:
    """Every term's target and declared fields exist in the batches; RGB losses get RGB."""
    for index, term in enumerate(terms):
        spec = LOSSES[term.name]
        label = f"{where}[{index}] ({term.name})"
        read = (term.target,) if spec.target else ()
        missing = [f for f in (*read, *spec.needs) if f not in fields]
        if missing:
            raise ValueError(
                f"{label} needs batch field(s) {', '.join(missing)}, which this task's batches "
                f"do not carry (they carry: {', '.join(sorted(fields))})"
            )
        channels = _term_channels(term, net_channels)
        if channels == "rgb" and net_channels != "rgb":
            raise ValueError(f"{label} compares RGB images, but the network outputs Y only")
        if (spec.rgb and channels != "rgb") or (term.channels == "rgb" and net_channels == "y"):
            raise ValueError(f"{label} needs RGB images; set channels: rgb on an RGB network")


class WeightedLoss(nn.Module):
    """Sum of weighted terms over one network's output.

    ``forward(sr, batch)``: ``sr`` is the output in the network's channels (``net_channels``),
    batch fields are RGB in [0, 1]; ``crop`` pixels are trimmed from every side of both before
    the terms. Returns the total and each term's detached value (reading a value with ``float``
    waits for a GPU, so callers do that only when they log).
    """

    def __init__(
        self,
        terms: list[LossTerm],
        *,
        net_channels: str = "rgb",
        fields: set[str] | None = None,
        crop: int = 0,
        where: str = "losses",
    ) -> None:
        super().__init__()
        if not terms:
            raise ValueError(f"{where}: at least one loss term is needed")
        if fields is not None:
            check_terms(terms, net_channels=net_channels, fields=fields, where=where)
        self.terms = terms
        self.net_channels = net_channels
        self.crop = crop
        self.modules_ = nn.ModuleList(LOSSES[t.name].build(**t.options) for t in terms)

    def forward(self, sr: torch.Tensor, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        total = sr.new_zeros(())
        parts: dict[str, torch.Tensor] = {}
        converted: dict[tuple[str, str], torch.Tensor] = {}
        output: dict[str, torch.Tensor] = {}
        for term, module in zip(self.terms, self.modules_, strict=True):
            channels = _term_channels(term, self.net_channels)
            if channels not in output:
                mine = sr if channels == self.net_channels else rgb_to_y(sr)
                output[channels] = crop_border(mine, self.crop)
            spec = LOSSES[term.name]
            if not spec.target:
                if spec.needs and self.crop:
                    raise ValueError(f"loss {term.name} reads pixel positions: no loss crop")
                value = module(output[channels], batch) if spec.needs else module(output[channels])
                label = term.name if term.name not in parts else f"{term.name}#{len(parts)}"
                parts[label] = value.detach()
                total = total + term.weight * value
                continue
            key = (term.target, channels)
            if key not in converted:
                target = getattr(batch, term.target)
                converted[key] = crop_border(
                    rgb_to_y(target) if channels == "y" else target, self.crop
                )
            if spec.needs:
                value = module(output[channels], converted[key], batch)
            else:
                value = module(output[channels], converted[key])
            label = term.label if term.label not in parts else f"{term.label}#{len(parts)}"
            parts[label] = value.detach()
            total = total + term.weight * value
        return total, parts
