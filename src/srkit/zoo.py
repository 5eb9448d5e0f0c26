"""srkit's shipped models: trained weights inside the package, usable offline by name.

The weights live in ``srkit/assets/models/`` as srkit weight files (``NAME.safetensors`` +
``NAME.json`` manifest with the training recipe, the Set5 scores measured by ``srkit bench`` and
the sha256). ``index.json`` there lists them explicitly (no folder scanning) and marks exactly one
default per scale::

    {"models": [{"name": "repan_x4", "default": true}, {"name": "espcn_x3"}, ...]}

A model is named by its full name (``repan_x4``), by its family and a scale (``repan`` with
``--scale 4``), or as ``default`` (the default general-purpose model of that scale). Each
manifest says what the model is for (``purpose``: general, perceptual, face, blind, style or
landmarks; ``general`` when absent); a default is the default of its purpose and scale.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from srkit.weights import load
from srkit.weights.native import read_manifest

MODELS_DIR = Path(__file__).resolve().parent / "assets" / "models"
INDEX = MODELS_DIR / "index.json"
DEFAULT_NAME = "default"
DEFAULT_SCALE = 4  # what `srkit upscale` does when neither a model nor a scale is given


@dataclass(frozen=True)
class ShippedModel:
    """One shipped weight file and the figures its manifest records."""

    name: str
    arch: str
    scale: int
    params: int
    default: bool
    purpose: str
    set5_psnr: float | None  # recorded for every general model; optional for other purposes
    set5_ssim: float | None
    set5_psnr_legacy: float | None
    set5_ssim_legacy: float | None
    path: Path  # the manifest
    manifest: dict[str, Any]
    recipe: str | None = None  # recipes/<name>.yaml: the stages that make the weights

    @property
    def family(self) -> str:
        suffix = f"_x{self.scale}"
        return self.name[: -len(suffix)] if self.name.endswith(suffix) else self.name

    @property
    def weights_path(self) -> Path:
        return self.path.parent / self.manifest["weights"]

    @property
    def input_size(self) -> tuple[int, int] | None:
        """``(height, width)`` when the model takes only inputs of that size (face crops)."""
        size = (self.manifest.get("input_convention") or {}).get("input_size")
        return (int(size[0]), int(size[1])) if size else None

    def to_json(self) -> dict[str, Any]:
        size = self.input_size
        return {
            "name": self.name,
            "arch": self.arch,
            "scale": self.scale,
            "purpose": self.purpose,
            "input_size": list(size) if size else None,
            "params": self.params,
            "default": self.default,
            "set5_psnr": self.set5_psnr,
            "set5_ssim": self.set5_ssim,
            "recipe": self.recipe,
        }


def set5_scores(manifest: dict[str, Any], convention: str = "modern") -> dict[str, float] | None:
    """The manifest's Set5 figures (``scores.set5.<convention>``: psnr, ssim), if recorded."""
    return manifest.get("scores", {}).get("set5", {}).get(convention)


@lru_cache(maxsize=1)
def shipped_models() -> tuple[ShippedModel, ...]:
    """Every shipped model, in the index's order."""
    if not INDEX.is_file():
        return ()
    index = json.loads(INDEX.read_text())
    models = []
    for entry in index["models"]:
        path = MODELS_DIR / f"{entry['name']}.json"
        manifest = read_manifest(path)
        modern = set5_scores(manifest, "modern")
        legacy = set5_scores(manifest, "legacy") or {}
        if modern is None and manifest["purpose"] == "general":
            raise ValueError(f"{path}: shipped without Set5 scores (scores.set5.modern)")
        modern = modern or {}
        models.append(
            ShippedModel(
                name=entry["name"],
                arch=manifest["arch"],
                scale=int(manifest["scale"]),
                params=int(manifest["params"]),
                default=bool(entry.get("default", False)),
                purpose=manifest["purpose"],
                set5_psnr=modern.get("psnr"),
                set5_ssim=modern.get("ssim"),
                set5_psnr_legacy=legacy.get("psnr"),
                set5_ssim_legacy=legacy.get("ssim"),
                path=path,
                manifest=manifest,
                recipe=entry.get("recipe"),
            )
        )
    check_defaults(models)
    return tuple(models)


def check_defaults(models: list[ShippedModel]) -> None:
    """At most one default per purpose and scale (the index is hand-edited, so say which)."""
    seen: dict[tuple[str, int], str] = {}
    for model in models:
        if model.default:
            key = (model.purpose, model.scale)
            if key in seen:
                what = f"x{model.scale}" + (
                    "" if model.purpose == "general" else f" {model.purpose}"
                )
                raise ValueError(f"{INDEX}: two defaults at {what}: {seen[key]}, {model.name}")
            seen[key] = model.name


def models_for(purpose: str | None = None) -> tuple[ShippedModel, ...]:
    """The shipped models of ``purpose`` (all of them for None); an unknown purpose raises."""
    from srkit.weights.native import check_purpose

    models = shipped_models()
    if purpose is None:
        return models
    check_purpose(purpose, "--purpose")
    return tuple(m for m in models if m.purpose == purpose)


def model_weights_path(model: str | Path, purpose: str) -> Path:
    """A weights file as given (a ``.json`` names its ``.safetensors``), or the weights of the
    shipped model of ``purpose`` called ``model``; one clear ``ValueError`` otherwise."""
    path = Path(model)
    if path.exists() or path.suffix or len(path.parts) > 1:
        return path.with_suffix(".safetensors") if path.suffix == ".json" else path
    shipped = {m.name: m for m in models_for(purpose)}
    if str(model) not in shipped:
        names = ", ".join(shipped) or "none in this installation"
        raise ValueError(f"{model}: no such file or shipped {purpose} model (shipped: {names})")
    return shipped[str(model)].weights_path


def upscaling_models() -> tuple[ShippedModel, ...]:
    """The shipped models an upscaler runs: all but the same-size style networks and the
    learned degradations (``direction: hr_to_lr``)."""
    return tuple(
        m for m in shipped_models()
        if m.purpose not in ("style", "landmarks") and m.manifest.get("direction") != "hr_to_lr"
    )  # fmt: skip


def default_model(scale: int, purpose: str = "general") -> ShippedModel:
    for model in shipped_models():
        if model.default and model.scale == scale and model.purpose == purpose:
            return model
    scales = sorted({m.scale for m in shipped_models() if m.default and m.purpose == purpose})
    what = "" if purpose == "general" else f" {purpose}"
    raise ValueError(
        f"srkit ships no default{what} model for x{scale} (defaults exist for "
        f"{', '.join(f'x{s}' for s in scales) or 'no scale'})"
    )


def find_model(spec: str, scale: int | None) -> ShippedModel | None:
    """The shipped model ``spec`` names at ``scale``; None if ``spec`` is not a shipped name.

    Raises when the name is shipped but not at that scale, or a family needs a scale.
    """
    key = spec.lower()
    models = shipped_models()
    if key == DEFAULT_NAME:
        return default_model(DEFAULT_SCALE if scale is None else scale)
    for model in models:
        if model.name == key:
            if scale is not None and scale != model.scale:
                raise ValueError(f"{model.name} is an x{model.scale} model; asked for x{scale}")
            return model
    family = [m for m in models if m.family == key]
    if not family:
        return None
    scales = ", ".join(f"x{m.scale}" for m in family)
    if scale is None:
        if len(family) == 1:
            return family[0]
        raise ValueError(f"{key} ships at {scales}: give a scale (--scale)")
    for model in family:
        if model.scale == scale:
            return model
    raise ValueError(f"{key} ships at {scales}, not x{scale}")


def load_shipped(model: ShippedModel):
    """The ready ``SRModel`` (sha256 verified)."""
    loaded = load(model.path, scale=model.scale)
    loaded.name = model.name
    return loaded


def resolve_shipped(spec: str, scale: int | None):
    """``srkit.models`` resolver: a shipped model by name, or None."""
    model = find_model(spec, scale)
    return None if model is None else load_shipped(model)


# --- the model tables in the docs, generated from the manifests -------------------------------
# A Markdown file shows a table as a block between two marker lines; `srkit models --update-docs
# FILE...` rewrites every block from the manifests, and tests/test_docs.py fails when a
# committed block differs from what the manifests give:
#
#     <!-- generated: models-table -->
#     | model | ... |
#     <!-- end generated -->

GENERATED_BLOCK = re.compile(
    r"(?P<start><!-- generated: (?P<name>[a-z0-9-]+) -->\n)"
    r"(?P<body>.*?)"
    r"(?P<end><!-- end generated -->)",
    re.DOTALL,
)


def _kilo(iterations: int) -> str:
    return f"{iterations / 1000:g}k"


def _figure(psnr: float | None, ssim: float | None) -> str:
    return "-" if psnr is None or ssim is None else f"{psnr:.3f} / {ssim:.4f}"


def _delta(value: float | None, reference: float | None) -> str:
    return "-" if value is None or reference is None else f"{value - reference:+.3f}"


def training_summary(model: ShippedModel) -> str:
    """``5k + 5k + 15k it from espcn_x3_ft, 0.78 h``: the stages run at the model's own scale
    (the weights of another scale it starts from are counted at theirs) and their wall time."""
    recipe = model.manifest.get("training_recipe") or {}
    stages = recipe.get("stages") or []
    own = [s for s in stages if int(s.get("scale", model.scale)) == model.scale]
    if not own:
        return "-"
    text = " + ".join(_kilo(int(s["iterations"])) for s in own) + " it"
    first = stages.index(own[0])
    if first > 0:
        text += f" from {stages[first - 1]['name']}"
    seconds = sum(float(s.get("wall_seconds") or 0.0) for s in own)
    return f"{text}, {seconds / 3600:.2f} h"


def _notes(model: ShippedModel) -> str:
    notes = ["default"] if model.default else []
    teacher = (model.manifest.get("training_recipe") or {}).get("distilled_from")
    if teacher:
        notes.append(f"last stage distilled from {Path(teacher).name}")
    return "; ".join(notes)


def paper_psnr(model: ShippedModel) -> float | None:
    """The paper's Set5 PSNR (or the design target), as ``srkit ship --paper`` recorded it."""
    value = model.manifest.get("scores", {}).get("paper_set5_psnr")
    return None if value is None else float(value)


def models_markdown(models: tuple[ShippedModel, ...] | None = None) -> str:
    """Every shipped model as a Markdown table: params, training, Set5 in both conventions,
    the paper's figure and the gap to it."""
    models = shipped_models() if models is None else models
    lines = [
        "| model | purpose | params | training (stages at its scale, wall time) "
        "| Set5 modern | Set5 legacy | paper / target | legacy - paper | modern - paper | notes |",
        "|---|---|---:|---|---|---|---:|---:|---:|---|",
    ]
    for m in models:
        paper = paper_psnr(m)
        name = f"**{m.name}**" if m.default else m.name
        lines.append(
            f"| {name} | {m.purpose} | {m.params:,} | {training_summary(m)} "
            f"| {_figure(m.set5_psnr, m.set5_ssim)} "
            f"| {_figure(m.set5_psnr_legacy, m.set5_ssim_legacy)} "
            f"| {'-' if paper is None else f'{paper:g}'} "
            f"| {_delta(m.set5_psnr_legacy, paper)} | {_delta(m.set5_psnr, paper)} "
            f"| {_notes(m)} |"
        )
    return "\n".join(lines) + "\n"


def defaults_markdown(models: tuple[ShippedModel, ...] | None = None) -> str:
    """The default model of each scale and purpose as a short Markdown table."""
    models = shipped_models() if models is None else models
    lines = [
        "| scale | default model | purpose | params | Set5 modern | Set5 legacy |",
        "|---|---|---|---:|---|---|",
    ]
    for m in sorted((m for m in models if m.default), key=lambda m: (m.purpose, m.scale)):
        lines.append(
            f"| x{m.scale} | {m.name} | {m.purpose} | {m.params:,} "
            f"| {_figure(m.set5_psnr, m.set5_ssim)} "
            f"| {_figure(m.set5_psnr_legacy, m.set5_ssim_legacy)} |"
        )
    return "\n".join(lines) + "\n"


FACE_SCORES = "lfw-pairsDevTest"  # what ``srkit ship`` records for a face model


def faces_markdown(models: tuple[ShippedModel, ...] | None = None) -> str:
    """The shipped face models' LFW figures (``srkit faces eval`` on pairsDevTest, recorded by
    ``srkit ship``) as a Markdown table."""
    models = shipped_models() if models is None else models
    lines = [
        "| model | scale | params | training | id distance | cosine | verification @0.6 "
        "| best | Y-PSNR / SSIM | landmark NME | LPIPS | ms/face |",
        "|---|---|---:|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for m in sorted((m for m in models if m.purpose == "face"), key=lambda m: (m.scale, m.name)):
        f = m.manifest.get("scores", {}).get(FACE_SCORES)
        name = f"**{m.name}**" if m.default else m.name
        if f is None:
            lines.append(f"| {name} | x{m.scale} | {m.params:,} | {training_summary(m)} "
                         + "| - " * 8 + "|")  # fmt: skip
            continue
        lines.append(
            f"| {name} | x{m.scale} | {m.params:,} | {training_summary(m)} "
            f"| {f['id_distance']:.4f} | {f['id_cosine']:.4f} | {100 * f['verif_acc_06']:.1f}% "
            f"| {100 * f['verif_acc_best']:.1f}% | {_figure(f['psnr'], f['ssim'])} "
            f"| {f['landmark_nme']:.4f} | {f['lpips']:.4f} | {f['ms_per_face']:.1f} |"
        )
    return "\n".join(lines) + "\n"


CAMERA_SCORES = "unpaired-camera-x4"  # benchmarks/blind_report.py --record


def blind_markdown(models: tuple[ShippedModel, ...] | None = None) -> str:
    """The shipped blind (real-world LR) models as a Markdown table: NIQE of their x4 SR of the
    unpaired camera's real LR (``benchmarks/blind_report.py --record``; no PSNR exists for that
    camera here), and Set5 with bicubic LR (a sanity check, not their domain)."""
    models = shipped_models() if models is None else models
    lines = [
        "| model | scale | params | training | trained on | camera NIQE (images) "
        "| Set5 bicubic modern |",
        "|---|---|---:|---|---|---:|---|",
    ]
    for m in sorted((m for m in models if m.purpose == "blind"), key=lambda m: m.name):
        recipe = m.manifest.get("training_recipe") or {}
        degradation = ((recipe.get("config") or {}).get("data") or {}).get("degradation")
        if recipe.get("degraded_by"):
            source = f"learned H2L `{recipe['degraded_by'].get('name')}`"
        elif isinstance(degradation, dict) and degradation.get("preset"):
            source = f"preset `{degradation['preset']}`"
        else:
            source = "-"
        f = m.manifest.get("scores", {}).get(CAMERA_SCORES)
        camera = "-" if f is None else f"{f['niqe']:.3f} ({f['images']})"
        lines.append(
            f"| {m.name} | x{m.scale} | {m.params:,} | {training_summary(m)} | {source} "
            f"| {camera} | {_figure(m.set5_psnr, m.set5_ssim)} |"
        )
    return "\n".join(lines) + "\n"


DOC_TABLES = {
    "models-table": models_markdown,
    "default-models": defaults_markdown,
    "face-models": faces_markdown,
    "blind-models": blind_markdown,
}


def refresh_generated(text: str, models: tuple[ShippedModel, ...] | None = None) -> str:
    """``text`` with every generated block rewritten from the manifests (see above)."""
    unknown = sorted({m["name"] for m in GENERATED_BLOCK.finditer(text)} - set(DOC_TABLES))
    if unknown:
        raise ValueError(
            f"unknown generated table(s) {', '.join(unknown)}; known: {', '.join(DOC_TABLES)}"
        )
    blocks = len(GENERATED_BLOCK.findall(text))
    if text.count("<!-- generated: ") != blocks:
        raise ValueError("a '<!-- generated: NAME -->' line has no '<!-- end generated -->'")

    def render(match: re.Match[str]) -> str:
        return match["start"] + DOC_TABLES[match["name"]](models) + match["end"]

    return GENERATED_BLOCK.sub(render, text)


def outside_generated(text: str) -> str:
    """``text`` without its generated blocks (what is written by hand)."""
    return GENERATED_BLOCK.sub("", text)
