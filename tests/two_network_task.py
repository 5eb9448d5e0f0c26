"""A small two-network task for the engine's tests: a generator and a discriminator with their
own optimizers, ``d_steps`` discriminator steps per iteration and a discriminator-only warm-up
(what a GAN task needs from the trainer), with random label noise drawn from torch's generator so
that a resume must restore it. Used as ``task: two_network_task:TwoNetworkTask``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from srkit.archs import build
from srkit.losses import WeightedLoss
from srkit.train.batch import Batch
from srkit.train.data import ImageCache, PatchDataset
from srkit.train.task import ExportRecord, Task, cpu_copy
from srkit.train.tasks.supervised import make_degradation


class TinyDiscriminator(nn.Module):
    def __init__(self, features: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, features, 3, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(features, features, 3, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(features, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class TwoNetworkTask(Task):
    name = "two_network"
    network_names = ("g", "d")

    @dataclass
    class Options:
        d_steps: int = 1
        d_warmup: int = 0  # iterations that train the discriminator only
        adversarial_weight: float = 0.01

    def build(self, resuming: bool) -> None:
        config, ctx = self.config, self.ctx
        g = build(config.arch, scale=config.scale, **config.arch_options)
        self.networks = {"g": g.to(ctx.device), "d": TinyDiscriminator().to(ctx.device)}
        self.add_optimizer("g")
        self.add_optimizer("d")
        self.pixel = WeightedLoss(config.losses["g"], fields=self.batch_fields())

    def dataset(self) -> PatchDataset:
        config = self.config
        cache = ImageCache.load(config.data.train, min_side=config.data.lr_patch * config.scale,
                                show_progress=False)  # fmt: skip
        return PatchDataset(cache, config.scale, config.data.lr_patch,
                            make_degradation(None), config.seed)  # fmt: skip

    def step(self, batch: Batch, iteration: int) -> dict[str, torch.Tensor]:
        ctx, options = self.ctx, self.options
        g, d = ctx.models["g"], ctx.models["d"]
        ones = torch.ones(len(batch), 1)
        for _ in range(options.d_steps):
            with torch.no_grad():
                fake = g(batch.lr)
            smooth = 0.9 + 0.1 * torch.rand(len(batch), 1)  # torch RNG: the resume restores it
            loss_d = F.binary_cross_entropy_with_logits(d(batch.hr), smooth)
            loss_d = loss_d + F.binary_cross_entropy_with_logits(d(fake), 0 * ones)
            ctx.backward_step("d", loss_d)
        logs = {"loss_d": loss_d.detach()}
        if iteration >= options.d_warmup:
            sr = g(batch.lr)
            pixel, parts = self.pixel(sr, batch)
            adversarial = F.binary_cross_entropy_with_logits(d(sr), ones)
            loss = pixel + options.adversarial_weight * adversarial
            ctx.backward_step("g", loss)
            logs.update(loss=loss.detach(), adversarial=adversarial.detach(), **parts)
        return logs

    def export(self, nets, path: Path, name: str, scores, record: ExportRecord) -> Path:
        torch.save({n: cpu_copy(net).state_dict() for n, net in nets.items()},
                   path.with_suffix(".pt"))  # fmt: skip
        return path.with_suffix(".pt")
