"""VGG16/VGG19/AlexNet trunks as plain modules with named layers, and their weight loaders.

No torchvision: the trunks are built here and the weight files are mapped onto them by the
position of each layer in the original ``features`` sequence, so the layer ``features.N`` of a
torchvision file (or ``net.sliceK.N`` of an ST-LPIPS file) is the N-th layer here.
"""

from __future__ import annotations

import importlib.util
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

#: ImageNet statistics. LPIPS's ScalingLayer (shift -0.030, -0.088, -0.188; scale 0.458, 0.448,
#: 0.450 on images in [-1, 1]) is the same normalisation written for [-1, 1] inputs.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

STLPIPS_PACKAGE = "stlpips_pytorch"
STLPIPS_FILES = {
    "vgg16": "weights/vST0.0/vgg_shift_tolerant.pth",
    "alex": "weights/vST0.0/alex_shift_tolerant.pth",
}
_INSTALL_HINT = "pip install 'srkit[perceptual]'"


def unit_features(f: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Each position's feature vector divided by its length: LPIPS's normalisation, shared by
    the LPIPS metric, the normalised perceptual loss and the style objective."""
    return f / (f.pow(2).sum(1, keepdim=True).sqrt() + eps)


@dataclass(frozen=True)
class Layer:
    """One layer of a trunk: its name and what it is (``conv``, ``relu``, ``pool``, ``blur``)."""

    name: str
    kind: str


class BlurDownsample(nn.Module):
    """Anti-aliased downsampling (Zhang, "Making Convolutional Networks Shift-Invariant
    Again", ICML 2019) as ST-LPIPS uses it: reflect padding of 2 on every side, then a
    depthwise ``[1, 2, 1] x [1, 2, 1] / 16`` filter at stride 2."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        tap = torch.tensor([1.0, 2.0, 1.0])
        kernel = (tap[:, None] * tap[None, :]) / 16.0
        self.channels = channels
        self.register_buffer("filt", kernel.expand(channels, 1, 3, 3).clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (2, 2, 2, 2), mode="reflect")
        return F.conv2d(x, self.filt.to(x.dtype), stride=2, groups=self.channels)


class FeatureNet(nn.Module):
    """A frozen trunk: RGB in ``[0, 1]`` -> activations of named layers.

    ``forward(x, layers)`` normalises ``x`` (``(x - mean) / std``) and returns
    ``{name: activation}`` for each requested layer, running the trunk only as far as the
    deepest one. ``layer_names`` lists every layer in order; a ``convX_Y`` output is taken
    before its activation (ESRGAN's ``conv5_4``), a ``reluX_Y`` output after it. The weights
    never train; the module follows its input to whatever device it arrives on, so a loss that
    holds one needs no ``.to(device)``.
    """

    def __init__(
        self,
        layers: Sequence[tuple[Layer, nn.Module]],
        *,
        name: str,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        self.name = name
        self.layers = tuple(layer for layer, _ in layers)
        self.body = nn.Sequential(OrderedDict((layer.name, module) for layer, module in layers))
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers)

    def channels(self, layer: str) -> int:
        """Channels of layer ``layer``'s output."""
        index = self._index(layer)
        for module in reversed(list(self.body)[: index + 1]):
            if isinstance(module, nn.Conv2d):
                return module.out_channels
        return 3

    def _index(self, layer: str) -> int:
        names = self.layer_names
        if layer not in names:
            raise ValueError(f"{self.name} has no layer {layer!r}; its layers: {', '.join(names)}")
        return names.index(layer)

    def train(self, mode: bool = True) -> FeatureNet:
        return super().train(False)  # frozen: always in evaluation mode

    def forward(self, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"{self.name} needs RGB images (N, 3, H, W), got {tuple(x.shape)}")
        wanted = {self._index(layer): layer for layer in layers}
        if self.mean.device != x.device:
            self.to(x.device)
        h = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out: dict[str, torch.Tensor] = {}
        last = max(wanted)
        for index, module in enumerate(self.body):
            h = module(h)
            if index in wanted:
                out[wanted[index]] = h
            if index == last:
                break
        return out


# --- torchvision-layout VGG -----------------------------------------------------------------
def _vgg_layers(
    convs: Sequence[tuple[int, int, int]], *, blur_pool: bool
) -> list[tuple[Layer, nn.Module]]:
    """``convs``: (index in ``features``, in, out) of each conv. A pool follows a conv's ReLU
    when the next conv is 3 indices on (torchvision) or 4 (ST-LPIPS: max-pool + blur)."""
    layers: list[tuple[Layer, nn.Module]] = []
    block, within = 1, 0
    for position, (index, c_in, c_out) in enumerate(convs):
        within += 1
        layers.append((Layer(f"conv{block}_{within}", "conv"), nn.Conv2d(c_in, c_out, 3, 1, 1)))
        layers.append((Layer(f"relu{block}_{within}", "relu"), nn.ReLU()))
        if position + 1 == len(convs):
            break
        gap = convs[position + 1][0] - index
        if gap == 2:
            continue
        if blur_pool:
            layers.append((Layer(f"pool{block}", "pool"), nn.MaxPool2d(2, stride=1)))
            layers.append((Layer(f"blur{block}", "blur"), BlurDownsample(c_out)))
        else:
            layers.append((Layer(f"pool{block}", "pool"), nn.MaxPool2d(2, stride=2)))
        block, within = block + 1, 0
    return layers


def _conv_indices(state: Mapping[str, torch.Tensor], prefix: str) -> list[tuple[int, int, int]]:
    """(index, in, out) of every 3x3 conv ``{prefix}{index}.weight``, in order."""
    found = []
    for key, value in state.items():
        if key.startswith(prefix) and key.endswith(".weight") and value.dim() == 4:
            index = key[len(prefix) :].split(".")[-2]
            if index.isdigit():
                found.append((int(index), int(value.shape[1]), int(value.shape[0])))
    return sorted(found)


def _load_by_index(
    net: FeatureNet, state: Mapping[str, torch.Tensor], keys: Mapping[int, str], source: str
) -> None:
    """Copy ``{keys[i]}.weight`` / ``.bias`` into the i-th layer of ``net``."""
    modules = list(net.body)
    for index, module in enumerate(modules):
        if not isinstance(module, nn.Conv2d):
            continue
        prefix = keys.get(index)
        weight, bias = state.get(f"{prefix}.weight"), state.get(f"{prefix}.bias")
        if prefix is None or weight is None or bias is None:
            raise ValueError(f"{source}: no weights for layer {net.layers[index].name}")
        if weight.shape != module.weight.shape or bias.shape != module.bias.shape:
            raise ValueError(
                f"{source}: {prefix}.weight has shape {tuple(weight.shape)}, layer "
                f"{net.layers[index].name} needs {tuple(module.weight.shape)}"
            )
        with torch.no_grad():
            module.weight.copy_(weight)
            module.bias.copy_(bias)


def _read_state(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"feature network weights not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a torch.load failure names no file; say which one
        raise ValueError(f"{path}: not a PyTorch state dict ({error.__class__.__name__})") from None
    if not isinstance(state, Mapping):
        raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
    return dict(state)


_VGG_CONVS = {"vgg16": 13, "vgg19": 16}


def imagenet_vgg(path: str | Path, arch: str | None = None) -> FeatureNet:
    """A torchvision ImageNet VGG file (``vgg19-dcbb9e9d.pth``, ``vgg16-397923af.pth``, or a
    state dict with the same ``features.N`` keys and any channel widths) as a FeatureNet with
    layers ``conv1_1, relu1_1, ..., pool4, ..., conv5_4, relu5_4`` (VGG19).

    ``arch`` (``vgg16``/``vgg19``) checks the file holds that network. ImageNet mean/std
    normalisation, as torchvision trained it.
    """
    state = _read_state(path)
    convs = _conv_indices(state, "features.")
    found = {count: name for name, count in _VGG_CONVS.items()}.get(len(convs))
    if found is None:
        raise ValueError(
            f"{path}: {len(convs)} conv layers under features.*; a torchvision VGG16 has 13 and "
            "a VGG19 16"
        )
    if arch is not None and arch != found:
        raise ValueError(f"{path} holds a {found}, not a {arch}")
    net = FeatureNet(_vgg_layers(convs, blur_pool=False), name=found)
    _load_by_index(net, state, {i: f"features.{i}" for i, _, _ in convs}, str(path))
    return net


# --- AlexNet --------------------------------------------------------------------------------
def _alexnet_layers(
    widths: Sequence[int], *, shift_tolerant: bool
) -> list[tuple[Layer, nn.Module]]:
    c1, c2, c3, c4, c5 = widths
    if shift_tolerant:  # conv1 at stride 1 then blur-downsampled, pools at stride 1 + blur
        head = [
            (Layer("conv1", "conv"), nn.Conv2d(3, c1, 11, stride=1, padding=2)),
            (Layer("blur1", "blur"), BlurDownsample(c1)),
            (Layer("relu1", "relu"), nn.ReLU()),
            (Layer("pool1", "pool"), nn.MaxPool2d(3, stride=1)),
            (Layer("blur_pool1", "blur"), BlurDownsample(c1)),
            (Layer("conv2", "conv"), nn.Conv2d(c1, c2, 5, padding=2)),
            (Layer("relu2", "relu"), nn.ReLU()),
            (Layer("pool2", "pool"), nn.MaxPool2d(3, stride=1)),
            (Layer("blur_pool2", "blur"), BlurDownsample(c2)),
        ]
    else:
        head = [
            (Layer("conv1", "conv"), nn.Conv2d(3, c1, 11, stride=4, padding=2)),
            (Layer("relu1", "relu"), nn.ReLU()),
            (Layer("pool1", "pool"), nn.MaxPool2d(3, stride=2)),
            (Layer("conv2", "conv"), nn.Conv2d(c1, c2, 5, padding=2)),
            (Layer("relu2", "relu"), nn.ReLU()),
            (Layer("pool2", "pool"), nn.MaxPool2d(3, stride=2)),
        ]
    tail = [
        (Layer("conv3", "conv"), nn.Conv2d(c2, c3, 3, padding=1)),
        (Layer("relu3", "relu"), nn.ReLU()),
        (Layer("conv4", "conv"), nn.Conv2d(c3, c4, 3, padding=1)),
        (Layer("relu4", "relu"), nn.ReLU()),
        (Layer("conv5", "conv"), nn.Conv2d(c4, c5, 3, padding=1)),
        (Layer("relu5", "relu"), nn.ReLU()),
    ]
    return head + tail


def imagenet_alexnet(path: str | Path) -> FeatureNet:
    """torchvision's ImageNet AlexNet (``alexnet-owt-7be5be79.pth``): layers ``conv1, relu1,
    pool1, ..., relu5``, the trunk of standard LPIPS."""
    state = _read_state(path)
    convs = _conv_indices(state, "features.")
    if [i for i, _, _ in convs] != [0, 3, 6, 8, 10]:
        raise ValueError(f"{path}: not a torchvision AlexNet (features.0/3/6/8/10 convs)")
    net = FeatureNet(
        _alexnet_layers([c for _, _, c in convs], shift_tolerant=False), name="alexnet"
    )
    _load_by_index(net, state, {0: "features.0", 3: "features.3", 6: "features.6",
                                8: "features.8", 10: "features.10"}, str(path))  # fmt: skip
    return net


# --- ST-LPIPS -------------------------------------------------------------------------------
def package_file(package: str, relative: str, *, hint: str = _INSTALL_HINT) -> Path:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package} is not installed ({hint})")
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / relative
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{package} is installed but has no {relative} ({hint})")


def _stlpips_state(trunk: str) -> tuple[dict[str, torch.Tensor], Path]:
    if trunk not in STLPIPS_FILES:
        raise ValueError(
            f"unknown ST-LPIPS trunk {trunk!r}; choose from {', '.join(STLPIPS_FILES)}"
        )
    path = package_file(STLPIPS_PACKAGE, STLPIPS_FILES[trunk])
    return _read_state(path), path


def stlpips_trunk(trunk: str = "vgg16") -> FeatureNet:
    """The shift-tolerant VGG16 (``vgg16``) or AlexNet (``alex``) trunk of ST-LPIPS.

    VGG16's convolutions are torchvision's (``relu1_2 ... relu5_3``); each pool is a stride-1
    max-pool followed by :class:`BlurDownsample`. Inputs are normalised as the package does:
    ``[0, 1] -> [-1, 1]``, then its ScalingLayer's shift and scale.
    """
    state, path = _stlpips_state(trunk)
    prefixes = {}
    for key in state:
        parts = key.split(".")
        if parts[0] == "net" and parts[-1] == "weight" and parts[-2].isdigit():
            prefixes[int(parts[-2])] = ".".join(parts[:-1])
    convs = [
        (index, int(state[f"{prefix}.weight"].shape[1]), int(state[f"{prefix}.weight"].shape[0]))
        for index, prefix in sorted(prefixes.items())
    ]
    if trunk == "vgg16":
        layers = _vgg_layers(convs, blur_pool=True)
    else:
        layers = _alexnet_layers([c for _, _, c in convs], shift_tolerant=True)
    # LPIPS's input: x in [-1, 1], then (x - shift) / scale; for x in [0, 1] that is
    # (x - (1 + shift) / 2) / (scale / 2)
    shift = state["scaling_layer.shift"].flatten()
    scale = state["scaling_layer.scale"].flatten()
    net = FeatureNet(
        layers, name=f"stlpips_{trunk}", mean=((1 + shift) / 2).tolist(), std=(scale / 2).tolist()
    )
    _load_by_index(net, state, prefixes, str(path))
    for index, module in enumerate(net.body):  # the file's blur filters are the ones built here
        if isinstance(module, BlurDownsample):
            saved = state.get(f"{_slice_of(state, index)}.filt")
            if saved is None or not torch.allclose(saved, module.filt):
                raise ValueError(f"{path}: blur filter of {net.layers[index].name} differs")
    return net


def _slice_of(state: Mapping[str, torch.Tensor], index: int) -> str:
    for key in state:
        parts = key.split(".")
        if parts[0] == "net" and len(parts) == 4 and parts[2] == str(index):
            return ".".join(parts[:3])
    return ""


#: The layers LPIPS compares, per trunk.
LPIPS_LAYERS = {
    "vgg16": ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"),
    "alex": ("relu1", "relu2", "relu3", "relu4", "relu5"),
    "alexnet": ("relu1", "relu2", "relu3", "relu4", "relu5"),
}


def stlpips_linear_weights(trunk: str = "vgg16") -> list[torch.Tensor]:
    """ST-LPIPS's learned non-negative channel weights (``lin0 ... lin4``), one ``(C,)`` tensor
    per layer of :data:`LPIPS_LAYERS`."""
    state, _ = _stlpips_state(trunk)
    return [state[f"lin{k}.model.1.weight"].flatten().clone() for k in range(5)]


FEATURE_NETWORKS = ("stlpips_vgg16", "stlpips_alex", "vgg19:PATH", "vgg16:PATH", "alexnet:PATH")


def feature_network(spec: str) -> FeatureNet:
    """A FeatureNet by name: ``stlpips_vgg16`` (default of the losses), ``stlpips_alex``, or a
    user-given torchvision file ``vgg19:PATH`` / ``vgg16:PATH`` / ``alexnet:PATH``."""
    if spec in ("stlpips_vgg16", "stlpips_vgg"):
        return stlpips_trunk("vgg16")
    if spec == "stlpips_alex":
        return stlpips_trunk("alex")
    kind, sep, path = spec.partition(":")
    if sep and path and kind in _VGG_CONVS:
        return imagenet_vgg(path, kind)
    if sep and path and kind == "alexnet":
        return imagenet_alexnet(path)
    raise ValueError(f"unknown feature network {spec!r}; use one of {', '.join(FEATURE_NETWORKS)}")
