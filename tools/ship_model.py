"""Ship a trained model inside srkit: copy its weights into ``src/srkit/assets/models/``, measure
its Set5 figures with the benchmark (both conventions), write them into its manifest and list it
in ``index.json``.

Usage:
    python tools/ship_model.py runs/repan_x4/repan_x4.safetensors --default
    python tools/ship_model.py runs/espcn_x3/espcn_x3.safetensors --name espcn_x3 --paper 32.55

The manifest keeps the training recipe, with the data and official-weights roots written as
``${SRKIT_DATA}`` and ``${SRKIT_WEIGHTS}`` so the recipe is portable; ``srkit bench --model NAME
--scale S`` reproduces the recorded figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from srkit.bench.machine import machine_summary
from srkit.bench.runner import run_benchmark
from srkit.data.builtin import bundled_set5, data_dir
from srkit.train.config import default_env
from srkit.train.trainer import init_record_from_log
from srkit.weights.native import load_native, manifest_path, read_manifest, sha256_file
from srkit.zoo import INDEX, MODELS_DIR, shipped_models

REPO = Path(__file__).resolve().parents[1]


def portable(value, roots: dict[str, str]):
    """Machine paths in the recipe -> ``${VARIABLE}``, for each ``roots`` entry VARIABLE: path
    (the inverse of the expansion that ``srkit train`` applied to the config)."""
    if isinstance(value, dict):
        return {k: portable(v, roots) for k, v in value.items()}
    if isinstance(value, list):
        return [portable(v, roots) for v in value]
    if isinstance(value, str):
        for variable, root in roots.items():
            value = value.replace(root, f"${{{variable}}}")
    return value


def set5_figures(manifest_file: Path, scale: int, arch: str) -> dict:
    figures = {}
    for convention in ("modern", "legacy"):
        (result,) = run_benchmark(  # arch given: loaded as a file, not looked up in the zoo
            str(manifest_file), [str(bundled_set5())], [scale], convention=convention, arch=arch
        )
        figures[convention] = {"psnr": round(result.psnr, 4), "ssim": round(result.ssim, 5)}
    figures["machine"] = machine_summary()
    return figures


def initialised_from(manifest: dict, manifest_file: Path) -> dict | None:
    """What the run's ``init.path`` really gave it. Newer manifests record it; for older ones
    the run's ``log.jsonl`` tells (a transfer logs the tensors it loaded). Until session 3,
    ``--resume`` without a checkpoint skipped ``init.path``, so the config alone proves nothing."""
    recipe = manifest.get("training_recipe") or {}
    if "initialised_from" in recipe:
        return recipe["initialised_from"]
    log = manifest_file.parent / "log.jsonl"
    if log.is_file():
        return init_record_from_log(log)
    init = ((recipe.get("config") or {}).get("init")) or {}
    return {"path": init["path"], "unverified": True} if init.get("path") else None


def training_stages(manifest: dict, manifest_file: Path) -> list[dict]:
    """The chain of runs behind a model, first stage first, following each run's actual
    initialisation (paths relative to the repository root, where runs/ lies) while the file
    and its manifest exist."""
    stages, seen = [], set()
    while manifest is not None:
        recipe = manifest.get("training_recipe") or {}
        if recipe.get("stages"):
            # a shipped model (or a copy of one) already carries its whole chain, whose earlier
            # runs/ folders may be gone on this machine
            carried = [dict(stage) for stage in recipe["stages"]]
            # the last stage is this manifest's own run; older records lack its data
            carried[-1].setdefault("training_data", recipe.get("training_data"))
            stages.extend(reversed(carried))
            break
        init = initialised_from(manifest, manifest_file)
        stages.append(
            {
                "name": manifest.get("name"),
                "scale": manifest.get("scale"),
                "iterations": recipe.get("iterations"),
                "wall_seconds": recipe.get("wall_seconds"),
                # a later stage may train on other data than the ones before it
                "training_data": recipe.get("training_data"),
                "initialised_from": init,
            }
        )
        if init is None:
            break
        path = Path(init["path"])
        path = path if path.is_absolute() else REPO / path  # recipes run from the repo root
        if path in seen or not manifest_path(path).is_file():
            print(f"note: {init['path']} (init of {manifest.get('name')}) not found: the chain "
                  "of training stages stops there", file=sys.stderr)  # fmt: skip
            break
        seen.add(path)
        manifest_file = manifest_path(path)
        manifest = json.loads(manifest_file.read_text())
    return stages[::-1]


def record_stages(manifest: dict, manifest_file: Path) -> None:
    """Write the chain of runs and the training at the model's own scale into its recipe:
    x3/x4 may start from x2 weights, and their budget counts only the stages at their scale."""
    recipe, scale = manifest["training_recipe"], manifest["scale"]
    stages = training_stages(manifest, manifest_file)
    recipe["initialised_from"] = stages[-1]["initialised_from"]
    named = ((recipe.get("config") or {}).get("init") or {}).get("path")
    if named and recipe["initialised_from"] is None:
        recipe["note"] = (
            f"the config names init.path {named}, but the run never loaded it "
            "(--resume without a checkpoint skipped init.path before session 3): "
            "trained from scratch"
        )
    own = [stage for stage in stages if stage["scale"] == scale]
    recipe["stages"] = stages
    recipe["wall_seconds_at_scale"] = sum(stage["wall_seconds"] or 0 for stage in own)
    recipe["iterations_at_scale"] = sum(stage["iterations"] or 0 for stage in own)


def ship_model(
    weights: Path,
    name: str | None = None,
    default: bool = False,
    paper: float | None = None,
    data_root: str | None = None,
    models_dir: Path = MODELS_DIR,
) -> dict:
    """Copy, score and list one model; returns its final manifest."""
    source = manifest_path(weights)
    _, scale, _, manifest = load_native(source)  # sha256 checked
    name = name or manifest["name"]
    models_dir.mkdir(parents=True, exist_ok=True)
    target_weights = models_dir / f"{name}.safetensors"
    shutil.copyfile(source.parent / manifest["weights"], target_weights)
    if manifest.get("training_recipe") is not None:
        record_stages(manifest, source)
    if data_root is not None:
        roots = {**default_env(), "SRKIT_DATA": str(Path(data_root).resolve())}
        manifest = portable(manifest, roots)
    manifest.update(name=name, weights=target_weights.name, sha256=sha256_file(target_weights))
    target = models_dir / f"{name}.json"
    # scored from the run's own file (same sha256): the zoo never lists an unscored manifest
    figures = set5_figures(source, scale, manifest["arch"])
    figures["measured_by"] = f"srkit bench --model {name} --scale {scale}"
    manifest["scores"] = {**manifest.get("scores", {}), "set5": figures}
    if paper is not None:
        manifest["scores"]["paper_set5_psnr"] = paper
    target.write_text(json.dumps(manifest, indent=2) + "\n")
    read_manifest(target)

    index_path = models_dir / INDEX.name
    index = json.loads(index_path.read_text()) if index_path.is_file() else {"models": []}
    entries = [e for e in index["models"] if e["name"] != name]
    scales = {e["name"]: _scale_of(models_dir, e["name"]) for e in entries} | {name: scale}
    if default:
        for entry in entries:
            if scales[entry["name"]] == scale:
                entry.pop("default", None)
    entries.append({"name": name, **({"default": True} if default else {})})
    index["models"] = sorted(entries, key=lambda e: (scales[e["name"]], e["name"]))
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    shipped_models.cache_clear()
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("weights", type=Path, help="a run's exported .safetensors (or .json)")
    parser.add_argument("--name", help="shipped name (default: the run's name)")
    parser.add_argument("--default", action="store_true", help="make it its scale's default")
    parser.add_argument("--paper", type=float, help="the paper's Set5 PSNR, kept for tables")
    parser.add_argument(
        "--data-root",
        default=str(data_dir()),
        help="folder holding sr/val/Set5 (default: $SRKIT_DATA, else ../shared/data)",
    )
    args = parser.parse_args()
    manifest = ship_model(args.weights, args.name, args.default, args.paper, args.data_root)
    modern = manifest["scores"]["set5"]["modern"]
    legacy = manifest["scores"]["set5"]["legacy"]
    print(
        f"shipped {manifest['name']} (x{manifest['scale']}, {manifest['params']:,} params): "
        f"Set5 {modern['psnr']:.3f} / {modern['ssim']:.4f} (legacy {legacy['psnr']:.3f} / "
        f"{legacy['ssim']:.4f}){' [default]' if args.default else ''}"
    )
    shipped_models()  # the index still parses, one default per scale


def _scale_of(models_dir: Path, name: str) -> int:
    manifest = json.loads((models_dir / f"{name}.json").read_text())
    return int(manifest["scale"])


if __name__ == "__main__":
    sys.exit(main())
