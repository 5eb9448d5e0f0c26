"""Face SR architectures: PFSRNet (generator and progressive discriminator) and Wavelet-SRNet with
its Haar wavelet packet and wavelet loss.

Exact parameter counts from the authors' layer lists, the progressive stages and fade-in, the
packet's exact round trip, the loss at ``sr == hr``, and numeric snapshots through the helpers of
``test_arch_snapshots.py`` / ``test_discriminators.py`` (same records in ``tests/snapshots``).
Record them after an intended change with::

    SRKIT_UPDATE_SNAPSHOTS=1 python -m pytest -q -p no:xdist tests/test_face_archs.py
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import test_arch_snapshots as arch_snapshots
import test_discriminators as disc_snapshots
from srkit.archs import ARCHS, build, count_params, get_spec
from srkit.archs.discriminators import DISCRIMINATORS, build_discriminator
from srkit.archs.discriminators import pfsrnet as pfsr_d
from srkit.archs.pfsrnet import CPU_OPTIONS as PFSR_CPU
from srkit.archs.pfsrnet import EqualizedConv2d, PFSRNet
from srkit.archs.registry import MODULES
from srkit.archs.waveletsrnet import CPU_OPTIONS as WAVELET_CPU
from srkit.archs.waveletsrnet import (
    WaveletSRNet,
    band_sizes,
    haar_packet_forward,
    haar_packet_inverse,
)
from srkit.losses import LOSSES
from srkit.losses.wavelet import WaveletLoss, texture_loss, wavelet_loss_terms

# the configurations of the numeric snapshots (smaller than the CPU sizes: the same structure)
SNAPSHOT_OPTIONS = {
    "pfsrnet": {"width": 32},
    "waveletsrnet": {"features": 8, "wavelet_features": 4, "res_blocks": 1},
}
DISC_SNAPSHOT_OPTIONS = {"pfsrnet_d": {"width": 32, "dense": 64}}


def conv(cin: int, cout: int, k: int, bias: bool = True, groups: int = 1) -> int:
    return cin * cout * k * k // groups + (cout if bias else 0)


def bn(c: int) -> int:
    return 2 * c


def meta_count(factory) -> int:
    with torch.device("meta"):
        return count_params(factory())


# --------------------------------------------------------------------------- registration


def test_face_archs_are_registered_with_their_conventions() -> None:
    from srkit.archs import pfsrnet, waveletsrnet

    assert pfsrnet in MODULES and waveletsrnet in MODULES
    spec = get_spec("pfsrnet")
    assert spec.scales == (8,) and spec.convention.channels == "rgb"
    assert spec.convention.value_range == 1.0 and spec.convention.mean is None
    assert spec.convention.input_size == (16, 16)  # aligned 16 x 16 faces only, never tiled
    assert "Progressive Face Super-Resolution" in spec.reference.title
    spec = get_spec("waveletsrnet")
    assert spec.scales == (2, 4, 8) and spec.convention.input_size is None
    assert next(iter(spec.published_params)) == 8  # build's default: the 16 -> 128 faces
    assert build("waveletsrnet", **WAVELET_CPU).scale == 8
    assert "pfsrnet_d" in DISCRIMINATORS and "pfsrnet_d" not in ARCHS
    assert DISCRIMINATORS["pfsrnet_d"].input_size == 128


# --------------------------------------------------------------------------- PFSRNet generator


def pfsrnet_layer_list(width: int = 512, blocks: int = 1) -> int:
    """The authors' model.py Generator: head, then per stage residual blocks, deconv, to-RGB."""
    total = conv(3, width, 3) + bn(width)
    for stage in range(3):
        c = width >> stage
        total += blocks * 2 * (conv(c, c, 3) + bn(c))  # ResBlock: two (conv, BN)
        total += conv(c, c // 2, 4) + bn(c // 2)  # ConvTranspose2d 4 x 4 stride 2, BN
        total += conv(c // 2, 3, 1)  # to_rgb
    return total


def test_pfsrnet_param_counts() -> None:
    assert pfsrnet_layer_list() == 8_969_097  # the authors' code: 8.97M
    assert meta_count(lambda: build("pfsrnet")) == 8_969_097
    assert get_spec("pfsrnet").published_params == {8: 8_969_097}
    assert pfsrnet_layer_list(64) == meta_count(lambda: build("pfsrnet", **PFSR_CPU)) == 142_713
    assert meta_count(lambda: build("pfsrnet", width=64, blocks=2)) == pfsrnet_layer_list(64, 2)


def test_pfsrnet_stages_and_fade_in() -> None:
    torch.manual_seed(0)
    net = build("pfsrnet", width=16).eval()
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        outs = {stage: net(x, stage=stage) for stage in (1, 2, 3)}
        assert [tuple(o.shape[-2:]) for o in outs.values()] == [(32, 32), (64, 64), (128, 128)]
        torch.testing.assert_close(net(x), outs[3])  # the default is the full 8x network
        for stage in (2, 3):
            previous = F.interpolate(outs[stage - 1], scale_factor=2, mode="nearest")
            torch.testing.assert_close(net(x, stage=stage, alpha=0.0), previous)
            torch.testing.assert_close(net(x, stage=stage, alpha=1.0), outs[stage])
            mixed = 0.25 * previous + 0.75 * outs[stage]
            torch.testing.assert_close(net(x, stage=stage, alpha=0.75), mixed)
        torch.testing.assert_close(net(x, stage=1, alpha=0.3), outs[1])  # nothing to fade from
        # fully convolutional: the 16 x 16 restriction is the spec's, not the module's
        assert net(torch.rand(1, 3, 16, 20)).shape == (1, 3, 128, 160)
    with pytest.raises(ValueError, match="stage must be 1, 2 or 3, got 4"):
        net(x, stage=4)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\], got 1.5"):
        net(x, alpha=1.5)
    with pytest.raises(ValueError, match="multiple of 8"):
        PFSRNet(width=20)


def test_pfsrnet_upscales_16x16_faces_whole_and_refuses_other_sizes() -> None:
    from srkit.archs.adapter import NetworkModel
    from srkit.infer.upscaler import Upscaler

    torch.manual_seed(0)
    spec = get_spec("pfsrnet")
    net = build("pfsrnet", width=16).eval()
    upscaler = Upscaler(NetworkModel(net, 8, spec.convention, "pfsrnet"))
    assert upscaler.tile_size(16, 16) == 16  # never tiled
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(upscaler.upscale_tensor(x), net(x))
    with pytest.raises(ValueError, match="exactly 16x16 pixels"):
        upscaler.upscale_tensor(torch.rand(1, 3, 16, 20))


def test_equalized_conv_scales_its_weight_at_run_time() -> None:
    torch.manual_seed(0)
    layer = EqualizedConv2d(4, 5, 3)
    assert layer.bias is not None and not layer.bias.any()
    assert abs(float(layer.weight.detach().std()) - 1.0) < 0.2  # stored at N(0, 1)
    x = torch.rand(1, 4, 6, 6)
    expected = F.conv2d(x, layer.weight * math.sqrt(2 / 36), layer.bias, padding=1)
    torch.testing.assert_close(layer(x), expected)
    assert count_params(layer) == conv(4, 5, 3)


# --------------------------------------------------------------------------- its discriminator


def pfsrnet_d_layer_list(width: int = 512, dense: int = 2048) -> int:
    """The authors' model.py Discriminator: from-RGB 1 x 1 per stage, ConvBlocks, the last conv
    over features + the minibatch-stddev map, two dense layers."""
    from_rgb = sum(conv(3, width >> (i + 1), 1) for i in range(3))
    blocks = sum(
        conv(width >> (i + 1), width >> i, 3) + conv(width >> i, width >> i, 3) for i in range(3)
    )
    return from_rgb + blocks + conv(width + 1, width, 3) + (width + 1) * dense + dense + 1


def test_pfsrnet_discriminator_param_counts() -> None:
    assert pfsrnet_d_layer_list() == 8_065_537
    assert meta_count(lambda: build_discriminator("pfsrnet_d")) == 8_065_537
    assert DISCRIMINATORS["pfsrnet_d"].published_params == 8_065_537
    cpu = meta_count(lambda: build_discriminator("pfsrnet_d", **pfsr_d.CPU_OPTIONS))
    assert cpu == pfsrnet_d_layer_list(64, 256) == 127_425


def test_pfsrnet_discriminator_stages_fade_in_and_sizes() -> None:
    torch.manual_seed(0)
    d = build_discriminator("pfsrnet_d", width=16, dense=8).eval()
    assert not any(isinstance(m, nn.Sigmoid) for m in d.modules())  # a WGAN critic score
    with torch.no_grad():
        for side in (32, 64, 128):
            score = d(torch.rand(3, 3, side, side))
            assert score.shape == (3, 1) and torch.isfinite(score).all()
        assert torch.isfinite(d(torch.rand(1, 3, 128, 128))).all()  # batch of 1: std 0, finite
        x = torch.rand(2, 3, 64, 64)
        coarse = d(F.avg_pool2d(x, 2), stage=1)
        torch.testing.assert_close(d(x, stage=2, alpha=0.0), coarse)  # only the skip path
        torch.testing.assert_close(d(x, stage=2, alpha=1.0), d(x))
        mixed = d(x, stage=2, alpha=0.5)
        assert not torch.allclose(mixed, coarse) and not torch.allclose(mixed, d(x))
    with pytest.raises(ValueError, match="takes 32 x 32, 64 x 64 or 128 x 128 images"):
        d(torch.rand(1, 3, 48, 48))
    with pytest.raises(ValueError, match="stage 3 reads 128 x 128 images, got 64 x 64"):
        d(torch.rand(1, 3, 64, 64), stage=3)


def test_minibatch_stddev_map() -> None:
    x = torch.randn(4, 5, 3, 3)
    out = pfsr_d.minibatch_stddev(x)
    assert out.shape == (4, 6, 3, 3)
    torch.testing.assert_close(out[:, :5], x)
    expected = x.std(dim=0, unbiased=False).mean()
    torch.testing.assert_close(out[:, 5], expected.expand(4, 3, 3), atol=1e-6, rtol=1e-5)


# --------------------------------------------------------------------------- Wavelet-SRNet


def waveletsrnet_layer_list(
    scale: int, features: int = 64, res_blocks: int = 2, wavelet_features: int = 32
) -> int:
    """The authors' networks.py NetSR: input conv, five groups of residual blocks, one grouped
    branch per packet band (interim block, residual block, prediction conv)."""

    def block(cin: int, cout: int, g: int = 1, first_g: int = 1, skip: bool = False) -> int:
        shortcut = conv(cin, cout, 1, False) if (skip or cin != cout) else 0
        body = conv(cin, cout, 3, False, first_g) + conv(cout, cout, 3, False, g)
        return shortcut + body + 2 * bn(cout)

    total = conv(3, features, 3, False) + bn(features)
    width = features
    for factor in (1, 2, 4, 8, 16):
        for _ in range(res_blocks):
            total += block(width, features * factor)
            width = features * factor
    f = wavelet_features
    for g in band_sizes(int(math.log2(scale))):
        total += block(width, f * g, g, 1, skip=True) + block(f * g, 2 * f * g, g, g)
        total += conv(2 * f * g, 3 * g, 3, True, g)
    return total


@pytest.mark.parametrize(
    ("scale", "full", "cpu"),
    [(2, 46_327_372, 1_327_068), (4, 51_353_968, 1_646_016), (8, 74_999_296, 3_142_992)],
)
def test_waveletsrnet_param_counts(scale: int, full: int, cpu: int) -> None:
    assert waveletsrnet_layer_list(scale) == full
    assert meta_count(lambda: build("waveletsrnet", scale=scale)) == full
    assert get_spec("waveletsrnet").published_params[scale] == full
    assert waveletsrnet_layer_list(scale, **WAVELET_CPU) == cpu
    assert meta_count(lambda: build("waveletsrnet", scale=scale, **WAVELET_CPU)) == cpu


def test_waveletsrnet_predicts_the_packet_of_its_output() -> None:
    assert [band_sizes(r) for r in (1, 2, 3)] == [[1, 3], [1, 3, 12], [1, 3, 12, 48]]
    torch.manual_seed(0)
    for scale, levels in ((2, 1), (4, 2), (8, 3)):
        net = WaveletSRNet(scale, features=4, wavelet_features=2, res_blocks=1).eval()
        x = torch.rand(2, 3, 6, 10)
        with torch.no_grad():
            coefficients = net.coefficients(x)
            out = net(x)
        assert coefficients.shape == (2, 3 * 4**levels, 6, 10)
        assert out.shape == (2, 3, 6 * scale, 10 * scale)
        torch.testing.assert_close(haar_packet_forward(out, levels), coefficients)
        # every coefficient's subnet is its own group: the last convolution has one per coefficient
        assert [b.predict.groups for b in net.branches] == band_sizes(levels)


# --------------------------------------------------------------------------- the Haar packet


def dyadic(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Values k / 256: every sum and halving of the transform is exact in floating point."""
    g = torch.Generator().manual_seed(3)
    return torch.randint(0, 256, shape, generator=g).to(dtype) / 256


@pytest.mark.parametrize("levels", [0, 1, 2, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_haar_packet_round_trip_is_exact(levels: int, dtype: torch.dtype) -> None:
    x = dyadic(2, 3, 16, 24, dtype=dtype)
    coefficients = haar_packet_forward(x, levels)
    assert coefficients.shape == (2, 3 * 4**levels, 16 >> levels, 24 >> levels)
    assert torch.equal(haar_packet_inverse(coefficients, levels), x)
    # and the other way round, and orthonormal: the energy is kept
    c = dyadic(1, 4**levels, 3, 5, dtype=dtype)
    assert torch.equal(haar_packet_forward(haar_packet_inverse(c, levels), levels), c)
    torch.testing.assert_close(coefficients.pow(2).sum(), x.pow(2).sum())


def test_haar_packet_round_trip_of_arbitrary_values() -> None:
    x = torch.randn(2, 1, 8, 16, dtype=torch.float64)
    for levels in (1, 2, 3):
        y = haar_packet_inverse(haar_packet_forward(x, levels), levels)
        torch.testing.assert_close(y, x, atol=1e-12, rtol=0)


def test_haar_packet_values_and_layout() -> None:
    block = torch.tensor([[1.0, 2.0], [3.0, 5.0]]).reshape(1, 1, 2, 2)
    a, b, p, q = 1.0, 2.0, 3.0, 5.0
    expected = [(a + b + p + q) / 2, (a - b + p - q) / 2, (a + b - p - q) / 2, (a - b - p + q) / 2]
    assert haar_packet_forward(block, 1).flatten().tolist() == expected
    # colours stay apart: channel i * C + c is coefficient i of colour c
    x = torch.rand(1, 3, 8, 8)
    packet = haar_packet_forward(x, 3)
    for colour in range(3):
        single = haar_packet_forward(x[:, colour : colour + 1], 3)
        torch.testing.assert_close(packet[:, colour::3], single)
    # coefficient 0 is 2**r x the block mean; a constant image has no detail
    torch.testing.assert_close(packet[0, :3, 0, 0], 8 * x[0].mean(dim=(1, 2)))
    flat = haar_packet_forward(torch.full((1, 3, 8, 8), 0.5), 3)
    assert torch.equal(flat[:, 3:], torch.zeros_like(flat[:, 3:]))
    # coefficients 1..3 (branch 1) are the coarsest details, 1 / 2 / 3 horizontal / vertical /
    # diagonal; 48..63 (branch 3) the finest: a pixel checkerboard lands on 48 = (3, 0, 0) alone
    ramp = torch.arange(8.0).repeat(8, 1).reshape(1, 1, 8, 8)  # left to right
    energy = haar_packet_forward(ramp, 3).pow(2).flatten()
    assert energy[1] > 0 and energy[2] == energy[3] == 0
    assert haar_packet_forward(ramp.transpose(2, 3), 3).flatten()[[1, 2, 3]].abs().argmax() == 1
    checker = (torch.arange(8).view(8, 1) + torch.arange(8).view(1, 8)) % 2 * -2.0 + 1.0
    energy = haar_packet_forward(checker.reshape(1, 1, 8, 8), 3).pow(2).flatten()
    assert energy[48] == checker.pow(2).sum() and energy.sum() == energy[48]
    with pytest.raises(ValueError, match="not divisible by 2\\*\\*3"):
        haar_packet_forward(torch.rand(1, 3, 12, 16), 3)


# --------------------------------------------------------------------------- the wavelet loss


def test_wavelet_loss_is_zero_at_the_target_but_for_the_texture_term() -> None:
    torch.manual_seed(0)
    hr = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    sr = hr.clone().requires_grad_(True)
    terms = wavelet_loss_terms(sr, hr, 2)
    for name in ("low", "high", "image"):
        (grad,) = torch.autograd.grad(terms[name], sr, retain_graph=True)
        assert float(terms[name].detach()) == 0.0, name
        assert torch.equal(grad, torch.zeros_like(grad)), name
    # the texture term is nonzero by design (alpha 1.2 > 1): (alpha - 1) x the detail energy
    detail = haar_packet_forward(hr, 2)[:, 3:]
    energy = detail.reshape(2, 15, 3, 8, 8).pow(2).sum(dim=2)
    torch.testing.assert_close(terms["texture"], 0.2 * energy.mean())
    (grad,) = torch.autograd.grad(terms["texture"], sr)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    # a descent step raises the output's detail energy (against over-smoothing)
    stepped = (sr - 1e-3 * grad).detach()
    assert haar_packet_forward(stepped, 2)[:, 3:].pow(2).sum() > detail.pow(2).sum()
    # with alpha 1 and eps 0 the whole loss and its gradient vanish at sr == hr
    loss = WaveletLoss(levels=2, texture_alpha=1.0, texture_eps=0.0)
    value = loss(sr, hr)
    (grad,) = torch.autograd.grad(value, sr)
    assert float(value.detach()) == 0.0 and torch.equal(grad, torch.zeros_like(grad))


def test_wavelet_loss_weights_reduction_and_gradient() -> None:
    torch.manual_seed(1)
    hr = torch.rand(2, 3, 16, 16)
    sr = (hr + 0.1 * torch.randn_like(hr)).requires_grad_(True)
    loss = WaveletLoss(levels=3)  # the authors' weights: 0.01, 0.99, 0.1, 1
    terms = loss.terms(sr, hr)
    expected = 0.01 * terms["low"] + 0.99 * terms["high"] + 0.1 * terms["image"] + terms["texture"]
    value = loss(sr, hr)
    torch.testing.assert_close(value, expected)
    (grad,) = torch.autograd.grad(value, sr)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    # "sum": the authors' sum((a - b)^2) / (2 N); "mean": plain MSE
    torch.testing.assert_close(terms["image"], (sr - hr).pow(2).sum() / 4)
    means = wavelet_loss_terms(sr, hr, 3, reduction="mean")
    torch.testing.assert_close(means["image"], F.mse_loss(sr, hr))
    sr_c, hr_c = haar_packet_forward(sr, 3), haar_packet_forward(hr, 3)
    torch.testing.assert_close(means["low"], F.mse_loss(sr_c[:, :3], hr_c[:, :3]))
    torch.testing.assert_close(means["high"], F.mse_loss(sr_c[:, 3:], hr_c[:, 3:]))
    torch.testing.assert_close(means["texture"], terms["texture"])  # a mean either way
    t = texture_loss(sr_c[:, 3:], hr_c[:, 3:], alpha=1.2, eps=0.5)
    assert t > terms["texture"]
    with pytest.raises(ValueError, match="levels must be >= 1"):
        WaveletLoss(levels=0)
    with pytest.raises(ValueError, match="differ"):
        loss(sr, hr[..., :8])


def test_wavelet_loss_is_in_the_loss_registry() -> None:
    from srkit.losses import LossTerm, WeightedLoss

    module = LOSSES["wavelet"].build(levels=2)
    assert isinstance(module, WaveletLoss) and module.levels == 2
    hr = torch.rand(1, 3, 16, 16)
    total, parts = WeightedLoss([LossTerm("wavelet", options={"levels": 2})])(hr * 0.9, _Batch(hr))
    assert torch.isfinite(total) and set(parts) == {"wavelet"}


class _Batch:
    def __init__(self, hr: torch.Tensor) -> None:
        self.hr = hr


# --------------------------------------------------------------------------- numeric snapshots


def test_snapshot_records_of_the_face_archs() -> None:
    """test_arch_snapshots / test_discriminators check these archs from their tables."""
    assert arch_snapshots.OPTIONS["pfsrnet"] == SNAPSHOT_OPTIONS["pfsrnet"]
    assert disc_snapshots.SMALL["pfsrnet_d"] == DISC_SNAPSHOT_OPTIONS["pfsrnet_d"]
    recorded = arch_snapshots._recorded()
    for name, options in SNAPSHOT_OPTIONS.items():
        assert recorded[name]["options"] == options
    assert recorded["pfsrnet"]["paper_params"] == {"8": 8_969_097}
    assert recorded["waveletsrnet"]["paper_params"] == {
        "2": 46_327_372, "4": 51_353_968, "8": 74_999_296,
    }  # fmt: skip
    assert disc_snapshots._recorded()["pfsrnet_d"]["options"] == DISC_SNAPSHOT_OPTIONS["pfsrnet_d"]


def test_layer_list_helpers_agree_with_the_generic_conv_count() -> None:
    # the helpers above count ConvTranspose2d like Conv2d (cin * cout * k * k + cout)
    for cin, cout, k in itertools.product((3, 8), (4, 6), (1, 3, 4)):
        assert count_params(nn.ConvTranspose2d(cin, cout, k)) == conv(cin, cout, k)
        assert count_params(nn.Conv2d(cin, cout, k)) == conv(cin, cout, k)
