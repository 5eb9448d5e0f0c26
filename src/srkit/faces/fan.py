"""PFSRNet's compressed face-alignment network (Kim et al., BMVC 2019), read from the authors' file.

To weight its facial attention loss, PFSRNet distils the face alignment network (FAN, Bulat and
Tzimiropoulos, ICCV 2017) into a small fully convolutional one, ``fan_squeeze`` in the authors'
code: a 5 x 5 convolution to 32 maps, then 3 x 3 convolutions to 64, 128 and 128 maps (each with
batch norm and LeakyReLU 0.01) and a last 3 x 3 convolution to 68 maps with LeakyReLU: one heatmap
per 68-point landmark (iBUG order), at the input's resolution, 321,412 parameters, 13 pixels of
receptive field. The authors ship it as a whole pickled module
(``checkpoints/compressed_model_011000.pth``, DeokyunKim/Progressive-Face-Super-Resolution), which
``torch.load(weights_only=True)`` refuses; :func:`load_fan_squeeze` reads it through srkit's
restricted reader (:mod:`srkit.weights.legacy`: nothing in the file runs) and checks the layout
before loading the tensors into :class:`FanSqueeze`.

Not bundled (no licence stated): pass the file's path. srkit's own heatmap network
(:mod:`srkit.faces.heatmapnet`) is the shippable one; this one is for comparison and as a
training-time teacher (``losses.g: [{name: heatmap, options: {network: fan:PATH}}]``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from srkit.weights.errors import WeightsError
from srkit.weights.legacy import read_pickled_module

__all__ = ["FanSqueeze", "load_fan_squeeze"]

_CONV, _BN = "torch.nn.modules.conv.Conv2d", "torch.nn.modules.batchnorm.BatchNorm2d"
_ACT = "torch.nn.modules.activation.LeakyReLU"
_LAYOUT = {
    "conv": _CONV,
    "layers": "torch.nn.modules.container.Sequential",
    **{f"layers.{i}": kind for i, kind in enumerate([_CONV, _BN, _ACT] * 3 + [_CONV, _ACT])},
}


class FanSqueeze(nn.Module):
    """``(N, 3, H, W)`` face -> ``(N, 68, H, W)`` landmark heatmaps (the authors' layout and
    module names, so their state dict loads as it is). Input as the authors trained it: RGB
    scaled to [-1, 1] (``normalize`` here maps srkit's [0, 1] to it)."""

    def __init__(self, points: int = 68, normalize: bool = True) -> None:
        super().__init__()
        self.normalize = normalize
        self.conv = nn.Conv2d(3, 32, 5, 1, 2)
        widths = (32, 64, 128, 128)
        layers: list[nn.Module] = []
        for cin, cout in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Conv2d(cin, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.LeakyReLU()]
        layers += [nn.Conv2d(128, points, 3, 1, 1), nn.LeakyReLU()]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            x = x * 2 - 1
        return self.layers(self.conv(x))


def load_fan_squeeze(path: str | Path, normalize: bool = True) -> FanSqueeze:
    """The authors' ``compressed_model_011000.pth`` as a :class:`FanSqueeze` in eval mode."""
    found = read_pickled_module(path)
    layout = {k: v for k, v in found.classes.items() if k}
    if layout != _LAYOUT:
        raise WeightsError(
            f"{path}: not PFSRNet's compressed FAN (fan_squeeze): its modules are "
            + ", ".join(f"{k}={v.rsplit('.', 1)[-1]}" for k, v in list(layout.items())[:6])
        )
    net = FanSqueeze(points=found.state["layers.9.weight"].shape[0], normalize=normalize)
    try:
        net.load_state_dict(found.state, strict=True)
    except RuntimeError as err:
        raise WeightsError(f"{path}: {str(err).splitlines()[0]}") from None
    return net.eval()
