"""Blind SR (Bulat et al., ECCV 2018): the H2L/L2H networks, the degradation task (H2L GAN on
unpaired HR and LR), the blind SR task on the pairs it makes, `srkit degrade apply/learn/compare`,
the recipe chain, and the LR match statistics. Tiny networks on synthetic images in tmp_path."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from typer.testing import CliRunner

from srkit.archs import build, count_params, get_spec
from srkit.archs.bulat import DEGRADERS, PAPER_H2L, PAPER_L2H, build_degrader
from srkit.archs.discriminators import build_discriminator
from srkit.cli import app
from srkit.config import ConfigError
from srkit.metrics.lr_stats import (
    blockiness,
    compare_sets,
    domain_classifier_accuracy,
    image_statistics,
    noise_level,
)
from srkit.train.experiment import experiment_from_dict
from srkit.train.recipe import RecipeRunner, load_recipe
from srkit.train.tasks.blind import noise_seed
from srkit.train.tasks.degradation import load_h2l
from srkit.train.trainer import train
from srkit.weights import WeightsError, load, save_model
from srkit.weights.native import load_native

REPO = Path(__file__).resolve().parents[1]
TINY_H2L = {"features": [4, 6, 8], "blocks": [0, 1, 1]}
TINY_L2H = {"features": 8, "blocks": 1, "up_features": [6, 4], "up_blocks": 0}
TINY_D = {"arch": "patchgan", "options": {"features": 4, "layers": 2}}


def _smooth(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A synthetic photo: a few colour gradients and discs, uint8 RGB."""
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    image = np.stack([0.5 + 0.4 * np.sin(6 * x + c + rng.uniform(0, 6)) * np.cos(4 * y + c)
                      for c in range(3)], axis=-1)  # fmt: skip
    for _ in range(3):
        cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.1, 0.3)
        image[(y - cy) ** 2 + (x - cx) ** 2 < r**2] = rng.uniform(0, 1, 3)
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    """HR images (64 x 72) and noisy, blurred "camera" LR images (20 x 24), unpaired."""
    root = tmp_path_factory.mktemp("blind")
    hr, lr = root / "hr", root / "lr"
    hr.mkdir(), lr.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(_smooth(rng, 64, 72)).save(hr / f"h{i}.png")
        small = _smooth(rng, 20, 24).astype(float) + rng.normal(0, 12, (20, 24, 3))
        Image.fromarray(np.clip(small, 0, 255).astype(np.uint8)).save(lr / f"l{i}.png")
    return hr, lr


def degradation_stage(hr: Path, lr: Path, **overrides) -> dict:
    stage = {
        "name": "h2l",
        "task": "degradation",
        "arch": "h2l",
        "arch_options": TINY_H2L,
        "scale": 4,
        "seed": 3,
        "data": {"train": [str(hr)], "lr_patch": 12, "batch_size": 4, "workers": 0},
        "val": {"every": 0},
        "train": {"iters": 6, "checkpoint_every": 6, "log_every": 1, "device": "cpu"},
        "optimizers": {
            "g": {"lr": 1e-3, "betas": [0.5, 0.999]},
            "d": {"lr": 1e-3, "betas": [0.5, 0.999]},
        },  # fmt: skip
        "losses": {"g": [{"name": "l1"}]},
        "degradation": {"lr_data": [str(lr)], "discriminator": TINY_D, "val_images": 2},
    }
    for key, value in overrides.items():
        stage[key] = {**stage[key], **value} if isinstance(value, dict) else value
    return stage


def blind_stage(hr: Path, model: Path | None, task: str = "blind_sr", **overrides) -> dict:
    stage = {
        "name": "l2h",
        "task": task,
        "arch": "l2h",
        "arch_options": TINY_L2H,
        "scale": 4,
        "seed": 4,
        "data": {"train": [str(hr)], "lr_patch": 8, "batch_size": 4, "workers": 0},
        "val": {"every": 0},
        "train": {"iters": 12, "checkpoint_every": 12, "log_every": 1, "device": "cpu"},
        "optimizers": {"g": {"lr": 2e-3}},
        "losses": {"g": [{"name": "l1"}]},
        task: {"degradation_model": str(model)} if model else {},
    }
    stage.update(overrides)
    return stage


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def _values(run: Path, key: str) -> list[float]:
    return [r[key] for r in _log(run) if key in r]


@pytest.fixture(scope="module")
def h2l_model(folders, tmp_path_factory) -> Path:
    """A trained (6 iterations) tiny H2L file."""
    hr, lr = folders
    run = tmp_path_factory.mktemp("h2l_run")
    result = train(experiment_from_dict(degradation_stage(hr, lr)), run, show_progress=False)
    return result.model_path


# --- architectures --------------------------------------------------------------------------


def test_h2l_shapes_noise_and_area_anchor() -> None:
    torch.manual_seed(0)
    net = build_degrader("h2l", **TINY_H2L).eval()
    x = torch.rand(2, 3, 40, 52)
    with torch.no_grad():
        y = net(x)
        # the last layer starts at zero: an untrained H2L is the 4 x 4 area downscale
        torch.testing.assert_close(y, torch.nn.functional.avg_pool2d(x, 4))
        net.tail.weight.normal_(0, 0.1)
        a = net(x, net.draw_noise(2, 40, 52, generator=torch.Generator().manual_seed(1)))
        b = net(x, net.draw_noise(2, 40, 52, generator=torch.Generator().manual_seed(1)))
        c = net(x, net.draw_noise(2, 40, 52, generator=torch.Generator().manual_seed(2)))
    assert y.shape == (2, 3, 10, 13)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)  # the noise input matters
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.rand(1, 3, 30, 32))
    vector = build_degrader("h2l", **TINY_H2L, noise="vector", noise_dim=8, noise_size=16)
    assert vector.draw_noise(3, 40, 52).shape == (3, 8)
    assert vector(x).shape == (2, 3, 10, 13)  # the 16 x 16 projection tiled over 40 x 52
    with pytest.raises(TypeError, match="unknown option"):
        build_degrader("h2l", widht=3)


def test_keep_low_leaves_colours_to_the_anchor() -> None:
    """keep_low: the residual loses its low frequencies, so a residual that would be a colour
    cast (a constant per channel) does nothing, while detail still passes."""
    torch.manual_seed(0)
    free = build_degrader("h2l", **TINY_H2L).eval()
    kept = build_degrader("h2l", **TINY_H2L, keep_low=1.5).eval()
    kept.load_state_dict(free.state_dict())  # no parameters of its own
    x = torch.rand(2, 3, 64, 64)
    anchor = torch.nn.functional.avg_pool2d(x, 4)
    with torch.no_grad():
        for net in (free, kept):
            net.tail.bias.copy_(torch.tensor([0.1, 0.0, -0.1]))  # a colour cast
        torch.testing.assert_close(
            free(x) - anchor, torch.tensor([0.1, 0.0, -0.1]).view(1, 3, 1, 1).expand(2, 3, 16, 16)
        )
        torch.testing.assert_close(kept(x), anchor, atol=1e-6, rtol=0)
        kept.tail.weight.normal_(0, 0.1)  # detail: the channel means barely move
        moved = (kept(x) - anchor).mean((2, 3)).abs().max()
        assert moved < 0.1 * (kept(x) - anchor).abs().mean()
    with pytest.raises(ValueError, match="keep_low"):
        build_degrader("h2l", keep_low=-1.0)


def test_parameter_counts() -> None:
    """srkit's counts (the paper prints none): defaults (CPU) and the paper's sizes."""
    assert count_params(build_degrader("h2l")) == 252_275
    with torch.device("meta"):
        assert count_params(build_degrader("h2l", **PAPER_H2L)) == 11_046_371
        assert count_params(build("l2h", scale=4, **PAPER_L2H)) == 15_976_131
    assert count_params(build("l2h", scale=4)) == 301_107
    assert DEGRADERS["h2l"].published_params == {4: 11_046_371}
    assert get_spec("l2h").published_params == {4: 15_976_131}


def test_l2h_and_the_lr_discriminator_shapes() -> None:
    net = build("l2h", scale=4, **TINY_L2H).eval()
    with torch.no_grad():
        assert net(torch.rand(1, 3, 9, 11)).shape == (1, 3, 36, 44)
    d = build_discriminator("patchgan", features=32, layers=2)
    for side in (12, 16, 32):  # the LR patch sizes the degradation task uses
        assert d(torch.rand(2, 3, side, side)).shape[:2] == (2, 1)


# --- the degradation task -------------------------------------------------------------------


def test_degradation_task_trains_and_exports_a_downscaler(h2l_model, folders) -> None:
    run = h2l_model.parent
    for key in ("loss", "loss_d", "adversarial", "pixel"):
        values = _values(run, key)
        assert len(values) == 6 and all(np.isfinite(values)), key
    net, manifest = load_h2l(h2l_model)
    assert manifest["direction"] == "hr_to_lr" and manifest["scale"] == 4
    assert manifest["purpose"] == "blind" and manifest["params"] == count_params(net)
    assert manifest["training_recipe"]["unpaired_lr"] == [str(folders[1])]
    assert set(manifest["scores"]["match_statistics"]) >= {"noise_real", "noise_fake"}
    assert net(torch.rand(1, 3, 32, 32)).shape == (1, 3, 8, 8)
    # no upscaler loads it
    for loader in (load, load_native):
        with pytest.raises(WeightsError, match="not an upscaler"):
            loader(h2l_model)


def test_degradation_pixel_term_learns_the_target(folders, tmp_path) -> None:
    """Without the GAN term, the H2L fits a blurred downscale: its pixel loss falls."""
    hr, lr = folders
    blur = {"steps": [{"type": "gaussian_blur", "sigma": 2.0}, {"type": "resize"}]}
    stage = degradation_stage(
        hr, lr, data={"degradation": blur}, train={"iters": 30, "checkpoint_every": 30},
        degradation={"adversarial_weight": 0.0, "lowpass_sigma": 0.0},
        optimizers={"g": {"lr": 3e-3}, "d": {"lr": 1e-4}},
    )  # fmt: skip
    train(experiment_from_dict(stage), tmp_path, show_progress=False)
    pixel = _values(tmp_path, "pixel")
    assert np.mean(pixel[-5:]) < 0.8 * np.mean(pixel[:5])


def test_degradation_config_errors(folders) -> None:
    hr, lr = folders
    with pytest.raises(ConfigError, match="not l2h"):
        experiment_from_dict(degradation_stage(hr, lr, arch="l2h", arch_options={}))
    with pytest.raises(ConfigError, match="lr_data"):
        experiment_from_dict(degradation_stage(hr, lr, degradation={"lr_data": []}))
    with pytest.raises(ConfigError, match="cannot read the 4 x 4"):
        experiment_from_dict(degradation_stage(hr, lr, data={"lr_patch": 4}))
    with pytest.raises(ConfigError, match="d_highpass"):
        experiment_from_dict(degradation_stage(hr, lr, degradation={"d_highpass": -1.0}))


def test_a_detail_only_discriminator_trains_a_colour_keeping_h2l(folders, tmp_path) -> None:
    """keep_low + d_highpass: the discriminator sees x - blur(x) of real and generated LR, so
    a flat colour difference between the sets is invisible to it; the run trains."""
    from srkit.train.task import TaskContext
    from srkit.train.tasks.degradation import DegradationTask

    hr, lr = folders
    stage = degradation_stage(hr, lr, arch_options={**TINY_H2L, "keep_low": 1.5},
                              degradation={"d_highpass": 1.5})  # fmt: skip
    config = experiment_from_dict(stage)
    task = DegradationTask(config, TaskContext(device=torch.device("cpu")))
    flat = torch.full((2, 3, 12, 12), 0.3)
    torch.testing.assert_close(task.judged(flat), torch.zeros_like(flat), atol=1e-6, rtol=0)
    edge = torch.zeros(1, 3, 12, 12)
    edge[..., 6:] = 1.0
    assert task.judged(edge).abs().max() > 0.2  # detail is what it judges
    result = train(config, tmp_path, show_progress=False)
    assert all(np.isfinite(_values(tmp_path, "adversarial")))
    assert load_h2l(result.model_path)[1]["options"]["keep_low"] == 1.5


# --- the blind SR tasks ---------------------------------------------------------------------


def test_blind_sr_trains_on_the_learned_pairs_and_exports_an_sr_model(
    h2l_model, folders, tmp_path
) -> None:
    result = train(experiment_from_dict(blind_stage(folders[0], h2l_model)), tmp_path,
                   show_progress=False)  # fmt: skip
    losses = _values(tmp_path, "loss")
    assert all(np.isfinite(losses)) and np.mean(losses[-3:]) < np.mean(losses[:3])
    manifest = json.loads(result.model_path.with_suffix(".json").read_text())
    assert manifest["arch"] == "l2h" and manifest["purpose"] == "blind"
    assert manifest["training_recipe"]["degraded_by"]["sha256"] == load_h2l(h2l_model)[1]["sha256"]
    assert "psnr" in manifest["scores"]["validation"]  # Set5 bicubic, a sanity check
    model = load(result.model_path)  # an ordinary srkit SR model
    assert model(torch.rand(1, 3, 6, 7)).shape == (1, 3, 24, 28)


def test_blind_noise_is_keyed_by_sample() -> None:
    assert noise_seed(1, 5, 2) == noise_seed(1, 5, 2)
    assert len({noise_seed(1, 5, 2), noise_seed(1, 5, 3), noise_seed(1, 6, 2)}) == 3


def test_blind_gan_runs(h2l_model, folders, tmp_path) -> None:
    stage = blind_stage(
        folders[0], h2l_model, task="blind_gan",
        optimizers={"g": {"lr": 1e-3}, "d": {"lr": 1e-3}},
        train={"iters": 2, "checkpoint_every": 2, "log_every": 1, "device": "cpu"},
    )  # fmt: skip
    stage["blind_gan"]["discriminator"] = TINY_D
    train(experiment_from_dict(stage), tmp_path, show_progress=False)
    assert all(np.isfinite(_values(tmp_path, "adversarial")))


def test_blind_task_needs_a_degradation(folders, tmp_path) -> None:
    with pytest.raises(ValueError, match="degradation_model"):
        train(experiment_from_dict(blind_stage(folders[0], None)), tmp_path, show_progress=False)
    with pytest.raises(ConfigError, match="x4"):
        experiment_from_dict(blind_stage(folders[0], tmp_path / "h2l.safetensors", scale=2))


def test_recipe_chains_the_degradation_stage_into_the_blind_stage(folders, tmp_path) -> None:
    hr, lr = folders
    first = degradation_stage(hr, lr, train={"iters": 2, "checkpoint_every": 2})
    second = {"inherit": False, **blind_stage(hr, None, train={"iters": 2, "device": "cpu"})}
    second.pop("blind_sr")
    path = tmp_path / "chain.yaml"
    path.write_text(yaml.safe_dump({"model": "chain", "stages": [first, second]}))
    recipe = load_recipe(path)
    assert [s.config.arch for s in recipe.stages] == ["h2l", "l2h"]
    assert recipe.stages[1].config.data.lr_patch == 8  # nothing inherited
    runner = RecipeRunner(tmp_path / "runs", show_progress=False, echo=lambda _: None)
    out = runner.run(path)
    manifest = json.loads(out.with_suffix(".json").read_text())
    h2l = runner.output(recipe, recipe.stages[0])
    assert manifest["training_recipe"]["degraded_by"]["path"] == str(h2l)
    assert manifest["training_recipe"]["initialised_from"] is None  # the L2H starts afresh


def test_the_camera_recipe_resolves(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SRKIT_DATA", str(tmp_path / "no-data"))
    recipe = load_recipe(REPO / "recipes" / "blind_camera_x4.yaml")
    assert [s.config.task for s in recipe.stages] == ["degradation", "blind_sr"]
    assert recipe.stages[0].config.arch_options["keep_low"] > 0  # no learned colour cast
    assert recipe.stages[1].config.task_options.start_model == "repan_x4"
    assert recipe.stages[1].config.task_options.degradation_model is None  # the H2L stage's
    assert recipe.stages[1].init is not None and recipe.stages[1].init.stage == "camera_h2l"
    lr_data = recipe.stages[0].config.task_options.lr_data
    assert lr_data == [str(tmp_path / "no-data" / "sr" / "unpaired-camera-x4")]


# --- the command line -----------------------------------------------------------------------


def test_degrade_apply_writes_quarter_size_lr_and_fails_cleanly(h2l_model, tmp_path) -> None:
    rng = np.random.default_rng(1)
    hr = tmp_path / "hr"
    hr.mkdir()
    Image.fromarray(_smooth(rng, 50, 38)).save(hr / "a.png")
    Image.fromarray(_smooth(rng, 32, 64)).save(hr / "b.jpg")
    runner = CliRunner()
    done = runner.invoke(app, ["degrade", "apply", "--model", str(h2l_model), str(hr),
                               "-o", str(tmp_path / "lr"), "--seed", "5"])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert Image.open(tmp_path / "lr" / "a.png").size == (9, 12)  # 38 x 50 cropped to 36 x 48
    assert Image.open(tmp_path / "lr" / "b.png").size == (16, 8)
    again = runner.invoke(app, ["degrade", "apply", "--model", str(h2l_model), str(hr / "a.png"),
                                "-o", str(tmp_path / "again.png"), "--seed", "5"])  # fmt: skip
    assert again.exit_code == 0, again.output
    assert np.array_equal(np.asarray(Image.open(tmp_path / "again.png")),
                          np.asarray(Image.open(tmp_path / "lr" / "a.png")))  # fmt: skip

    missing = runner.invoke(app, ["degrade", "apply", "--model", str(tmp_path / "nope.safetensors"),
                                  str(hr), "-o", str(tmp_path / "x")])  # fmt: skip
    assert missing.exit_code == 1 and "no such H2L model" in missing.output
    assert "Traceback" not in missing.output and not (tmp_path / "x").exists()
    (hr / "c.png").write_bytes(b"not an image")  # one bad input: nothing is written
    bad = runner.invoke(app, ["degrade", "apply", "--model", str(h2l_model), str(hr),
                              "-o", str(tmp_path / "y")])  # fmt: skip
    assert bad.exit_code == 1 and "c.png" in bad.output and not (tmp_path / "y").exists()
    upscaler = save_model(build("l2h", scale=4, **TINY_L2H), tmp_path / "sr.safetensors",
                          arch="l2h", scale=4, options=TINY_L2H)  # fmt: skip
    sr_model = runner.invoke(app, ["degrade", "apply", "--model", str(upscaler), str(hr / "a.png"),
                                   "-o", str(tmp_path / "z.png")])  # fmt: skip
    assert sr_model.exit_code == 1 and "not a learned degradation" in sr_model.output
    assert "Examples" in runner.invoke(app, ["degrade", "apply", "--help"]).output


def test_degrade_learn_trains_through_the_trainer(folders, tmp_path, monkeypatch) -> None:
    hr, lr = folders
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(app, ["degrade", "learn", "--hr", str(hr), "--lr", str(lr),
                                    "-o", "cam.safetensors", "--iters", "2", "--batch-size", "2",
                                    "--patch", "48", "--device", "cpu"])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert (tmp_path / "runs" / "cam" / "config.yaml").is_file()
    net, manifest = load_h2l(tmp_path / "cam.safetensors")
    assert manifest["training_recipe"]["iterations"] == 2
    assert manifest["options"]["keep_low"] == 1.5  # the recipe's lessons are the defaults
    config = yaml.safe_load((tmp_path / "runs" / "cam" / "config.yaml").read_text())
    assert config["degradation"]["d_highpass"] == 1.5 and config["train"]["grad_clip"] == 1.0
    bad = CliRunner().invoke(app, ["degrade", "learn", "--lr", str(tmp_path / "none"),
                                   "--hr", str(hr), "-o", "x.safetensors"])  # fmt: skip
    assert bad.exit_code == 1 and "does not exist" in bad.output


def test_degrade_compare_prints_the_table(folders) -> None:
    hr, lr = folders
    done = CliRunner().invoke(app, ["degrade", "compare", str(lr), str(hr), "--classifier",
                                    "--steps", "20", "--patch", "16"])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "blockiness" in done.output and "domain classifier accuracy" in done.output


# --- match statistics -----------------------------------------------------------------------


def _flat_noisy(rng, sigma: float, n: int = 4, size: int = 64) -> list[np.ndarray]:
    return [np.clip(128 + rng.normal(0, sigma, (size, size, 3)), 0, 255).astype(np.uint8)
            for _ in range(n)]  # fmt: skip


def test_noise_estimate_is_calibrated_and_ordered() -> None:
    rng = np.random.default_rng(0)
    gray = 100 + rng.normal(0, 10, (128, 128))
    assert noise_level(gray) == pytest.approx(10, rel=0.05)  # Immerkaer on white noise
    clean = [_smooth(rng, 64, 64) for _ in range(4)]
    noisy = [np.clip(im + rng.normal(0, 8, im.shape), 0, 255).astype(np.uint8) for im in clean]
    rows = {r.name: r for r in compare_sets(clean, noisy)}
    assert rows["noise"].difference > 4  # fake (noisy) - real (clean)
    assert rows["laplacian_var"].difference > 0


def test_jpeg_is_blockier_than_png_and_blur_lowers_sharpness() -> None:
    rng = np.random.default_rng(1)
    images = [_smooth(rng, 96, 96) for _ in range(3)]
    textured = [np.clip(im + rng.normal(0, 6, im.shape), 0, 255).astype(np.uint8) for im in images]

    def jpeg(image: np.ndarray) -> np.ndarray:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=15)
        return np.asarray(Image.open(buffer).convert("RGB"))

    compressed = [jpeg(im) for im in textured]
    rows = {r.name: r for r in compare_sets(textured, compressed)}
    assert rows["blockiness"].fake.mean > 1.15 > rows["blockiness"].real.mean
    assert blockiness(textured[0].mean(axis=2)) == pytest.approx(1.0, abs=0.1)
    blurred = [np.asarray(Image.fromarray(im).resize((48, 48)).resize((96, 96))) for im in textured]
    rows = {r.name: r for r in compare_sets(textured, blurred)}
    assert rows["laplacian_var"].difference < 0 and rows["hf_ratio"].difference < 0


def test_identical_sets_differ_by_zero_and_colour_statistics() -> None:
    rng = np.random.default_rng(2)
    images = [_smooth(rng, 40, 48) for _ in range(3)]
    assert all(r.difference == 0 for r in compare_sets(images, images))
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 200
    stats = image_statistics(red)
    assert stats["mean_r"] == 200 and stats["mean_g"] == 0 and stats["saturation"] == 1.0
    with pytest.raises(ValueError, match="at least 8"):
        image_statistics(np.zeros((4, 4, 3), np.uint8))


def test_domain_classifier_separates_noise_and_not_identical_sets() -> None:
    rng = np.random.default_rng(3)
    clean, noisy = _flat_noisy(rng, 1.0), _flat_noisy(rng, 25.0)
    assert domain_classifier_accuracy(clean, noisy, patch=16, steps=60, seed=0) > 0.9
    same_a, same_b = _flat_noisy(rng, 10.0), _flat_noisy(rng, 10.0)
    assert 0.3 < domain_classifier_accuracy(same_a, same_b, patch=16, steps=60, seed=0) < 0.7


# --- the camera's JPEG ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def jpeg_folders(folders, tmp_path_factory) -> tuple[Path, Path]:
    """The camera LR of `folders` saved as JPEGs at qualities 65..75 (an IJG encoder)."""
    root = tmp_path_factory.mktemp("blind_jpeg")
    for i, path in enumerate(sorted(folders[1].glob("*.png"))):
        Image.open(path).save(root / f"{path.stem}.jpg", quality=65 + 2 * i)
    return folders[0], root


@pytest.fixture(scope="module")
def jpeg_h2l(jpeg_folders, tmp_path_factory) -> Path:
    hr, lr = jpeg_folders
    run = tmp_path_factory.mktemp("h2l_jpeg_run")
    return train(
        experiment_from_dict(degradation_stage(hr, lr)), run, show_progress=False
    ).model_path


def test_the_h2l_takes_the_real_lr_files_jpeg(jpeg_h2l, h2l_model) -> None:
    assert load_h2l(jpeg_h2l)[1]["jpeg_quality"] == [65, 75]  # read from the files' tables
    assert load_h2l(h2l_model)[1]["jpeg_quality"] is None  # PNG camera: no JPEG
    assert all(np.isfinite(_values(jpeg_h2l.parent, "pixel")))


def test_jpeg_option_range_and_off(jpeg_folders, folders, tmp_path) -> None:
    hr, lr = jpeg_folders
    off = train(experiment_from_dict(degradation_stage(hr, lr, degradation={"jpeg": "off"},
                train={"iters": 1, "checkpoint_every": 1})), tmp_path / "off",
                show_progress=False)  # fmt: skip
    assert load_h2l(off.model_path)[1]["jpeg_quality"] is None
    fixed = degradation_stage(
        hr, folders[1], degradation={"jpeg": "range", "jpeg_quality": [40, 50]},
        train={"iters": 1, "checkpoint_every": 1},
    )  # fmt: skip
    done = train(experiment_from_dict(fixed), tmp_path / "range", show_progress=False)
    assert load_h2l(done.model_path)[1]["jpeg_quality"] == [40, 50]
    with pytest.raises(ConfigError, match="jpeg_quality"):
        experiment_from_dict(degradation_stage(hr, lr, degradation={"jpeg_quality": [90, 80]}))


def test_apply_jpeg_is_the_real_codec_forward_with_soft_gradients() -> None:
    from srkit.data.degrade import jpeg_roundtrip
    from srkit.train.tasks.degradation import apply_jpeg

    x = torch.from_numpy(_smooth(np.random.default_rng(2), 16, 16)).permute(2, 0, 1)[None] / 255.0
    x = torch.cat([x, x.flip(-1)]).requires_grad_(True)
    out = apply_jpeg(x, [60, 80])
    for i, quality in enumerate((60, 80)):
        assert torch.equal(out[i].detach(), jpeg_roundtrip(x[i].detach(), quality))
    out.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert apply_jpeg(x, None) is x


def test_real_crops_start_on_the_jpeg_block_grid(jpeg_folders) -> None:
    from srkit.train.data import ImageCache
    from srkit.train.tasks.degradation import UnpairedDataset

    rows, cols = np.mgrid[0:40, 0:48]
    image = np.stack([rows, cols, np.zeros_like(rows)], -1).astype(np.uint8)
    cache = ImageCache(names=["grid"], images=[image])
    grid = UnpairedDataset(None, cache, 12, seed=0, grid=8)  # type: ignore[arg-type]
    corners = {tuple((grid.real_crop((0, i))[:2, 0, 0] * 255).round().int().tolist())
               for i in range(40)}  # fmt: skip
    assert all(top % 8 == 0 and left % 8 == 0 for top, left in corners) and len(corners) > 4
    free = UnpairedDataset(None, cache, 12, seed=0, grid=1)  # type: ignore[arg-type]
    tops = {int(round(float(free.real_crop((0, i))[0, 0, 0]) * 255)) for i in range(40)}
    assert any(top % 8 for top in tops)


def test_degrade_apply_and_blind_sr_use_the_h2l_jpeg(jpeg_h2l, jpeg_folders, tmp_path) -> None:
    from srkit.data.degrade import jpeg_roundtrip
    from srkit.infer.degrade import degrade_array

    net, manifest = load_h2l(jpeg_h2l)
    rgb = _smooth(np.random.default_rng(4), 64, 64)
    coded = degrade_array(net, rgb, seed=7, jpeg_quality=manifest["jpeg_quality"])
    plain = degrade_array(net, rgb, seed=7)
    assert not np.array_equal(coded, plain)
    quality = int(np.random.default_rng([7, 3]).integers(65, 76))  # the drawn quality
    again = jpeg_roundtrip(torch.from_numpy(plain).permute(2, 0, 1) / 255.0, quality)
    assert np.array_equal(coded, (again.permute(1, 2, 0) * 255).round().byte().numpy())
    result = train(experiment_from_dict(blind_stage(jpeg_folders[0], jpeg_h2l)), tmp_path,
                   show_progress=False)  # fmt: skip
    recipe = json.loads(result.model_path.with_suffix(".json").read_text())["training_recipe"]
    assert recipe["degraded_by"]["jpeg_quality"] == [65, 75]


def test_a_supervised_model_can_say_it_is_for_real_world_lr(folders, tmp_path) -> None:
    stage = {
        "name": "real", "arch": "l2h", "arch_options": TINY_L2H, "scale": 4,
        "data": {"train": [str(folders[0])], "lr_patch": 8, "batch_size": 2, "workers": 0},
        "val": {"every": 0}, "train": {"iters": 1, "checkpoint_every": 1, "device": "cpu"},
        "supervised": {"purpose": "blind"},
    }  # fmt: skip
    result = train(experiment_from_dict(stage), tmp_path, show_progress=False)
    assert json.loads(result.model_path.with_suffix(".json").read_text())["purpose"] == "blind"
    with pytest.raises(ConfigError, match="purpose"):
        experiment_from_dict({**stage, "supervised": {"purpose": "vintage"}})


def test_bench_scores_models_on_pairs_the_h2l_makes(jpeg_h2l, tmp_path) -> None:
    """Paired evaluation on the learned camera: `srkit bench --degradation H2L` makes each LR
    with the H2L (and its JPEG), the same on every run."""
    from srkit.infer.degrade import h2l_bench_degradation

    degrade = h2l_bench_degradation(jpeg_h2l)
    hr = torch.from_numpy(_smooth(np.random.default_rng(5), 48, 64)).permute(2, 0, 1)[None].float()
    lr = degrade(hr, 4)
    assert lr.shape == (1, 3, 12, 16) and torch.equal(lr, degrade(hr.clone(), 4))
    assert torch.equal(lr, lr.round()) and lr.min() >= 0 and lr.max() <= 255
    with pytest.raises(ValueError, match="x4 degradation"):
        degrade(hr, 2)
    runner = CliRunner()
    args = ["bench", "--model", "bicubic", "--scale", "4", "--json", str(tmp_path / "a.json")]
    done = runner.invoke(app, [*args, "--degradation", str(jpeg_h2l)])
    assert done.exit_code == 0, done.output
    again = runner.invoke(
        app, [*args[:-1], str(tmp_path / "b.json"), "--degradation", str(jpeg_h2l)]
    )
    assert again.exit_code == 0, again.output

    def scores(name: str) -> list[tuple[float, float]]:
        rows = json.loads((tmp_path / f"{name}.json").read_text())["results"]
        return [(row["psnr"], row["ssim"]) for row in rows]

    assert scores("a") == scores("b")  # the same pairs, the same scores
    plain = runner.invoke(app, [*args[:-1], str(tmp_path / "c.json")])
    assert plain.exit_code == 0
    assert scores("c") != scores("a")  # bicubic LR differs from the H2L's
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"x")
    wrong = runner.invoke(app, [*args, "--degradation", str(bad)])
    assert wrong.exit_code == 1 and "Traceback" not in wrong.output


def test_a_blind_stage_can_start_from_a_model(h2l_model, folders, tmp_path) -> None:
    """start_model: the network starts from given weights (here an L2H file; a shipped name
    works the same way), the H2L still coming from degradation_model."""
    start = save_model(build("l2h", scale=4, **TINY_L2H), tmp_path / "start.safetensors",
                       arch="l2h", scale=4, options=TINY_L2H)  # fmt: skip
    stage = blind_stage(folders[0], h2l_model, train={"iters": 1, "checkpoint_every": 1,
                                                      "device": "cpu"})  # fmt: skip
    stage["blind_sr"]["start_model"] = str(start)
    result = train(experiment_from_dict(stage), tmp_path / "run", show_progress=False)
    recipe = json.loads(result.model_path.with_suffix(".json").read_text())["training_recipe"]
    assert recipe["initialised_from"]["path"] == str(start)
    assert recipe["degraded_by"]["sha256"] == load_h2l(h2l_model)[1]["sha256"]
    stage["blind_sr"]["start_model"] = "no_such_model"
    with pytest.raises(ValueError, match="neither a shipped model"):
        train(experiment_from_dict(stage), tmp_path / "bad", show_progress=False)
