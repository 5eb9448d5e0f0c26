"""What one training iteration sees: :class:`Batch`, and how samples become one."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch


@dataclass
class Batch:
    """A batch of training samples; images are float (N, C, H, W) RGB in [0, 1].

    Tasks fill the optional fields they provide (a face task: ``landmarks``, ``heatmaps`` and
    ``identity``; distillation: ``teacher``; a degradation task: ``unpaired_lr``, LR images of
    another domain). Loss terms name the fields they read, and a term whose field a task does not
    provide is refused before training starts (:func:`srkit.losses.check_terms`).
    """

    lr: torch.Tensor
    hr: torch.Tensor | None = None
    landmarks: torch.Tensor | None = None  # (N, K, 2) pixel coordinates in HR
    heatmaps: torch.Tensor | None = None  # (N, K, H, W)
    teacher: torch.Tensor | None = None  # a teacher network's output for lr
    identity: torch.Tensor | None = None  # (N, D) embeddings or (N,) labels
    unpaired_lr: torch.Tensor | None = None

    @classmethod
    def names(cls) -> set[str]:
        return {f.name for f in fields(cls)}

    def present(self) -> set[str]:
        return {f.name for f in fields(self) if getattr(self, f.name) is not None}

    def to(self, device: torch.device, non_blocking: bool = False) -> Batch:
        moved = {
            f.name: value.to(device, non_blocking=non_blocking)
            if isinstance(value := getattr(self, f.name), torch.Tensor)
            else value
            for f in fields(self)
        }
        return Batch(**moved)

    def __len__(self) -> int:
        return self.lr.shape[0]


def collate(samples: list[dict[str, Any]]) -> Batch:
    """Loader samples (mappings of field -> tensor) -> one :class:`Batch`."""
    if not samples:
        raise ValueError("an empty batch")
    names = set(samples[0])
    unknown = names - Batch.names()
    if unknown:
        raise ValueError(f"samples carry unknown batch fields: {sorted(unknown)}")
    return Batch(**{name: torch.stack([s[name] for s in samples]) for name in names})
