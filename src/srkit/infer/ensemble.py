"""x8 geometric self-ensemble (EDSR's "+"): average the model over flips and transposes."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from srkit.models import SRModel


def _forward(x: torch.Tensor, k: int) -> torch.Tensor:
    if k & 1:
        x = x.flip(-1)
    if k & 2:
        x = x.flip(-2)
    if k & 4:
        x = x.transpose(-1, -2)
    return x


def _inverse(x: torch.Tensor, k: int) -> torch.Tensor:
    if k & 4:
        x = x.transpose(-1, -2)
    if k & 2:
        x = x.flip(-2)
    if k & 1:
        x = x.flip(-1)
    return x


@dataclass
class SelfEnsemble:
    """An ``SRModel`` that runs ``model`` on the 8 dihedral transforms and averages the outputs."""

    model: SRModel

    @property
    def name(self) -> str:
        return f"{self.model.name}+"

    @property
    def scale(self) -> int:
        return self.model.scale

    def __call__(self, lr: torch.Tensor) -> torch.Tensor:
        total: torch.Tensor | None = None
        with torch.inference_mode():
            for k in range(8):
                out = _inverse(self.model(_forward(lr, k).contiguous()), k).float()
                total = out if total is None else total + out
        assert total is not None
        return total / 8
