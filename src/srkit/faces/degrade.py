"""How the LR face is made from the HR crop (``--degradation FILE.yaml``).

The default is the protocol's: MATLAB bicubic of the uint8 HR, rounded to uint8
(:func:`srkit.bench.protocol.matlab_bicubic_lr`). A YAML file describes any other recipe with the
project's degradation pipelines (:mod:`srkit.data.degrade`, the same files ``srkit bench
--degradation`` and training take), e.g. ``jpeg75.yaml``::

    steps:
      - {type: resize, method: bicubic}
      - {type: jpeg, quality: 75}

Random parameters are drawn from a generator seeded by ``(seed, image index)``, so the LR of an
image does not depend on batching or on the number of workers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from srkit.bench.protocol import matlab_bicubic_lr
from srkit.data.degrade import Degradation

__all__ = ["FaceDegradation", "load_degradation"]


class FaceDegradation:
    """uint8 HR ``(N, 3, H, W)`` -> uint8 LR ``(N, 3, H/s, W/s)``; ``None`` pipeline = default."""

    def __init__(self, pipeline=None, name: str | None = None, seed: int = 0) -> None:
        self.pipeline = pipeline
        self.name = name or ("matlab_bicubic" if pipeline is None else "custom")
        self.seed = seed

    @property
    def is_default(self) -> bool:
        return self.pipeline is None or self.pipeline.is_default

    def describe(self) -> str:
        return self.name

    def __call__(self, hr: torch.Tensor, scale: int, first_index: int = 0) -> torch.Tensor:
        if hr.dtype != torch.uint8:
            raise TypeError(f"degradation expects uint8 HR, got {hr.dtype}")
        if self.is_default:
            return matlab_bicubic_lr(hr, scale)
        out = []
        for i in range(hr.shape[0]):
            rng = np.random.default_rng([self.seed, first_index + i])
            out.append(self.pipeline.apply_uint8(hr[i : i + 1], scale, rng))
        return torch.cat(out)


def load_degradation(path: str | Path | None, seed: int = 0) -> FaceDegradation:
    """A pipeline YAML (see :mod:`srkit.data.degrade`) or ``None`` for the protocol's default.

    Raises ``ValueError`` (``srkit.config.ConfigError``) for a bad file.
    """
    if path is None:
        return FaceDegradation()
    return FaceDegradation(Degradation.from_yaml(path), Path(path).stem, seed)
