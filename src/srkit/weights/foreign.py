"""Checkpoints from the authors' own code: read safely, then detect the architecture.

Files are read with ``torch.load(weights_only=True)`` only: plain tensors and containers, never
code. The architecture is recognised from key names and tensor shapes by the detector each
architecture module declares (``ArchSpec.detector``, see ``srkit.archs.detection``): it reads the
options (width, depth, groups, scale) off the shapes and renames the keys to srkit's modules;
the loader then loads the tensors exactly (strict, every shape checked).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from srkit.archs.detection import Detected, DetectionError, KeyDetector, StateDict
from srkit.archs.registry import detectors, get_spec
from srkit.weights.errors import WeightsError

__all__ = ["Detected", "StateDict", "detect", "read_torch_file", "unwrap_state_dict"]


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


# --- detection (the detectors live with their architectures) --------------------------------


def _run_detector(detector: KeyDetector, state: StateDict, where: str) -> Detected | None:
    """One detector; a file that has a family's signature keys but not the rest of its tensors
    (or tensors of the wrong rank) is a ``WeightsError`` naming the family, not a ``KeyError``."""
    try:
        return detector.detect(state, where)
    except (WeightsError, DetectionError):
        raise
    except KeyError as err:
        raise WeightsError(
            f"{where}: has the signature keys of {detector.family} ({detector.signature}) but "
            f"not its tensor {err.args[0]!r}"
        ) from None
    except (IndexError, ValueError, TypeError, RuntimeError, ArithmeticError) as err:
        raise WeightsError(
            f"{where}: has the signature keys of {detector.family} ({detector.signature}) but "
            f"a tensor of an unexpected shape ({err})"
        ) from None


def detect(state: StateDict, where: str, arch: str | None = None) -> Detected:
    """Recognise the architecture of ``state`` (or read it as ``arch``).

    Each registered architecture's ``ArchSpec.detector`` looks at the key names and shapes; the
    first that recognises the keys wins (registry order). With ``arch`` only that arch's detector
    runs, and a file of the same family (``rlfn`` read as ``rlfn_s``) keeps the asked name.
    """
    try:
        if arch is not None:
            spec = get_spec(arch)
            det = _run_detector(spec.detector, state, where) if spec.detector else None
            if det is None:
                # srkit's own key names, read with the architecture's defaults and convention
                return Detected(
                    spec.name, {}, None, (), dict(state), spec.convention, ["not recognised"]
                )
            if det.arch != spec.name and get_spec(det.arch).detector == spec.detector:
                det.arch = spec.name  # same network family, the options read off the shapes decide
            return det
        for detector in detectors():
            det = _run_detector(detector, state, where)
            if det is not None:
                return det
    except DetectionError as err:
        raise WeightsError(str(err)) from None
    first = ", ".join(list(state)[:5])
    known = "; ".join(f"{d.family}: {d.signature}" for d in detectors())
    raise WeightsError(
        f"{where}: no known architecture matches this file's {len(state)} tensors "
        f"(first keys: {first}). Expected the keys of one of: {known}; or a LapSRN MatConvNet "
        ".mat, or an srkit .safetensors + .json manifest. Pass arch=NAME to force one."
    )
