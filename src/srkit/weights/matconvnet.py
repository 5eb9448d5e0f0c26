"""LapSRN's released MatConvNet (DagNN) models, read with ``scipy.io.loadmat``.

The authors' ``LapSRN_x{2,4,8}.mat`` hold a DagNN: ``input_conv``, then per pyramid level
``level{k}_conv{j}`` (3 x 3, leaky ReLU 0.2), ``level{k}_upconv`` (3 x 3 transposed conv, stride
2, crop [0 1 0 1]), ``level{k}_residual`` and the image branch ``level{k}_img_up`` (4 x 4
transposed conv, stride 2, crop 1). Levels are numbered from the output backwards (for x4 the
first x2 stage is ``level2``). MatConvNet filters are ``H x W x C_in x C_out`` (transposed
convolutions ``H x W x C_out x C_in``); both become PyTorch's layouts by one permutation.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from srkit.archs.common import Y01
from srkit.archs.detection import Detected
from srkit.weights.errors import WeightsError


def _layers(net) -> dict[str, object]:
    layers = net.layers if isinstance(net.layers, np.ndarray) else [net.layers]
    return {str(layer.name): layer for layer in layers}


def read_lapsrn_mat(path: Path) -> Detected:
    """The LapSRN network of a MatConvNet file; anything else is one ``WeightsError``."""
    try:
        return _read_lapsrn_mat(path)
    except WeightsError:
        raise
    except (KeyError, IndexError, ValueError, TypeError, AttributeError) as err:
        what = f"missing {err.args[0]!r}" if isinstance(err, KeyError) else str(err)
        raise WeightsError(f"{path}: not a complete LapSRN DagNN ({what})") from None


def _read_lapsrn_mat(path: Path) -> Detected:
    try:
        import scipy.io
    except ImportError as err:  # pragma: no cover - scipy is a declared extra
        raise WeightsError("reading MatConvNet .mat files needs scipy (pip install scipy)") from err
    try:
        mat = scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=False)
    except Exception as err:  # scipy raises several types for non-MAT input
        raise WeightsError(f"{path}: not a readable MATLAB .mat file ({err})") from None
    net = mat.get("net")
    if net is None or not hasattr(net, "params") or not hasattr(net, "layers"):
        found = ", ".join(k for k in mat if not k.startswith("__"))
        raise WeightsError(f"{path}: expected a MatConvNet DagNN struct 'net', found: {found}")
    layers = _layers(net)
    params = {str(p.name): np.asarray(p.value, dtype=np.float32) for p in net.params}
    levels = sorted({int(m.group(1)) for k in params if (m := re.match(r"level(\d+)_", k))})
    if "input_conv_f" not in params or not levels or levels != list(range(1, len(levels) + 1)):
        raise WeightsError(
            f"{path}: not a LapSRN DagNN (expected input_conv_f and level1.._conv*/upconv/"
            f"residual/img_up parameters), found {', '.join(list(params)[:6])}"
        )
    n_levels = len(levels)
    top = n_levels  # the first stage in the pyramid
    depth = len([k for k in params if re.fullmatch(rf"level{top}_conv\d+_f", k)])
    for name, layer in layers.items():
        if name.endswith("relu") or "_relu" in name:
            leak = float(getattr(layer.block, "leak", 0.0))
            if abs(leak - 0.2) > 1e-6:
                raise WeightsError(f"{path}: layer {name} has leak {leak}, srkit's LapSRN uses 0.2")

    def size_of(layer_name: str) -> tuple[int, ...]:
        return tuple(int(s) for s in np.atleast_1d(layers[layer_name].block.size))

    def conv_weight(param: str, layer_name: str) -> torch.Tensor:
        size = size_of(layer_name)
        value = params[param].reshape(size)  # (H, W, C_in, C_out) or convt (H, W, C_out, C_in)
        return torch.from_numpy(np.ascontiguousarray(value.transpose(3, 2, 0, 1)))

    def bias(param: str) -> torch.Tensor:
        return torch.from_numpy(np.atleast_1d(params[param]).copy())

    state: dict[str, torch.Tensor] = {
        "input_conv.weight": conv_weight("input_conv_f", "input_conv"),
        "input_conv.bias": bias("input_conv_b"),
    }
    for i in range(n_levels):
        k = n_levels - i
        p = f"levels.{i}."
        for j in range(1, depth + 1):
            state[f"{p}body.{2 * (j - 1)}.weight"] = conv_weight(
                f"level{k}_conv{j}_f", f"level{k}_conv{j}"
            )
            state[f"{p}body.{2 * (j - 1)}.bias"] = bias(f"level{k}_conv{j}_b")
        crop = tuple(int(c) for c in np.atleast_1d(layers[f"level{k}_upconv"].block.crop))
        if crop != (0, 1, 0, 1):
            raise WeightsError(f"{path}: level{k}_upconv crop {crop}, expected (0, 1, 0, 1)")
        state[f"{p}up.weight"] = conv_weight(f"level{k}_upconv_f", f"level{k}_upconv")
        state[f"{p}up.bias"] = bias(f"level{k}_upconv_b")
        state[f"{p}residual.weight"] = conv_weight(
            f"level{k}_residual_conv_f", f"level{k}_residual"
        )
        state[f"{p}residual.bias"] = bias(f"level{k}_residual_conv_b")
        state[f"{p}img_up.weight"] = conv_weight(f"level{k}_img_up_f", f"level{k}_img_up")
    features = int(state["input_conv.weight"].shape[0])
    scale = 2**n_levels
    opts = {"depth": depth, "features": features, "channels": 1}
    return Detected("lapsrn", opts, scale, (scale,), state, Y01)
