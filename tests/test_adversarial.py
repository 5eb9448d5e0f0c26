"""Adversarial losses: values on known logits, gradients, and the WGAN-GP gradient penalty."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from srkit.losses.adversarial import ADVERSARIAL, adversarial_loss, gradient_penalty

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -3.0])


def softplus(x: float) -> float:  # -log(sigmoid(-x)) = log(1 + e^x)
    return math.log1p(math.exp(x))


def test_vanilla_values():
    loss = ADVERSARIAL["vanilla"]
    # -log s(r) = softplus(-r); -log(1 - s(f)) = softplus(f)
    d = (softplus(-2.0) + softplus(1.0)) / 2 + (softplus(0.5) + softplus(-3.0)) / 2
    g = (softplus(-0.5) + softplus(3.0)) / 2
    assert float(loss.discriminator_loss(REAL, FAKE)) == pytest.approx(d, rel=1e-6)
    assert float(loss.generator_loss(FAKE)) == pytest.approx(g, rel=1e-6)


def test_lsgan_hinge_and_wgan_values():
    ls = ADVERSARIAL["lsgan"]
    d = 0.5 * ((2 - 1) ** 2 + (-1 - 1) ** 2) / 2 + 0.5 * (0.5**2 + 3.0**2) / 2
    assert float(ls.discriminator_loss(REAL, FAKE)) == pytest.approx(d)
    assert float(ls.generator_loss(FAKE)) == pytest.approx(0.5 * (0.25 + 16.0) / 2)
    hinge = ADVERSARIAL["hinge"]
    # relu(1 - r): 0, 2 -> 1; relu(1 + f): 1.5, 0 -> 0.75
    assert float(hinge.discriminator_loss(REAL, FAKE)) == pytest.approx(1.75)
    assert float(hinge.generator_loss(FAKE)) == pytest.approx(1.25)
    wgan = ADVERSARIAL["wgan_gp"]
    assert float(wgan.discriminator_loss(REAL, FAKE)) == pytest.approx(-1.25 - 0.5)
    assert float(wgan.generator_loss(FAKE)) == pytest.approx(1.25)
    assert wgan.gradient_penalty and not hinge.gradient_penalty


def test_relativistic_average_values():
    ra = ADVERSARIAL["ragan"]
    mean_r, mean_f = 0.5, -1.25
    real_vs_fake = [2.0 - mean_f, -1.0 - mean_f]
    fake_vs_real = [0.5 - mean_r, -3.0 - mean_r]
    # -log s(x) = softplus(-x); -log(1 - s(x)) = softplus(x)
    d = 0.5 * (
        sum(softplus(-x) for x in real_vs_fake) / 2 + sum(softplus(x) for x in fake_vs_real) / 2
    )
    g = 0.5 * (
        sum(softplus(x) for x in real_vs_fake) / 2 + sum(softplus(-x) for x in fake_vs_real) / 2
    )
    assert float(ra.discriminator_loss(REAL, FAKE)) == pytest.approx(d, rel=1e-6)
    assert float(ra.generator_loss(FAKE, REAL)) == pytest.approx(g, rel=1e-6)
    assert ra.generator_needs_real
    with pytest.raises(ValueError, match="needs the real images' logits"):
        ra.generator_loss(FAKE)


@pytest.mark.parametrize("kind", list(ADVERSARIAL))
def test_gradients_push_the_right_way(kind):
    """A gradient step on the discriminator's loss raises real logits and lowers fake ones; one on
    the generator's loss raises the fake logits."""
    loss = ADVERSARIAL[kind]
    real = torch.tensor([0.3, -0.2, 0.1], requires_grad=True)
    fake = torch.tensor([0.2, 0.4, 0.1], requires_grad=True)  # above LSGAN's 0
    loss.discriminator_loss(real, fake).backward()
    assert (real.grad < 0).all() and (fake.grad > 0).all()
    fake_g = fake.detach().clone().requires_grad_(True)
    loss.generator_loss(fake_g, real.detach()).backward()
    assert (fake_g.grad < 0).all()


def test_losses_accept_patch_logits_and_unknown_kinds_are_refused():
    patches = torch.zeros(2, 1, 4, 4)
    value = ADVERSARIAL["vanilla"].discriminator_loss(patches, patches)
    assert float(value) == pytest.approx(2 * math.log(2))
    with pytest.raises(ValueError, match="unknown adversarial loss 'wgan'; known: vanilla"):
        adversarial_loss("wgan")


class LinearCritic(nn.Module):
    def __init__(self, size: int, norm: float) -> None:
        super().__init__()
        self.linear = nn.Linear(size, 1)
        with torch.no_grad():
            self.linear.weight.mul_(norm / self.linear.weight.norm())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


def test_gradient_penalty_is_zero_for_a_unit_norm_linear_critic():
    torch.manual_seed(0)
    real, fake = torch.rand(4, 3, 5, 5), torch.rand(4, 3, 5, 5)
    unit = gradient_penalty(LinearCritic(75, 1.0), real, fake).detach()
    assert float(unit) == pytest.approx(0, abs=1e-10)
    # gradient norm 3 everywhere: (3 - 1)^2 = 4
    triple = gradient_penalty(LinearCritic(75, 3.0), real, fake).detach()
    assert float(triple) == pytest.approx(4.0)


def test_gradient_penalty_is_differentiable_in_the_critic_and_uses_interpolates():
    torch.manual_seed(0)

    class Quadratic(nn.Module):  # C(x) = w * sum(x^2): gradient 2 w x, its norm depends on x
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.tensor(1.0))

        def forward(self, x):
            return self.w * x.pow(2).flatten(1).sum(1)

    critic = Quadratic()
    real, fake = torch.ones(2, 1, 2, 2), torch.zeros(2, 1, 2, 2)
    torch.manual_seed(3)
    alpha = torch.rand(2)
    torch.manual_seed(3)
    penalty = gradient_penalty(critic, real, fake)
    # x = alpha everywhere (4 pixels): ||2 w x|| = 2 * alpha * 2
    expected = ((4 * alpha - 1) ** 2).mean()
    assert float(penalty.detach()) == pytest.approx(float(expected), rel=1e-6)
    penalty.backward()
    # d/dw mean((4 w a - 1)^2) at w = 1: mean(2 (4a - 1) 4a)
    assert float(critic.w.grad) == pytest.approx(float((8 * alpha * (4 * alpha - 1)).mean()))
    with pytest.raises(ValueError, match="gradient_penalty: real"):
        gradient_penalty(critic, real, torch.zeros(1, 1, 2, 2))
