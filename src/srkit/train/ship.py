"""``srkit ship``: put a trained model into srkit's zoo.

The weights are copied into ``src/srkit/assets/models/`` (or ``--into``), their Set5 figures
measured with the benchmark in both conventions, written into the manifest with the recipe and
the chain of stages that made them, and the model listed in ``index.json``. Machine paths in the
record are written back as ``${SRKIT_DATA}``, ``${SRKIT_WEIGHTS}`` and ``${SRKIT_SET5}``, so the
manifest is portable; ``srkit bench --model NAME --scale S`` reproduces the recorded figures.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from srkit.bench.runner import run_benchmark
from srkit.common.files import write_text_atomic
from srkit.common.machine import machine_summary
from srkit.data.builtin import bundled_set5
from srkit.train.blend import SECOND
from srkit.train.config import default_env
from srkit.train.recipe import STAGE_RECORD, RecipeRunner, is_recipe, portable_path
from srkit.weights.native import (
    LANDMARK_ARCHS,
    STYLE_ARCHS,
    load_native,
    manifest_path,
    read_manifest,
    read_safetensors,
    read_state,
    sha256_file,
    weights_file,
    write_safetensors,
)
from srkit.zoo import INDEX, MODELS_DIR, shipped_models


def portable(value: Any, roots: dict[str, str]) -> Any:
    """Machine paths -> ``${VARIABLE}`` for each ``roots`` entry VARIABLE: path (the inverse of
    the expansion ``srkit train`` applies to a config)."""
    if isinstance(value, dict):
        return {k: portable(v, roots) for k, v in value.items()}
    if isinstance(value, list):
        return [portable(v, roots) for v in value]
    if isinstance(value, str):
        # the longest root first: SRKIT_SET5 may lie inside another root
        for variable, root in sorted(roots.items(), key=lambda item: -len(item[1])):
            value = value.replace(root, f"${{{variable}}}")
    return value


def set5_figures(manifest_file: Path, scale: int, arch: str) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for convention in ("modern", "legacy"):
        (result,) = run_benchmark(  # arch given: loaded as a file, not looked up in the zoo
            str(manifest_file), [str(bundled_set5())], [scale], convention=convention, arch=arch
        )
        figures[convention] = {"psnr": round(result.psnr, 4), "ssim": round(result.ssim, 5)}
    figures["machine"] = machine_summary()
    return figures


def chain_of(runner: RecipeRunner, recipe_path: Path) -> list[dict[str, Any]]:
    """Every stage behind a recipe's result, first first, with what its run recorded."""
    stages = []
    for recipe, stage in runner.chain(recipe_path):
        record = runner.record(recipe, stage)
        stages.append(
            {
                "recipe": recipe.model,
                "name": stage.name,
                "scale": stage.config.scale,
                "iterations": record.get("iterations"),
                "wall_seconds": record.get("seconds"),
                "training_data": list(stage.config.data.train),
            }
        )
    return stages


def resolve_source(source: Path, runs: Path) -> tuple[Path, Path | None]:
    """``source`` (weights, manifest, stage folder or recipe) -> (manifest, recipe or None)."""
    if source.suffix in (".yaml", ".yml") and is_recipe(source):
        runner = RecipeRunner(runs, show_progress=False)
        recipe = runner.recipe(source)
        output = runner.output(recipe, recipe.stages[-1])
        if not runner.is_done(recipe, recipe.stages[-1]):
            raise ValueError(
                f"{source}: its last stage is not trained in {runs} (run srkit train {source})"
            )
        return manifest_path(output), source
    if source.is_dir():
        record = source / STAGE_RECORD
        if record.is_file():
            output = source / json.loads(record.read_text())["output"]
            return manifest_path(output), None
        candidates = sorted(p for p in source.glob("*.json") if not p.stem.endswith("_best"))
        candidates = [p for p in candidates if p.name != STAGE_RECORD]
        if len(candidates) != 1:
            raise ValueError(f"{source}: expected one exported model, found {len(candidates)}")
        return candidates[0], None
    if not source.exists():
        raise ValueError(f"{source} does not exist")
    return manifest_path(source), None


def ship(
    source: str | Path,
    *,
    name: str | None = None,
    default: bool | None = None,
    paper: float | None = None,
    models_dir: Path = MODELS_DIR,
    runs: str | Path = "runs/recipes",
) -> dict[str, Any]:
    """Copy, score and list one model; returns its final manifest.

    ``source``: a run's exported ``.safetensors``/``.json``, a recipe stage's folder, or a
    recipe (its last stage's output under ``runs``, named after the recipe's ``model``, with the
    recipe's ``ship`` defaults for ``default`` and ``paper``).
    """
    manifest_file, recipe_path = resolve_source(Path(source), Path(runs))
    manifest = read_manifest(manifest_file)
    # same-size networks (style transfer, landmark heatmaps): no Set5 figures
    style = manifest["arch"] in STYLE_ARCHS + LANDMARK_ARCHS
    if style:
        weights_file(manifest_path(manifest_file), manifest)  # sha256 checked
        scale = 1
    else:
        _, scale, _, manifest = load_native(manifest_file)  # sha256 checked
    roots = default_env()
    recipe_record = (manifest.get("training_recipe") or {}).get("recipe")
    if recipe_path is not None:
        runner = RecipeRunner(runs, show_progress=False)
        recipe = runner.recipe(recipe_path)
        name = name or recipe.model
        default = recipe.ship.default if default is None else default
        paper = recipe.ship.paper if paper is None else paper
        manifest["training_recipe"]["stages"] = chain_of(runner, recipe_path)
        run_record = dict(recipe_record or {})
        manifest["training_recipe"]["recipe"] = {  # the chain, as every shipped manifest has it
            # the recipe shipped from: an untrained/ recipe moves to recipes/ when it ships
            "path": portable_path(recipe.path),
            "model": recipe.model,
            "stages": [f"{r.model}:{s.name}" for r, s in runner.chain(recipe_path)],
            "commit": run_record.get("commit"),
        }
    elif recipe_record is not None:
        name = name or recipe_record.get("model")
    name = name or manifest["name"]
    default = bool(default)
    models_dir.mkdir(parents=True, exist_ok=True)
    target_weights = models_dir / f"{name}.safetensors"
    _make_dependents_whole(models_dir, target_weights.name, name)
    includes = _store_weights(manifest_file, manifest, target_weights, models_dir)
    manifest = portable(manifest, roots)
    manifest.update(name=name, weights=target_weights.name, sha256=sha256_file(target_weights))
    manifest.pop("includes", None)
    if includes:
        manifest["includes"] = includes
    if not style:
        # scored from the run's own file (same sha256): the zoo never lists an unscored manifest
        figures = set5_figures(manifest_file, scale, manifest["arch"])
        figures["measured_by"] = f"srkit bench --model {name} --scale {scale}"
        manifest["scores"] = {**manifest.get("scores", {}), "set5": figures}
    if paper is not None:
        manifest["scores"]["paper_set5_psnr"] = paper
    target = models_dir / f"{name}.json"
    write_text_atomic(target, json.dumps(manifest, indent=2) + "\n")
    read_manifest(target)

    index_path = models_dir / INDEX.name
    index = json.loads(index_path.read_text()) if index_path.is_file() else {"models": []}
    entries = [e for e in index["models"] if e["name"] != name]
    mine = (manifest.get("purpose", "general"), scale)
    if default:  # one default per purpose and scale: a face model's leaves the general one
        for entry in entries:
            if _kind_of(models_dir, entry["name"]) == mine:
                entry.pop("default", None)
    entry: dict[str, Any] = {"name": name}
    if default:
        entry["default"] = True
    recipe_file = (recipe_record or {}).get("path")
    if recipe_path is not None or recipe_file:
        entry["recipe"] = f"recipes/{Path(recipe_path or recipe_file).name}"
    entries.append(entry)
    index["models"] = sorted(entries, key=lambda e: (_kind_of(models_dir, e["name"])[1], e["name"]))
    write_text_atomic(index_path, json.dumps(index, indent=2) + "\n")
    shipped_models.cache_clear()
    return manifest


def _make_dependents_whole(models_dir: Path, weights_name: str, shipping: str) -> None:
    """Before ``weights_name`` is overwritten: every other model of ``models_dir`` that
    includes it gets its tensors back in its own file, so reshipping a model (``repan_x4``)
    never breaks a pair that stored it by reference (``repan_gan_x4``)."""
    for path in sorted(models_dir.glob("*.json")):
        if path.name == INDEX.name or path.stem == shipping:
            continue
        info = read_manifest(path)
        if not any(entry["weights"] == weights_name for entry in info.get("includes", [])):
            continue
        state = read_state(path, info)  # checked against every sha256 before anything moves
        del info["includes"]
        info["sha256"] = write_safetensors(state, path.parent / info["weights"])
        write_text_atomic(path, json.dumps(info, indent=2) + "\n")


def _pair_split(
    mpath: Path, manifest: dict[str, Any], target: Path, models_dir: Path
) -> tuple[dict[str, torch.Tensor], list[dict[str, str]]] | None:
    """An image-space blend (a pair network) whose second network is a model of
    ``models_dir``, bit for bit: its first network's tensors and the ``includes`` entry of the
    other's file. ``None`` for any other model."""
    blend = (manifest.get("training_recipe") or {}).get("blend") or {}
    other = models_dir / f"{blend.get('other', {}).get('name', '')}.json"
    if blend.get("space") != "image" or not other.is_file() or other.stem == target.stem:
        return None
    other_info = read_manifest(other)
    if other_info["sha256"] != blend["other"]["sha256"] or other_info.get("includes"):
        return None
    state = read_state(mpath, manifest)
    second = {k[len(SECOND) :]: v for k, v in state.items() if k.startswith(SECOND)}
    shipped = read_safetensors(weights_file(other, other_info))
    if second.keys() != shipped.keys() or not all(
        torch.equal(second[k], shipped[k]) for k in shipped
    ):
        return None
    first = {k: v for k, v in state.items() if not k.startswith(SECOND)}
    entry = {"prefix": SECOND, "weights": other_info["weights"], "sha256": other_info["sha256"]}
    return first, [entry]


def _store_weights(
    manifest_file: Path, manifest: dict[str, Any], target: Path, models_dir: Path
) -> list[dict[str, str]]:
    """Write the model's tensors to ``target``; returns the manifest's ``includes``.

    A pair whose second network is already in ``models_dir`` stores only its first network and
    includes the other's file (:func:`_pair_split`), so the shipped weights hold each network
    once. A model with includes shipped elsewhere is written whole; anything else is copied.
    """
    mpath = manifest_path(manifest_file)
    split = _pair_split(mpath, manifest, target, models_dir)
    if split is not None:
        write_safetensors(split[0], target)
        return split[1]
    if manifest.get("includes"):
        write_safetensors(read_state(mpath, manifest), target)
    else:
        shutil.copyfile(mpath.parent / manifest["weights"], target)
    return []


def _kind_of(models_dir: Path, name: str) -> tuple[str, int]:
    manifest = json.loads((models_dir / f"{name}.json").read_text())
    return manifest.get("purpose", "general"), int(manifest["scale"])


def add_scores(
    name: str, key: str, scores: dict[str, Any], models_dir: Path = MODELS_DIR
) -> dict[str, Any]:
    """Record ``scores`` under ``scores.<key>`` of shipped model ``name`` (e.g. the LFW figures
    ``srkit ship`` adds to a face model); returns the manifest."""
    path = models_dir / f"{name}.json"
    manifest = json.loads(path.read_text())
    manifest.setdefault("scores", {})[key] = portable(scores, default_env())
    write_text_atomic(path, json.dumps(manifest, indent=2) + "\n")
    read_manifest(path)
    shipped_models.cache_clear()
    return manifest
