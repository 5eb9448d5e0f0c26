"""Network interpolation (ESRGAN, Wang et al. 2018, section 3.4): the weights of a perceptual
model blended with those of the PSNR model it was fine-tuned from, ``(1 - w) * start + w * other``.

One weight ``w`` moves the result along the perception-distortion trade-off without training:
``w = 0`` is the GAN model (sharpest, lowest LPIPS), ``w = 1`` the PSNR model (smoothest,
highest PSNR). Both networks must have the same architecture and layout, as a fine-tuned model
and its start have. In a recipe it is a stage of its own::

    - name: repan_gan_x4_blend
      blend: {model: repan_x4, weight: 0.3}   # 0.7 * the previous stage + 0.3 * repan_x4
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from srkit.common.files import atomic_path, write_text_atomic
from srkit.weights.native import manifest_path, read_manifest, read_safetensors, sha256_file


@dataclass
class BlendRef:
    """The model a stage blends its start with, and the other model's share ``weight``."""

    model: str  # a shipped model's name (srkit models)
    weight: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"blend.weight must be in [0, 1], got {self.weight}")


def blend_weights(
    start: dict[str, torch.Tensor], other: dict[str, torch.Tensor], weight: float
) -> dict[str, torch.Tensor]:
    """``(1 - weight) * start + weight * other``, tensor by tensor (same names and shapes)."""
    if set(start) != set(other):
        diff = sorted(set(start) ^ set(other))[:4]
        raise ValueError(f"blend: the two networks differ in their tensors ({', '.join(diff)})")
    blended = {}
    for key, a in start.items():
        b = other[key]
        if a.shape != b.shape:
            raise ValueError(f"blend: {key} is {tuple(a.shape)} in one network, {tuple(b.shape)}")
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
) -> Path:
    """Write the blend of two srkit weight files to ``out`` (.safetensors + manifest): the
    start's manifest with the blend recorded under ``training_recipe.blend``."""
    from safetensors.torch import save_file

    start_info, other_info = read_manifest(start_manifest), read_manifest(other_manifest)
    for key in ("arch", "scale", "options"):
        if start_info[key] != other_info[key]:
            raise ValueError(
                f"blend: {other_info['name']} has {key} {other_info[key]!r}, the start "
                f"{start_info[key]!r}; only a model and its fine-tuned copy can be blended"
            )
    start = read_safetensors(start_manifest.parent / start_info["weights"])
    other = read_safetensors(other_manifest.parent / other_info["weights"])
    state = blend_weights(start, other, weight)
    weights = out.with_suffix(".safetensors")
    with atomic_path(weights) as temporary:
        save_file(state, str(temporary))
    manifest = copy.deepcopy(start_info)
    manifest["name"] = out.stem
    manifest["weights"] = weights.name
    manifest["sha256"] = sha256_file(weights)
    manifest["scores"] = {}  # the start's validation scores are not the blend's
    recipe = dict(manifest.get("training_recipe") or {})
    recipe["blend"] = {
        "start": {"name": start_info["name"], "sha256": start_info["sha256"]},
        "other": {"name": other_info["name"], "sha256": other_info["sha256"]},
        "weight": weight,
    }
    if record:
        recipe["recipe"] = record
    manifest["training_recipe"] = recipe
    return write_text_atomic(manifest_path(out), json.dumps(manifest, indent=2) + "\n")
