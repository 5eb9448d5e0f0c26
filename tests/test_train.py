"""`srkit train`: learning, bit-exact resume after kill -9, DDP, config errors, transfer, KD."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file
from typer.testing import CliRunner

from srkit.bench import evaluate_model
from srkit.cli import app
from srkit.config import ConfigError
from srkit.data.builtin import bundled_set5
from srkit.data.degrade import Degradation
from srkit.models import resolve_model
from srkit.train.config import ScheduleConfig
from srkit.train.data import BatchKeys, ImageCache, PatchDataset
from srkit.train.experiment import load_experiment
from srkit.train.prepare import prepare, window_starts
from srkit.train.task import Ema, lr_factor
from srkit.train.trainer import resolve_device, train

SET5 = str(bundled_set5())


def write_config(tmp_path: Path, **changes) -> Path:
    """A tiny VDSR-style experiment on the bundled Set5 (its own training images)."""
    config = {
        "name": "tiny",
        "arch": "vdsr",
        "arch_options": {"depth": 4, "features": 16},
        "scale": 2,
        "seed": 3,
        "data": {"train": [SET5], "lr_patch": 12, "batch_size": 8, "workers": 0},
        "val": {"data": [SET5], "every": 0},
        "train": {
            "iters": 300,
            "checkpoint_every": 100,
            "log_every": 10,
            "device": "cpu",  # bit-exact resume and DDP here are CPU properties
        },
        "optimizers": {
            "g": {
                "name": "adam",
                "lr": 1e-3,
                "schedule": {"name": "multistep", "milestones": [200], "gamma": 0.5},
            }
        },
        "losses": {"g": [{"name": "l1"}]},
    }
    for dotted, value in changes.items():
        node = config
        *parents, last = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_tiny_run_beats_bicubic_on_its_training_images(tmp_path):
    config = load_experiment(write_config(tmp_path))
    result = train(config, tmp_path / "run", show_progress=False)
    bicubic = evaluate_model(resolve_model("bicubic", 2), SET5, 2)
    trained = evaluate_model(resolve_model(str(result.model_path), 2), SET5, 2)
    assert trained.psnr > bicubic.psnr + 0.3, (trained.psnr, bicubic.psnr)
    manifest = json.loads(result.model_path.with_suffix(".json").read_text())
    assert manifest["arch"] == "vdsr" and manifest["scale"] == 2
    assert manifest["training_recipe"]["iterations"] == 300
    assert manifest["scores"]["validation"]["psnr"] == pytest.approx(trained.psnr, abs=1e-6)
    start = json.loads((result.out_dir / "log.jsonl").read_text().splitlines()[0])
    assert start["device"].split(":")[0] == ("cuda" if torch.cuda.is_available() else "cpu")


def _run_cli(args: list[str], env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "srkit.cli", *args], env=env, capture_output=True, text=True
    )


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "tiny.safetensors"))


def test_resume_after_kill_9_is_bit_exact(tmp_path):
    config = write_config(
        tmp_path, data__workers=1, train__iters=40, train__ema=0.9, train__checkpoint_every=20
    )
    straight = _run_cli(["train", str(config), "--out", str(tmp_path / "straight")])
    assert straight.returncode == 0, straight.stderr
    killed = _run_cli(
        ["train", str(config), "--out", str(tmp_path / "split")], {"SRKIT_DEBUG_KILL_AT": "20"}
    )
    assert killed.returncode == -9  # SIGKILL right after the checkpoint at iteration 20
    assert not (tmp_path / "split" / "tiny.safetensors").exists()
    resumed = _run_cli(["train", str(config), "--out", str(tmp_path / "split"), "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "split")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_ddp_two_processes_keep_identical_replicas(tmp_path):
    config = write_config(tmp_path, train__iters=20, train__checkpoint_every=20)
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
               "--master_port=29533", "-m", "srkit.cli", "train", str(config), "--out",
               str(out)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ})
    assert done.returncode == 0, done.stderr[-3000:]
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    check = [r for r in log if "replicas_identical" in r]
    assert check and check[-1]["replicas_identical"] is True
    assert any(r.get("world_size") == 2 for r in log)
    # the global batch is split, not duplicated: the result follows a single-process run
    single = train(load_experiment(config), tmp_path / "single", show_progress=False)
    ddp_weights = _weights(out)
    for key, value in load_file(str(single.model_path)).items():
        torch.testing.assert_close(ddp_weights[key], value, atol=1e-4, rtol=0)


def test_config_mistakes_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'data.batchsize'"):
        load_experiment(write_config(tmp_path, data__batchsize=4))
    with pytest.raises(ConfigError, match=r"optimizers.g.lr: expected a number"):
        load_experiment(write_config(tmp_path, optimizers={"g": {"lr": "fast"}}))
    with pytest.raises(ConfigError, match="optimizers names d; task supervised trains g"):
        load_experiment(write_config(tmp_path, optimizers={"g": {}, "d": {}}))
    with pytest.raises(ConfigError, match="unknown key 'gan'"):
        load_experiment(write_config(tmp_path, gan={"d_steps": 2}))
    with pytest.raises(ConfigError, match="unknown task 'gann'"):
        load_experiment(write_config(tmp_path, task="gann"))
    with pytest.raises(ConfigError, match="unknown key 'supervised.loss_cropp'"):
        load_experiment(write_config(tmp_path, supervised={"loss_cropp": 2}))
    with pytest.raises(ConfigError, match="does not exist"):
        load_experiment(write_config(tmp_path, data__train=[str(tmp_path / "nowhere")]))
    with pytest.raises(ConfigError, match="missing required key 'arch'"):
        path = tmp_path / "bad.yaml"
        path.write_text("name: x\nscale: 2\ndata: {train: [.]}\n")
        load_experiment(path)
    bad = write_config(tmp_path, losses={"g": [{"name": "perceptual9"}]})
    result = CliRunner().invoke(app, ["train", str(bad)])
    assert result.exit_code == 1
    assert "unknown loss 'perceptual9'" in result.output


def test_device_choice(tmp_path):
    with pytest.raises(ConfigError, match="train.device must be auto, cpu, cuda or cuda:N"):
        load_experiment(write_config(tmp_path), overrides=["train.device=tpu"])
    assert load_experiment(write_config(tmp_path), overrides=["train.device=cuda:1"])
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    if torch.cuda.is_available():
        pytest.skip("the no-GPU error needs a torch without CUDA")
    with pytest.raises(ValueError, match="sees no GPU"):
        resolve_device("cuda")
    result = CliRunner().invoke(app, ["train", str(write_config(tmp_path)), "--device", "cuda"])
    assert result.exit_code == 1
    assert "sees no GPU" in result.output


def test_overrides_and_iters_follow_the_schedule(tmp_path):
    config = load_experiment(
        write_config(tmp_path), overrides=["optimizers.g.lr=1e-2", "seed=9"], iters=600
    )
    schedule = config.optimizers["g"].schedule
    assert config.optimizers["g"].lr == 0.01 and config.seed == 9
    assert config.train.iters == 600 and schedule.milestones == [400]
    factor = lr_factor(schedule, 600, 0.01)
    assert factor(399) == 1.0 and factor(400) == 0.5


def test_cosine_and_warmup():
    factor = lr_factor(ScheduleConfig(name="cosine", warmup=10), 110, 1e-3)
    assert factor(0) == pytest.approx(0.1)
    assert factor(10) == pytest.approx(1.0)
    assert factor(60) == pytest.approx(0.5)
    assert factor(109) < 0.01


def test_min_lr_is_the_floor_of_every_schedule(tmp_path):
    cosine = lr_factor(ScheduleConfig(name="cosine", warmup=10, min_lr=1e-4), 110, 1e-3)
    assert cosine(110) == pytest.approx(0.1)  # the cosine ends at min_lr, not at 0
    assert cosine(60) == pytest.approx(0.1 + 0.9 * 0.5)  # halfway between lr and min_lr
    assert cosine(10) == pytest.approx(1.0)
    assert cosine(0) == pytest.approx(0.1)  # warm-up: (0 + 1) / 10 of the rate
    steps = lr_factor(ScheduleConfig(name="step", step_size=10, gamma=0.1, min_lr=5e-5), 100, 1e-3)
    assert steps(5) == 1.0 and steps(15) == pytest.approx(0.1) and steps(25) == pytest.approx(0.05)
    with pytest.raises(ConfigError, match="min_lr 0.1 is above the optimizer's lr"):
        load_experiment(write_config(tmp_path, optimizers={"g": {"schedule": {"min_lr": 0.1}}}))
    # the trainer runs it: the last logged rate of a cosine run is min_lr
    path = write_config(
        tmp_path, train__iters=20, train__log_every=1,
        optimizers={"g": {"lr": 1e-3, "schedule": {"name": "cosine", "min_lr": 2e-4}}},
    )  # fmt: skip
    result = train(load_experiment(path), tmp_path / "floor", show_progress=False)
    rates = [r["lr"] for r in map(json.loads, (result.out_dir / "log.jsonl").open()) if "lr" in r]
    assert rates[-1] == pytest.approx(2e-4) and min(rates) == pytest.approx(2e-4)
    assert rates[0] > 9e-4


def test_a_cut_run_follows_the_shorter_schedule_from_the_cut(tmp_path):
    from srkit.train.config import OptimizerConfig
    from srkit.train.experiment import experiment_from_dict
    from srkit.train.task import make_scheduler

    net = torch.nn.Linear(1, 1)
    config = OptimizerConfig(lr=1.0, schedule=ScheduleConfig(name="cosine"))
    full = lr_factor(config.schedule, 100, 1.0)
    short = lr_factor(config.schedule, 80, 1.0)
    cut = experiment_from_dict(
        yaml.safe_load(write_config(tmp_path, train__iters=100,
                                    train__cut={"at": 60, "iters": 80}).read_text())
    ).train  # fmt: skip
    assert cut.end == 80
    scheduler = make_scheduler(torch.optim.SGD(net.parameters(), lr=1.0), config, 100, cut.cut)
    seen = []
    for _ in range(80):
        seen.append(scheduler.get_last_lr()[0])
        scheduler.optimizer.step()
        scheduler.step()
    assert seen[59] == pytest.approx(full(59)) and seen[60] == pytest.approx(short(60))
    with pytest.raises(ConfigError, match="train.cut"):
        load_experiment(write_config(tmp_path, train__cut={"at": 60, "iters": 400}))
    run = train(load_experiment(write_config(tmp_path, train__iters=30,
                                             train__cut={"at": 10, "iters": 20})),
                tmp_path / "cut", show_progress=False)  # fmt: skip
    assert run.iterations == 20


def test_weight_transfer_x2_to_x4_reports_what_it_skipped(tmp_path, capsys):
    source = train(
        load_experiment(
            write_config(tmp_path, arch="edsr_baseline",
                         arch_options={"blocks": 1, "features": 8}, train__iters=2)
        ),
        tmp_path / "x2",
        show_progress=False,
    )  # fmt: skip
    path = write_config(
        tmp_path, arch="edsr_baseline", arch_options={"blocks": 1, "features": 8}, scale=4,
        init={"path": str(source.model_path)}, train__iters=1, data__lr_patch=8,
    )  # fmt: skip
    # --resume with no checkpoint yet is a fresh start, and a fresh start takes init.path
    result = train(load_experiment(path), tmp_path / "x4", resume=True, show_progress=False)
    log = [json.loads(line) for line in (result.out_dir / "log.jsonl").read_text().splitlines()]
    transfer = next(r for r in log if "init" in r)
    assert transfer["loaded"] > 0
    assert any("upsampl" in s or "tail" in s for s in transfer["skipped"]), transfer["skipped"]
    manifest = json.loads(result.model_path.with_suffix(".json").read_text())
    recorded = manifest["training_recipe"]["initialised_from"]
    assert recorded["path"] == str(source.model_path)
    assert recorded["loaded"] == transfer["loaded"] > 0
    # resuming from a checkpoint keeps that record and does not transfer the weights again
    for iters in (2, 3):
        resumed = train(load_experiment(path, iters=iters), tmp_path / "x4", resume=True,
                        show_progress=False)  # fmt: skip
        manifest = json.loads(resumed.model_path.with_suffix(".json").read_text())
        assert manifest["training_recipe"]["initialised_from"] == recorded, iters
    log = (result.out_dir / "log.jsonl").read_text().splitlines()
    assert sum('"loaded"' in line for line in log) == 1
    scratch = train(load_experiment(write_config(tmp_path, train__iters=1)), tmp_path / "s",
                    show_progress=False)  # fmt: skip
    manifest = json.loads(scratch.model_path.with_suffix(".json").read_text())
    assert manifest["training_recipe"]["initialised_from"] is None


def test_distillation_mixes_in_the_teacher(tmp_path):
    teacher = train(load_experiment(write_config(tmp_path, train__iters=5)), tmp_path / "t",
                    show_progress=False)  # fmt: skip
    terms = [{"name": "l1", "weight": 0.5}, {"name": "l1", "weight": 0.5, "target": "teacher"}]
    path = write_config(
        tmp_path, teacher={"model": str(teacher.model_path)}, train__iters=10, losses={"g": terms}
    )
    result = train(load_experiment(path), tmp_path / "s", show_progress=False)
    log = [json.loads(line) for line in (result.out_dir / "log.jsonl").read_text().splitlines()]
    steps = [r for r in log if "l1@teacher" in r]
    assert steps and all(r["loss"] == pytest.approx(0.5 * r["l1"] + 0.5 * r["l1@teacher"])
                         for r in steps)  # fmt: skip
    assert all(r["l1@teacher"] != r["l1"] for r in steps)
    manifest = json.loads(result.model_path.with_suffix(".json").read_text())
    assert manifest["training_recipe"]["distilled_from"] == str(teacher.model_path)
    # a term that reads the teacher's output needs a teacher: refused before any work
    with pytest.raises(ConfigError, match="needs batch field.s. teacher"):
        load_experiment(write_config(tmp_path, losses={"g": terms}))


def test_samples_depend_only_on_seed_iteration_and_index():
    cache = ImageCache.load([SET5], min_side=32, show_progress=False)
    dataset = PatchDataset(cache, 2, 16, Degradation(), seed=1)
    lr, hr = dataset[(5, 3)]["lr"], dataset[(5, 3)]["hr"]
    assert lr.shape == (3, 16, 16) and hr.shape == (3, 32, 32)
    again = dataset[(5, 3)]
    assert torch.equal(lr, again["lr"]) and torch.equal(hr, again["hr"])
    assert not torch.equal(hr, dataset[(5, 4)]["hr"])
    # two ranks split each global batch into disjoint halves
    rank0 = list(BatchKeys(0, 2, 8, rank=0, world_size=2))
    rank1 = list(BatchKeys(0, 2, 8, rank=1, world_size=2))
    assert rank0[0] == [(0, j) for j in range(4)] and rank1[0] == [(0, j) for j in range(4, 8)]
    assert list(BatchKeys(1, 3, 4))[0] == [(1, 0), (1, 1), (1, 2), (1, 3)]


def test_multiscale_augmentation_adds_downscaled_copies(tmp_path):
    plain = ImageCache.load([SET5], min_side=32, show_progress=False)
    multi = ImageCache.load([SET5], min_side=32, show_progress=False, rescale=[1.0, 0.5])
    assert len(multi) == 2 * len(plain)
    for name, image in zip(plain.names, plain.images, strict=True):
        assert np.array_equal(multi.images[multi.names.index(name)], image)
        half = multi.images[multi.names.index(f"{name}@0.5")]
        height, width = image.shape[:2]
        assert half.shape == (-(-height // 2), -(-width // 2), 3)
        # the same picture at half the size: close to the 2x2 means (bicubic sharpens a little)
        even = image[: height // 2 * 2, : width // 2 * 2].astype(np.float64)
        box = even.reshape(height // 2, 2, width // 2, 2, 3).mean(axis=(1, 3))
        assert np.abs(half[: height // 2, : width // 2] - box).mean() < 4.0
    # copies below the crop size are left out, not the full-size images
    large = ImageCache.load([SET5], min_side=200, show_progress=False, rescale=[1.0, 0.5])
    assert len([n for n in large.names if "@" not in n]) == len(plain)
    assert all(min(i.shape[:2]) >= 200 for i in large.images)
    assert len(large) < len(multi)
    for bad in ([1.0, 1.5], [], [0.5, 0.5]):
        with pytest.raises(ConfigError, match="data.rescale"):
            load_experiment(write_config(tmp_path, data__rescale=bad))
    # the trainer uses the factors and data.min_size: all copies too small -> a clear error
    with pytest.raises(ValueError, match="no training image is at least 24x24"):
        train(load_experiment(write_config(tmp_path, data__rescale=[0.04])), tmp_path / "r")
    with pytest.raises(ValueError, match="no training image is at least 600x600"):
        train(load_experiment(write_config(tmp_path, data__min_size=600)), tmp_path / "m")


def test_prepare_sub_images_and_hdf5_give_the_same_batches(tmp_path):
    assert window_starts(100, 40, 30) == [0, 30, 60]
    assert window_starts(101, 40, 30) == [0, 30, 60, 61]
    count = prepare(SET5, tmp_path / "crops", size=96, stride=64, show_progress=False)
    assert count == len(list((tmp_path / "crops").glob("*.png"))) > 5
    packed = tmp_path / "set5.h5"
    assert prepare(SET5, packed, lr_scale=2, show_progress=False) == 5
    folder = ImageCache.load([SET5], min_side=32, show_progress=False)
    hdf5 = ImageCache.load([str(packed)], min_side=32, show_progress=False)
    assert len(folder) == len(hdf5)
    for a, b in zip(folder.images, hdf5.images, strict=True):
        assert np.array_equal(a, b)
    one = PatchDataset(folder, 2, 16, Degradation(), seed=0)
    two = PatchDataset(hdf5, 2, 16, Degradation(), seed=0)
    for key in [(0, 0), (7, 3), (100, 15)]:
        assert all(torch.equal(one[key][f], two[key][f]) for f in ("lr", "hr"))
    with pytest.raises(FileExistsError):
        prepare(SET5, packed, show_progress=False)


def test_ema_warm_up_forgets_the_starting_weights() -> None:
    from torch import nn

    start = nn.Linear(2, 2)
    ema = Ema(start, 0.999)
    assert ema.decay_at(0) == pytest.approx(0.1) and ema.decay_at(10**6) == 0.999
    target = nn.Linear(2, 2)
    for step in range(4000):
        ema.update(target, step)
    # plain 0.999 EMA would still hold 0.999^4000 = 1.8% of the start; warm-up leaves almost nothing
    residue = (ema.net.weight - target.weight).abs().max() / (
        start.weight - target.weight
    ).abs().max()
    assert residue < 0.001


def test_loss_crop_trims_the_patch_edges_and_still_learns(tmp_path):
    from srkit.metrics.sr import crop_border as trim  # what the trainer applies to the loss

    batch = torch.arange(2 * 3 * 6 * 8, dtype=torch.float32).reshape(2, 3, 6, 8)
    assert torch.equal(trim(batch, 0), batch)
    assert torch.equal(trim(batch, 2), batch[..., 2:4, 2:6])
    # lr_patch 12 at x2: a 24-pixel HR patch, so at most 11 pixels a side may go
    with pytest.raises(ConfigError, match="supervised.loss_crop must leave pixels"):
        load_experiment(write_config(tmp_path, supervised={"loss_crop": 12}))
    with pytest.raises(ConfigError, match="loss_crop must be >= 0"):
        load_experiment(write_config(tmp_path, supervised={"loss_crop": -1}))
    result = train(load_experiment(write_config(tmp_path, supervised={"loss_crop": 4})),
                   tmp_path / "crop", show_progress=False)  # fmt: skip
    bicubic = evaluate_model(resolve_model("bicubic", 2), SET5, 2)
    trained = evaluate_model(resolve_model(str(result.model_path), 2), SET5, 2)
    assert trained.psnr > bicubic.psnr + 0.3, (trained.psnr, bicubic.psnr)
    manifest = json.loads(result.model_path.with_suffix(".json").read_text())
    assert manifest["training_recipe"]["config"]["supervised"]["loss_crop"] == 4
