"""Checkpoints from the authors' own code: read safely, detect the architecture, map key names.

Files are read with ``torch.load(weights_only=True)`` only: plain tensors and containers, never
code. The architecture is recognised from key names and tensor shapes (as spandrel does), its
options (width, depth, groups, scale) are read off the shapes, the keys are renamed to srkit's
modules, and the tensors are loaded exactly (strict, every shape checked).
"""

from __future__ import annotations

import math
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from srkit.archs.common import DIV2K_MEAN, RGB01, RGB255, InputConvention
from srkit.archs.registry import get_spec
from srkit.weights.errors import WeightsError

StateDict = dict[str, torch.Tensor]


@dataclass
class Detected:
    """What a foreign checkpoint holds, in srkit's terms."""

    arch: str
    options: dict[str, Any]
    scale: int | None  # None: the file does not fix the scale (multi-scale or scale-agnostic)
    scales: tuple[int, ...]  # scales the file can serve
    state: StateDict  # keys renamed to srkit's modules
    convention: InputConvention
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.options.items())
        scale = f"x{self.scale}" if self.scale else "/".join(f"x{s}" for s in self.scales)
        return f"{self.arch} {scale} ({opts})"


# --- reading --------------------------------------------------------------------------------

_WRAPPERS = ("params_ema", "params", "state_dict", "model", "net", "generator", "model_state")


def read_torch_file(path: Path) -> StateDict:
    """Tensors of a ``.pth``/``.pt`` file via ``torch.load(weights_only=True)``; unwraps the usual
    containers (``params_ema``, ``state_dict``, ...) and a ``module.`` (DataParallel) prefix."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise WeightsError(
            f"{path}: this pickle needs code execution to load (it stores Python objects, e.g. a "
            "whole model, not just tensors), and srkit only reads weight files with "
            "torch.load(weights_only=True). Re-save it as a state dict "
            "(torch.save(model.state_dict(), ...)) from trusted code. Detail: "
            f"{str(err).splitlines()[0]}"
        ) from None
    except Exception as err:  # torch.load raises many types (IndexError, KeyError, ...) on junk
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise WeightsError(f"{path}: not a readable PyTorch file ({detail})") from None
    return unwrap_state_dict(obj, str(path))


def unwrap_state_dict(obj: Any, where: str) -> StateDict:
    if isinstance(obj, dict) and not all(torch.is_tensor(v) for v in obj.values()):
        for key in _WRAPPERS:
            inner = obj.get(key)
            if (
                isinstance(inner, dict)
                and inner
                and all(torch.is_tensor(v) for v in inner.values())
            ):
                obj = inner
                break
        else:
            found = ", ".join(f"{k} ({type(v).__name__})" for k, v in list(obj.items())[:8])
            raise WeightsError(
                f"{where}: expected a dict of tensors (a state dict, possibly under one of "
                f"{', '.join(_WRAPPERS)}), found keys {found}"
            )
    if not isinstance(obj, dict) or not obj:
        raise WeightsError(f"{where}: expected a dict of tensors, found {type(obj).__name__}")
    state = {str(k): v for k, v in obj.items()}
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


# --- helpers --------------------------------------------------------------------------------


def _indices(state: StateDict, pattern: str) -> list[int]:
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in state if (m := rx.match(k))})


def _rename(state: StateDict, rules: list[tuple[str, str | Callable[[re.Match[str]], str]]]):
    out: StateDict = {}
    for key, value in state.items():
        new = key
        for pattern, repl in rules:
            new, n = re.subn(pattern, repl, new)
            if n:
                break
        out[new] = value
    return out


def _shuffle_scale(out_channels: int, channels: int, where: str) -> int:
    s = math.isqrt(out_channels // channels)
    if s * s * channels != out_channels or s < 2:
        raise WeightsError(
            f"{where}: upsampler has {out_channels} output channels, which is not "
            f"{channels} x scale^2 for an integer scale"
        )
    return s


def _mean_shift(state: StateDict, prefix: str, sign: int, where: str) -> tuple[float, tuple]:
    """Read an EDSR/CARN MeanShift 1 x 1 conv: returns (value_range, mean in [0, 1] units)."""
    weight = state[f"{prefix}weight"].reshape(3, 3).double()
    bias = state[f"{prefix}bias"].double() * sign
    if not torch.allclose(weight, torch.eye(3, dtype=torch.float64), atol=1e-6):
        raise WeightsError(f"{where}: {prefix}weight is not an identity (rgb_std != 1 unsupported)")
    value_range = 255.0 if bias.abs().max() > 1.5 else 1.0
    return value_range, tuple(round(float(b) / value_range, 6) for b in bias)


def _drop(state: StateDict, prefixes: tuple[str, ...]) -> StateDict:
    return {k: v for k, v in state.items() if not k.startswith(prefixes)}


# --- one detector per architecture family -----------------------------------------------------


def _imdn(state: StateDict, where: str) -> Detected | None:
    if "fea_conv.weight" not in state or "IMDB1.c1.weight" not in state:
        return None
    features, channels = state["fea_conv.weight"].shape[:2]
    blocks = len(_indices(state, r"IMDB(\d+)\."))
    scale = _shuffle_scale(state["upsampler.0.weight"].shape[0], channels, where)
    mapped = _rename(
        state,
        [
            (r"^IMDB(\d+)\.", lambda m: f"blocks.{int(m.group(1)) - 1}."),
            (r"^c\.0\.", "fuse.0."),
            (r"^LR_conv\.", "lr_conv."),
        ],
    )
    opts = {"blocks": blocks, "features": int(features), "channels": int(channels)}
    return Detected("imdn", opts, scale, (scale,), mapped, RGB01)


def _rlfn(state: StateDict, where: str) -> Detected | None:
    if "conv_1.weight" not in state or "block_1.esa.conv_f.weight" not in state:
        return None
    features, channels = state["conv_1.weight"].shape[:2]
    blocks = len(_indices(state, r"block_(\d+)\."))
    esa = int(state["block_1.esa.conv1.weight"].shape[0])
    scale = _shuffle_scale(state["upsampler.0.weight"].shape[0], channels, where)
    mapped = _rename(state, [(r"^block_(\d+)\.", lambda m: f"blocks.{int(m.group(1)) - 1}.")])
    arch = "rlfn_s" if features == 48 else "rlfn"
    opts = {"blocks": blocks, "features": int(features), "esa_channels": esa}
    opts["channels"] = int(channels)
    # The released RLFN files reproduce the paper with inputs in [0, 255] (see the README of the
    # shared weights); the repo's demo feeds [0, 1].
    return Detected(arch, opts, scale, (scale,), mapped, RGB255)


def _a2n(state: StateDict, where: str) -> Detected | None:
    if "AAB_trunk.0.ADM.0.weight" not in state:
        return None
    features, channels = state["conv_first.weight"].shape[:2]
    opts = {
        "blocks": len(_indices(state, r"AAB_trunk\.(\d+)\.")),
        "features": int(features),
        "up_features": int(state["upconv1.weight"].shape[0]),
        "channels": int(channels),
    }
    if "upconv2.weight" in state:
        return Detected("a2n", opts, 4, (4,), dict(state), RGB255)
    # x2 and x3 files have identical tensors: the scale must come from the caller or file name.
    return Detected("a2n", opts, None, (2, 3), dict(state), RGB255)


def _carn_m(state: StateDict, where: str) -> Detected | None:
    if "entry.weight" not in state or "b1.b1.body.0.weight" not in state:
        return None
    if "b1.b2.body.0.weight" in state:
        raise WeightsError(
            f"{where}: this is a CARN (non-mobile) checkpoint (blocks b1.b1, b1.b2, b1.b3); "
            "srkit implements CARN-M (one shared efficient residual block per cascading block)"
        )
    features, channels = state["entry.weight"].shape[:2]
    groups = int(features // state["b1.b1.body.0.weight"].shape[1])
    value_range, mean = 1.0, DIV2K_MEAN
    if "sub_mean.shifter.weight" in state:
        value_range, mean = _mean_shift(state, "sub_mean.shifter.", -1, where)
        add_range, add_mean = _mean_shift(state, "add_mean.shifter.", 1, where)
        if (add_range, add_mean) != (value_range, mean):
            raise WeightsError(f"{where}: sub_mean and add_mean disagree ({mean} vs {add_mean})")
    state = _drop(state, ("sub_mean.", "add_mean."))
    multi = "upsample.up2.body.0.weight" in state
    rules: list[tuple[str, Any]] = [
        (r"^b(\d)\.b1\.body\.", lambda m: f"blocks.{int(m.group(1)) - 1}.res.body."),
        (r"^b(\d)\.c(\d)\.body\.0\.", lambda m: f"blocks.{int(m.group(1)) - 1}.c{m.group(2)}.0."),
        (r"^c(\d)\.body\.0\.", lambda m: f"c{m.group(1)}.0."),
        (r"^upsample\.up(\d)\.body\.", lambda m: f"upsample.x{m.group(1)}."),
    ]
    scale: int | None = None
    if not multi:
        if "upsample.up.body.0.weight" not in state:
            return None
        up = state["upsample.up.body.0.weight"].shape[0] // features
        scale = 3 if up == 9 else 4 if "upsample.up.body.3.weight" in state else 2
        rules.append((r"^upsample\.up\.body\.", f"upsample.x{scale}."))
    mapped = _rename(state, rules)
    opts = {
        "features": int(features),
        "groups": groups,
        "multi_scale": multi,
        "channels": int(channels),
    }
    conv = InputConvention("rgb", value_range, mean)
    return Detected("carn_m", opts, scale, (2, 3, 4) if multi else (scale,), mapped, conv)


def _edsr(state: StateDict, where: str) -> Detected | None:
    if not {"head.0.weight", "body.0.body.0.weight", "tail.0.0.weight"} <= set(state):
        return None
    features, channels = state["head.0.weight"].shape[:2]
    blocks = len(_indices(state, r"body\.(\d+)\.body\.0\.weight"))
    up = state["tail.0.0.weight"].shape[0] // features
    scale = 3 if up == 9 else 4 if "tail.0.2.weight" in state else 2
    value_range, mean = 255.0, DIV2K_MEAN
    if "sub_mean.weight" in state:
        value_range, mean = _mean_shift(state, "sub_mean.", -1, where)
    mapped = _drop(state, ("sub_mean.", "add_mean."))
    # Residual scaling is not stored in the weights: the paper uses 0.1 for the 256-feature EDSR
    # and none for the 64-feature baseline.
    arch = "edsr" if features == 256 else "edsr_baseline"
    opts = {
        "blocks": blocks,
        "features": int(features),
        "res_scale": 0.1 if features == 256 else 1.0,
        "channels": int(channels),
    }
    conv = InputConvention("rgb", value_range, mean)
    return Detected(arch, opts, scale, (scale,), mapped, conv)


def _rrdb(state: StateDict, where: str) -> Detected | None:
    old = "RRDB_trunk.0.RDB1.conv1.weight" in state
    if not old and "body.0.rdb1.conv1.weight" not in state:
        return None
    if old:
        state = _rename(
            state,
            [
                (r"^RRDB_trunk\.(\d+)\.RDB(\d)\.", r"body.\1.rdb\2."),
                (r"^trunk_conv\.", "conv_body."),
                (r"^upconv1\.", "conv_up1."),
                (r"^upconv2\.", "conv_up2."),
                (r"^HRconv\.", "conv_hr."),
            ],
        )
    features, in_ch = state["conv_first.weight"].shape[:2]
    out_ch = int(state["conv_last.weight"].shape[0])
    if in_ch == out_ch:
        scale = 4
    elif in_ch == 4 * out_ch:
        scale = 2
    else:
        raise WeightsError(
            f"{where}: RRDBNet with {in_ch} input and {out_ch} output channels (x1 or unknown "
            "pixel-unshuffle variant); srkit supports x4 (3 -> 3) and x2 (12 -> 3)"
        )
    opts = {
        "blocks": len(_indices(state, r"body\.(\d+)\.")),
        "features": int(features),
        "growth": int(state["body.0.rdb1.conv1.weight"].shape[0]),
        "channels": out_ch,
    }
    return Detected("rrdb", opts, scale, (scale,), state, RGB01)


# Explicit, ordered: the most specific signatures first.
DETECTORS: dict[str, Callable[[StateDict, str], Detected | None]] = {
    "imdn": _imdn,
    "rlfn": _rlfn,
    "a2n": _a2n,
    "carn_m": _carn_m,
    "edsr": _edsr,
    "rrdb": _rrdb,
}
ARCH_DETECTOR = {
    "imdn": "imdn",
    "rlfn": "rlfn",
    "rlfn_s": "rlfn",
    "a2n": "a2n",
    "carn_m": "carn_m",
    "edsr": "edsr",
    "edsr_baseline": "edsr",
    "rrdb": "rrdb",
}
SIGNATURES = {
    "imdn": "fea_conv.weight, IMDB1.c1.weight",
    "rlfn": "conv_1.weight, block_1.esa.conv_f.weight",
    "a2n": "AAB_trunk.0.ADM.0.weight",
    "carn_m": "entry.weight, b1.b1.body.0.weight",
    "edsr": "head.0.weight, body.0.body.0.weight, tail.0.0.weight",
    "rrdb": "RRDB_trunk.0.RDB1.conv1.weight or body.0.rdb1.conv1.weight",
}


def _run_detector(name: str, state: StateDict, where: str) -> Detected | None:
    """One detector; a file that has a family's signature keys but not the rest of its tensors
    (or tensors of the wrong rank) is a ``WeightsError`` naming the family, not a ``KeyError``."""
    try:
        return DETECTORS[name](state, where)
    except WeightsError:
        raise
    except KeyError as err:
        raise WeightsError(
            f"{where}: has the signature keys of {name} ({SIGNATURES[name]}) but not its "
            f"tensor {err.args[0]!r}"
        ) from None
    except (IndexError, ValueError, TypeError, RuntimeError, ArithmeticError) as err:
        raise WeightsError(
            f"{where}: has the signature keys of {name} ({SIGNATURES[name]}) but a tensor of "
            f"an unexpected shape ({err})"
        ) from None


def detect(state: StateDict, where: str, arch: str | None = None) -> Detected:
    """Recognise the architecture of ``state`` (or read it as ``arch``)."""
    if arch is not None:
        key = ARCH_DETECTOR.get(arch)
        det = _run_detector(key, state, where) if key else None
        if det is None:
            # srkit's own key names, read with the architecture's defaults and convention
            convention = get_spec(arch).convention
            return Detected(arch, {}, None, (), dict(state), convention, ["not recognised"])
        if det.arch != arch and {det.arch, arch} in ({"rlfn", "rlfn_s"}, {"edsr", "edsr_baseline"}):
            det.arch = arch  # same network family, the options read off the shapes decide
        return det
    for name in DETECTORS:
        det = _run_detector(name, state, where)
        if det is not None:
            return det
    first = ", ".join(list(state)[:5])
    known = "; ".join(f"{name}: {sig}" for name, sig in SIGNATURES.items())
    raise WeightsError(
        f"{where}: no known architecture matches this file's {len(state)} tensors "
        f"(first keys: {first}). Expected the keys of one of: {known}; or a LapSRN MatConvNet "
        ".mat, or an srkit .safetensors + .json manifest. Pass arch=NAME to force one."
    )
