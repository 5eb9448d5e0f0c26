"""Training losses and their registry.

Losses are ``nn.Module``s called as ``loss(sr, hr)`` on tensors in [0, 1] units. ``LOSSES`` is an
explicit name -> factory dict; a new loss (perceptual, adversarial, identity) is one more entry,
and the trainer builds weighted sums from YAML without knowing the kinds::

    losses:
      - {name: l1, weight: 1.0}
      - {name: charbonnier, weight: 0.5, options: {eps: 1.0e-3}}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


class CharbonnierLoss(nn.Module):
    """``mean(sqrt((sr - hr)^2 + eps^2))``: a differentiable L1 (LapSRN, A2N)."""

    def __init__(self, eps: float = 1e-3) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        return torch.sqrt((sr - hr).pow(2) + self.eps**2).mean()


LOSSES: dict[str, Callable[..., nn.Module]] = {
    "l1": nn.L1Loss,
    "l2": nn.MSELoss,
    "mse": nn.MSELoss,
    "charbonnier": CharbonnierLoss,
}


@dataclass
class LossTerm:
    name: str
    weight: float = 1.0
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in LOSSES:
            raise ValueError(f"unknown loss {self.name!r}; known: {', '.join(sorted(LOSSES))}")
        if self.weight < 0:
            raise ValueError(f"loss {self.name}: weight must be >= 0, got {self.weight}")


class WeightedLoss(nn.Module):
    """Sum of weighted terms; ``forward`` returns the total and each term's value."""

    def __init__(self, terms: list[LossTerm]) -> None:
        super().__init__()
        if not terms:
            raise ValueError("at least one loss term is needed")
        self.terms = terms
        self.modules_ = nn.ModuleList(LOSSES[t.name](**t.options) for t in terms)

    def forward(
        self, sr: torch.Tensor, hr: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Each term's value is a detached 0-d tensor: reading it (``float``) waits for a GPU,
        so callers do that only when they log."""
        total = sr.new_zeros(())
        parts: dict[str, torch.Tensor] = {}
        for term, module in zip(self.terms, self.modules_, strict=True):
            value = module(sr, hr)
            parts[term.name] = value.detach()
            total = total + term.weight * value
        return total, parts
