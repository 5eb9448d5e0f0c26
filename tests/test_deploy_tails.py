"""srkit.deploy.tails: the narrowing convolution after a pixel shuffle, folded before it."""

from __future__ import annotations

import copy
import importlib.util

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from srkit.deploy.tails import fold_shuffle_conv, fold_tails, local_layers
from srkit.models import random_model


@pytest.mark.parametrize(
    ("r", "k", "bias"), [(2, 3, True), (3, 3, False), (2, 5, True), (4, 3, True)]
)
def test_fold_equals_shuffle_then_conv_borders_included(r: int, k: int, bias: bool) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 3, k, padding=k // 2, bias=bias)
    g = torch.randn(2, 16 * r * r, 9, 7)  # odd sizes: every border phase is exercised
    folded = fold_shuffle_conv(conv, r)
    assert folded.weight.shape[:2] == (3 * r * r, 16 * r * r)
    assert folded.kernel_size == (2 * -(-(k // 2) // r) + 1,) * 2
    with torch.no_grad():
        expected = conv(F.pixel_shuffle(g, r))
        got = F.pixel_shuffle(folded(g), r)
    assert got.shape == expected.shape
    assert float((got - expected).abs().max()) < 1e-5


def test_fold_refuses_strided_or_grouped_convolutions() -> None:
    with pytest.raises(ValueError, match="fold"):
        fold_shuffle_conv(nn.Conv2d(8, 4, 3, padding=1, groups=2), 2)
    with pytest.raises(ValueError, match="fold"):
        fold_shuffle_conv(nn.Conv2d(8, 4, 3, stride=2, padding=1), 2)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_edsr_tail_folds_once_and_keeps_its_outputs(scale: int) -> None:
    model = random_model("edsr_baseline", scale)
    net = copy.deepcopy(model.net)
    assert fold_tails(net) == 1  # only the convolution to RGB narrows (64 -> 3)
    last_convs = [m for m in net.tail.modules() if isinstance(m, nn.Conv2d)]
    assert last_convs[-1].out_channels == 3 * (2 if scale == 4 else scale) ** 2
    torch.manual_seed(1)
    x = torch.rand(1, 3, 13, 11)
    with torch.inference_mode():
        expected, got = model.net(x), net(x)
    assert float((got - expected).abs().max()) < 1e-4


def test_only_sequences_of_row_local_layers_are_rewritten() -> None:
    class Tail(nn.Module):  # not an nn.Sequential: left alone
        def __init__(self) -> None:
            super().__init__()
            self.up, self.conv = nn.PixelShuffle(2), nn.Conv2d(16, 3, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(self.up(x))

    net = nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.Upsample(scale_factor=2)),
        nn.Sequential(nn.PixelShuffle(2), nn.Conv2d(16, 3, 3, padding=1, padding_mode="reflect")),
        nn.Sequential(nn.PixelShuffle(2), nn.Conv2d(16, 8, 3, padding=1)),  # widens: 8*4 > 16
        Tail(),
    )
    before = copy.deepcopy(net.state_dict())
    assert fold_tails(net) == 0
    assert local_layers(net[0]) is None and local_layers(net[1]) is None
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_channels_last_backend_runs_the_folded_tail() -> None:
    from srkit.deploy import prepare

    model = random_model("edsr_baseline", 4)
    deployed = prepare(model, "torch-cl", "fp32")
    shapes = [m.weight.shape for m in deployed.net.modules() if isinstance(m, nn.Conv2d)]
    assert (12, 256, 3, 3) in shapes  # the 64 -> 3 convolution, folded before the last shuffle
    x = torch.rand(1, 3, 20, 24)
    with torch.inference_mode():
        assert float((deployed(x) - model(x)).abs().max()) < 1e-4
    original = [m.weight.shape for m in model.net.modules() if isinstance(m, nn.Conv2d)]
    assert (12, 256, 3, 3) not in original  # the user's model is not changed


@pytest.mark.skipif(importlib.util.find_spec("onnx") is None, reason="onnx is not installed")
def test_onnx_export_carries_the_folded_convolution(tmp_path) -> None:
    import onnx

    from srkit.deploy.export import export_onnx

    model = random_model("edsr_baseline", 4)
    path = export_onnx(model, tmp_path / "edsr.onnx")  # checks itself against PyTorch
    proto = onnx.load(str(path))
    dims = {tuple(t.dims) for t in proto.graph.initializer}
    assert (12, 256, 3, 3) in dims and (3, 64, 3, 3) not in dims
