"""Blending a perceptual model with the PSNR model it was fine-tuned from (ESRGAN, Wang et al.
2018, section 3.4), ``(1 - w) * start + w * other``, in one of two spaces:

- ``network`` (network interpolation): the weights are blended, tensor by tensor, into one
  network of the same architecture and cost;
- ``image`` (image interpolation): both networks are kept and their outputs are blended, by the
  architecture's pair form (``ArchSpec.image_blend``, e.g. ``repan_pair``), at twice the cost.

One weight ``w`` moves the result along the perception-distortion trade-off without training:
``w = 0`` is the GAN model (sharpest, lowest LPIPS), ``w = 1`` the PSNR model (smoothest,
highest PSNR). Both networks must have the same architecture and layout, as a fine-tuned model
and its start have. In a recipe it is a stage of its own::

    - name: repan_gan_x4_blend
      blend: {model: repan_x4, weight: 0.3}   # 0.7 * the previous stage + 0.3 * repan_x4
    - name: repan_gan_x4_pair
      blend: {model: repan_x4, weight: 0.42, space: image}   # the two outputs blended
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from srkit.common.files import write_text_atomic
from srkit.weights.native import manifest_path, read_manifest, read_state, write_safetensors

SPACES = ("network", "image")
FIRST, SECOND = "first.", "second."  # a pair network's two nets (``RepANPair.first/second``)


@dataclass
class BlendRef:
    """The model a stage blends its start with, and the other model's share ``weight``."""

    model: str  # a shipped model's name (srkit models)
    weight: float = 0.5
    space: str = "network"  # "network": blend the weights; "image": blend the outputs

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"blend.weight must be in [0, 1], got {self.weight}")
        if self.space not in SPACES:
            raise ValueError(f"blend.space must be one of {', '.join(SPACES)}, got {self.space!r}")


def _check_same_layout(start: dict[str, torch.Tensor], other: dict[str, torch.Tensor]) -> None:
    if set(start) != set(other):
        diff = sorted(set(start) ^ set(other))[:4]
        raise ValueError(f"blend: the two networks differ in their tensors ({', '.join(diff)})")
    for key, a in start.items():
        if a.shape != other[key].shape:
            raise ValueError(
                f"blend: {key} is {tuple(a.shape)} in one network, {tuple(other[key].shape)}"
            )


def pair_weights(
    start: dict[str, torch.Tensor], other: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The state of a pair architecture (``repan_pair``): ``start`` as its ``first`` network,
    ``other`` as its ``second`` (same names and shapes), each tensor unchanged."""
    _check_same_layout(start, other)
    state = {FIRST + k: v.contiguous() for k, v in start.items()}
    state.update({SECOND + k: v.contiguous() for k, v in other.items()})
    return state


def blend_weights(
    start: dict[str, torch.Tensor], other: dict[str, torch.Tensor], weight: float
) -> dict[str, torch.Tensor]:
    """``(1 - weight) * start + weight * other``, tensor by tensor (same names and shapes)."""
    _check_same_layout(start, other)
    blended = {}
    for key, a in start.items():
        b = other[key]
        if not a.is_floating_point():
            blended[key] = a.clone()
            continue
        mixed = torch.lerp(a.double(), b.double(), weight)  # (1 - w) a + w b, rounded once
        blended[key] = mixed.to(a.dtype).contiguous()
    return blended


def blend_files(
    start_manifest: Path,
    other_manifest: Path,
    weight: float,
    out: Path,
    record: dict[str, Any],
    space: str = "network",
) -> Path:
    """Write the blend of two srkit weight files to ``out`` (.safetensors + manifest): the
    start's manifest with the blend recorded under ``training_recipe.blend``. In the ``image``
    space the result is the arch's pair form holding both networks, its ``mix`` = ``weight``."""
    from srkit.archs import build, get_spec

    start_info, other_info = read_manifest(start_manifest), read_manifest(other_manifest)
    for key in ("arch", "scale", "options"):
        if start_info[key] != other_info[key]:
            raise ValueError(
                f"blend: {other_info['name']} has {key} {other_info[key]!r}, the start "
                f"{start_info[key]!r}; only a model and its fine-tuned copy can be blended"
            )
    start = read_state(start_manifest, start_info)
    other = read_state(other_manifest, other_info)
    manifest = copy.deepcopy(start_info)
    if space == "image":
        pair = get_spec(start_info["arch"]).image_blend
        if pair is None:
            raise ValueError(
                f"blend: {start_info['arch']} has no pair architecture; blend it with "
                f"space: network"
            )
        state = pair_weights(start, other)
        manifest["arch"] = pair
        manifest["options"] = {**start_info["options"], "mix": weight}
        net = build(pair, scale=start_info["scale"], **manifest["options"])
        try:  # strict: the pair form holds exactly the two networks
            net.load_state_dict(state)
        except RuntimeError as err:
            raise ValueError(f"blend: {pair} does not take these networks ({err})") from None
        manifest["params"] = sum(p.numel() for p in net.parameters())
    elif space == "network":
        state = blend_weights(start, other, weight)
    else:
        raise ValueError(f"blend: unknown space {space!r} (network or image)")
    weights = out.with_suffix(".safetensors")
    manifest["sha256"] = write_safetensors(state, weights)
    manifest["name"] = out.stem
    manifest["weights"] = weights.name
    manifest["scores"] = {}  # the start's validation scores are not the blend's
    recipe = dict(manifest.get("training_recipe") or {})
    recipe["blend"] = {
        "start": {"name": start_info["name"], "sha256": start_info["sha256"]},
        "other": {"name": other_info["name"], "sha256": other_info["sha256"]},
        "weight": weight,
        "space": space,
    }
    if record:
        recipe["recipe"] = record
    manifest["training_recipe"] = recipe
    return write_text_atomic(manifest_path(out), json.dumps(manifest, indent=2) + "\n")
