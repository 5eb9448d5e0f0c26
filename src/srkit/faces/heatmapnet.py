"""srkit's landmark-heatmap network, distilled from dlib's 68-point predictor, and the heatmap loss.

PFSRNet (Kim et al., BMVC 2019) adds a *heatmap loss* to face SR: the landmark heatmaps of the SR
face, from a face-alignment network, should match those of the HR face, so the eyes, brows, nose,
mouth and jaw line come out where they belong. It needs an alignment network that is
differentiable and small enough to run at every training step. The authors distilled FAN; srkit
distils dlib's 68-point shape predictor (CC0, offline), through ``task: landmarks``
(:mod:`srkit.faces.landmark_task`), into :class:`HeatmapNet`:

* input: an aligned face crop (srkit's ``facesr128`` template, 128 x 128 or any multiple of 4), RGB
  in [0, 1], plus two coordinate channels (x and y in [-1, 1], CoordConv: the crops are aligned,
  so where a landmark is matters as much as what it looks like);
* a 3 x 3 stride-2 convolution to 32 maps and another to ``features`` (a quarter of the input's
  side), ``blocks`` residual blocks (two dilated 3 x 3 convolutions with ReLU; dilations 1, 2, 4,
  8, repeated: the receptive field covers the face), a 1 x 1 convolution to 68 maps;
* output: ``(N, 68, H/4, W/4)`` heatmaps, one Gaussian of peak 1 and sigma 1 (heatmap pixels)
  around each point, as :func:`srkit.faces.heatmaps.landmark_heatmaps` draws them.

:func:`heatmap_points` reads the points back (arg-max with a quarter-pixel shift toward the larger
neighbour, the usual heatmap decoding). :class:`HeatmapLoss` is the loss term ``heatmap``
(``losses.g: [{name: heatmap, weight: W, options: {network: face_landmarks}}]``): the mean squared
difference of the network's heatmaps of SR and HR; ``network`` is a shipped heatmap model, a
``.safetensors`` file of one, or ``fan:PATH`` (PFSRNet's own compressed FAN,
:mod:`srkit.faces.fan`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "HeatmapLoss",
    "HeatmapNet",
    "heatmap_points",
    "landmark_nme",
    "load_heatmap_network",
    "save_heatmap_net",
]

ARCH = "heatmap_net"
DEFAULT_MODEL = "face_landmarks"


class _Block(nn.Module):
    def __init__(self, features: int, dilation: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv2d(features, features, 3, padding=dilation, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class HeatmapNet(nn.Module):
    """Aligned face ``(N, 3, H, W)`` in [0, 1] -> ``(N, points, H/4, W/4)`` landmark heatmaps."""

    def __init__(self, points: int = 68, features: int = 64, blocks: int = 4) -> None:
        super().__init__()
        if points < 1 or features < 1 or blocks < 0:
            raise ValueError("HeatmapNet: points and features >= 1, blocks >= 0")
        self.points, self.features, self.blocks_n = points, features, blocks
        self.stem1 = nn.Conv2d(5, 32, 3, stride=2, padding=1)
        self.stem2 = nn.Conv2d(32, features, 3, stride=2, padding=1)
        self.blocks = nn.Sequential(*[_Block(features, 2 ** (i % 4)) for i in range(blocks)])
        self.head = nn.Conv2d(features, points, 1)

    @property
    def options(self) -> dict[str, int]:
        return {"points": self.points, "features": self.features, "blocks": self.blocks_n}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _c, h, w = x.shape
        if h % 4 or w % 4:
            raise ValueError(f"HeatmapNet: the input's sides must be multiples of 4, got {h}x{w}")
        ys = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype)
        xs = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype)
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy")).expand(n, 2, h, w)
        y = F.relu(self.stem1(torch.cat([x * 2 - 1, grid], 1)))
        y = F.relu(self.stem2(y))
        return self.head(F.relu(self.blocks(y)))


def heatmap_points(maps: torch.Tensor, image_size: tuple[int, int] | int) -> torch.Tensor:
    """``(N, K, h, w)`` heatmaps -> ``(N, K, 2)`` points (x, y) in the pixels of an image of
    ``image_size`` (the inverse of :func:`~srkit.faces.heatmaps.landmark_heatmaps`' mapping)."""
    n, k, h, w = maps.shape
    ih, iw = (image_size, image_size) if isinstance(image_size, int) else image_size
    flat = maps.reshape(n, k, h * w).float()
    idx = flat.argmax(-1)
    px, py = (idx % w).float(), (idx // w).float()
    padded = F.pad(maps.float(), (1, 1, 1, 1), mode="replicate").reshape(n * k, h + 2, w + 2)
    row, col = (py.long() + 1).reshape(-1), (px.long() + 1).reshape(-1)
    at = torch.arange(n * k, device=maps.device)
    dx = padded[at, row, col + 1] - padded[at, row, col - 1]
    dy = padded[at, row + 1, col] - padded[at, row - 1, col]
    px = px + 0.25 * torch.sign(dx).reshape(n, k)
    py = py + 0.25 * torch.sign(dy).reshape(n, k)
    return torch.stack([(px + 0.5) * iw / w - 0.5, (py + 0.5) * ih / h - 0.5], -1)


def landmark_nme(points: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per-face mean point error of ``points`` against ``reference`` (both ``(N, 68, 2)``),
    divided by the reference's inter-ocular distance (outer eye corners 36 and 45, 300-W's)."""
    ocular = (reference[:, 36] - reference[:, 45]).norm(dim=-1).clamp(min=1e-6)
    return (points - reference).norm(dim=-1).mean(-1) / ocular


def save_heatmap_net(net: HeatmapNet, path: str | Path, manifest: dict[str, Any]) -> Path:
    """``path`` (.safetensors) + ``path.json``: an srkit manifest (arch ``heatmap_net``, purpose
    ``landmarks``, scale 1) around ``manifest``'s fields; both written atomically."""
    from srkit.weights.native import save_same_size_model

    fields = {**manifest, "arch": ARCH, "options": net.options}
    return save_same_size_model(net, path, fields, purpose="landmarks")


def load_heatmap_net(model: str | Path = DEFAULT_MODEL) -> tuple[HeatmapNet, dict[str, Any]]:
    """A :class:`HeatmapNet` and its manifest, from a file or a shipped name (sha256 checked)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from srkit.weights.errors import WeightsError
    from srkit.weights.native import read_manifest, weights_file
    from srkit.zoo import model_weights_path

    path = model_weights_path(model, "landmarks")
    mpath = path.with_suffix(".json")
    if not path.is_file() or not mpath.is_file():
        raise ValueError(f"{path}: a landmark model needs {path.name} and {mpath.name}")
    try:
        manifest = read_manifest(mpath)
        if manifest["arch"] != ARCH:
            raise WeightsError(f"arch {manifest['arch']!r}, not {ARCH}")
        state = load_file(str(weights_file(mpath, manifest)))
        net = HeatmapNet(**manifest["options"])
        net.load_state_dict(state)
    except (WeightsError, SafetensorError, OSError, RuntimeError, TypeError) as error:
        raise ValueError(f"{path}: not a readable landmark model ({error})") from None
    return net.eval(), manifest


def load_heatmap_network(network: str | Path = DEFAULT_MODEL) -> nn.Module:
    """The heatmap network a loss or a benchmark names: a shipped name or file of a
    :class:`HeatmapNet`, or ``fan:PATH`` (PFSRNet's compressed FAN from the authors' file)."""
    text = str(network)
    if text.startswith("fan:"):
        from srkit.faces.fan import load_fan_squeeze

        return load_fan_squeeze(text[len("fan:") :])
    return load_heatmap_net(network)[0]


class HeatmapLoss(nn.Module):
    """``loss(sr, hr)``: mean squared difference of the landmark heatmaps of ``sr`` and ``hr``
    (PFSRNet's heatmap loss) through a frozen heatmap network (``network``, see the module doc)."""

    def __init__(self, network: str = DEFAULT_MODEL) -> None:
        super().__init__()
        self.network = load_heatmap_network(network).eval()
        for p in self.network.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> HeatmapLoss:
        super().train(mode)
        self.network.eval()  # a fixed judge, whatever the trainer does
        return self

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.network(hr)
        return F.mse_loss(self.network(sr), target)
