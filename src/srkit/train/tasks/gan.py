"""``task: gan``: a generator trained against a discriminator (SRGAN, ESRGAN, WGAN-GP).

The generator ``g`` is the stage's ``arch``, usually warm-started from a PSNR-trained model
through ``init:``; its loss is the weighted sum of ``losses.g`` (pixel and perceptual terms, as
the supervised task builds it) plus ``adversarial_weight`` times the adversarial term of
``kind`` (:mod:`srkit.losses.adversarial`). The discriminator ``d`` is one of
:mod:`srkit.archs.discriminators`; it reads RGB images in [0, 1] (the HR patches and the
generator's outputs). Each has its own optimizer and schedule (``optimizers: {g: ..., d: ...}``)::

    task: gan
    arch: srresnet
    init: {model: srresnet_x4}   # the shipped PSNR warm start
    optimizers:
      g: {lr: 1.0e-4, schedule: {name: multistep, milestones: [50000], gamma: 0.1}}
      d: {lr: 1.0e-4, schedule: {name: multistep, milestones: [50000], gamma: 0.1}}
    losses:
      g: [{name: l1, weight: 1.0e-2}]
    gan:
      discriminator: {arch: srgan_vgg, options: {input_size: 128}}
      kind: ragan              # vanilla | lsgan | hinge | wgan_gp | ragan
      d_steps: 1               # discriminator steps per generator step
      d_warmup: 0              # first iterations: the discriminator only
      adversarial_weight: 5.0e-3
      gp_weight: 10            # wgan_gp only
      artifact_weight: 0       # LDL's artifact loss against the EMA (needs train.ema), e.g. 1

One iteration: the generator's output for the batch, ``d_steps`` discriminator steps on (HR,
output) with the gradient penalty for ``wgan_gp``, then (after ``d_warmup`` iterations) one
generator step in which the discriminator is frozen. With ``artifact_weight``, that step adds
LDL's artifact loss (Liang et al. 2022, :mod:`srkit.losses.artifacts`): pixel loss where the
residual looks like an artifact and the generator's EMA (``train.ema``) is closer to the HR.
Validation (PSNR/SSIM on ``val.data``), EMA (``train.ema``, of ``g`` by default) and export (the
generator, as the supervised task ships it) are the supervised task's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from srkit.archs import get_spec
from srkit.archs.discriminators import build_discriminator, get_discriminator_spec
from srkit.losses.adversarial import (
    ADVERSARIAL,
    AdversarialLoss,
    adversarial_loss,
    gradient_penalty,
)
from srkit.losses.artifacts import artifact_loss
from srkit.train.batch import Batch
from srkit.train.task import TaskContext
from srkit.train.tasks.supervised import SupervisedTask, network_channels


@dataclass
class DiscriminatorConfig:
    arch: str = "srgan_vgg"  # a name of srkit.archs.discriminators.DISCRIMINATORS
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            spec = get_discriminator_spec(self.arch)
        except KeyError as error:  # a config error names the known ones
            raise ValueError(error.args[0]) from None
        spec.options(**self.options)  # TypeError names the accepted options


def check_discriminator(options: DiscriminatorConfig, side: int, where: str, what: str) -> None:
    """A ``ValueError`` naming ``where`` unless the discriminator of ``options`` reads
    ``side`` x ``side`` inputs (``what``, for the message); shapes only, on the meta device."""
    with torch.device("meta"):  # nothing is allocated or computed
        net = build_discriminator(options.arch, **options.options).eval()
        try:
            net(torch.empty(2, 3, side, side))
        except (ValueError, RuntimeError) as error:
            raise ValueError(
                f"{where} {options.arch} cannot read the {side} x {side} {what}: "
                f"{str(error).splitlines()[0]}"
            ) from None


def discriminator_steps(
    ctx: TaskContext,
    adversarial: AdversarialLoss,
    real: torch.Tensor,
    fake: torch.Tensor,
    steps: int,
    gp_weight: float,
) -> dict[str, torch.Tensor]:
    """``steps`` optimizer steps of discriminator ``d`` (``ctx.models["d"]``) on ``real``
    against ``fake`` (detached) with ``adversarial``'s loss, plus its gradient penalty (in fp32,
    outside autocast) when it has one; returns the logs (``loss_d``, ``gp``)."""
    d = ctx.models["d"]
    logs: dict[str, torch.Tensor] = {}
    for _ in range(steps):
        with ctx.autocast():
            loss_d = adversarial.discriminator_loss(d(real).float(), d(fake).float())
        if adversarial.gradient_penalty:
            penalty = gradient_penalty(d, real, fake)
            loss_d = loss_d + gp_weight * penalty
            logs["gp"] = penalty.detach()
        ctx.backward_step("d", loss_d)
    logs["loss_d"] = loss_d.detach()
    return logs


def generator_adversarial(
    adversarial: AdversarialLoss, d: nn.Module, fake: torch.Tensor, real: torch.Tensor
) -> torch.Tensor:
    """The generator's adversarial loss of ``fake`` under discriminator ``d`` (frozen by the
    caller); the real logits, for the kinds that compare with them, without gradients."""
    real_logits = None
    if adversarial.generator_needs_real:
        with torch.no_grad():
            real_logits = d(real).float()
    return adversarial.generator_loss(d(fake).float(), real_logits)


class GanTask(SupervisedTask):
    name = "gan"
    purpose = "perceptual"  # exported generators are listed as perceptual models
    network_names = ("g", "d")

    @dataclass
    class Options(SupervisedTask.Options):
        discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
        kind: Literal["vanilla", "lsgan", "hinge", "wgan_gp", "ragan"] = "vanilla"
        d_steps: int = 1  # discriminator steps per iteration
        d_warmup: int = 0  # iterations that train the discriminator only
        adversarial_weight: float = 5e-3
        gp_weight: float = 10.0  # the gradient penalty's lambda (wgan_gp)
        # LDL's artifact loss (srkit.losses.artifacts), against the generator's EMA
        artifact_weight: float = 0.0
        artifact_window: int = 7

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.d_steps < 1 or self.d_warmup < 0:
                raise ValueError("d_steps must be >= 1 and d_warmup >= 0")
            if self.adversarial_weight < 0 or self.gp_weight < 0 or self.artifact_weight < 0:
                raise ValueError("adversarial_weight, gp_weight and artifact_weight must be >= 0")
            if self.artifact_window < 3 or self.artifact_window % 2 == 0:
                raise ValueError(
                    f"artifact_window must be odd and >= 3, got {self.artifact_window}"
                )

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        if "d" in config.losses:
            raise ValueError(
                "losses.d: the discriminator's loss is gan.kind "
                f"({', '.join(ADVERSARIAL)}); losses.g holds the generator's other terms"
            )
        if get_spec(config.arch).convention.channels != "rgb":
            raise ValueError(f"gan: the generator must output RGB; {config.arch} outputs Y only")
        if config.task_options.artifact_weight and not (
            config.train.ema and "g" in config.train.ema_of
        ):
            raise ValueError(
                "gan.artifact_weight compares the generator with its EMA: set train.ema "
                "(e.g. 0.999) with g in train.ema_of"
            )
        side = config.data.lr_patch * config.scale
        check_discriminator(config.task_options.discriminator, side,
                            "gan.discriminator", "HR patches (data.lr_patch x scale)")  # fmt: skip

    def build(self, resuming: bool) -> None:
        super().build(resuming)  # the generator, its init:, optimizer and losses.g
        ctx, options = self.ctx, self.options.discriminator
        d = build_discriminator(options.arch, **options.options).to(ctx.device)
        if ctx.channels_last:
            d = d.to(memory_format=torch.channels_last)
        self.networks["d"] = d
        self.add_optimizer("d")
        self.adversarial = adversarial_loss(self.options.kind)

    def step(self, batch: Batch, iteration: int) -> dict[str, torch.Tensor]:
        ctx, options, convention = self.ctx, self.options, self.convention
        x = convention.to_network(network_channels(batch.lr, convention))
        x = x.contiguous(memory_format=ctx.memory_format)
        real = batch.hr.contiguous(memory_format=ctx.memory_format)
        train_g = iteration >= options.d_warmup
        with torch.set_grad_enabled(train_g), ctx.autocast():
            sr = convention.from_network(ctx.models["g"](x).float())
        fake = sr.detach()

        logs = discriminator_steps(ctx, self.adversarial, real, fake, options.d_steps,
                                   options.gp_weight)  # fmt: skip
        if not train_g:
            return logs

        # the generator's step: the discriminator judges but is not trained (and is called
        # unwrapped, so that no DDP reduction of its parameters is started)
        d_net = self.networks["d"]
        d_net.requires_grad_(False)
        try:
            with ctx.autocast():
                if self.teacher is not None:
                    batch.teacher = self.teacher(batch.lr).clone()
                pixel, parts = self.criterion(sr, batch)
                adversarial = generator_adversarial(self.adversarial, d_net, sr, real)
                loss = pixel + options.adversarial_weight * adversarial
                if options.artifact_weight:
                    with torch.no_grad():
                        sr_ema = convention.from_network(ctx.averages["g"](x).float())
                    artifacts = artifact_loss(real, sr, sr_ema, options.artifact_window)
                    loss = loss + options.artifact_weight * artifacts
                    parts = {**parts, "artifacts": artifacts.detach()}
            ctx.backward_step("g", loss)
        finally:
            d_net.requires_grad_(True)
        return {"loss": loss.detach(), "adversarial": adversarial.detach(), **parts, **logs}
