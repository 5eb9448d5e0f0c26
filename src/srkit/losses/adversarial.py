"""Adversarial losses for GAN training, one object per kind, and the WGAN-GP gradient penalty.

Every kind takes the discriminator's raw outputs (logits, any shape: one per image or one per
patch) and returns a scalar; expectations are means over all elements::

    kind = ADVERSARIAL["ragan"]
    loss_d = kind.discriminator_loss(real_logits, fake_logits)
    loss_g = kind.generator_loss(fake_logits, real_logits)  # real_logits: only ragan reads them

With ``s`` the sigmoid, ``r`` the logits of real images and ``f`` those of generated ones:

- ``vanilla`` (Goodfellow et al. 2014; SRGAN): D ``-E log s(r) - E log(1 - s(f))``; G the
  non-saturating ``-E log s(f)``. Computed with BCE on logits.
- ``lsgan`` (Mao et al. 2017): D ``0.5 E (r - 1)^2 + 0.5 E f^2``; G ``0.5 E (f - 1)^2``.
- ``hinge`` (Lim & Ye 2017; Miyato et al. 2018): D ``E relu(1 - r) + E relu(1 + f)``; G ``-E f``.
- ``wgan_gp`` (Gulrajani et al. 2017): D ``E f - E r``, plus ``lambda`` (10) times
  :func:`gradient_penalty`, which the caller adds (it needs the critic and the images); G ``-E f``.
- ``ragan``, relativistic average (Jolicoeur-Martineau 2018, as ESRGAN uses it): with
  ``D_ra(a, b) = s(C(a) - E C(b))``, D ``-E log D_ra(x_r, x_f) - E log(1 - D_ra(x_f, x_r))`` and
  G the symmetric ``-E log(1 - D_ra(x_r, x_f)) - E log D_ra(x_f, x_r)``. Both are halved, as in
  ESRGAN's released code, so its adversarial weight (5e-3) carries over. In the generator's loss
  the real logits are constants (pass them detached): only the generated images get gradients.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Kind = Literal["vanilla", "lsgan", "hinge", "wgan_gp", "ragan"]


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


class AdversarialLoss:
    """One kind of adversarial objective (see the module docstring)."""

    name: str = ""
    #: the generator's loss reads the real images' logits (relativistic kinds)
    generator_needs_real: bool = False
    #: the discriminator's loss takes a gradient penalty (the caller adds it)
    gradient_penalty: bool = False

    def discriminator_loss(
        self, real_logits: torch.Tensor, fake_logits: torch.Tensor
    ) -> torch.Tensor:
        raise NotImplementedError

    def generator_loss(
        self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None
    ) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"AdversarialLoss({self.name})"


class Vanilla(AdversarialLoss):
    name = "vanilla"

    def discriminator_loss(self, real_logits, fake_logits):
        return _bce(real_logits, 1.0) + _bce(fake_logits, 0.0)

    def generator_loss(self, fake_logits, real_logits=None):
        return _bce(fake_logits, 1.0)


class LeastSquares(AdversarialLoss):
    name = "lsgan"

    def discriminator_loss(self, real_logits, fake_logits):
        return 0.5 * (real_logits - 1).pow(2).mean() + 0.5 * fake_logits.pow(2).mean()

    def generator_loss(self, fake_logits, real_logits=None):
        return 0.5 * (fake_logits - 1).pow(2).mean()


class Hinge(AdversarialLoss):
    name = "hinge"

    def discriminator_loss(self, real_logits, fake_logits):
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()

    def generator_loss(self, fake_logits, real_logits=None):
        return -fake_logits.mean()


class WassersteinGP(AdversarialLoss):
    name = "wgan_gp"
    gradient_penalty = True

    def discriminator_loss(self, real_logits, fake_logits):
        return fake_logits.mean() - real_logits.mean()

    def generator_loss(self, fake_logits, real_logits=None):
        return -fake_logits.mean()


class RelativisticAverage(AdversarialLoss):
    name = "ragan"
    generator_needs_real = True

    def discriminator_loss(self, real_logits, fake_logits):
        real_vs_fake = real_logits - fake_logits.mean()
        fake_vs_real = fake_logits - real_logits.mean()
        return 0.5 * (_bce(real_vs_fake, 1.0) + _bce(fake_vs_real, 0.0))

    def generator_loss(self, fake_logits, real_logits=None):
        if real_logits is None:
            raise ValueError("ragan: the generator's loss needs the real images' logits")
        real_vs_fake = real_logits - fake_logits.mean()
        fake_vs_real = fake_logits - real_logits.mean()
        return 0.5 * (_bce(real_vs_fake, 0.0) + _bce(fake_vs_real, 1.0))


ADVERSARIAL: dict[str, AdversarialLoss] = {
    kind.name: kind() for kind in (Vanilla, LeastSquares, Hinge, WassersteinGP, RelativisticAverage)
}


def adversarial_loss(kind: str) -> AdversarialLoss:
    try:
        return ADVERSARIAL[kind]
    except KeyError:
        known = ", ".join(ADVERSARIAL)
        raise ValueError(f"unknown adversarial loss {kind!r}; known: {known}") from None


def gradient_penalty(
    critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, target_norm: float = 1.0
) -> torch.Tensor:
    """WGAN-GP's penalty ``E (||grad_x C(x)||_2 - 1)^2`` on random interpolates
    ``x = a real + (1 - a) fake``, ``a ~ U(0, 1)`` per image (drawn from torch's generator).

    The norm is over each image's pixels; a critic with one output per patch is differentiated
    through the sum of its outputs. The result is unweighted (WGAN-GP multiplies it by 10) and
    differentiable in the critic's parameters (``create_graph``).
    """
    if real.shape != fake.shape:
        raise ValueError(f"gradient_penalty: real {tuple(real.shape)} vs fake {tuple(fake.shape)}")
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic(mixed)
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)
    return (norms - target_norm).pow(2).mean()


__all__ = [
    "ADVERSARIAL",
    "AdversarialLoss",
    "Kind",
    "adversarial_loss",
    "gradient_penalty",
]
