"""srkit's own weight format: ``NAME.safetensors`` (tensors) + ``NAME.json`` (manifest).

The manifest records everything needed to rebuild and trust the model::

    {"format": "srkit-weights", "version": 1, "name": ..., "arch": "imdn",
     "options": {...}, "scale": 4, "purpose": "general", "params": 715176,
     "input_convention": {"channels": "rgb", "value_range": 1.0, "mean": null},
     "training_recipe": {...}, "scores": {...},
     "weights": "NAME.safetensors", "sha256": "<hex of the .safetensors file>"}

``build(arch, scale=scale, **options)`` recreates the network and the tensors load exactly.
``scale`` is 1 or more (1: same-size models, such as style transfer). ``purpose`` is one of
:data:`PURPOSES` (a manifest without it is ``general``). ``input_convention.input_size``
(``[height, width]``, written only when set) marks a network that takes inputs of exactly that
size, such as aligned face crops; ``srkit upscale`` refuses other sizes and never tiles them.

``includes`` (optional) lists tensors kept in other files of the same folder, each pinned by
its sha256: ``[{"prefix": "second.", "weights": "repan_x4.safetensors", "sha256": ...}]`` loads
that file's tensors under ``second.``. A pair network (``repan_pair``) ships this way when its
second network is a model srkit already ships, so those weights are stored once.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from srkit.archs.common import InputConvention
from srkit.archs.registry import build, count_params, get_spec
from srkit.common.files import atomic_path, write_bytes_atomic, write_text_atomic
from srkit.weights.errors import WeightsError

FORMAT = "srkit-weights"
VERSION = 1
PURPOSES = ("general", "perceptual", "face", "blind", "style", "landmarks")
"""What a model is for: fidelity SR (PSNR), perceptual/GAN SR, face SR, blind (real-world
degradation) SR, style transfer, face landmark heatmaps (a training aid of face SR)."""
DEFAULT_PURPOSE = "general"
STYLE_ARCHS = ("transformer_net", "adain_decoder")
"""Style-transfer networks: built by :mod:`srkit.style` (``load_style_model``), not by the SR
registry; their manifests say purpose ``style`` and scale 1, and no upscaler loads them."""
DEGRADATION_ARCHS = ("h2l",)
"""Learned degradations (HR -> LR, :mod:`srkit.archs.bulat`): not in the SR registry; their
manifests say ``direction: hr_to_lr`` and their downscaling factor as ``scale``; no upscaler
loads them (``srkit degrade apply`` does)."""
LANDMARK_ARCHS = ("heatmap_net",)
"""Face landmark-heatmap networks (:mod:`srkit.faces.heatmapnet`): purpose ``landmarks``, scale 1;
the face tasks' heatmap loss loads them, no upscaler does."""


def save_same_size_model(
    net: nn.Module, path: str | Path, manifest: dict[str, Any], *, purpose: str
) -> Path:
    """``path`` (.safetensors) + ``path.json`` for a network outside the SR registry (style
    transfer, landmark heatmaps): an srkit manifest (``purpose``, scale 1, params, sha256)
    around ``manifest``'s fields (``arch``, ``options``, recipe ...), both written atomically.
    Returns the weights' path."""
    from safetensors.torch import save

    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    write_bytes_atomic(path, save(tensors))
    full = {"format": FORMAT, "version": VERSION, "name": path.stem, "options": {}, **manifest,
            "scale": 1, "purpose": check_purpose(purpose), "params": count_params(net),
            "weights": path.name, "sha256": sha256_file(path)}  # fmt: skip
    full.setdefault("scores", {})
    write_text_atomic(path.with_suffix(".json"), json.dumps(full, indent=2) + "\n")
    return path


def check_purpose(purpose: str, where: str = "purpose") -> str:
    if purpose not in PURPOSES:
        raise WeightsError(f"{where}: unknown purpose {purpose!r}; one of {', '.join(PURPOSES)}")
    return purpose


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest_path(path: str | Path) -> Path:
    path = Path(path)
    return path if path.suffix == ".json" else path.with_suffix(".json")


def save_model(
    net: nn.Module,
    path: str | Path,
    *,
    arch: str,
    scale: int,
    options: dict[str, Any] | None = None,
    convention: InputConvention | None = None,
    training_recipe: dict[str, Any] | None = None,
    scores: dict[str, Any] | None = None,
    name: str | None = None,
    purpose: str = DEFAULT_PURPOSE,
) -> Path:
    """Write ``net`` as ``path.safetensors`` + ``path.json``; returns the manifest path.

    ``options`` are the ``build`` options the net was made with (beyond the spec's defaults);
    ``convention`` defaults to the arch's own (give one with ``input_size`` for a fixed-size
    network); ``purpose`` is one of :data:`PURPOSES`.
    """
    check_purpose(purpose, "save_model")
    spec = get_spec(arch)
    opts = spec.options(**(options or {}))
    reference = build(spec.name, scale=scale, **opts)
    expected = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    state = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    if expected != found:
        diff = sorted(set(expected.items()) ^ set(found.items()))[:6]
        raise WeightsError(
            f"save_model: the network does not match build({spec.name!r}, scale={scale}, "
            f"**{opts}); differing tensors (name, shape): {diff}"
        )
    base = Path(path)
    if base.suffix in (".json", ".safetensors"):
        base = base.with_suffix("")
    weights = base.with_suffix(".safetensors")
    digest = write_safetensors(state, weights)
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "name": name or base.name,
        "arch": spec.name,
        "options": opts,
        "scale": scale,
        "purpose": purpose,
        "params": count_params(net),
        "input_convention": (convention or spec.convention).to_dict(),
        "training_recipe": training_recipe or {},
        "scores": scores or {},
        "weights": weights.name,
        "sha256": digest,
    }
    out = base.with_suffix(".json")
    return write_text_atomic(out, json.dumps(manifest, indent=2) + "\n")


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` file; a truncated or malformed file is a ``WeightsError``.

    The safetensors header is checked against the file (offsets, dtypes, shapes) before any
    tensor is read, so a header that lies about sizes cannot make it read past the file.
    """
    try:
        from safetensors import SafetensorError
        from safetensors.torch import load_file
    except ImportError:  # pragma: no cover - safetensors is a declared dependency of srkit files
        raise WeightsError(
            f"{path}: reading .safetensors files needs safetensors (pip install safetensors)"
        ) from None
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError, TypeError, RuntimeError) as err:
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise WeightsError(f"{path}: not a readable safetensors file ({detail})") from None
    if not state:
        raise WeightsError(f"{path}: the safetensors file holds no tensors")
    return state


def write_safetensors(state: dict[str, torch.Tensor], path: str | Path) -> str:
    """Write ``state`` to the ``.safetensors`` file ``path`` atomically; returns its sha256."""
    from safetensors.torch import save_file  # the optional `weights` extra

    with atomic_path(Path(path)) as temporary:
        save_file(state, str(temporary))
    return sha256_file(Path(path))


def _check_manifest(manifest: Any, mpath: Path) -> dict[str, Any]:
    """The manifest's fields with the types ``load_native`` relies on, or one clear error."""
    if not isinstance(manifest, dict):
        raise WeightsError(f"{mpath}: not an srkit manifest (a JSON {type(manifest).__name__})")
    if manifest.get("format") != FORMAT:
        raise WeightsError(f"{mpath}: not an srkit manifest (format={manifest.get('format')!r})")
    missing = [k for k in ("arch", "options", "scale", "weights", "sha256") if k not in manifest]
    if missing:
        raise WeightsError(f"{mpath}: manifest lacks {', '.join(missing)}")
    expected = {
        "arch": (str, "a string"),
        "options": (dict, "an object"),
        "weights": (str, "a file name"),
        "sha256": (str, "a hex string"),
        "input_convention": (dict, "an object"),
    }
    for key, (kind, what) in expected.items():
        if key in manifest and not isinstance(manifest[key], kind):
            raise WeightsError(f"{mpath}: manifest field {key!r} must be {what}")
    includes = manifest.get("includes", [])
    if not isinstance(includes, list) or not all(
        isinstance(entry, dict)
        and all(isinstance(entry.get(k), str) for k in ("prefix", "weights", "sha256"))
        for entry in includes
    ):
        raise WeightsError(
            f"{mpath}: manifest field 'includes' must be a list of {{prefix, weights, sha256}}"
        )
    if includes and manifest["arch"] in STYLE_ARCHS + LANDMARK_ARCHS + DEGRADATION_ARCHS:
        raise WeightsError(f"{mpath}: a {manifest['arch']} manifest cannot include other files")
    scale = manifest["scale"]
    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= 16:
        raise WeightsError(f"{mpath}: manifest field 'scale' must be 1..16, got {scale!r}")
    if manifest["arch"] in STYLE_ARCHS:
        if manifest.get("purpose") != "style" or scale != 1:
            raise WeightsError(
                f"{mpath}: a {manifest['arch']} manifest needs purpose style, scale 1"
            )
    elif manifest["arch"] in LANDMARK_ARCHS:
        if manifest.get("purpose") != "landmarks" or scale != 1:
            raise WeightsError(
                f"{mpath}: a {manifest['arch']} manifest needs purpose landmarks, scale 1"
            )
    elif manifest["arch"] in DEGRADATION_ARCHS:
        if manifest.get("direction") != "hr_to_lr":
            raise WeightsError(f"{mpath}: a {manifest['arch']} manifest needs direction hr_to_lr")
    else:
        try:
            get_spec(manifest["arch"])
        except KeyError as err:
            raise WeightsError(f"{mpath}: {err.args[0]}") from None
    try:
        manifest_convention(manifest)
    except (TypeError, ValueError) as err:
        raise WeightsError(f"{mpath}: manifest field 'input_convention': {err}") from None
    manifest.setdefault("purpose", DEFAULT_PURPOSE)  # manifests from before purposes
    check_purpose(manifest["purpose"], str(mpath))
    return manifest


def manifest_convention(manifest: dict[str, Any]) -> InputConvention:
    """The manifest's input convention (channels, range, mean, fixed input size)."""
    return InputConvention.from_dict(manifest.get("input_convention") or {})


def read_manifest(path: str | Path) -> dict[str, Any]:
    mpath = manifest_path(path)
    try:
        manifest = json.loads(mpath.read_bytes())
    except (OSError, ValueError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise WeightsError(f"{mpath}: cannot read the srkit manifest ({err})") from None
    return _check_manifest(manifest, mpath)


def weights_file(mpath: Path, manifest: dict[str, Any], verify: bool = True) -> Path:
    """The manifest's weights file (or an ``includes`` entry's), checked against its sha256
    when ``verify``."""
    weights = mpath.parent / manifest["weights"]
    if not weights.is_file():
        what = "included weights file" if "prefix" in manifest else "weights file"
        raise WeightsError(f"{mpath}: its {what} {weights} is missing")
    if verify:
        digest = sha256_file(weights)
        if digest != manifest["sha256"]:
            raise WeightsError(
                f"{weights}: sha256 {digest} does not match the manifest's {manifest['sha256']} "
                "(file changed or corrupted)"
            )
    return weights


def read_state(
    mpath: Path, manifest: dict[str, Any], verify: bool = True
) -> dict[str, torch.Tensor]:
    """The network's tensors: the manifest's weights file and its ``includes`` (each file
    checked against its sha256 when ``verify``)."""
    state = read_safetensors(weights_file(mpath, manifest, verify))
    for entry in manifest.get("includes", []):
        included = weights_file(mpath, entry, verify)
        for key, value in read_safetensors(included).items():
            name = entry["prefix"] + key
            if name in state:
                raise WeightsError(f"{mpath}: {name} is both in its weights and in {included}")
            state[name] = value
    return state


def load_native(path: str | Path, scale: int | None = None, verify: bool = True):
    """Network, scale, convention and manifest of an srkit weight file."""
    from srkit.weights.fit import build_fitted, check_convention

    mpath = manifest_path(path)
    manifest = read_manifest(mpath)
    if manifest["arch"] in STYLE_ARCHS:
        raise WeightsError(
            f"{mpath}: a style-transfer model ({manifest['arch']}), not an upscaler; "
            "use `srkit style apply` or `srkit style adain`"
        )
    if manifest["arch"] in LANDMARK_ARCHS:
        raise WeightsError(
            f"{mpath}: a face landmark-heatmap network ({manifest['arch']}), not an upscaler; "
            "face tasks load it for the heatmap loss"
        )
    if manifest["arch"] in DEGRADATION_ARCHS:
        raise WeightsError(
            f"{mpath}: a learned degradation ({manifest['arch']}, HR -> LR), not an upscaler; "
            "use `srkit degrade apply --model`"
        )
    arch, file_scale, options = manifest["arch"], manifest["scale"], manifest["options"]
    if scale is not None and scale != file_scale:
        if not options.get("multi_scale") or scale not in get_spec(arch).scales:
            raise WeightsError(f"{mpath}: an x{file_scale} {arch} model; asked for x{scale}")
        file_scale = scale
    state = read_state(mpath, manifest, verify)
    what = f"{mpath} ({arch} x{file_scale})"
    convention = manifest_convention(manifest)
    net = build_fitted(arch, file_scale, options, state, what)
    check_convention(arch, options, convention, what)
    return net, file_scale, convention, manifest


def as_tensor_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.contiguous() for k, v in state.items()}
