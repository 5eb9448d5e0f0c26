"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) in PyTorch.

The weights are read straight from dlib's own serialisation (no dlib needed), so the network is
batched, runs on any torch device and is differentiable: it is both the identity metric of
``srkit faces eval`` and a training loss.

dlib's format (``dlib/serialize.h``, ``dlib/dnn/core.h``, ``dlib/dnn/layers.h``):

* integers: one header byte (low 4 bits = number of bytes that follow, bit 0x80 = negative) then
  the magnitude, little-endian; ``bool`` is one ASCII byte ``'0'``/``'1'``; strings are an integer
  length then the bytes; ``float``/``double`` are an integer mantissa and an integer exponent
  (value = mantissa * 2**exponent);
* tensors: version 2, then ``num_samples, k, nr, nc`` then the float32 data little-endian;
* a network is its loss layer first (``loss_metric_2``: margin, distance threshold), then the
  ``add_layer`` versions of every layer top-down (each layer serialises its sub-network before
  itself), then the input layer, then the layers bottom-up, each as its details record
  (``con_4``, ``affine_``, ``relu_``, ``max_pool_2``, ``avg_pool_2``, ``add_prev``, ``fc_2``)
  followed by the ``add_layer`` state (three bools, ``x_grad``, ``cached_output`` and
  ``params_grad``/``grad_final`` tensors, normally empty).

Tags and skips (which output ``add_prev`` adds) are not recorded in the file; they are the ones of
dlib's ``dnn_face_recognition_ex.cpp`` network and are rebuilt here from the record sequence: a
residual unit is ``con, affine, relu, con, affine, [avg_pool,] add_prev, relu``; with ``avg_pool``
it is a downsampling unit whose shortcut is the unit's input average-pooled 2x2/2.
``add_prev`` of differently shaped tensors zero-pads the smaller one (at the end of each
dimension), which matters for the two last stages (3x3 conv branch vs 4x4 pooled shortcut).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from srkit.faces.paths import model_file

__all__ = [
    "DlibFormatError",
    "DlibResNet",
    "DlibResNetWeights",
    "load_dlib_resnet",
    "parse_dlib_resnet",
]

INPUT_SIZE = 150


class DlibFormatError(ValueError):
    """The file is not a dlib face-recognition network this parser understands."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _need(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise DlibFormatError(f"unexpected end of file at byte {self.pos}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def int(self) -> int:
        head = self._need(1)[0]
        size = head & 0x0F
        if size > 8:
            raise DlibFormatError(f"bad integer header 0x{head:02x} at byte {self.pos - 1}")
        value = int.from_bytes(self._need(size), "little") if size else 0
        return -value if head & 0x80 else value

    def bool(self) -> bool:
        c = self._need(1)
        if c not in (b"0", b"1"):
            raise DlibFormatError(f"bad bool {c!r} at byte {self.pos - 1}")
        return c == b"1"

    def str(self) -> str:
        n = self.int()
        if not 0 <= n < 1 << 16:
            raise DlibFormatError(f"bad string length {n} at byte {self.pos}")
        return self._need(n).decode("latin-1")

    def float(self) -> float:
        mantissa = self.int()
        exponent = self.int()
        return float(mantissa) * 2.0**exponent

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise DlibFormatError(f"tensor version {version} at byte {self.pos} (expected 2)")
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        raw = self._need(4 * count)
        return np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        # Only the shape is stored; the offsets into ``params`` are implicit (in field order).
        version = self.int()
        if version != 1:
            raise DlibFormatError(f"alias_tensor version {version} at byte {self.pos}")
        return tuple(self.int() for _ in range(4))  # type: ignore[return-value]


@dataclass
class Layer:
    kind: str
    params: dict = field(default_factory=dict)


@dataclass
class DlibResNetWeights:
    """The parsed file: input normalisation, layer records bottom-up, loss settings."""

    mean_rgb: tuple[float, float, float]
    input_size: tuple[int, int]
    layers: list[Layer]
    margin: float
    distance_threshold: float


def _slice(params: np.ndarray, shape: tuple[int, ...], offset: int) -> np.ndarray:
    flat = params.reshape(-1)
    n = int(np.prod(shape))
    if offset + n > flat.size:
        raise DlibFormatError("alias tensor outside its parameter tensor")
    return flat[offset : offset + n].reshape(shape)


def _read_details(r: _Reader, name: str) -> Layer:
    if name in ("con_4", "con_5"):
        params = r.tensor()
        num_filters = r.int()
        nr, nc = r.int(), r.int()
        stride = (r.int(), r.int())
        padding = (r.int(), r.int())
        w_shape = r.alias_tensor()
        b_shape = r.alias_tensor()
        for _ in range(4):  # learning-rate / weight-decay multipliers (weights, biases)
            r.float()
        use_bias = r.bool() if name == "con_5" else True
        weight = _slice(params, w_shape, 0)
        n_w = weight.size
        bias = _slice(params, b_shape, n_w).reshape(-1) if use_bias else None
        if weight.shape[0] != num_filters or weight.shape[2:] != (nr, nc):
            raise DlibFormatError(f"con filter shape {weight.shape} != {num_filters}x{nr}x{nc}")
        return Layer("con", {"weight": weight, "bias": bias, "stride": stride, "padding": padding})
    if name == "affine_":
        params = r.tensor()
        g_shape = r.alias_tensor()
        b_shape = r.alias_tensor()
        mode = r.int()
        gamma = _slice(params, g_shape, 0)
        beta = _slice(params, b_shape, gamma.size)
        if mode != 0:  # CONV_MODE = 0: one gamma/beta per channel (FC_MODE = 1)
            raise DlibFormatError(f"affine_ mode {mode} not supported (only CONV_MODE)")
        return Layer("affine", {"gamma": gamma.reshape(-1), "beta": beta.reshape(-1)})
    if name == "relu_":
        return Layer("relu")
    if name in ("max_pool_2", "avg_pool_2"):
        nr, nc = r.int(), r.int()
        stride = (r.int(), r.int())
        padding = (r.int(), r.int())
        kind = "max_pool" if name.startswith("max") else "avg_pool"
        return Layer(kind, {"size": (nr, nc), "stride": stride, "padding": padding})
    if name in ("add_prev", "add_prev_"):
        return Layer("add_prev")
    if name == "fc_2":
        num_outputs = r.int()
        num_inputs = r.int()
        params = r.tensor()
        w_shape = r.alias_tensor()
        r.alias_tensor()  # biases (shape only; empty without bias)
        bias_mode = r.int()  # 0 = FC_HAS_BIAS, 1 = FC_NO_BIAS
        for _ in range(4):  # learning-rate / weight-decay multipliers
            r.float()
        weight = _slice(params, w_shape, 0).reshape(num_inputs, num_outputs)
        bias = _slice(params, (num_outputs,), weight.size) if bias_mode == 0 else None
        return Layer("fc", {"weight": weight, "bias": bias})
    raise DlibFormatError(f"unsupported dlib layer record {name!r} at byte {r.pos}")


def parse_dlib_resnet(source: str | Path | bytes) -> DlibResNetWeights:
    """Parse ``dlib_face_recognition_resnet_model_v1.dat`` (bytes or path) without dlib."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    r = _Reader(data)
    if r.int() != 1:
        raise DlibFormatError("not a dlib network file (loss layer version != 1)")
    loss = r.str()
    if loss != "loss_metric_2":
        raise DlibFormatError(f"loss layer {loss!r}: expected a face-recognition metric network")
    margin = r.float()
    dist = r.float()
    # add_layer versions, top-down; the innermost one (on the input layer) is followed by the input
    # layer record. Tag/skip layers also write a version (1) and no record of their own.
    versions = []
    while r.pos + 1 < len(data) and data[r.pos] == 0x01 and data[r.pos + 1] in (1, 2, 3):
        versions.append(r.int())
    if not versions:
        raise DlibFormatError("no layers after the loss layer")
    name = r.str()
    if name != "input_rgb_image_sized":
        raise DlibFormatError(f"input layer {name!r}: expected input_rgb_image_sized")
    mean = (r.float(), r.float(), r.float())
    size = (r.int(), r.int())
    layers: list[Layer] = []
    first = True
    while r.pos < len(data):
        name = r.str()
        layers.append(_read_details(r, name))
        r.bool(), r.bool(), r.bool()  # setup called, gradient stale, getters disabled
        r.tensor(), r.tensor(), r.tensor()  # x_grad, cached_output, params_grad / grad_final
        if first:
            if versions[-1] >= 3:  # the add_layer on the input layer, version 3
                r.int()  # _sample_expansion_factor
            first = False
    if not layers or layers[-1].kind != "fc":
        raise DlibFormatError("network does not end in an fc layer")
    return DlibResNetWeights(mean, size, layers, margin, dist)


def _add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: sum over the common extent; the smaller one is zero-padded."""
    if a.shape == b.shape:
        return a + b
    shape = [max(x, y) for x, y in zip(a.shape, b.shape, strict=True)]
    out = a.new_zeros(shape)
    out[: a.shape[0], : a.shape[1], : a.shape[2], : a.shape[3]] += a
    out[: b.shape[0], : b.shape[1], : b.shape[2], : b.shape[3]] += b
    return out


def _conv(layer: Layer, affine: Layer | None, fold: bool) -> nn.Module:
    w = torch.from_numpy(layer.params["weight"].copy())
    b = layer.params["bias"]
    b = torch.from_numpy(b.copy()) if b is not None else torch.zeros(w.shape[0])
    conv = nn.Conv2d(
        w.shape[1],
        w.shape[0],
        tuple(w.shape[2:]),
        stride=layer.params["stride"],
        padding=layer.params["padding"],
        bias=True,
    )
    if affine is not None and fold:
        g = torch.from_numpy(affine.params["gamma"].copy())
        beta = torch.from_numpy(affine.params["beta"].copy())
        w = w * g.view(-1, 1, 1, 1)
        b = b * g + beta
    with torch.no_grad():
        conv.weight.copy_(w)
        conv.bias.copy_(b)
    if affine is not None and not fold:
        return nn.Sequential(conv, _Affine(affine))
    return conv


class _Affine(nn.Module):
    def __init__(self, layer: Layer) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.from_numpy(layer.params["gamma"].copy()).view(1, -1, 1, 1))
        self.beta = nn.Parameter(torch.from_numpy(layer.params["beta"].copy()).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma + self.beta


class _Unit(nn.Module):
    """relu(shortcut + affine(conv(relu(affine(conv(x)))))), shortcut = x or avgpool2(x)."""

    def __init__(self, conv1: nn.Module, conv2: nn.Module, down: bool) -> None:
        super().__init__()
        self.conv1 = conv1
        self.conv2 = conv2
        self.down = down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x)))
        s = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(_add_padded(y, s))


class DlibResNet(nn.Module):
    """dlib's 128-d face descriptor network: ``(N, 3, 150, 150)`` RGB in [0, 1] -> ``(N, 128)``.

    The input is a dlib face chip (``get_face_chip(img, shape, 150, 0.25)`` or
    :func:`srkit.faces.align.face_chip`); pixels are scaled back to 0..255 and normalised as dlib's
    ``input_rgb_image_sized`` does, ``(v - mean) / 256``. Descriptors of one person lie within
    Euclidean distance 0.6 of each other (dlib's threshold, :attr:`threshold`).
    """

    def __init__(self, weights: DlibResNetWeights, fold_affine: bool = True) -> None:
        super().__init__()
        layers = list(weights.layers)
        self.register_buffer(
            "mean", torch.tensor(weights.mean_rgb, dtype=torch.float32).view(1, 3, 1, 1)
        )
        self.input_size = weights.input_size
        self.threshold = float(weights.distance_threshold)
        kinds = [layer.kind for layer in layers]
        if kinds[:4] != ["con", "affine", "relu", "max_pool"]:
            raise DlibFormatError(f"unexpected stem {kinds[:4]}")
        self.stem = _conv(layers[0], layers[1], fold_affine)
        mp = layers[3].params
        self.pool = (mp["size"], mp["stride"], mp["padding"])
        units = []
        i = 4
        while i < len(layers) and layers[i].kind == "con":
            seq = kinds[i : i + 8]
            if seq == ["con", "affine", "relu", "con", "affine", "avg_pool", "add_prev", "relu"]:
                down, n = True, 8
                ap = layers[i + 5].params
                if ap["size"] != (2, 2) or ap["stride"] != (2, 2) or ap["padding"] != (0, 0):
                    raise DlibFormatError(f"unexpected shortcut pooling {ap}")
            elif seq[:7] == ["con", "affine", "relu", "con", "affine", "add_prev", "relu"]:
                down, n = False, 7
            else:
                raise DlibFormatError(f"unexpected residual unit layout at layer {i}: {seq}")
            conv1 = _conv(layers[i], layers[i + 1], fold_affine)
            conv2 = _conv(layers[i + 3], layers[i + 4], fold_affine)
            units.append(_Unit(conv1, conv2, down))
            i += n
        self.units = nn.Sequential(*units)
        tail = kinds[i:]
        if tail != ["avg_pool", "fc"] or layers[i].params["size"] != (0, 0):
            raise DlibFormatError(f"unexpected head {tail}")
        fc = layers[i + 1].params
        self.fc = nn.Linear(
            fc["weight"].shape[0], fc["weight"].shape[1], bias=fc["bias"] is not None
        )
        with torch.no_grad():
            self.fc.weight.copy_(torch.from_numpy(fc["weight"].T.copy()))
            if fc["bias"] is not None:
                self.fc.bias.copy_(torch.from_numpy(fc["bias"].copy()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (N, 3, H, W) RGB, got {tuple(x.shape)}")
        if tuple(x.shape[2:]) != tuple(self.input_size):
            raise ValueError(
                f"dlib's network takes {self.input_size[0]}x{self.input_size[1]} face chips, "
                f"got {x.shape[2]}x{x.shape[3]} (use srkit.faces.align.face_chip)"
            )
        x = (x * 255.0 - self.mean) / 256.0
        x = F.relu(self.stem(x))
        size, stride, pad = self.pool
        x = F.max_pool2d(x, size, stride, pad)
        x = self.units(x)
        x = x.mean(dim=(2, 3))
        return self.fc(x)


_CACHE: dict[tuple[str, bool], DlibResNet] = {}


def load_dlib_resnet(path: str | Path | None = None, fold_affine: bool = True) -> DlibResNet:
    """Load (once per process) the network from ``path`` or face-recognition-models' copy."""
    if path is None:
        path = model_file("dlib_face_recognition_resnet_model_v1.dat")
    key = (str(Path(path).resolve()), fold_affine)
    net = _CACHE.get(key)
    if net is None:
        net = DlibResNet(parse_dlib_resnet(path), fold_affine=fold_affine).eval()
        for p in net.parameters():
            p.requires_grad_(False)
        _CACHE[key] = net
    return net
