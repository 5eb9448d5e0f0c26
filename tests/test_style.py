"""Neural style transfer: Gram/style losses, Gatys, TransformerNet, AdaIN, the style tasks and
the `srkit style` commands (tiny sizes: the CPU is shared)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from typer.testing import CliRunner

from srkit.cli import app
from srkit.features import FeatureNet, Layer
from srkit.infer.stylize import stylize, stylize_tensor
from srkit.losses.perceptual import PerceptualLoss, StyleLoss, gram_matrix
from srkit.style import (
    STYLE_LAYERS,
    AdainDecoder,
    AdainModel,
    StyleObjective,
    TransformerNet,
    adain,
    adain_losses,
    channel_stats,
    gatys,
    load_style_model,
    objective_for,
    save_style_model,
)
from srkit.style.core import fit_size

HAS_STLPIPS = importlib.util.find_spec("stlpips_pytorch") is not None
needs_stlpips = pytest.mark.skipif(not HAS_STLPIPS, reason="stlpips-pytorch not installed")


def identity_net() -> FeatureNet:
    """A 'feature network' whose one layer is the image itself (no normalisation)."""
    return FeatureNet(
        [(Layer("relu1_1", "relu"), nn.Identity())], name="identity", mean=(0, 0, 0), std=(1, 1, 1)
    )


def small_trunk() -> FeatureNet:
    """A random VGG-like trunk with the layer names the style code asks for."""
    torch.manual_seed(0)
    layers, cin = [], 3
    for block, (cout, convs) in enumerate([(8, 2), (8, 2), (8, 3), (8, 3)], start=1):
        for i in range(1, convs + 1):
            layers.append((Layer(f"conv{block}_{i}", "conv"), nn.Conv2d(cin, cout, 3, padding=1)))
            layers.append((Layer(f"relu{block}_{i}", "relu"), nn.ReLU()))
            cin = cout
        if block < 4:
            layers.append((Layer(f"pool{block}", "pool"), nn.MaxPool2d(2)))
    return FeatureNet(layers, name="small")


def test_gram_matrix_known_values():
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2).repeat(1, 2, 1, 1)
    f[0, 1] *= -1
    g = gram_matrix(f)  # F F^T / (C H W) with C=2, H=W=2: (1+4+9+16)/8 = 3.75
    assert torch.allclose(g, torch.tensor([[[3.75, -3.75], [-3.75, 3.75]]]))


def test_style_loss_known_values():
    loss = StyleLoss(identity_net(), ["relu1_1"])
    x = torch.ones(1, 3, 4, 4)
    assert loss(x, x).item() == 0.0
    # every Gram entry is a^2 * HW / (C HW) = a^2 / 3: (1/3 - 4/3)^2 = 1 everywhere
    assert loss(x, 2 * x).item() == pytest.approx(1.0)
    # shifting pixels leaves the Gram matrix (and the style loss) unchanged
    y = torch.rand(1, 3, 4, 4)
    assert loss(torch.roll(y, 1, dims=-1), y).item() == pytest.approx(0.0, abs=1e-7)


def _one_layer(relative: bool, colour: float = 0.0, scales=(1,)):
    from srkit.style.objective import ObjectiveSettings

    return ObjectiveSettings({"relu1_1": 1.0}, {"relu1_1": 1.0}, scales, colour, relative)


def test_relative_objective_known_values():
    x = torch.ones(1, 3, 4, 4)
    terms = StyleObjective(identity_net(), 2 * x, _one_layer(relative=True))
    # Gram entries 1/3 against 4/3: sum (1)^2 over 9 entries / sum (4/3)^2 over 9 = 9/16
    assert terms.style_loss(x).item() == pytest.approx(9 / 16)
    assert terms.style_loss(2 * x).item() == 0.0
    # content: features of unit length at each position (LPIPS's normalisation), squared
    # distance summed over channels, averaged over positions and images
    red, green = torch.zeros_like(x), torch.zeros_like(x)
    red[:, 0], green[:, 1] = 1.0, 1.0
    assert terms.content_loss(red, green).item() == pytest.approx(2.0)
    assert terms.content_loss(torch.zeros_like(x), x).item() == pytest.approx(1.0, rel=1e-6)
    assert terms.content_loss(torch.cat([3 * x, red]), torch.cat([x, green])).item() == (
        pytest.approx(1.0)
    )  # 3x has x's direction: 0; red against green: 2
    # scale-free: every feature times 3 (Gram times 9) leaves the relative terms alone
    y, s = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    plain = StyleObjective(identity_net(), s, _one_layer(True)).style_loss(y)
    scaled = StyleObjective(identity_net(), 3 * s, _one_layer(True)).style_loss(3 * y)
    assert scaled.item() == pytest.approx(plain.item(), rel=1e-5)


def test_published_objective_is_the_papers_sum():
    """The published objective is pytorch/examples' loss: MSE at relu2_2 plus the sum of the
    mean squared Gram differences at relu1_2/2_2/3_3/4_3."""
    trunk = small_trunk()
    torch.manual_seed(1)
    y, x, s = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32), torch.rand(1, 3, 40, 40)
    terms = StyleObjective(trunk, s, objective_for("published", "vgg16:/x.pth"))
    grams = {k: gram_matrix(v) for k, v in trunk(s, STYLE_LAYERS).items()}
    feats = trunk(y, STYLE_LAYERS)
    expected = sum(((gram_matrix(feats[k]) - grams[k]) ** 2).mean() for k in STYLE_LAYERS)
    assert terms.style_loss(y).item() == pytest.approx(expected.item(), rel=1e-5)
    mse = PerceptualLoss(trunk, "relu2_2", criterion="l2")(y, x)
    assert terms.content_loss(y, x).item() == pytest.approx(mse.item(), rel=1e-6)


def test_objective_colour_and_scales():
    grey, red = torch.full((1, 3, 64, 64), 0.5), torch.zeros(1, 3, 64, 64)
    red[:, 0] = 1.0
    # identity_net's one layer is the image itself, so give it no style weight: only the pixel
    # Gram (the colour term) is left, at two scales
    from srkit.style.objective import ObjectiveSettings

    settings = ObjectiveSettings({"relu1_1": 0.0}, {"relu1_1": 1.0}, (1, 2), 1.0, True)
    terms = StyleObjective(identity_net(), red, settings)
    assert set(terms.targets) == {"relu1_1@1", "relu1_1@2", "pixels@1", "pixels@2"}
    assert terms.style_loss(red).item() == pytest.approx(0.0, abs=1e-6)
    assert terms.style_loss(grey).item() > 0.1  # mid-grey has no colour at all
    pink = torch.tensor([0.9, 0.3, 0.3]).reshape(1, 3, 1, 1).expand(1, 3, 64, 64)
    assert terms.style_loss(pink).item() < terms.style_loss(grey + 0.1).item()
    # below 2 x MIN_SCALED_SIDE pixels the half-size comparison is left out
    small = StyleObjective(identity_net(), red[..., :40, :40], settings)
    assert set(small.targets) == {"relu1_1@1", "pixels@1"}


def test_objective_names():
    assert objective_for("auto", "stlpips_vgg16").relative
    assert not objective_for("auto", "vgg19:/w.pth").relative
    with pytest.raises(ValueError, match="objective"):
        objective_for("fancy", "stlpips_vgg16")
    with pytest.raises(ValueError, match="has no layer"):
        StyleObjective(identity_net(), torch.rand(1, 3, 8, 8), objective_for("relative", "x"))


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_gatys_steps_lower_the_loss(optimizer):
    torch.manual_seed(0)
    content, style = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    style[:, 0] = 1.0  # a red-tinted style, far from the content's statistics
    result = gatys(content, style, network=small_trunk(), steps=4, optimizer=optimizer,
                   lbfgs_iters=3, content_weight=1.0, style_weight=1e3,
                   show_progress=False)  # fmt: skip
    assert len(result.losses) == 4 and result.losses[-1] < result.losses[0]
    assert result.image.shape == content.shape
    assert result.image.min() >= 0 and result.image.max() <= 1


def test_gatys_rejects_bad_arguments():
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="steps"):
        gatys(x, x, network=small_trunk(), steps=0, show_progress=False)
    with pytest.raises(ValueError, match="optimizer"):
        gatys(x, x, network=small_trunk(), steps=1, optimizer="sgd", show_progress=False)


def _conv(cin, cout, k):
    return cin * cout * k * k + cout


def test_transformer_net_layout_and_shapes():
    net = TransformerNet()
    # 9x9 3->32, 3x3 32->64 s2, 3x3 64->128 s2, 5 residual blocks (two 3x3 128->128), 3x3
    # 128->64 and 64->32 after upsampling, 9x9 32->3; instance norms have 2C parameters each
    convs = _conv(3, 32, 9) + _conv(32, 64, 3) + _conv(64, 128, 3) + 10 * _conv(128, 128, 3)
    convs += _conv(128, 64, 3) + _conv(64, 32, 3) + _conv(32, 3, 9)
    norms = 2 * (32 + 64 + 128 + 10 * 128 + 64 + 32)
    assert sum(p.numel() for p in net.parameters()) == convs + norms == 1_679_235
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in net.modules()) == 15
    small = TransformerNet(width=4, blocks=1)
    for h, w in [(32, 32), (30, 37), (9, 13)]:
        assert small(torch.rand(2, 3, h, w)).shape == (2, 3, h, w)


def test_the_output_layer_bounds_the_image_only_when_asked():
    from srkit.style.nets import output_layer

    z = torch.tensor([-3.0, 0.0, 0.25, 0.5, 0.75, 1.0, 4.0])
    y = output_layer(z, "tanh")
    assert y.min() > 0 and y.max() < 1 and y[3] == 0.5  # the identity's value at mid-grey
    assert torch.all(y[1:] > y[:-1])  # monotone
    assert torch.allclose(y[2:5], z[2:5], atol=0.02)  # near the identity around mid-grey
    assert torch.equal(output_layer(z, "linear"), z)
    torch.manual_seed(0)
    loud = TransformerNet(width=4, blocks=1)
    for p in loud.parameters():
        p.data.mul_(20)  # drives the last conv far outside [0, 1]
    x = torch.rand(1, 3, 16, 16)
    bounded = loud(x)
    assert bounded.min() >= 0 and bounded.max() <= 1
    loud.output = "linear"
    assert loud(x).abs().max() > 1.5
    with pytest.raises(ValueError, match="output must be one of"):
        TransformerNet(output="sigmoid")
    decoder = AdainDecoder(8, width=8)
    assert decoder.output == "tanh" and decoder(torch.randn(1, 8, 2, 2) * 50).min() >= 0


def test_instance_norm_makes_samples_independent():
    torch.manual_seed(0)
    net = TransformerNet(width=4, blocks=1).eval()
    x, other = torch.rand(1, 3, 24, 24), torch.rand(1, 3, 24, 24) * 0.2
    alone = net(x)
    together = net(torch.cat([x, other]))[:1]
    assert torch.allclose(alone, together, atol=1e-5)
    # instance norm removes a per-image gain and offset of the first layer's response
    norm = nn.InstanceNorm2d(3)
    assert torch.allclose(norm(x), norm(3 * x + 0.5), atol=1e-4)
    mean, std = channel_stats(norm(x))
    assert torch.allclose(mean, torch.zeros_like(mean), atol=1e-5)
    assert torch.allclose(std, torch.ones_like(std), atol=1e-3)


def test_adain_takes_the_style_statistics():
    torch.manual_seed(0)
    c, s = torch.randn(2, 5, 6, 7), torch.randn(2, 5, 4, 3) * 3 + 2
    t = adain(c, s)
    (tm, ts), (sm, ss) = channel_stats(t), channel_stats(s)
    assert torch.allclose(tm, sm, atol=1e-4) and torch.allclose(ts, ss, atol=1e-3)
    with pytest.raises(ValueError):
        adain(c, torch.randn(2, 4, 3, 3))


def test_decoder_mirrors_the_encoder():
    decoder = AdainDecoder()
    assert decoder(torch.rand(1, 512, 4, 5)).shape == (1, 3, 32, 40)
    convs = _conv(512, 256, 3) + 3 * _conv(256, 256, 3) + _conv(256, 128, 3)
    convs += _conv(128, 128, 3) + _conv(128, 64, 3) + _conv(64, 64, 3) + _conv(64, 3, 3)
    assert sum(p.numel() for p in decoder.parameters()) == convs == 3_505_219
    assert AdainDecoder(8, width=8)(torch.rand(1, 8, 2, 3)).shape == (1, 3, 16, 24)


def test_adain_model_and_loss():
    trunk = small_trunk()
    model = AdainModel(trunk, AdainDecoder(8, width=8))
    c, s = torch.rand(1, 3, 36, 28), torch.rand(1, 3, 32, 32)
    assert model(c, s, alpha=0.5).shape == c.shape
    with pytest.raises(ValueError, match="alpha"):
        model(c, s, alpha=1.5)
    loss, parts = adain_losses(model, c, s)
    loss.backward()
    assert loss.item() > 0 and set(parts) == {"content", "style"}
    assert all(p.grad is not None for p in model.decoder.parameters())
    assert all(p.grad is None for p in trunk.parameters())
    # relative: the content term is |f(g(t)) - t|^2 / |t|^2, the style terms averaged with
    # the pixels' own mean/std; the same decoder output, other weights
    rel, rel_parts = adain_losses(model, c, s, 1.0, relative=True)
    assert rel.item() == pytest.approx((rel_parts["content"] + rel_parts["style"]).item())
    assert rel_parts["content"].item() != pytest.approx(parts["content"].item())
    with torch.no_grad():
        t = adain(model.encode(c), model.encode(s))
        out = fit_size(model.decoder(t), 36, 28)
        absolute = ((model.encode(out) - t) ** 2).mean()
    assert rel_parts["content"].item() == pytest.approx((absolute / (t**2).mean()).item(), rel=1e-4)


def test_apply_keeps_the_content_size(tmp_path):
    torch.manual_seed(0)
    net = TransformerNet(width=4, blocks=1).eval()
    x = torch.rand(1, 3, 70, 45)
    whole = stylize_tensor(net, x, tile=0)
    tiled = stylize_tensor(net, x, tile=32, overlap=8)
    assert whole.shape == tiled.shape == x.shape
    spec = {"arch": "transformer_net", "options": {"width": 4, "blocks": 1}}
    model = save_style_model(net, tmp_path / "m.safetensors", spec)
    loaded, manifest = load_style_model(model)
    assert manifest["arch"] == "transformer_net"
    assert torch.equal(loaded(x), net(x))
    folder = tmp_path / "in"
    folder.mkdir()
    for name, size in [("a.png", (45, 70)), ("b.jpg", (33, 17))]:
        _image(folder / name, size[::-1])
    result = stylize(model, [str(folder)], tmp_path / "out", tile=32, show_progress=False)
    assert not result.failed and len(result.written) == 2
    for name, size in [("a.png", (45, 70)), ("b.png", (33, 17))]:
        assert Image.open(tmp_path / "out" / name).size == size


def _image(path, size=(40, 40), seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)
    return str(path)


def test_cli_bad_inputs_are_one_line_errors(tmp_path):
    runner = CliRunner()
    style = _image(tmp_path / "s.png")
    bad = runner.invoke(app, ["style", "gatys", "--content", str(tmp_path / "none.png"),
                              "--style", style, "-o", str(tmp_path / "o.png")])  # fmt: skip
    assert bad.exit_code == 1 and "no such image file" in bad.output
    assert bad.output.strip().count("\n") == 0 and not (tmp_path / "o.png").exists()
    (tmp_path / "junk.safetensors").write_bytes(b"not weights")
    (tmp_path / "junk.json").write_text("{}")
    bad = runner.invoke(app, ["style", "apply", "--model", str(tmp_path / "junk.safetensors"),
                              style, "-o", str(tmp_path / "out")])  # fmt: skip
    assert bad.exit_code == 1 and "not a readable style model" in bad.output
    assert bad.output.strip().count("\n") == 0
    bad = runner.invoke(app, ["style", "train", "--style", style, "--data", str(tmp_path),
                              "-o", str(tmp_path / "m.pth")])  # fmt: skip
    assert bad.exit_code == 1 and ".safetensors" in bad.output
    for command in ["gatys", "train", "train-adain", "apply", "adain"]:
        shown = runner.invoke(app, ["style", command, "--help"])
        assert shown.exit_code == 0 and "srkit style" in shown.output


@needs_stlpips
@pytest.mark.slow
def test_cli_modes_on_tiny_inputs(tmp_path):
    runner = CliRunner()
    data = tmp_path / "photos"
    data.mkdir()
    for i in range(2):
        _image(data / f"p{i}.png", (40, 40), seed=i)
    styles = tmp_path / "styles"
    styles.mkdir()
    style, content = _image(styles / "s.png", seed=5), _image(tmp_path / "c.png", (30, 22), 6)
    model = tmp_path / "m" / "tiny.safetensors"
    result = runner.invoke(app, [
        "style", "train", "--style", style, "--data", str(data), "-o", str(model),
        "--size", "32", "--style-size", "32", "--iters", "2", "--batch-size", "1",
        "--width", "4", "--run-dir", str(tmp_path / "run"), "--device", "cpu",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads(model.with_suffix(".json").read_text())
    assert manifest["purpose"] == "style" and manifest["training_recipe"]["iterations"] == 2
    assert (tmp_path / "run" / "config.yaml").is_file()
    result = runner.invoke(app, ["style", "apply", "--model", str(model), content,
                                 "-o", str(tmp_path / "styled.png")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "styled.png").size == (22, 30)
    decoder = tmp_path / "m" / "dec.safetensors"
    result = runner.invoke(app, [
        "style", "train-adain", "--styles", str(styles), "--data", str(data), "-o", str(decoder),
        "--size", "32", "--iters", "1", "--batch-size", "1", "--width", "8",
        "--run-dir", str(tmp_path / "run2"), "--device", "cpu",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    for alpha in ("0.5", "1"):
        out = tmp_path / f"adain{alpha}.png"
        result = runner.invoke(app, ["style", "adain", "--model", str(decoder), "--content",
                                     content, "--style", style, "-o", str(out), "--alpha", alpha,
                                     "--size", "32"])  # fmt: skip
        assert result.exit_code == 0, result.output
        assert max(Image.open(out).size) == 32
    out = tmp_path / "gatys.png"
    result = runner.invoke(app, ["style", "gatys", "--content", content, "--style", style,
                                 "-o", str(out), "--size", "24", "--steps", "1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (18, 24)
    wrong = runner.invoke(app, ["style", "apply", "--model", str(decoder), content,
                                "-o", str(tmp_path / "x.png")])  # fmt: skip
    assert wrong.exit_code == 1 and "not a feed-forward style model" in wrong.output


@needs_stlpips
@pytest.mark.slow
def test_a_style_recipe_ships_into_the_zoo(tmp_path, monkeypatch):
    """A style recipe trains through `srkit train`, ships without Set5 figures, is listed as a
    style model, loads by name, and no upscaler takes it."""
    from srkit import zoo
    from srkit.models import resolve_model
    from srkit.train.recipe import RecipeRunner
    from srkit.train.ship import ship

    data = tmp_path / "photos"
    data.mkdir()
    for i in range(2):
        _image(data / f"p{i}.png", (40, 40), seed=i)
    style = _image(tmp_path / "s.png", seed=5)
    recipe = tmp_path / "recipes" / "style_tiny.yaml"
    recipe.parent.mkdir()
    stage = {
        "name": "style_tiny", "task": "style", "arch": "transformer_net", "scale": 1,
        "data": {"train": [str(data)], "batch_size": 1, "workers": 0},
        "optimizers": {"g": {"lr": 1.0e-3}},
        "train": {"iters": 2, "device": "cpu", "log_every": 1},
        "style": {"style": style, "image_size": 32, "style_size": 32, "width": 4, "blocks": 1,
                  "tv_weight": 1.0, "colour_weight": 1.0, "identity_warmup": 1},
    }  # fmt: skip
    recipe.write_text(json.dumps({"model": "style_tiny", "stages": [stage]}))
    RecipeRunner(tmp_path / "runs", show_progress=False).run(recipe)
    (log,) = (tmp_path / "runs").rglob("log.jsonl")
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    steps = [entry for entry in logged if "iter" in entry and "tv" in entry]
    assert steps and all(e["tv"] > 0 and e["colour"] > 0 and e["style"] > 0 for e in steps)
    # the identity warm-up: the first iteration is L1 to the content alone, no loss network
    warmup = [entry for entry in logged if "identity" in entry]
    assert len(warmup) == 1 and "style" not in warmup[0] and warmup[0]["iter"] < steps[0]["iter"]
    models = tmp_path / "zoo"
    manifest = ship(recipe, models_dir=models, runs=tmp_path / "runs")
    assert manifest["purpose"] == "style" and manifest["scale"] == 1
    assert "set5" not in manifest["scores"] and manifest["training_recipe"]["iterations"] == 2
    monkeypatch.setattr(zoo, "MODELS_DIR", models)
    monkeypatch.setattr(zoo, "INDEX", models / "index.json")
    zoo.shipped_models.cache_clear()
    try:
        (listed,) = zoo.models_for("style")
        assert listed.name == "style_tiny" and listed.params == manifest["params"]
        net, loaded = load_style_model("style_tiny")  # by name, sha256 checked
        assert isinstance(net, TransformerNet) and loaded["sha256"] == manifest["sha256"]
        with pytest.raises(ValueError, match="not an upscaler"):
            resolve_model("style_tiny", None)
        with pytest.raises(ValueError, match="no such file or shipped style model"):
            load_style_model("style_nonesuch")
        result = CliRunner().invoke(app, ["models", "--purpose", "style"])
        assert result.exit_code == 0 and "style_tiny" in result.output
        weights = models / "style_tiny.safetensors"
        weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
        with pytest.raises(ValueError, match="sha256"):
            load_style_model("style_tiny")
    finally:
        zoo.shipped_models.cache_clear()


@needs_stlpips
@pytest.mark.parametrize("task", ["style", "adain"])
def test_identity_warmup_trains_towards_the_content_first(tmp_path, task):
    """The warm-up iterations are L1 to the content alone (no style term, no loss network on
    the output); the style loss takes over after them."""
    from srkit.train.tasks.style import style_experiment
    from srkit.train.trainer import train_to_file

    data = tmp_path / "photos"
    data.mkdir()
    for i in range(2):
        _image(data / f"p{i}.png", (40, 40), seed=i)
    style = _image(tmp_path / "s.png", seed=5)
    options = (
        {"style": style, "style_size": 32, "width": 4, "blocks": 1}
        if task == "style"
        else {"styles": [style], "width": 8}
    )
    raw = style_experiment(task, f"warm_{task}", [str(data)], iters=3, batch_size=1,
                           device="cpu", options={**options, "image_size": 32,
                                                  "identity_warmup": 2})  # fmt: skip
    raw["train"]["log_every"] = 1
    train_to_file(raw, tmp_path / "run", tmp_path / f"{task}.safetensors")
    logged = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().split("\n")
              if line.strip()]  # fmt: skip
    kinds = [("identity" in e, "style" in e) for e in logged if "iter" in e and "loss" in e]
    assert kinds == [(True, False), (True, False), (False, True)]
    from srkit.train.experiment import experiment_from_dict

    with pytest.raises(ValueError, match="identity_warmup"):
        experiment_from_dict({**raw, task: {**raw[task], "identity_warmup": -1}})
