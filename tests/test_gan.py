"""The GAN task: a tiny generator against a tiny discriminator on the bundled Set5, resumed
bit-exactly after kill -9, a discriminator-only warm-up that leaves the (warm-started) generator
as it was, every adversarial kind training with finite losses, and its configuration checks."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from srkit.archs import build
from srkit.config import ConfigError
from srkit.data.builtin import bundled_set5
from srkit.train.experiment import load_experiment
from srkit.train.trainer import train
from srkit.weights import load_network, save_model

SET5 = str(bundled_set5())
TINY_G = {"blocks": 1, "features": 8}
# tiny discriminators for 16 x 16 HR patches (lr_patch 8, x2)
TINY_D = {
    "srgan_vgg": {"features": 4, "dense": 16, "input_size": 16},
    "unet_sn": {"features": 4},
    "patchgan": {"features": 4, "layers": 2},
}


def gan_config(tmp_path: Path, name: str = "gan", **overrides) -> Path:
    gan = {"discriminator": {"arch": "srgan_vgg", "options": TINY_D["srgan_vgg"]}}
    gan.update(overrides.pop("gan", {}))
    config = {
        "name": name,
        "task": "gan",
        "arch": "edsr_baseline",
        "arch_options": TINY_G,
        "scale": 2,
        "seed": 7,
        "data": {"train": [SET5], "lr_patch": 8, "batch_size": 4, "workers": 1},
        "val": {"every": 0},
        "train": {
            "iters": 10,
            "checkpoint_every": 2,
            "ema": 0.9,
            "device": "cpu",
            "log_every": 1,
        },  # fmt: skip
        "optimizers": {
            "g": {"lr": 1e-3, "schedule": {"name": "cosine", "min_lr": 1e-4}},
            "d": {
                "lr": 4e-4,
                "betas": [0.5, 0.999],
                "schedule": {"name": "step", "step_size": 4, "gamma": 0.5},
            },  # fmt: skip
        },
        "losses": {"g": [{"name": "l1"}]},
        "gan": gan,
        **overrides,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _cli(args: list[str], env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "srkit.cli", "train", *args], env=env,
                          capture_output=True, text=True)  # fmt: skip


def _same_tensors(a, b, where: str) -> None:
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _same_tensors(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same_tensors(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_gan_resumes_bit_exactly_after_kill_9(tmp_path):
    # spectral norm (power-iteration buffers), the gradient penalty's random interpolates, two
    # discriminator steps, a warm-up that ends after the kill and a stepped d schedule
    config = gan_config(
        tmp_path,
        gan={"discriminator": {"arch": "unet_sn", "options": TINY_D["unet_sn"]},
             "kind": "wgan_gp", "d_steps": 2, "d_warmup": 2},
    )  # fmt: skip
    straight = _cli([str(config), "--out", str(tmp_path / "straight")])
    assert straight.returncode == 0, straight.stderr[-2000:]
    killed = _cli([str(config), "--out", str(tmp_path / "split")], {"SRKIT_DEBUG_KILL_AT": "6"})
    assert killed.returncode == -9
    assert not (tmp_path / "split" / "gan.safetensors").exists()
    resumed = _cli([str(config), "--out", str(tmp_path / "split"), "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming" in resumed.stdout and "iteration 6/10" in resumed.stdout
    a = torch.load(tmp_path / "straight" / "last.ckpt", weights_only=True)
    b = torch.load(tmp_path / "split" / "last.ckpt", weights_only=True)
    assert set(a["networks"]) == {"g", "d"} and set(a["optimizers"]) == {"g", "d"}
    assert set(a["ema"]) == {"g"}
    assert any(k.endswith("weight_u") for k in a["networks"]["d"])
    for part in ("networks", "ema", "optimizers", "schedulers"):
        _same_tensors(a[part], b[part], part)
    assert a["optimizers"]["g"]["state"] and a["optimizers"]["d"]["state"]
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])
    assert a["iteration"] == b["iteration"] == 10
    # the exported generator (the EMA of g) is the same file
    exported = [(tmp_path / run / "gan.safetensors").read_bytes() for run in ("straight", "split")]
    assert exported[0] == exported[1]
    manifest = json.loads((tmp_path / "straight" / "gan.json").read_text())
    assert manifest["arch"] == "edsr_baseline" and manifest["options"]["features"] == 8
    assert manifest["training_recipe"]["config"]["gan"]["kind"] == "wgan_gp"
    assert manifest["purpose"] == "perceptual"  # srkit models lists GAN generators as such


def test_d_warmup_leaves_the_warm_started_generator_unchanged(tmp_path):
    torch.manual_seed(123)
    psnr_net = build("edsr_baseline", scale=2, **TINY_G)
    init = tmp_path / "psnr.safetensors"
    save_model(psnr_net, init, arch="edsr_baseline", scale=2, options=TINY_G)
    config = load_experiment(
        gan_config(tmp_path, init={"path": str(init)}, train={
            "iters": 4, "checkpoint_every": 4, "ema": 0.9, "device": "cpu", "log_every": 1},
            gan={"d_warmup": 4, "kind": "vanilla"})
    )  # fmt: skip
    result = train(config, tmp_path / "warm", show_progress=False)
    state = torch.load(result.out_dir / "last.ckpt", weights_only=True)
    start = psnr_net.state_dict()
    assert all(torch.equal(start[k], v) for k, v in state["networks"]["g"].items())
    assert all(torch.equal(start[k], v) for k, v in state["ema"]["g"].items())
    assert state["optimizers"]["d"]["state"]  # the discriminator did train
    assert not state["optimizers"]["g"]["state"]
    exported, *_ = load_network(result.model_path)
    assert all(torch.equal(start[k], v) for k, v in exported.state_dict().items())
    manifest = json.loads(result.model_path.with_suffix(".json").read_text())
    assert manifest["training_recipe"]["initialised_from"]["loaded"] == len(start)
    records = [json.loads(line) for line in (result.out_dir / "log.jsonl").open()]
    steps = [r for r in records if "loss_d" in r]
    assert len(steps) == 4 and not any("adversarial" in r for r in steps)


@pytest.mark.parametrize(
    ("kind", "discriminator"),
    [("vanilla", "srgan_vgg"), ("lsgan", "patchgan"), ("hinge", "unet_sn"),
     ("wgan_gp", "patchgan"), ("ragan", "srgan_vgg")],
)  # fmt: skip
def test_each_adversarial_kind_trains_with_finite_losses(tmp_path, kind, discriminator):
    config = load_experiment(
        gan_config(tmp_path, train={"iters": 3, "checkpoint_every": 3, "device": "cpu",
                                    "log_every": 1},
                   gan={"kind": kind, "discriminator": {"arch": discriminator,
                                                        "options": TINY_D[discriminator]}})
    )  # fmt: skip
    torch.manual_seed(config.seed)
    g0 = build("edsr_baseline", scale=2, **TINY_G).state_dict()
    result = train(config, tmp_path / kind, show_progress=False)
    records = [json.loads(line) for line in (result.out_dir / "log.jsonl").open()]
    steps = [r for r in records if "loss_d" in r]
    assert [r["iter"] for r in steps] == [1, 2, 3]
    keys = {"loss", "loss_d", "adversarial", "l1"} | ({"gp"} if kind == "wgan_gp" else set())
    for record in steps:
        assert keys <= set(record), record
        assert all(math.isfinite(record[k]) for k in keys), record
    state = torch.load(result.out_dir / "last.ckpt", weights_only=True)
    assert not all(torch.equal(g0[k], v) for k, v in state["networks"]["g"].items())
    assert state["optimizers"]["g"]["state"] and state["optimizers"]["d"]["state"]
    assert math.isfinite(result.validation[-1]["val"]["Set5"]["psnr"])


def test_gan_configuration_is_checked_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="losses.d: the discriminator's loss is gan.kind"):
        load_experiment(gan_config(tmp_path, losses={"g": [{"name": "l1"}],
                                                     "d": [{"name": "l1"}]}))  # fmt: skip
    with pytest.raises(ConfigError, match="the generator must output RGB; fsrcnn outputs Y"):
        load_experiment(gan_config(tmp_path, arch="fsrcnn", arch_options={}))
    with pytest.raises(ConfigError, match="srgan_vgg cannot read the 16 x 16 HR patches.*takes "
                       "128 x 128 inputs"):  # fmt: skip
        load_experiment(gan_config(tmp_path, gan={"discriminator": {"arch": "srgan_vgg"}}))
    with pytest.raises(ConfigError, match="unknown discriminator 'vgg'"):
        load_experiment(gan_config(tmp_path, gan={"discriminator": {"arch": "vgg"}}))
    with pytest.raises(ConfigError, match="patchgan: unknown option\\(s\\) width"):
        load_experiment(
            gan_config(
                tmp_path, gan={"discriminator": {"arch": "patchgan", "options": {"width": 2}}}
            )
        )
    with pytest.raises(ConfigError, match="gan.kind"):
        load_experiment(gan_config(tmp_path, gan={"kind": "wgan"}))
    with pytest.raises(ConfigError, match="d_steps must be >= 1"):
        load_experiment(gan_config(tmp_path, gan={"d_steps": 0}))
    path = gan_config(tmp_path)
    raw = yaml.safe_load(path.read_text())
    del raw["optimizers"]["d"]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="d need an optimizer"):
        load_experiment(path)


def test_the_generators_loss_networks_move_to_the_tasks_device(tmp_path):
    # the perceptual term's feature network must run where the generator runs (a GPU in real
    # use); the meta device stands in for it: nothing of the task may stay on the CPU
    from srkit.train.task import TaskContext
    from srkit.train.tasks import task_class

    path = gan_config(tmp_path, losses={"g": [{"name": "l1"}, {"name": "perceptual", "options": {
        "network": "stlpips_alex", "layers": {"relu1": 1.0}}}]})  # fmt: skip
    config = load_experiment(path)
    task = task_class("gan")(config, TaskContext(device=torch.device("meta"), show_progress=False))
    task.build(resuming=False)
    tensors = [*task.criterion.parameters(), *task.criterion.buffers()]
    assert tensors  # the perceptual term holds the AlexNet trunk
    assert {t.device.type for t in tensors} == {"meta"}
    for name in ("g", "d"):
        assert {p.device.type for p in task.networks[name].parameters()} == {"meta"}


@pytest.mark.parametrize(
    ("kind", "discriminator", "port"),
    [("wgan_gp", "unet_sn", 29551), ("ragan", "srgan_vgg", 29552)],
)
def test_gan_under_ddp_keeps_identical_replicas(tmp_path, kind, discriminator, port):
    # two processes (gloo): the gradient penalty's double backward through the DDP-wrapped
    # discriminator (spectral norm), and batch norm's buffers (the SRGAN discriminator)
    options = {"arch": discriminator, "options": TINY_D[discriminator]}
    path = gan_config(tmp_path, gan={"kind": kind, "discriminator": options},
                      train={"iters": 6, "checkpoint_every": 6, "ema": 0.9, "device": "cpu",
                             "log_every": 1})  # fmt: skip
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
               f"--master_port={port}", "-m", "srkit.cli", "train", str(path), "--out",
               str(out)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ})
    assert done.returncode == 0, done.stderr[-3000:]
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert any(r.get("world_size") == 2 for r in log)
    check = [r for r in log if "replicas_identical" in r]
    assert check and check[-1]["replicas_identical"] is True
    steps = [r for r in log if "loss_d" in r]
    assert steps and all(math.isfinite(r["loss_d"]) for r in steps)
    if kind == "wgan_gp":
        assert all(math.isfinite(r["gp"]) and r["gp"] >= 0 for r in steps)
    assert (out / "gan.safetensors").exists()


def test_ldl_artifact_term_compares_with_the_ema_and_needs_it(tmp_path):
    with pytest.raises(ConfigError, match="artifact_weight compares the generator with its EMA"):
        load_experiment(gan_config(tmp_path, gan={"artifact_weight": 1.0},
                                   train={"iters": 3, "device": "cpu"}))  # fmt: skip
    with pytest.raises(ConfigError, match="artifact_window must be odd"):
        load_experiment(gan_config(tmp_path, gan={"artifact_weight": 1.0, "artifact_window": 4}))
    config = load_experiment(
        gan_config(tmp_path, gan={"artifact_weight": 1.0, "kind": "ragan"},
                   train={"iters": 4, "checkpoint_every": 4, "ema": 0.5, "device": "cpu",
                          "log_every": 1})
    )  # fmt: skip
    result = train(config, tmp_path / "ldl", show_progress=False)
    steps = [json.loads(line) for line in (result.out_dir / "log.jsonl").open()]
    values = [r["artifacts"] for r in steps if "artifacts" in r]
    assert len(values) == 4 and all(math.isfinite(v) and v >= 0 for v in values)
    assert any(v > 0 for v in values)  # the EMA differs from the generator after the first step
