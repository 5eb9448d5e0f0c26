"""``load(path)``: any supported weight file -> a ready ``NetworkModel``."""

from __future__ import annotations

import re
from pathlib import Path

from torch import nn

from srkit.archs.adapter import NetworkModel
from srkit.archs.common import InputConvention
from srkit.archs.registry import get_spec
from srkit.weights.errors import WeightsError
from srkit.weights.fit import build_fitted, check_convention
from srkit.weights.foreign import Detected, detect, read_torch_file, unwrap_state_dict
from srkit.weights.matconvnet import read_lapsrn_mat
from srkit.weights.native import load_native, manifest_path, read_safetensors

TORCH_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".pkl")
WEIGHT_SUFFIXES = (*TORCH_SUFFIXES, ".safetensors", ".json", ".mat")


def _scale_hint(path: Path) -> int | None:
    m = re.search(r"(?:^|[^a-z0-9])x([2-8])(?:[^0-9]|$)", path.stem.lower())
    return int(m.group(1)) if m else None


def _is_native(path: Path) -> bool:
    if path.suffix == ".json":
        return True
    return path.suffix == ".safetensors" and manifest_path(path).is_file()


def _read_foreign(path: Path, arch: str | None) -> Detected:
    where = str(path)
    if path.suffix == ".mat":
        if arch not in (None, "lapsrn"):
            raise WeightsError(f"{where}: MatConvNet files are read as lapsrn, not {arch}")
        return read_lapsrn_mat(path)
    if path.suffix == ".safetensors":
        state = unwrap_state_dict(read_safetensors(path), where)
    else:
        state = read_torch_file(path)
    return detect(state, where, arch=arch)


def _pick_scale(det: Detected, path: Path, scale: int | None) -> int:
    hint = _scale_hint(path)
    if det.scale is not None:
        if scale is not None and scale != det.scale:
            raise WeightsError(
                f"{path}: holds an x{det.scale} {det.arch} model; asked for x{scale}"
            )
        return det.scale
    scales = det.scales or get_spec(det.arch).scales
    if scale is None:
        if hint in scales and len(scales) > 1 and det.arch != "carn_m":
            return hint
        raise WeightsError(
            f"{path}: this {det.arch} file does not record its scale "
            f"(it can serve {', '.join(f'x{s}' for s in scales)}); pass the scale"
        )
    if scale not in scales:
        raise WeightsError(f"{path}: this {det.arch} file serves x{scales}, asked for x{scale}")
    if hint is not None and hint != scale and det.arch == "a2n":
        raise WeightsError(
            f"{path}: A2N x2 and x3 files have identical tensors, and the file name says x{hint}; "
            f"asked for x{scale}"
        )
    return scale


def load_network(
    path: str | Path, scale: int | None = None, arch: str | None = None
) -> tuple[nn.Module, int, InputConvention, dict]:
    """The raw network of a weight file with its scale, input convention and provenance."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such file")
    if arch is not None:
        try:
            arch = get_spec(arch).name
        except KeyError as err:
            raise WeightsError(f"{path}: {err.args[0]}") from None
    if _is_native(path):
        net, s, convention, manifest = load_native(path, scale)
        if arch is not None and arch != manifest["arch"]:
            raise WeightsError(f"{path}: an srkit {manifest['arch']} file, not {arch}")
        return net, s, convention, {"source": str(path), **manifest}
    det = _read_foreign(path, arch)
    s = _pick_scale(det, path, scale)
    options = dict(det.options)
    what = f"{path} (read as {det.arch} x{s}"
    what += f", {', '.join(f'{k}={v}' for k, v in options.items())})" if options else ")"
    net = build_fitted(det.arch, s, options, det.state, what)
    check_convention(det.arch, options, det.convention, what)
    info = {"source": str(path), "arch": det.arch, "options": options, "scale": s}
    info["purpose"] = "general"  # the authors' SR checkpoints srkit reads
    return net, s, det.convention, info


def load(
    path: str | Path,
    scale: int | None = None,
    arch: str | None = None,
    device: str = "cpu",
) -> NetworkModel:
    """A ready ``SRModel`` from any supported weight file (see the module docstring).

    ``scale`` is required only for files that serve several scales (CARN-M) or do not record it
    (A2N x2/x3 without an ``x2``/``x3`` in the file name); ``arch`` overrides the detection.
    """
    net, s, convention, info = load_network(path, scale, arch)
    name = Path(path).stem
    return NetworkModel(net, s, convention, name, device=device, info=info)
