"""Wrap a raw network into an ``SRModel``: RGB in [0, 1] in, RGB in [0, 1] out.

The wrapper converts to the network's :class:`InputConvention` on the way in and back on the way
out: scaling to [0, 255], the mean shift, and for Y-only networks the MATLAB ``rgb2ycbcr`` split
(Y = BT.601 luma in float, not rounded), running the network on Y, MATLAB-bicubic upscaling of
Cb/Cr, and ``ycbcr2rgb`` back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from srkit.archs.common import InputConvention
from srkit.image.color import rgb_to_ycbcr, ycbcr_to_rgb
from srkit.image.resize import imresize


@dataclass
class NetworkModel:
    """An ``SRModel`` around ``net`` (``(N, C, H, W)`` in ``convention`` -> ``(N, C, sH, sW)``).

    ``info`` carries provenance (source file, arch, options) for reports.
    """

    net: nn.Module
    scale: int
    convention: InputConvention
    name: str
    device: torch.device | str = "cpu"
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.net = self.net.to(self.device).eval()  # calls run under torch.inference_mode

    def run_net(self, x: torch.Tensor) -> torch.Tensor:
        """Network on ``x`` given in [0, 1] with the net's channels; returns [0, 1] units."""
        return self.convention.from_network(self.net(self.convention.to_network(x)))

    def __call__(self, lr: torch.Tensor) -> torch.Tensor:
        if lr.dim() != 4 or lr.shape[1] != 3:
            raise ValueError(f"{self.name}: expected (N, 3, H, W) RGB, got {tuple(lr.shape)}")
        x = lr.to(device=self.device, dtype=torch.float32)
        with torch.inference_mode():
            if self.convention.channels == "rgb":
                return self.run_net(x)
            ycc = rgb_to_ycbcr(x)
            y = self.run_net(ycc[:, :1])
            cbcr = imresize(ycc[:, 1:], scale=self.scale)
            return ycbcr_to_rgb(torch.cat((y, cbcr), 1))

    def __repr__(self) -> str:
        return f"NetworkModel(name={self.name!r}, scale={self.scale}, convention={self.convention})"
