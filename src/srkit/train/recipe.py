"""Recipes: the whole chain of training stages that makes one model, in one YAML file.

``recipes/<model>.yaml``::

    model: espcn_x4            # the name the result ships under
    ship: {paper: null}        # what `srkit ship` records (optional)
    stages:
      - name: espcn_x4         # a full stage config (see srkit.train.config) ...
        init: {recipe: espcn_x3, stage: espcn_x3_ft}
        arch: espcn
        scale: 4
        ...
      - name: espcn_x4_t91     # ... later stages override the keys of the one before
        data: {train: ["${SRKIT_DATA}/sr/train/T91"], lr_patch: 32}

A stage with ``inherit: false`` overrides nothing: it is a whole stage config of its own (a
stage of another kind of network, such as the Low-to-High stage after a degradation stage).

A stage starts from the previous stage's output unless its ``init`` says otherwise (``init`` is
never inherited):

- ``{stage: NAME}``: an earlier stage of this recipe;
- ``{recipe: OTHER}`` / ``{recipe: OTHER, stage: NAME}``: the result (or a stage) of another
  recipe in the same folder, trained first if it is not yet;
- ``{model: NAME}``: a model srkit ships (its packaged weights, pinned by its manifest's
  sha256): fine-tuning a shipped model does not retrain the chain that made it;
- ``{path: FILE, sha256: HEX}``: a weight file, pinned by its hash;
- ``null``: from scratch (the first stage's default).

A stage with ``blend: {model: NAME, weight: W}`` trains nothing: its output is its start blended
with a shipped model, ``(1 - W) * start + W * NAME`` (network interpolation,
:mod:`srkit.train.blend`), the way a perceptual model is pulled back toward its PSNR model;
with ``space: image`` it keeps both networks and blends their outputs (image interpolation).

``srkit train recipes/<model>.yaml`` runs the chain into ``runs/recipes/<model>/``: a finished
stage is skipped, a killed one resumes from its checkpoint.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srkit.archs import get_spec
from srkit.common.files import write_text_atomic
from srkit.config import ConfigError, from_dict, load_yaml, set_by_path
from srkit.train.blend import BlendRef, blend_files
from srkit.train.config import ExperimentConfig, InitConfig, default_env
from srkit.train.experiment import apply_iters, check_paths, experiment_from_dict
from srkit.train.trainer import train
from srkit.weights.native import manifest_path, sha256_file
from srkit.zoo import ShippedModel, find_model, shipped_models

STAGE_RECORD = "stage.json"
# keys that change how a stage runs but not what it computes: a finished stage stays finished
# when they differ
_RUN_ONLY = (
    ("train", "device"),
    ("train", "checkpoint_every"),
    ("train", "log_every"),
    ("data", "workers"),
    ("val",),
    ("init",),  # where the start weights lie on this machine; the recipe record says what
)


@dataclass
class InitRef:
    """Where a stage's initial weights come from (exactly one of the fields, or none)."""

    stage: str | None = None
    recipe: str | None = None
    path: str | None = None
    model: str | None = None  # a shipped model's name (srkit models)
    sha256: str | None = None
    strict: bool = False

    def __post_init__(self) -> None:
        given = [bool(self.stage or self.recipe), self.path is not None, self.model is not None]
        if sum(given) > 1:
            raise ValueError("init: give one of recipe/stage, path or model")
        if self.sha256 is not None and self.path is None:
            raise ValueError("init.sha256 pins a path: give init.path too")


@dataclass
class ShipInfo:
    default: bool = False  # the default model of its scale
    paper: float | None = None  # the paper's Set5 PSNR, for tables


@dataclass
class Stage:
    index: int  # 0-based position in its recipe
    name: str
    config: ExperimentConfig
    init: InitRef | None  # None: from scratch
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
    blend: BlendRef | None = None  # a blend stage: no training


@dataclass
class Recipe:
    model: str
    path: Path
    stages: list[Stage]
    ship: ShipInfo = field(default_factory=ShipInfo)

    def stage(self, name: str | None) -> Stage:
        if name is None:
            return self.stages[-1]
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise ConfigError(
            f"{self.path}: no stage {name!r}; stages: {', '.join(s.name for s in self.stages)}"
        )


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``update`` over ``base``: mappings merge key by key, everything else is replaced."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def is_recipe(path: str | Path) -> bool:
    """A YAML file with a ``stages`` list is a recipe; anything else is one stage."""
    try:
        data = load_yaml(path)
    except ConfigError:
        return False
    return isinstance(data.get("stages"), list)


def load_recipe(
    path: str | Path,
    *,
    overrides: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> Recipe:
    """Parse and check every stage of a recipe (no data or weight file is opened).

    ``overrides`` (``key=value``) apply to every stage.
    """
    path = Path(path)
    data = load_yaml(path)
    unknown = sorted(set(data) - {"model", "stages", "ship"})
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r}; valid keys: model, ship, stages")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise ConfigError(f"{path}: 'model' (the shipped name) is required")
    entries = data.get("stages")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: 'stages' must be a non-empty list")
    ship = from_dict(ShipInfo, data.get("ship") or {}, where="ship")
    env = env or default_env()
    stages: list[Stage] = []
    current: dict[str, Any] = {}
    for index, entry in enumerate(entries):
        where = f"stages[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ConfigError(f"{path}: {where} must be a mapping with a 'name'")
        entry = dict(entry)
        has_init = "init" in entry
        init_raw = entry.pop("init", None)
        blend_raw = entry.pop("blend", None)
        inherit = entry.pop("inherit", True)
        if not isinstance(inherit, bool):
            raise ConfigError(f"{path}: {where}.inherit must be true or false")
        previous_task = current.get("task", "supervised")
        current = _merge(current if inherit else {}, entry)
        if current.get("task", "supervised") != previous_task:
            # a stage of another task (a GAN stage after a supervised warm start) does not
            # inherit the previous task's own section
            current.pop(previous_task, None)
        raw = copy.deepcopy(current)
        for assignment in overrides or []:
            set_by_path(raw, assignment)
        label = f"{path.name} {where} ({entry['name']})"
        config = experiment_from_dict(raw, where=label, env=env)
        if has_init and init_raw is None:
            init = None
        elif not has_init:
            init = None if index == 0 else InitRef(stage=stages[-1].name)
        else:
            init = from_dict(InitRef, init_raw, where=f"{label}.init", env=env)
        earlier = {s.name for s in stages}
        if init is not None and init.stage and not init.recipe and init.stage not in earlier:
            raise ConfigError(f"{label}: init.stage {init.stage!r} is not an earlier stage")
        if entry["name"] in {s.name for s in stages}:
            raise ConfigError(f"{label}: stage name {entry['name']!r} is used twice")
        blend = None
        if blend_raw is not None:
            blend = from_dict(BlendRef, blend_raw, where=f"{label}.blend", env=env)
            if init is None:
                raise ConfigError(
                    f"{label}: a blend stage needs a start (init or an earlier stage)"
                )
            if blend.space == "image" and get_spec(config.arch).image_blend is None:
                raise ConfigError(
                    f"{label}: {config.arch} has no pair architecture for an image-space "
                    f"blend; use space: network"
                )
        stages.append(Stage(index, entry["name"], config, init, raw, blend))
    return Recipe(model, path, stages, ship)


def sibling_recipe(path: Path, model: str) -> Path:
    """The recipe named ``model`` that ``path``'s stages start from: beside ``path``, or, for a
    recipe in ``recipes/untrained/``, the shipped one in ``recipes/`` (a warm start that has been
    trained and moved there)."""
    beside = path.parent / f"{model}.yaml"
    if not beside.is_file() and path.parent.name == "untrained":
        shipped = path.parent.parent / f"{model}.yaml"
        if shipped.is_file():
            return shipped
    return beside


def resolve_all(path: str | Path, env: dict[str, str] | None = None) -> list[Recipe]:
    """``path`` and every recipe it starts from, checked (cycles and missing names are
    errors); the order is dependencies first."""
    seen: dict[Path, Recipe] = {}
    order: list[Recipe] = []

    def visit(recipe_path: Path, chain: tuple[Path, ...]) -> Recipe:
        recipe_path = recipe_path.resolve()
        if recipe_path in chain:
            names = " -> ".join(p.stem for p in (*chain, recipe_path))
            raise ConfigError(f"recipes start from each other in a cycle: {names}")
        if recipe_path in seen:
            return seen[recipe_path]
        if not recipe_path.is_file():
            raise ConfigError(f"recipe not found: {recipe_path}")
        recipe = load_recipe(recipe_path, env=env)
        for stage in recipe.stages:
            if stage.init is not None and stage.init.recipe:
                start = sibling_recipe(recipe_path, stage.init.recipe)
                other = visit(start, (*chain, recipe_path))
                other.stage(stage.init.stage)  # the named stage exists
        seen[recipe_path] = recipe
        order.append(recipe)
        return recipe

    visit(Path(path), ())
    return order


def _stable(config: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(config)
    for keys in _RUN_ONLY:
        node = config
        for key in keys[:-1]:
            node = node.get(key, {})
        node.pop(keys[-1], None)
    return config


def git_commit(folder: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


class RecipeRunner:
    """Runs recipes stage by stage into ``root/<model>/<NN>-<stage>/``.

    ``iters_scale`` shortens every stage (a smoke run, kept apart in ``root/<model>@F/``);
    ``overrides`` apply to every stage.
    """

    def __init__(
        self,
        root: str | Path = "runs/recipes",
        *,
        iters_scale: float = 1.0,
        overrides: list[str] | None = None,
        show_progress: bool = True,
        train_fn: Callable[..., Any] | None = None,
        echo: Callable[[str], None] = print,
    ) -> None:
        if not 0 < iters_scale <= 1:
            raise ConfigError(f"--iters-scale must be in (0, 1], got {iters_scale}")
        self.root = Path(root)
        self.iters_scale = iters_scale
        self.overrides = overrides or []
        self.show_progress = show_progress
        self.echo = echo
        self.train_fn = train_fn or train
        self._recipes: dict[Path, Recipe] = {}

    # --- where things are -------------------------------------------------------------
    def recipe(self, path: Path) -> Recipe:
        path = Path(path).resolve()
        if path not in self._recipes:
            self._recipes[path] = load_recipe(path, overrides=self.overrides)
        return self._recipes[path]

    def stage_dir(self, recipe: Recipe, stage: Stage) -> Path:
        suffix = "" if self.iters_scale == 1 else f"@{self.iters_scale:g}"
        return self.root / f"{recipe.model}{suffix}" / f"{stage.index + 1:02d}-{stage.name}"

    def output(self, recipe: Recipe, stage: Stage) -> Path:
        return self.stage_dir(recipe, stage) / f"{stage.name}.safetensors"

    def is_done(self, recipe: Recipe, stage: Stage) -> bool:
        record = self.stage_dir(recipe, stage) / STAGE_RECORD
        if not (record.is_file() and self.output(recipe, stage).is_file()):
            return False
        saved = json.loads(record.read_text())
        blended = saved["recipe"].get("blend")
        if blended is not None:
            blended = {"space": "network", **blended}  # records from before blend spaces
        if blended != _blend_record(stage) or _stable(saved["config"]) != _stable(
            self.prepared(recipe, stage, None).to_dict()
        ):
            raise ConfigError(
                f"{self.stage_dir(recipe, stage)} was trained from a different version of "
                f"stage {stage.name!r} of {recipe.path.name}; remove that folder to retrain it"
            )
        return True

    def init_source(self, recipe: Recipe, stage: Stage) -> tuple[Recipe, Stage] | None:
        """The (recipe, stage) whose output this stage starts from (None: a file or scratch)."""
        init = stage.init
        if init is None or init.path is not None or init.model is not None:
            return None
        if init.recipe:
            other = self.recipe(sibling_recipe(recipe.path, init.recipe))
            return other, other.stage(init.stage)
        return recipe, recipe.stage(init.stage)

    def chain(self, path: str | Path) -> list[tuple[Recipe, Stage]]:
        """Every (recipe, stage) behind the result of the recipe at ``path``, from the first
        stage trained from scratch (or from a file) to its last stage."""
        recipe = self.recipe(Path(path))
        links: list[tuple[Recipe, Stage]] = []
        current: tuple[Recipe, Stage] | None = (recipe, recipe.stages[-1])
        while current is not None:
            links.append(current)
            current = self.init_source(*current)
        return links[::-1]

    def record(self, recipe: Recipe, stage: Stage) -> dict[str, Any]:
        """What a finished stage's run recorded (``stage.json``); empty when not trained."""
        path = self.stage_dir(recipe, stage) / STAGE_RECORD
        return json.loads(path.read_text()) if path.is_file() else {}

    def prepared(self, recipe: Recipe, stage: Stage, init_path: Path | None) -> ExperimentConfig:
        config = copy.deepcopy(stage.config)
        if self.iters_scale != 1:
            apply_iters(config, max(1, round(config.train.iters * self.iters_scale)))
        init = stage.init
        if init is not None and init.path is not None:
            config.init = InitConfig(init.path, strict=init.strict, sha256=init.sha256)
        elif init is not None and init.model is not None:
            shipped = shipped_start(init.model)
            config.init = InitConfig(
                str(shipped.weights_path), strict=init.strict, sha256=shipped.manifest["sha256"]
            )
        elif init is not None:
            placeholder = init_path or Path(f"<output of {init.recipe or recipe.model}:"
                                            f"{init.stage or 'last'}>")  # fmt: skip
            config.init = InitConfig(str(placeholder), strict=init.strict)
        else:
            config.init = None
        return config

    # --- running ------------------------------------------------------------------------
    def run(self, path: str | Path, only_stage: int | None = None) -> Path:
        """Train the chain of ``path`` (or only its stage ``only_stage``, 1-based); returns
        the output of the last stage run."""
        recipe = self.recipe(Path(path))
        resolve_all(recipe.path)  # the whole graph checks before any work
        if only_stage is not None:
            if not 1 <= only_stage <= len(recipe.stages):
                raise ConfigError(
                    f"--stage must be in 1..{len(recipe.stages)} for {recipe.path.name}"
                )
            return self._run_stage(recipe, recipe.stages[only_stage - 1], follow=False)
        last = None
        for stage in recipe.stages:
            last = self._run_stage(recipe, stage, follow=True)
        assert last is not None
        return last

    def _run_stage(self, recipe: Recipe, stage: Stage, follow: bool) -> Path:
        out = self.output(recipe, stage)
        if self.is_done(recipe, stage):
            self.echo(f"{recipe.model}: stage {stage.index + 1} {stage.name} is done ({out})")
            return out
        source = self.init_source(recipe, stage)
        init_path = None
        if source is not None:
            other_recipe, other_stage = source
            init_path = self.output(other_recipe, other_stage)
            if not self.is_done(other_recipe, other_stage):
                if not follow:
                    raise ConfigError(
                        f"stage {stage.index + 1} ({stage.name}) starts from "
                        f"{other_recipe.model}:{other_stage.name}, which is not trained yet; "
                        f"run the recipe without --stage"
                    )
                for earlier in other_recipe.stages[: other_stage.index + 1]:
                    self._run_stage(other_recipe, earlier, follow=True)
        config = self.prepared(recipe, stage, init_path)
        check_paths(config)
        folder = self.stage_dir(recipe, stage)
        work = (
            f"{config.train.end} iterations"
            if stage.blend is None
            else f"a blend with {stage.blend.model} ({stage.blend.space} space), weight "
            f"{stage.blend.weight}"
        )
        self.echo(
            f"{recipe.model}: stage {stage.index + 1}/{len(recipe.stages)} {stage.name} "
            f"({work}) -> {folder}"
        )
        record = {
            "path": portable_path(recipe.path),
            "model": recipe.model,
            "stage": stage.name,
            "index": stage.index + 1,
            "stages": [s.name for s in recipe.stages],
            "iters_scale": self.iters_scale,
            "commit": git_commit(recipe.path.parent),
            "init": self._describe_init(recipe, stage),
        }
        if stage.blend is not None:
            iterations, seconds = 0, 0.0
            start = Path(config.init.path)  # type: ignore[union-attr]  # a blend has a start
            other = shipped_start(stage.blend.model)
            record["blend"] = _blend_record(stage)
            folder.mkdir(parents=True, exist_ok=True)
            blend_files(manifest_path(start), other.path, stage.blend.weight, out, record,
                        space=stage.blend.space)  # fmt: skip
        else:
            result = self.train_fn(
                config, folder, resume=True, show_progress=self.show_progress, recipe=record
            )
            iterations, seconds = result.iterations, result.seconds
        write_text_atomic(
            folder / STAGE_RECORD,
            json.dumps({"config": config.to_dict(), "recipe": record, "output": out.name,
             "iterations": iterations, "seconds": round(seconds, 1),
             "sha256": sha256_file(out)}, indent=2) + "\n",
        )  # fmt: skip
        return out

    def _describe_init(self, recipe: Recipe, stage: Stage) -> dict[str, Any] | None:
        init = stage.init
        if init is None:
            return None
        if init.path is not None:
            return {"path": init.path, "sha256": init.sha256}
        if init.model is not None:
            return {"model": init.model, "sha256": shipped_start(init.model).manifest["sha256"]}
        source = self.init_source(recipe, stage)
        assert source is not None
        other, other_stage = source
        return {"recipe": other.model, "stage": other_stage.name}


def _blend_record(stage: Stage) -> dict[str, Any] | None:
    """What a blend stage's run records of its blend (the shipped model resolved and pinned),
    and what a finished stage must still match."""
    if stage.blend is None:
        return None
    other = shipped_start(stage.blend.model)
    return {"model": other.name, "sha256": other.manifest["sha256"],
            "weight": stage.blend.weight, "space": stage.blend.space}  # fmt: skip


def shipped_start(name: str) -> ShippedModel:
    """The shipped model an ``init: {model: NAME}`` starts from."""
    model = find_model(name, None)
    if model is None:
        known = ", ".join(m.name for m in shipped_models())
        raise ConfigError(f"init.model: srkit ships no model {name!r} (shipped: {known})")
    return model


def portable_path(path: Path) -> str:
    """The recipe's path relative to the working folder when it is inside it."""
    try:
        return os.path.relpath(path, Path.cwd()) if path.is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)
