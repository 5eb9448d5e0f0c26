"""Recipes: every shipped model has one that resolves without ../shared and follows what its
manifest records; the runner skips finished stages, resumes killed ones and chains recipes;
`srkit ship` lists a recipe's result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from typer.testing import CliRunner

from srkit.cli import app
from srkit.config import ConfigError
from srkit.data.builtin import bundled_set5
from srkit.train.recipe import RecipeRunner, _merge, load_recipe, resolve_all
from srkit.train.ship import ship
from srkit.train.trainer import train
from srkit.zoo import INDEX, MODELS_DIR

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"
SET5 = str(bundled_set5())
SHIPPED = [entry["name"] for entry in json.loads(INDEX.read_text())["models"]]


@pytest.fixture
def no_shared(monkeypatch, tmp_path):
    """Resolve recipes as on a machine without ../shared."""
    monkeypatch.setenv("SRKIT_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv("SRKIT_WEIGHTS", str(tmp_path / "no-weights"))


def test_every_shipped_model_has_a_recipe_and_every_recipe_resolves(no_shared):
    index = json.loads(INDEX.read_text())["models"]
    assert sorted(p.stem for p in RECIPES.glob("*.yaml")) == sorted(SHIPPED)
    for entry in index:
        assert entry["recipe"] == f"recipes/{entry['name']}.yaml"
        chain = resolve_all(REPO / entry["recipe"])  # dependencies first, checked
        assert chain[-1].model == entry["name"]
        for recipe in chain:
            for stage in recipe.stages:
                assert stage.config.train.iters >= stage.config.train.end > 0


def test_recipes_of_unshipped_models_resolve(no_shared, tmp_path):
    """recipes/untrained: the GPU-size SRGAN/ESRGAN chains and their CPU sizes, not shipped."""
    untrained = sorted(RECIPES.glob("untrained/*.yaml"))
    names = {p.stem for p in untrained}
    assert {"srgan_x4", "rrdb_x4", "esrgan_x4", "esrgan_small_x4"} <= names
    assert not names & set(SHIPPED)
    # a warm start that was trained moved to recipes/; the untrained chains still find it there
    srgan = resolve_all(RECIPES / "untrained" / "srgan_x4.yaml")
    assert [r.path for r in srgan] == [(RECIPES / "srresnet_x4.yaml").resolve(), srgan[-1].path]
    chain = RecipeRunner(tmp_path, show_progress=False).chain(srgan[-1].path)
    assert [(r.model, s.name) for r, s in chain][:2] == [
        ("srresnet_x4", "srresnet_x4"),
        ("srgan_x4", "srgan_x4"),
    ]
    assert Path(chain[0][0].path).resolve() == (RECIPES / "srresnet_x4.yaml").resolve()
    for path in untrained:
        chain = resolve_all(path)
        assert chain[-1].model == path.stem
        for recipe in chain:
            for stage in recipe.stages:
                assert stage.config.train.iters > 0


def _chain(runner: RecipeRunner, name: str) -> list:
    """(recipe, stage) pairs from scratch to the recipe's result, as the runner follows them."""
    return runner.chain(RECIPES / f"{name}.yaml")


def _old(config: dict) -> dict:
    """The fields that decide training, from a manifest's recorded (pre-recipe) config."""
    train_cfg, optimizer = config["train"], config["train"]["optimizer"]
    schedule = config["train"]["schedule"]
    teacher = config.get("teacher")
    weight = teacher["weight"] if teacher else 0.0
    losses = [(t["name"], round((1 - weight) * t["weight"], 9), "hr") for t in config["losses"]]
    if teacher:
        losses += [(t["name"], round(weight * t["weight"], 9), "teacher") for t in config["losses"]]
    return {
        "arch": config["arch"], "scale": config["scale"], "seed": config["seed"],
        "options": config["arch_options"], "data": config["data"],
        "iters": train_cfg["iters"], "ema": train_cfg["ema"],
        "precision": train_cfg["precision"], "clip": train_cfg["grad_clip"],
        "optimizer": {k: v for k, v in optimizer.items()},
        "schedule": {k: v for k, v in schedule.items() if k != "min_lr"},
        "losses": losses, "loss_crop": train_cfg.get("loss_crop", 0),
        "teacher": teacher["model"] if teacher else None,
    }  # fmt: skip


def _new(config) -> dict:
    optimizer = config.optimizers["g"]
    schedule = optimizer.schedule
    data = config.to_dict()["data"]
    return {
        "arch": config.arch, "scale": config.scale, "seed": config.seed,
        "options": config.arch_options, "data": data, "iters": config.train.end,
        "ema": config.train.ema, "precision": config.train.precision,
        "clip": config.train.grad_clip,
        "optimizer": {"name": optimizer.name, "lr": optimizer.lr, "betas": optimizer.betas,
                      "weight_decay": optimizer.weight_decay, "momentum": optimizer.momentum},
        "schedule": {"name": schedule.name, "step_size": schedule.step_size,
                     "milestones": schedule.milestones, "gamma": schedule.gamma,
                     "warmup": schedule.warmup},
        "losses": [(t.name, round(t.weight, 9), t.target) for t in config.losses["g"]],
        "loss_crop": config.task_options.loss_crop,
        "teacher": config.teacher.model if config.teacher else None,
    }  # fmt: skip


@pytest.mark.parametrize("name", SHIPPED)
def test_recipe_follows_what_the_manifest_records(name, monkeypatch):
    """The chain of stages (names, iterations run, scales, data) is the one the shipped manifest
    records, and its last stage trains exactly as the recorded config did (the models shipped
    before the task engine decayed their cosine to 0: their recipes write min_lr 0)."""
    for variable in ("SRKIT_DATA", "SRKIT_WEIGHTS", "SRKIT_SET5"):
        monkeypatch.setenv(variable, f"${{{variable}}}")  # expand to themselves, as recorded
    manifest = json.loads((MODELS_DIR / f"{name}.json").read_text())
    recorded = manifest["training_recipe"]
    chain = _chain(RecipeRunner(show_progress=False), name)
    assert [s.name for _, s in chain] == [s["name"] for s in recorded["stages"]]
    ran = [0 if s.blend is not None else s.config.train.end for _, s in chain]  # blends: 0
    assert ran == [s["iterations"] for s in recorded["stages"]]
    assert [s.config.scale for _, s in chain] == [s["scale"] for s in recorded["stages"]]
    for (_, stage), record in zip(chain, recorded["stages"], strict=True):
        if record.get("training_data"):
            assert stage.config.data.train == record["training_data"], stage.name
        if "optimizers" not in recorded["config"]:  # written before the task engine
            assert stage.config.optimizers["g"].schedule.min_lr == 0.0
    last = [s for _, s in chain if s.blend is None][-1].config  # the last stage that trained
    if "optimizers" in recorded["config"]:  # written by the task engine: the config as run
        as_run, config = recorded["config"], last.to_dict()
        for key in ("arch", "scale", "seed", "task", "arch_options", "optimizers", "losses"):
            assert as_run[key] == config[key], key
        assert as_run["train"]["iters"] == config["train"]["iters"]
        assert as_run["train"].get("cut") == config["train"].get("cut")  # a run cut short
        assert last.train.end == recorded["iterations"]
        return
    expected = _old(recorded["config"])
    expected["iters"] = recorded["iterations"]
    assert _new(last) == expected


def _tiny_recipe(folder: Path, name: str, stages: list[dict], **top) -> Path:
    base = {
        "task": "supervised", "arch": "vdsr", "arch_options": {"depth": 3, "features": 8},
        "scale": 2, "seed": 1,
        "data": {"train": [SET5], "lr_patch": 10, "batch_size": 4, "workers": 0},
        "val": {"data": [SET5], "every": 0},
        "train": {"iters": 6, "checkpoint_every": 3, "device": "cpu"},
        "optimizers": {"g": {"lr": 1e-3}}, "losses": {"g": [{"name": "l1"}]},
    }  # fmt: skip
    stages = [_merge(base, stages[0]), *stages[1:]]
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"model": name, **top, "stages": stages}))
    return path


class CountingTrain:
    def __init__(self) -> None:
        self.runs: list[str] = []

    def __call__(self, config, out_dir, **kwargs):
        self.runs.append(config.name)
        return train(config, out_dir, **kwargs)


def test_runner_chains_recipes_skips_finished_stages_and_refuses_changed_ones(tmp_path):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    _tiny_recipe(
        recipes, "base_x2", [{"name": "b1"}, {"name": "b2", "optimizers": {"g": {"lr": 5e-4}}}]
    )
    top = _tiny_recipe(
        recipes, "top_x4",
        [{"name": "t1", "init": {"recipe": "base_x2", "stage": "b1"}, "scale": 4,
          "data": {"lr_patch": 6}}, {"name": "t2", "train": {"iters": 4}}],
    )  # fmt: skip
    counting = CountingTrain()
    runner = RecipeRunner(tmp_path / "runs", show_progress=False, train_fn=counting)
    # --stage 2 needs stage 1's output first
    with pytest.raises(ConfigError, match="starts from top_x4:t1, which is not trained yet"):
        runner.run(top, only_stage=2)
    result = runner.run(top)
    assert counting.runs == ["b1", "t1", "t2"]  # base_x2's b2 is not needed
    assert result == tmp_path / "runs" / "top_x4" / "02-t2" / "t2.safetensors"
    manifest = json.loads(result.with_suffix(".json").read_text())
    record = manifest["training_recipe"]["recipe"]
    assert record["model"] == "top_x4" and record["stage"] == "t2" and record["index"] == 2
    assert record["init"] == {"recipe": "top_x4", "stage": "t1"}
    t1 = json.loads((tmp_path / "runs/top_x4/01-t1/t1.json").read_text())["training_recipe"]
    assert t1["initialised_from"]["path"].endswith("base_x2/01-b1/b1.safetensors")
    assert t1["initialised_from"]["loaded"] > 0
    # everything done: nothing runs again; one stage can be rerun on demand only if not done
    counting.runs.clear()
    runner = RecipeRunner(tmp_path / "runs", show_progress=False, train_fn=counting)
    assert runner.run(top) == result and counting.runs == []
    # --iters-scale runs keep apart
    RecipeRunner(tmp_path / "runs", iters_scale=0.5, show_progress=False, train_fn=counting).run(
        top
    )
    assert counting.runs == ["b1", "t1", "t2"]
    assert (tmp_path / "runs" / "top_x4@0.5" / "02-t2" / "t2.safetensors").is_file()
    # a stage edited after it was trained is not silently taken as done
    raw = yaml.safe_load(top.read_text())
    raw["stages"][1]["train"]["iters"] = 5
    top.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="was trained from a different version of stage 't2'"):
        RecipeRunner(tmp_path / "runs", show_progress=False).run(top)


def test_recipe_mistakes_are_one_line_errors(tmp_path, no_shared):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    _tiny_recipe(recipes, "a_x2", [{"name": "a1", "init": {"recipe": "b_x2"}}])
    _tiny_recipe(recipes, "b_x2", [{"name": "b1", "init": {"recipe": "a_x2"}}])
    with pytest.raises(ConfigError, match="in a cycle: a_x2 -> b_x2 -> a_x2"):
        resolve_all(recipes / "a_x2.yaml")
    _tiny_recipe(recipes, "c_x2", [{"name": "c1", "init": {"recipe": "nowhere"}}])
    with pytest.raises(ConfigError, match="recipe not found: .*nowhere.yaml"):
        resolve_all(recipes / "c_x2.yaml")
    _tiny_recipe(recipes, "d_x2", [{"name": "d1"}, {"name": "d2", "init": {"stage": "d3"}}])
    with pytest.raises(ConfigError, match="init.stage 'd3' is not an earlier stage"):
        load_recipe(recipes / "d_x2.yaml")
    _tiny_recipe(
        recipes, "e_x2", [{"name": "e1"}, {"name": "e2", "optimizers": {"g": {"lr": "x"}}}]
    )
    with pytest.raises(ConfigError, match=r"e_x2.yaml stages\[1\] \(e2\).optimizers.g.lr"):
        load_recipe(recipes / "e_x2.yaml")
    _tiny_recipe(recipes, "f_x2", [{"name": "f1"}, {"name": "f1"}])
    with pytest.raises(ConfigError, match="'f1' is used twice"):
        load_recipe(recipes / "f_x2.yaml")
    (recipes / "g_x2.yaml").write_text("stages: []\n")
    with pytest.raises(ConfigError, match="'model'"):
        load_recipe(recipes / "g_x2.yaml")
    result = CliRunner().invoke(app, ["train", str(recipes / "a_x2.yaml")])
    assert result.exit_code == 1 and "cycle" in result.output and "Traceback" not in result.output


def test_a_pinned_init_file_must_have_its_sha256(tmp_path):
    source = train(
        RecipeRunner(show_progress=False).prepared(
            load_recipe(_tiny_recipe(tmp_path, "p_x2", [{"name": "p1"}])),
            load_recipe(tmp_path / "p_x2.yaml").stages[0], None,
        ), tmp_path / "p", show_progress=False,
    ).model_path  # fmt: skip
    pinned = _tiny_recipe(
        tmp_path, "q_x2", [{"name": "q1", "init": {"path": str(source), "sha256": "0" * 64}}]
    )
    with pytest.raises(ValueError, match="sha256 is [0-9a-f]{64}, the config pins 0000"):
        RecipeRunner(tmp_path / "runs", show_progress=False).run(pinned)


def test_a_stage_can_start_from_a_shipped_model(tmp_path):
    """``init: {model: NAME}``: the packaged weights, pinned by the manifest's sha256; the chain
    ends there (the shipped model's own recipe is not rerun)."""
    from srkit.zoo import find_model

    def espcn_recipe(name: str, init: dict) -> Path:
        stage = {
            "name": f"{name}1", "task": "supervised", "arch": "espcn", "scale": 4, "init": init,
            "data": {"train": [SET5], "lr_patch": 10, "batch_size": 2, "workers": 0},
            "val": {"data": [SET5], "every": 0},
            "train": {"iters": 2, "device": "cpu"}, "losses": {"g": [{"name": "l1"}]},
        }  # fmt: skip
        path = tmp_path / f"{name}_x4.yaml"
        path.write_text(yaml.safe_dump({"model": f"{name}_x4", "stages": [stage]}))
        return path

    recipe = espcn_recipe("ft", {"model": "espcn_x4"})
    counting = CountingTrain()
    runner = RecipeRunner(tmp_path / "runs", show_progress=False, train_fn=counting)
    out = runner.run(recipe)
    assert counting.runs == ["ft1"]  # espcn_x4's own chain was not trained
    shipped = find_model("espcn_x4", 4)
    record = json.loads((out.parent / "stage.json").read_text())
    assert record["recipe"]["init"] == {"model": "espcn_x4", "sha256": shipped.manifest["sha256"]}
    assert record["config"]["init"]["sha256"] == shipped.manifest["sha256"]
    assert [link[1].name for link in runner.chain(recipe)] == ["ft1"]
    start = load_file(shipped.weights_path)
    trained = load_file(out)
    assert set(start) <= set(trained)  # it trained the shipped network's layout, from its weights
    log = [json.loads(line) for line in (out.parent / "log.jsonl").read_text().splitlines()]
    assert log[0]["loaded"] == len(start)
    with pytest.raises(ConfigError, match="srkit ships no model 'nope'"):
        runner.run(espcn_recipe("bad", {"model": "nope"}))
    twice = espcn_recipe("two", {"model": "espcn_x4", "path": "x.safetensors"})
    with pytest.raises(ConfigError, match="one of recipe/stage, path or model"):
        load_recipe(twice)


def _tuning_stage(arch: str, *, lr_patch: int, iters: int, lr: float) -> dict:
    """A few L1 iterations on Set5 from the shipped ``<arch>_x4``: the start of a blend."""
    return {
        "name": "tune", "task": "supervised", "arch": arch, "scale": 4,
        "init": {"model": f"{arch}_x4"},
        "data": {"train": [SET5], "lr_patch": lr_patch, "batch_size": 2, "workers": 0},
        "val": {"data": [SET5], "every": 0},
        "train": {"iters": iters, "device": "cpu"}, "optimizers": {"g": {"lr": lr}},
        "losses": {"g": [{"name": "l1"}]},
    }  # fmt: skip


def test_a_blend_stage_interpolates_with_a_shipped_model(tmp_path):
    """``blend: {model, weight}``: (1 - w) * start + w * model, no training (ESRGAN's network
    interpolation); w = 1 gives the shipped weights back exactly, 0.5 their midpoint."""
    from srkit.zoo import find_model

    stage = _tuning_stage("espcn", lr_patch=10, iters=3, lr=1e-2)
    stages = [stage, {"name": "half", "blend": {"model": "espcn_x4", "weight": 0.5}}]
    stages.append({"name": "back", "init": {"stage": "tune"}, "blend": {"model": "espcn_x4",
                   "weight": 1.0}})  # fmt: skip
    path = tmp_path / "mix_x4.yaml"
    path.write_text(yaml.safe_dump({"model": "mix_x4", "stages": stages}))
    counting = CountingTrain()
    runner = RecipeRunner(tmp_path / "runs", show_progress=False, train_fn=counting)
    recipe = load_recipe(path)
    runner.run(path)
    assert counting.runs == ["tune"]  # the blend stages trained nothing
    tuned = load_file(runner.output(recipe, recipe.stages[0]))
    half = load_file(runner.output(recipe, recipe.stages[1]))
    back = load_file(runner.output(recipe, recipe.stages[2]))
    shipped = find_model("espcn_x4", 4)
    original = load_file(shipped.weights_path)
    assert any(not torch.equal(tuned[k], original[k]) for k in original)  # it did train
    for key, value in original.items():
        assert torch.equal(back[key], value)
        torch.testing.assert_close(half[key], (tuned[key] + value) / 2, rtol=0, atol=1e-7)
    manifest = json.loads(runner.output(recipe, recipe.stages[1]).with_suffix(".json").read_text())
    blend = manifest["training_recipe"]["blend"]
    assert blend["weight"] == 0.5 and blend["other"]["sha256"] == shipped.manifest["sha256"]
    assert manifest["scores"] == {}
    record = json.loads((runner.stage_dir(recipe, recipe.stages[1]) / "stage.json").read_text())
    assert record["iterations"] == 0 and record["recipe"]["blend"]["model"] == "espcn_x4"
    assert runner.is_done(recipe, recipe.stages[1])
    bad = tmp_path / "bad_x4.yaml"
    bad.write_text(yaml.safe_dump({"model": "bad_x4", "stages": [
        {**stage, "name": "b", "blend": {"model": "espcn_x4", "weight": 2}}]}))  # fmt: skip
    with pytest.raises(ConfigError, match="weight must be in"):
        load_recipe(bad)


def test_an_image_space_blend_keeps_both_networks_and_blends_their_outputs(tmp_path):
    """``blend: {..., space: image}`` writes the arch's pair form (``repan_pair``): the stage's
    network and the shipped one unchanged, the output ``(1 - w) * start(x) + w * model(x)``. A
    changed blend weight refuses the finished stage; an arch without a pair form is an error."""
    from srkit.models import resolve_model
    from srkit.zoo import find_model

    stage = _tuning_stage("repan", lr_patch=8, iters=2, lr=1e-3)
    pair_stage = {"name": "pair", "blend": {"model": "repan_x4", "weight": 0.4, "space": "image"}}
    path = tmp_path / "pair_x4.yaml"
    path.write_text(yaml.safe_dump({"model": "pair_x4", "stages": [stage, pair_stage]}))
    runner = RecipeRunner(tmp_path / "runs", show_progress=False, train_fn=CountingTrain())
    recipe = load_recipe(path)
    runner.run(path)
    out = runner.output(recipe, recipe.stages[1])
    manifest = json.loads(out.with_suffix(".json").read_text())
    assert manifest["arch"] == "repan_pair" and manifest["options"]["mix"] == 0.4
    assert manifest["training_recipe"]["blend"]["space"] == "image"
    shipped = find_model("repan_x4", 4)
    assert manifest["params"] == 2 * shipped.manifest["params"]
    state = load_file(out)
    tuned = load_file(runner.output(recipe, recipe.stages[0]))
    original = load_file(shipped.weights_path)
    for key, value in original.items():
        assert torch.equal(state[f"second.{key}"], value)
        assert torch.equal(state[f"first.{key}"], tuned[key])
    assert any(not torch.equal(tuned[k], original[k]) for k in original)  # it did train
    lr = torch.rand(1, 3, 12, 10, generator=torch.Generator().manual_seed(0))
    pair = resolve_model(str(out), 4)(lr)
    expected = 0.6 * resolve_model(str(runner.output(recipe, recipe.stages[0])), 4)(lr)
    expected += 0.4 * resolve_model("repan_x4", 4)(lr)
    torch.testing.assert_close(pair, expected, rtol=0, atol=1e-5)
    # shipped beside the model it blends with, the pair stores its first network only
    from srkit.weights import WeightsError

    alone, beside = tmp_path / "alone", tmp_path / "beside"
    beside.mkdir()
    for suffix in (".json", ".safetensors"):
        (beside / f"repan_x4{suffix}").write_bytes(shipped.path.with_suffix(suffix).read_bytes())
    whole = ship(path, models_dir=alone, runs=tmp_path / "runs")
    split = ship(path, models_dir=beside, runs=tmp_path / "runs")
    assert (
        "includes" not in whole and load_file(alone / "pair_x4.safetensors").keys() == state.keys()
    )
    assert split["includes"] == [{"prefix": "second.", "weights": "repan_x4.safetensors",
                                  "sha256": shipped.manifest["sha256"]}]  # fmt: skip
    assert all(k.startswith("first.") for k in load_file(beside / "pair_x4.safetensors"))
    assert split["scores"]["set5"]["modern"] == whole["scores"]["set5"]["modern"]
    torch.testing.assert_close(resolve_model(str(beside / "pair_x4.json"), 4)(lr), pair,
                               rtol=0, atol=0)  # fmt: skip
    # the output cache knows the mix (it holds no tensor); the fast path watches included files
    from srkit.deploy import export_key
    from srkit.infer.fastpath import _files_of

    split_model = resolve_model(str(beside / "pair_x4.json"), 4)
    other_mix = resolve_model(str(beside / "pair_x4.json"), 4)
    other_mix.info = {**other_mix.info, "options": {**other_mix.info["options"], "mix": 0.5}}
    other_mix.net.mix = 0.5
    assert export_key(split_model) != export_key(other_mix)
    assert str(beside / "repan_x4.safetensors") in _files_of(split_model)
    assert runner.is_done(recipe, recipe.stages[1])
    alias = {**pair_stage, "blend": {**pair_stage["blend"], "model": "REPAN_X4"}}
    path.write_text(yaml.safe_dump({"model": "pair_x4", "stages": [stage, alias]}))
    assert runner.is_done(load_recipe(path), load_recipe(path).stages[1])  # same shipped model
    # reshipping the included model first gives the pair its tensors back in its own file
    again = beside / "again"
    again.mkdir()
    for suffix in (".json", ".safetensors"):
        (again / f"pair_x4{suffix}").write_bytes((beside / f"pair_x4{suffix}").read_bytes())
        (again / f"repan_x4{suffix}").write_bytes((beside / f"repan_x4{suffix}").read_bytes())
    ship(shipped.path, name="repan_x4", models_dir=again)
    whole_again = json.loads((again / "pair_x4.json").read_text())
    assert "includes" not in whole_again
    assert load_file(again / "pair_x4.safetensors").keys() == state.keys()
    torch.testing.assert_close(resolve_model(str(again / "pair_x4.json"), 4)(lr), pair,
                               rtol=0, atol=0)  # fmt: skip
    (beside / "repan_x4.safetensors").write_bytes(b"changed")
    with pytest.raises(WeightsError, match="does not match the manifest"):
        resolve_model(str(beside / "pair_x4.json"), 4)
    (beside / "repan_x4.safetensors").unlink()
    with pytest.raises(WeightsError, match="included weights file .* is missing"):
        resolve_model(str(beside / "pair_x4.json"), 4)
    pair_stage["blend"]["weight"] = 0.5
    path.write_text(yaml.safe_dump({"model": "pair_x4", "stages": [stage, pair_stage]}))
    with pytest.raises(ConfigError, match="different version of stage 'pair'"):
        runner.is_done(load_recipe(path), load_recipe(path).stages[1])
    espcn = {**stage, "arch": "espcn", "init": {"model": "espcn_x4"}, "name": "e"}
    bad = tmp_path / "bad_x4.yaml"
    bad.write_text(yaml.safe_dump({"model": "bad_x4", "stages": [espcn, {"name": "p", "blend": {
        "model": "espcn_x4", "weight": 0.5, "space": "image"}}]}))  # fmt: skip
    with pytest.raises(ConfigError, match="espcn has no pair architecture"):
        load_recipe(bad)  # before anything is trained
    wrong = tmp_path / "wrong_x4.yaml"
    wrong.write_text(yaml.safe_dump({"model": "wrong_x4", "stages": [stage, {"name": "p",
        "blend": {"model": "repan_x4", "space": "pixels"}}]}))  # fmt: skip
    with pytest.raises(ConfigError, match="space must be one of network, image"):
        load_recipe(wrong)


def test_a_killed_recipe_resumes_bit_exactly(tmp_path):
    recipe = _tiny_recipe(tmp_path, "k_x2", [{"name": "k1"}, {"name": "k2", "train": {"iters": 6}}])

    def run(root: Path, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "srkit.cli", "train", str(recipe), "--out", str(root)],
            env={**os.environ, **(env or {})}, capture_output=True, text=True,
        )  # fmt: skip

    assert run(tmp_path / "straight").returncode == 0
    killed = run(tmp_path / "split", {"SRKIT_DEBUG_KILL_AT": "3"})  # stage 1, iteration 3
    assert killed.returncode == -9
    done = run(tmp_path / "split")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming" in done.stdout
    a = load_file(str(tmp_path / "straight/k_x2/02-k2/k2.safetensors"))
    b = load_file(str(tmp_path / "split/k_x2/02-k2/k2.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_ship_lists_a_recipe_result_with_its_chain(tmp_path):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    recipe = _tiny_recipe(
        recipes, "s_x2", [{"name": "s1"}, {"name": "s2"}], ship={"default": True, "paper": 33.0}
    )
    RecipeRunner(tmp_path / "runs", show_progress=False).run(recipe)
    zoo = tmp_path / "zoo"
    manifest = ship(recipe, models_dir=zoo, runs=tmp_path / "runs")
    assert manifest["name"] == "s_x2" and manifest["scores"]["paper_set5_psnr"] == 33.0
    stages = manifest["training_recipe"]["stages"]
    assert [s["name"] for s in stages] == ["s1", "s2"] and stages[0]["iterations"] == 6
    assert manifest["training_recipe"]["recipe"]["path"].endswith("s_x2.yaml")
    assert manifest["training_recipe"]["config"]["val"]["data"] == ["${SRKIT_SET5}"]
    index = json.loads((zoo / "index.json").read_text())["models"]
    assert index == [{"name": "s_x2", "default": True, "recipe": "recipes/s_x2.yaml"}]
    assert (zoo / "s_x2.safetensors").is_file()
    set5 = manifest["scores"]["set5"]
    assert 20 < set5["modern"]["psnr"] < 40 and "legacy" in set5
    # an untrained recipe is a clear error, through the CLI too
    other = _tiny_recipe(recipes, "u_x2", [{"name": "u1"}])
    result = CliRunner().invoke(
        app, ["ship", str(other), "--runs", str(tmp_path / "runs"), "--into", str(zoo)]
    )
    assert result.exit_code == 1 and "is not trained" in result.output
