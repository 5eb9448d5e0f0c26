"""Feature networks: torchvision-format files made here, and the ST-LPIPS trunks when installed."""

from __future__ import annotations

import importlib.util
import sys
import types

import pytest
import torch
import torch.nn.functional as F

from srkit.features import feature_network, imagenet_alexnet, imagenet_vgg, stlpips_trunk
from srkit.features.networks import LPIPS_LAYERS

VGG19_CONVS = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
VGG16_CONVS = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
HAS_STLPIPS = importlib.util.find_spec("stlpips_pytorch") is not None
needs_stlpips = pytest.mark.skipif(
    not HAS_STLPIPS, reason="stlpips-pytorch is not installed (pip install 'srkit[perceptual]')"
)


def tiny_vgg_state(convs: list[int], width: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    """A torchvision-layout VGG state dict with ``width`` channels per conv (plus a classifier
    entry, as the real files have)."""
    generator = torch.Generator().manual_seed(seed)
    state, c_in = {}, 3
    for index in convs:
        state[f"features.{index}.weight"] = (
            torch.randn(width, c_in, 3, 3, generator=generator) * 0.5
        )
        state[f"features.{index}.bias"] = torch.randn(width, generator=generator) * 0.1
        c_in = width
    state["classifier.0.weight"] = torch.zeros(2, 2)
    return state


@pytest.fixture
def vgg19_file(tmp_path):
    path = tmp_path / "vgg19-tiny.pth"
    state = tiny_vgg_state(VGG19_CONVS)
    torch.save(state, path)
    return path, state


def reference_vgg(state: dict[str, torch.Tensor], x: torch.Tensor, convs: list[int]) -> dict:
    """torchvision's ``vgg.features`` written with F.* from the state dict: conv/relu outputs."""
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    h, out, block, within = (x - mean) / std, {}, 1, 0
    for position, index in enumerate(convs):
        within += 1
        h = F.conv2d(
            h, state[f"features.{index}.weight"], state[f"features.{index}.bias"], padding=1
        )
        out[f"conv{block}_{within}"] = h
        h = F.relu(h)
        out[f"relu{block}_{within}"] = h
        if position + 1 < len(convs) and convs[position + 1] - index == 3:
            h = F.max_pool2d(h, 2, 2)
            block, within = block + 1, 0
    return out


def test_vgg19_file_gives_named_layers_equal_to_torchvision_layout(vgg19_file):
    path, state = vgg19_file
    net = imagenet_vgg(path, "vgg19")
    assert net.name == "vgg19"
    assert net.layer_names[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    assert net.layer_names[-2:] == ("conv5_4", "relu5_4")
    x = torch.rand(2, 3, 40, 36)
    got = net(x, ["relu2_2", "conv5_4", "relu5_4"])
    expected = reference_vgg(state, x, VGG19_CONVS)
    for layer in ("relu2_2", "conv5_4", "relu5_4"):
        torch.testing.assert_close(got[layer], expected[layer], rtol=1e-5, atol=1e-5)
    assert got["relu2_2"].shape == (2, 4, 20, 18) and got["conv5_4"].shape == (2, 4, 2, 2)
    # conv5_4 is before the activation (ESRGAN): it has negative values, relu5_4 does not
    assert (got["conv5_4"] < 0).any() and (got["relu5_4"] >= 0).all()
    assert not any(p.requires_grad for p in net.parameters())


def test_vgg16_file_and_spec_strings(tmp_path):
    path = tmp_path / "vgg16-tiny.pth"
    state = tiny_vgg_state(VGG16_CONVS, seed=1)
    torch.save(state, path)
    net = feature_network(f"vgg16:{path}")
    assert net.name == "vgg16" and "relu5_3" in net.layer_names and "conv5_4" not in net.layer_names
    x = torch.rand(1, 3, 32, 32)
    expected = reference_vgg(state, x, VGG16_CONVS)["relu4_3"]
    torch.testing.assert_close(net(x, ["relu4_3"])["relu4_3"], expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="holds a vgg16, not a vgg19"):
        feature_network(f"vgg19:{path}")
    with pytest.raises(ValueError, match="no layer 'relu6_1'"):
        net(x, ["relu6_1"])


def test_bad_feature_network_files_and_names_are_one_line_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="feature network weights not found"):
        feature_network(f"vgg19:{tmp_path / 'missing.pth'}")
    broken = tmp_path / "broken.pth"
    torch.save({f"features.{i}.weight": torch.zeros(4, 3, 3, 3) for i in (0, 2)}, broken)
    with pytest.raises(ValueError, match="2 conv layers under features"):
        imagenet_vgg(broken)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a PyTorch state dict"):
        imagenet_vgg(junk)
    with pytest.raises(ValueError, match="unknown feature network 'resnet'"):
        feature_network("resnet")


def test_alexnet_file_layout(tmp_path):
    generator = torch.Generator().manual_seed(2)
    shapes = {
        0: (5, 3, 11, 11),
        3: (6, 5, 5, 5),
        6: (7, 6, 3, 3),
        8: (4, 7, 3, 3),
        10: (4, 4, 3, 3),
    }
    state = {}
    for index, shape in shapes.items():
        state[f"features.{index}.weight"] = torch.randn(*shape, generator=generator) * 0.1
        state[f"features.{index}.bias"] = torch.randn(shape[0], generator=generator) * 0.1
    path = tmp_path / "alexnet-tiny.pth"
    torch.save(state, path)
    net = imagenet_alexnet(path)
    x = torch.rand(1, 3, 64, 64)
    out = net(x, LPIPS_LAYERS["alexnet"])
    h = (x - net.mean) / net.std
    h = F.relu(
        F.conv2d(h, state["features.0.weight"], state["features.0.bias"], stride=4, padding=2)
    )
    torch.testing.assert_close(out["relu1"], h)
    assert out["relu1"].shape == (1, 5, 15, 15) and out["relu5"].shape == (1, 4, 3, 3)
    assert [net.channels(layer) for layer in LPIPS_LAYERS["alexnet"]] == [5, 6, 7, 4, 4]


def _stub_stlpips_imports(monkeypatch) -> None:
    """The package imports IPython, torchsummary and torchvision at import time; none is used
    by its shift-tolerant networks, so stubs let the reference run here."""
    for name in ("IPython", "torchsummary", "torchvision"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    sys.modules["IPython"].embed = lambda *args, **kwargs: None
    sys.modules["torchsummary"].summary = lambda *args, **kwargs: None
    sys.modules["torchvision"].models = types.SimpleNamespace()
    for name in [m for m in sys.modules if m.startswith("stlpips_pytorch")]:
        monkeypatch.delitem(sys.modules, name)


@needs_stlpips
@pytest.mark.slow
def test_stlpips_trunks_and_lpips_match_the_package(monkeypatch):
    from srkit.metrics.perceptual import lpips_model

    torch.manual_seed(0)
    a, b = torch.rand(2, 3, 64, 72), torch.rand(2, 3, 64, 72)
    ours = {trunk: stlpips_trunk(trunk) for trunk in ("vgg16", "alex")}
    assert ours["vgg16"].layer_names[:6] == (
        "conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1", "blur1",
    )  # fmt: skip
    _stub_stlpips_imports(monkeypatch)
    from stlpips_pytorch import stlpips

    for trunk, package_name, variant in (("vgg16", "vgg", "vgg"), ("alex", "alex", "alex")):
        reference = stlpips.LPIPS(net=package_name, variant="shift_tolerant", verbose=False)
        with torch.no_grad():
            expected = reference.net(reference.scaling_layer(2 * a - 1))
            got = ours[trunk](a, LPIPS_LAYERS[trunk])
            for k, layer in enumerate(LPIPS_LAYERS[trunk]):
                torch.testing.assert_close(got[layer], expected[k], rtol=1e-4, atol=1e-3)
            distance = reference(a, b, normalize=True).flatten()
        torch.testing.assert_close(lpips_model(variant)(a, b), distance, rtol=1e-4, atol=1e-6)
