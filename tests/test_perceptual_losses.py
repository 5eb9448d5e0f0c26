"""Perceptual, style, contextual and total-variation losses: values on known inputs, gradients,
and their use through the loss registry. Feature networks are tiny ones made here."""

from __future__ import annotations

import math

import pytest
import torch

from srkit.features import imagenet_vgg
from srkit.losses import LOSSES, LossTerm, WeightedLoss, check_terms
from srkit.losses.perceptual import (
    ContextualLoss,
    PerceptualLoss,
    StyleLoss,
    TotalVariationLoss,
    contextual_similarity,
    gram_matrix,
)
from srkit.train.batch import Batch
from test_features import VGG19_CONVS, needs_stlpips, tiny_vgg_state


@pytest.fixture(scope="module")
def vgg_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("vgg") / "vgg19-tiny.pth"
    torch.save(tiny_vgg_state(VGG19_CONVS, width=6), path)
    return path


@pytest.fixture(scope="module")
def net(vgg_path):
    return imagenet_vgg(vgg_path)


def images(seed: int = 0, size: int = 32):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, size, size, generator=generator)


def test_perceptual_loss_values(net):
    hr = images(0)
    sr = images(1)
    for criterion in ("l1", "l2"):
        loss = PerceptualLoss(net, {"relu2_2": 0.5, "conv5_4": 2.0}, criterion=criterion)
        assert loss(hr, hr).item() == 0.0
        fake, real = net(sr, ["relu2_2", "conv5_4"]), net(hr, ["relu2_2", "conv5_4"])
        power = 1 if criterion == "l1" else 2
        expected = sum(
            w * (fake[layer] - real[layer]).abs().pow(power).mean()
            for layer, w in (("relu2_2", 0.5), ("conv5_4", 2.0))
        )
        assert loss(sr, hr).item() == pytest.approx(expected.item(), rel=1e-6)
        assert loss(sr, hr).item() > 0
    with pytest.raises(ValueError, match="has no layer relu9_9"):
        PerceptualLoss(net, ["relu9_9"])
    with pytest.raises(ValueError, match="criterion must be l1 or l2"):
        PerceptualLoss(net, criterion="l3")


def test_normalized_perceptual_loss_is_the_unweighted_lpips_baseline(net):
    hr, sr = images(0), images(1)
    loss = PerceptualLoss(net, {"relu2_2": 0.5, "conv5_4": 2.0}, criterion="l2", normalize=True)
    assert loss(hr, hr).item() == 0.0
    fake, real = net(sr, ["relu2_2", "conv5_4"]), net(hr, ["relu2_2", "conv5_4"])
    expected = 0.0
    for layer, w in (("relu2_2", 0.5), ("conv5_4", 2.0)):
        a = fake[layer] / (fake[layer].pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        b = real[layer] / (real[layer].pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        expected += w * (a - b).pow(2).sum(1).mean().item()
    assert loss(sr, hr).item() == pytest.approx(expected, rel=1e-5)
    assert 0 < loss(sr, hr).item() <= 4 * 2.5  # |a - b|^2 <= 4 for unit vectors a, b
    grad_image = sr.clone().requires_grad_(True)
    loss(grad_image, hr).backward()
    assert grad_image.grad is not None and grad_image.grad.abs().sum() > 0


def test_gram_matrix_of_a_known_tensor():
    # two channels over four positions: rows (1, 2, 3, 4) and (1, 0, 1, 0)
    features = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 0.0, 1.0, 0.0]]).view(1, 2, 2, 2)
    expected = torch.tensor([[30.0, 4.0], [4.0, 2.0]]) / (2 * 2 * 2)
    torch.testing.assert_close(gram_matrix(features)[0], expected)


def test_style_loss(net):
    hr, sr = images(0), images(1)
    loss = StyleLoss(net, ["relu1_2", "relu2_2"])
    assert loss(hr, hr).item() == 0.0
    # a Gram matrix ignores positions: a circularly shifted image has almost the same style
    # (only the borders and the seam differ), far less than a different image
    assert loss(hr.roll(8, dims=-1), hr).item() < 0.2 * loss(sr, hr).item()
    real, fake = net(hr, ["relu1_2"])["relu1_2"], net(sr, ["relu1_2"])["relu1_2"]
    single = StyleLoss(net, {"relu1_2": 3.0})(sr, hr)
    expected = 3.0 * (gram_matrix(fake) - gram_matrix(real)).pow(2).mean()
    assert single.item() == pytest.approx(expected.item(), rel=1e-5)


def test_contextual_similarity_on_known_features():
    generator = torch.Generator().manual_seed(0)
    target = torch.randn(1, 8, 5, 5, generator=generator)
    assert contextual_similarity(target, target).item() == pytest.approx(1.0, abs=1e-6)
    # the same features at other positions: CX does not care about positions
    shuffled = target.flatten(2)[..., torch.randperm(25, generator=generator)].view(1, 8, 5, 5)
    assert contextual_similarity(shuffled, target).item() == pytest.approx(1.0, abs=1e-6)
    noisy = [
        contextual_similarity(target + s * torch.randn(target.shape, generator=generator), target)
        for s in (0.3, 1.0, 4.0)
    ]
    assert 1.0 > noisy[0].item() > noisy[1].item() > noisy[2].item() > 0
    # two target features, one generated feature equal to the first: row of CX_1j is
    # softmax((1 - d~) / h) with d~ = (0, d / eps) -> (1, ~0); CX = mean(1, CX_12 ~ 0) = 0.5
    two = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).T.reshape(1, 2, 1, 2)
    one = torch.tensor([1.0, 0.0]).reshape(1, 2, 1, 1) * torch.ones(1, 1, 1, 2)
    assert contextual_similarity(one, two).item() == pytest.approx(0.5, abs=1e-4)


def test_contextual_loss(net):
    hr = images(0)
    # before the activation: after a ReLU, repeated (all-zero) features share their similarity
    # and CX of identical maps drops below 1
    loss = ContextualLoss(net, ["conv3_4"])
    assert loss(hr, hr).item() == pytest.approx(0.0, abs=1e-5)  # -log(1)
    assert loss(hr.roll(3, dims=-1), hr).item() < loss(images(1), hr).item()
    assert loss(images(1), hr).item() > 0.1
    with pytest.raises(ValueError, match="max_positions"):
        ContextualLoss(net, ["relu1_1"], max_positions=100)(hr, hr)


def test_total_variation_known_values():
    tv = TotalVariationLoss()
    assert tv(torch.full((1, 3, 8, 8), 0.7)).item() == 0.0
    checker = ((torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2).float()
    board = checker.expand(1, 3, 8, 8)
    assert tv(board).item() == pytest.approx(2.0)  # every neighbour differs by 1
    assert TotalVariationLoss("l2")(0.5 * board).item() == pytest.approx(0.5)  # 2 * 0.25
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 1, 4, 8)
    assert tv(ramp).item() == pytest.approx(1.0)  # x steps of 1, no y steps


def test_gradients_flow_to_the_image_not_to_the_feature_network(net):
    hr = images(0)
    for loss in (
        PerceptualLoss(net, ["conv5_4"]),
        StyleLoss(net, ["relu2_2"]),
        ContextualLoss(net, ["relu3_4"]),
    ):
        sr = images(1).requires_grad_(True)
        loss(sr, hr).backward()
        assert sr.grad is not None and sr.grad.abs().sum() > 0
        assert all(p.grad is None for p in net.parameters())
    sr = images(1).requires_grad_(True)
    TotalVariationLoss()(sr).backward()
    assert sr.grad.abs().sum() > 0


def test_registry_terms_with_a_feature_network_file_and_tv(vgg_path):
    assert LOSSES["perceptual"].rgb and LOSSES["contextual"].rgb and not LOSSES["tv"].target
    options = {"network": f"vgg19:{vgg_path}", "layers": {"conv5_4": 1.0}}
    terms = [
        LossTerm("l1", 0.01),
        LossTerm("perceptual", 1.0, options=options),
        LossTerm("tv", 0.5),
    ]
    loss = WeightedLoss(terms, fields={"lr", "hr"})
    sr, hr = images(1), images(0)
    total, parts = loss(sr, Batch(lr=torch.rand(2, 3, 8, 8), hr=hr))
    assert set(parts) == {"l1", "perceptual", "tv"}
    expected = (
        0.01 * (sr - hr).abs().mean()
        + PerceptualLoss(imagenet_vgg(vgg_path), {"conv5_4": 1.0})(sr, hr)
        + 0.5 * TotalVariationLoss()(sr)
    )
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    # TV reads no target: a term naming a missing field is still fine
    check_terms([LossTerm("tv", target="teacher")], net_channels="rgb", fields={"lr", "hr"})
    # feature losses need RGB
    with pytest.raises(ValueError, match="needs RGB images"):
        check_terms(
            [LossTerm("perceptual", options=options)], net_channels="y", fields={"lr", "hr"}
        )
    assert math.isfinite(total.item())


@needs_stlpips
@pytest.mark.parametrize("variant", ["vgg", "alex"])
def test_lpips_loss_is_the_metric_and_trains_the_image_only(variant):
    from srkit.metrics.perceptual import lpips_model

    hr = images(0, size=48)
    sr = (hr + 0.15 * images(1, size=48)).clamp(0, 1)
    loss = LOSSES["lpips"].build(variant=variant)
    assert loss(hr, hr).item() == 0.0
    with torch.no_grad():
        expected = lpips_model(variant)(sr, hr).mean().item()
    assert loss(sr, hr).item() == pytest.approx(expected, rel=1e-5)
    assert expected > 0
    # the more it is disturbed, the larger
    assert loss((hr + 0.4 * images(1, size=48)).clamp(0, 1), hr).item() > expected
    grad_image = sr.clone().requires_grad_(True)
    loss(grad_image, hr).backward()
    assert grad_image.grad is not None and grad_image.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in loss.parameters())
    # its own trunk: training it cannot change the metric's cached one
    assert loss.lpips is not lpips_model(variant)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss(sr, hr)
    assert value.dtype == torch.float32 and value.item() == pytest.approx(expected, rel=0.1)
