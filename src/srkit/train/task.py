"""The task interface: what one kind of training owns, and what the trainer gives it.

The trainer (:mod:`srkit.train.trainer`) owns what every kind of training shares: device, DDP,
bf16 autocast and channels_last, gradient clipping, the EMA of named networks, checkpoints of the
whole state, validation scheduling, logs and progress. A :class:`Task` owns the rest:

- its networks (``self.networks``, by name; ``g`` is the one that is exported), its optimizers
  and schedulers (``self.optimizers`` / ``self.schedulers``, named after the network they train);
- the training data (``dataset()``: a map-style dataset over ``(iteration, index)`` keys whose
  samples are mappings of :class:`~srkit.train.batch.Batch` fields);
- one ``step(batch, iteration)``: any number of forward/backward passes (a GAN steps its
  discriminator, then its generator), each optimizer stepped through ``ctx.backward_step``;
- its validation and its export.

A new kind of training is one new task file in :mod:`srkit.train.tasks` (or any importable
``module:Class`` named by ``task:`` in the config), never a branch in the trainer's loop.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from srkit.train.batch import Batch
from srkit.train.config import CutConfig, ExperimentConfig, OptimizerConfig, ScheduleConfig


def lr_factor(schedule: ScheduleConfig, total: int, base_lr: float) -> Callable[[int], float]:
    """Multiplier of the base learning rate at iteration ``it`` (0-based).

    The schedule runs from 1 down to ``min_lr / base_lr`` (its floor): the cosine reaches the
    floor at ``total``, step schedules stop at it. Warm-up then scales linearly from 0.
    """
    floor = min(1.0, schedule.min_lr / base_lr) if base_lr > 0 else 0.0

    def factor(it: int) -> float:
        value = 1.0
        if schedule.name == "step" and schedule.step_size > 0:
            value = schedule.gamma ** (it // schedule.step_size)
        elif schedule.name == "multistep":
            value = schedule.gamma ** sum(it >= m for m in schedule.milestones)
        elif schedule.name == "cosine":
            span = max(1, total - schedule.warmup)
            progress = min(1.0, max(0.0, (it - schedule.warmup) / span))
            cosine = 0.5 * (1 + math.cos(math.pi * progress))
            value = floor + (1.0 - floor) * cosine if floor else cosine
        if floor:
            value = max(value, floor)
        if schedule.warmup and it < schedule.warmup:
            value *= (it + 1) / schedule.warmup
        return value

    return factor


def make_optimizer(config: OptimizerConfig, params) -> torch.optim.Optimizer:
    if config.name == "adam":
        return torch.optim.Adam(
            params, lr=config.lr, betas=tuple(config.betas), weight_decay=config.weight_decay
        )
    if config.name == "adamw":
        return torch.optim.AdamW(
            params, lr=config.lr, betas=tuple(config.betas), weight_decay=config.weight_decay
        )
    return torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )


def make_scheduler(
    optimizer: torch.optim.Optimizer,
    config: OptimizerConfig,
    total: int,
    cut: CutConfig | None = None,
) -> torch.optim.lr_scheduler.LRScheduler:
    factor = lr_factor(config.schedule, total, config.lr)
    if cut is not None:  # from cut.at on, the schedule of a cut.iters-iteration run
        full, short = factor, lr_factor(config.schedule, cut.iters, config.lr)

        def factor(it: int) -> float:
            return full(it) if it < cut.at else short(it)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class Ema:
    """Exponential moving average of a network's parameters (buffers are copied)."""

    def __init__(self, net: nn.Module, decay: float) -> None:
        self.decay = decay
        self.net = copy.deepcopy(net).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)

    def decay_at(self, step: int) -> float:
        """Warm-up: ``min(decay, (1 + step) / (10 + step))``, so the average forgets the starting
        weights quickly (a randomly initialised layer of an x2 -> x4 transfer would otherwise
        still weigh 0.999^4000 = 1.8% after 4000 iterations)."""
        return min(self.decay, (1.0 + step) / (10.0 + step))

    @torch.no_grad()
    def update(self, net: nn.Module, step: int) -> None:
        weight = 1.0 - self.decay_at(step)
        for ema_p, p in zip(self.net.parameters(), net.parameters(), strict=True):
            ema_p.lerp_(p.detach(), weight)
        for ema_b, b in zip(self.net.buffers(), net.buffers(), strict=True):
            ema_b.copy_(b)


def cpu_copy(net: nn.Module) -> nn.Module:
    """A float32, NCHW copy on the CPU, where validation and export run whatever the device."""
    return copy.deepcopy(net).float().cpu().to(memory_format=torch.contiguous_format)


@dataclass
class TaskContext:
    """What the trainer gives a task: where it runs and the common mechanics of a step."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    precision: str = "fp32"
    channels_last: bool = False
    grad_clip: float | None = None
    show_progress: bool = True
    log: Callable[[dict[str, Any]], None] = lambda record: None
    print: Callable[[str], None] = print
    # the networks as the step should call them (DDP wrappers under torchrun), set by the trainer
    models: dict[str, nn.Module] = field(default_factory=dict)
    optimizers: dict[str, torch.optim.Optimizer] = field(default_factory=dict)
    networks: dict[str, nn.Module] = field(default_factory=dict)
    # the EMA copies of the networks in train.ema_of, by name (read them; the trainer updates
    # them after each step), for steps that compare with the average (LDL's artifact map)
    averages: dict[str, nn.Module] = field(default_factory=dict)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def autocast(self) -> contextlib.AbstractContextManager:
        """The forward passes' precision (bf16 autocast when ``train.precision: bf16``)."""
        return torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"
        )

    def backward_step(self, name: str, loss: torch.Tensor) -> None:
        """One optimizer step of network ``name``: zero its gradients, back-propagate ``loss``,
        clip (``train.grad_clip``) and step."""
        optimizer = self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip:
            nn.utils.clip_grad_norm_(self.networks[name].parameters(), self.grad_clip)
        optimizer.step()


@dataclass
class ExportRecord:
    """What the trainer knows of the run, for the exported manifest."""

    iterations: int
    seconds: float
    machine: dict[str, Any]
    recipe: dict[str, Any] | None = None  # the recipe and stage this run is, when it is one
    extra: dict[str, Any] = field(default_factory=dict)  # more training_recipe keys (a task's)

    def training_recipe(
        self, config: Any, training_data: list[str] | None = None, **extra: Any
    ) -> dict[str, Any]:
        """The manifest's ``training_recipe``: the config as run, iterations, time, machine,
        training data (default: ``config.data.train``), the task's ``extra`` keys, the recipe."""
        data = list(config.data.train) if training_data is None else training_data
        result = {
            "config": config.to_dict(),
            "iterations": self.iterations,
            "wall_seconds": round(self.seconds, 1),
            "machine": self.machine,
            "training_data": data,
            **self.extra,
            **extra,
        }
        if self.recipe is not None:
            result["recipe"] = self.recipe
        return result


class Task:
    """Base class of training tasks (see the module docstring)."""

    name: ClassVar[str] = ""

    @dataclass
    class Options:
        """The task's own section of the config (``<task name>: {...}``)."""

    #: networks that exist in every configuration of this task (optimizers and losses may only
    #: name these, plus those ``extra_networks`` returns)
    network_names: ClassVar[tuple[str, ...]] = ("g",)

    def __init__(self, config: ExperimentConfig, ctx: TaskContext) -> None:
        self.config = config
        self.options = config.task_options
        self.ctx = ctx
        self.networks: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}

    # --- start-up checks (no files opened) ----------------------------------------------
    @classmethod
    def names_in(cls, config: ExperimentConfig) -> tuple[str, ...]:
        """The networks of this configuration (override when options add networks)."""
        return cls.network_names

    @classmethod
    def check_config(cls, config: ExperimentConfig) -> None:
        """Raise ``ValueError`` for a configuration this task cannot run. The base checks that
        optimizers, losses and EMA name this task's networks, and that every trainable network
        has an optimizer."""
        names = cls.names_in(config)
        for key, given in (
            ("optimizers", config.optimizers),
            ("losses", config.losses),
            ("train.ema_of", config.train.ema_of if config.train.ema else []),
        ):
            unknown = [n for n in given if n not in names]
            if unknown:
                raise ValueError(
                    f"{key} names {', '.join(unknown)}; task {cls.name} trains {', '.join(names)}"
                )
        missing = [n for n in cls.trained_in(config) if n not in config.optimizers]
        if missing:
            raise ValueError(f"optimizers: {', '.join(missing)} need an optimizer")

    @classmethod
    def trained_in(cls, config: ExperimentConfig) -> tuple[str, ...]:
        """Networks that are trained (need an optimizer); by default all of them."""
        return cls.names_in(config)

    # --- what the trainer calls ---------------------------------------------------------
    def build(self, resuming: bool) -> None:
        """Create networks (right after the seed is set: their initialisation draws from it),
        load initial weights unless ``resuming``, move them to ``ctx.device`` and create the
        optimizers and schedulers."""
        raise NotImplementedError

    def add_optimizer(self, name: str, params: Iterator[nn.Parameter] | None = None) -> None:
        """Optimizer and schedule of network ``name`` from ``optimizers.<name>``."""
        config = self.config.optimizers[name]
        optimizer = make_optimizer(config, params or self.networks[name].parameters())
        self.optimizers[name] = optimizer
        self.schedulers[name] = make_scheduler(
            optimizer, config, self.config.train.iters, self.config.train.cut
        )

    def batch_fields(self) -> set[str]:
        """The :class:`Batch` fields this task's batches carry when ``step`` receives them."""
        return {"lr", "hr"}

    def dataset(self) -> torch.utils.data.Dataset:
        """Map-style dataset over ``(iteration, index)`` keys -> mappings of batch fields."""
        raise NotImplementedError

    def step(self, batch: Batch, iteration: int) -> dict[str, torch.Tensor]:
        """Train one iteration; returns detached values to log (``loss`` is shown)."""
        raise NotImplementedError

    def validate(self, nets: dict[str, nn.Module], iteration: int) -> dict[str, dict[str, Any]]:
        """Scores per validation set; the first set's ``psnr`` (or ``score``) picks the best
        export. ``nets`` are the networks to judge (EMA copies where there are)."""
        return {}

    def export(
        self,
        nets: dict[str, nn.Module],
        path: Path,
        name: str,
        scores: dict[str, Any],
        record: ExportRecord,
    ) -> Path:
        """Write the shipped form of the result to ``path`` (a .safetensors + manifest)."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Task state beyond networks/optimizers/schedulers, kept in checkpoints."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
