"""The task interface: a two-network task trained by the unchanged trainer, its bit-exact
resume after kill -9, the Batch, and loss terms that declare what they need."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from srkit.config import ConfigError
from srkit.data.builtin import bundled_set5
from srkit.losses import LossTerm, WeightedLoss, check_terms
from srkit.train.batch import Batch, collate
from srkit.train.experiment import load_experiment
from srkit.train.tasks import task_class
from srkit.train.trainer import train

HERE = Path(__file__).parent
SET5 = str(bundled_set5())


def two_network_config(tmp_path: Path, **task_options) -> Path:
    config = {
        "name": "pair",
        "task": "two_network_task:TwoNetworkTask",
        "arch": "edsr_baseline",
        "arch_options": {"blocks": 1, "features": 8},
        "scale": 2,
        "seed": 5,
        "data": {"train": [SET5], "lr_patch": 8, "batch_size": 4, "workers": 1},
        "val": {"every": 0},
        "train": {"iters": 30, "checkpoint_every": 10, "ema": 0.9, "device": "cpu"},
        "optimizers": {
            "g": {"lr": 1e-3, "schedule": {"name": "cosine", "min_lr": 1e-4}},
            "d": {"lr": 4e-4, "betas": [0.5, 0.999]},
        },
        "losses": {"g": [{"name": "l1"}]},
        "two_network_task:TwoNetworkTask": {"d_steps": 2, **task_options},
    }
    path = tmp_path / "pair.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _cli(args: list[str], env_extra: dict | None = None) -> subprocess.CompletedProcess:
    path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "srkit.cli", "train", *args], env=env,
                          capture_output=True, text=True)  # fmt: skip


def test_two_network_task_resumes_bit_exactly_after_kill_9(tmp_path):
    config = two_network_config(tmp_path)
    straight = _cli([str(config), "--out", str(tmp_path / "straight")])
    assert straight.returncode == 0, straight.stderr[-2000:]
    killed = _cli([str(config), "--out", str(tmp_path / "split")], {"SRKIT_DEBUG_KILL_AT": "20"})
    assert killed.returncode == -9
    assert not (tmp_path / "split" / "pair.pt").exists()
    resumed = _cli([str(config), "--out", str(tmp_path / "split"), "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming" in resumed.stdout
    a = torch.load(tmp_path / "straight" / "last.ckpt", weights_only=True)
    b = torch.load(tmp_path / "split" / "last.ckpt", weights_only=True)
    assert set(a["networks"]) == {"g", "d"} and set(a["optimizers"]) == {"g", "d"}
    for part in ("networks", "ema"):
        for name, state in a[part].items():
            for key, value in state.items():
                assert torch.equal(value, b[part][name][key]), (part, name, key)
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])
    for name in ("g", "d"):  # the optimizers' moments too
        for slot, state in a["optimizers"][name]["state"].items():
            assert torch.equal(state["exp_avg"], b["optimizers"][name]["state"][slot]["exp_avg"])
    exported = torch.load(tmp_path / "straight" / "pair.pt", weights_only=True)
    assert set(exported) == {"g", "d"}  # the EMA of g, d as trained


def test_discriminator_warm_up_leaves_the_generator_alone(tmp_path):
    sys.path.insert(0, str(HERE))
    try:
        config = load_experiment(two_network_config(tmp_path, d_warmup=30))
        result = train(config, tmp_path / "warm", show_progress=False)
    finally:
        sys.path.remove(str(HERE))
    state = torch.load(result.out_dir / "last.ckpt", weights_only=True)
    torch.manual_seed(config.seed)  # the generator as built: the trainer seeds before build
    from srkit.archs import build

    fresh = build(config.arch, scale=config.scale, **config.arch_options).state_dict()
    assert all(torch.equal(fresh[k], v) for k, v in state["networks"]["g"].items())
    assert state["optimizers"]["d"]["state"]  # the discriminator did train
    assert not state["optimizers"]["g"]["state"]


def test_task_sections_and_names_are_checked(tmp_path):
    sys.path.insert(0, str(HERE))
    try:
        with pytest.raises(ConfigError, match="d need an optimizer"):
            path = two_network_config(tmp_path)
            raw = yaml.safe_load(path.read_text())
            del raw["optimizers"]["d"]
            path.write_text(yaml.safe_dump(raw))
            load_experiment(path)
        with pytest.raises(
            ConfigError, match="unknown key 'two_network_task:TwoNetworkTask.d_step'"
        ):
            load_experiment(two_network_config(tmp_path, d_step=3))
    finally:
        sys.path.remove(str(HERE))
    with pytest.raises(ValueError, match="cannot be imported"):
        task_class("no_such_module:Task")
    with pytest.raises(ValueError, match="not a srkit.train.task.Task"):
        task_class("srkit.losses:LossTerm")


def test_batch_collates_moves_and_refuses_unknown_fields():
    samples = [{"lr": torch.rand(3, 4, 4), "hr": torch.rand(3, 8, 8)} for _ in range(3)]
    batch = collate(samples)
    assert batch.lr.shape == (3, 3, 4, 4) and batch.hr.shape == (3, 3, 8, 8) and len(batch) == 3
    assert batch.present() == {"lr", "hr"} and batch.landmarks is None
    assert batch.to(torch.device("cpu")).present() == {"lr", "hr"}
    with pytest.raises(ValueError, match="unknown batch fields: \\['extra'\\]"):
        collate([{"lr": torch.rand(3, 4, 4), "extra": torch.rand(2)}])


def test_loss_terms_say_what_they_need_before_training():
    terms = [LossTerm("l1"), LossTerm("mse", 0.5, target="teacher")]
    with pytest.raises(ValueError, match=r"losses\[1\] \(mse\) needs batch field\(s\) teacher"):
        check_terms(terms, net_channels="rgb", fields={"lr", "hr"})
    check_terms(terms, net_channels="rgb", fields={"lr", "hr", "teacher"})
    with pytest.raises(ValueError, match="compares RGB images, but the network outputs Y"):
        check_terms([LossTerm("l1", channels="rgb")], net_channels="y", fields={"hr"})
    with pytest.raises(ValueError, match="unknown loss 'vgg9'"):
        LossTerm("vgg9")


def test_weighted_loss_values_channels_and_crop():
    torch.manual_seed(0)
    sr, hr, teacher = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    batch = Batch(lr=torch.rand(2, 3, 4, 4), hr=hr, teacher=teacher)
    loss = WeightedLoss([LossTerm("l1", 0.25), LossTerm("mse", 0.75, target="teacher")])
    total, parts = loss(sr, batch)
    l1 = (sr - hr).abs().mean()
    mse = (sr - teacher).pow(2).mean()
    assert torch.allclose(parts["l1"], l1) and torch.allclose(parts["mse@teacher"], mse)
    assert torch.allclose(total, 0.25 * l1 + 0.75 * mse)
    # Y of both sides; and a crop of 2 pixels leaves the 4x4 centre
    from srkit.image.color import rgb_to_y

    y_total, _ = WeightedLoss([LossTerm("l1", channels="y")], crop=2)(sr, batch)
    expected = (rgb_to_y(sr) - rgb_to_y(hr))[..., 2:6, 2:6].abs().mean()
    assert torch.allclose(y_total, expected)
    # a Y network's output compared with the Y of the RGB target
    y_net, _ = WeightedLoss([LossTerm("l1")], net_channels="y")(rgb_to_y(sr), batch)
    assert torch.allclose(y_net, (rgb_to_y(sr) - rgb_to_y(hr)).abs().mean())
