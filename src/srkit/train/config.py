"""One training stage, as a typed YAML document.

A stage names its ``task`` (``supervised`` by default) and may hold that task's own section under
the task's name; everything else is common to all tasks::

    name: espcn_x3
    task: supervised
    arch: espcn            # the network that is trained and exported ("g")
    scale: 3
    data: {train: ["${SRKIT_DATA}/sr/train/T91"], lr_patch: 17, batch_size: 32}
    train: {iters: 20000, ema: 0.999}
    optimizers:
      g: {name: adam, lr: 1.0e-3, schedule: {name: cosine, warmup: 500, min_lr: 1.0e-6}}
    losses:
      g: [{name: l2}]
    supervised: {loss_crop: 0}

Every key is typed; unknown keys and wrong types are one-line errors before any work starts.
Paths may use ``${SRKIT_DATA}`` (default: ``../shared/data`` beside the repository),
``${SRKIT_WEIGHTS}`` (the official weights) and ``${SRKIT_SET5}`` (the bundled Set5).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from srkit.config import to_dict
from srkit.data.builtin import bundled_set5, data_dir, official_weights_dir
from srkit.losses import LossTerm


def check_rescale(factors: Sequence[float]) -> None:
    """``data.rescale``: at least one factor, each in (0, 1], none twice."""
    if not factors:
        raise ValueError("data.rescale needs at least one factor (1.0: the images as they are)")
    bad = [f for f in factors if not 0.0 < f <= 1.0]
    if bad:
        raise ValueError(f"data.rescale factors must be in (0, 1], got {bad}")
    if len(set(factors)) != len(factors):
        raise ValueError(f"data.rescale lists a factor twice: {list(factors)}")


@dataclass
class DataConfig:
    train: list[str]  # folders, zips, globs, list files or HDF5 of HR images
    lr_patch: int = 24  # LR crop side; the HR crop is lr_patch * scale
    batch_size: int = 16  # global batch (split across DDP ranks)
    flip: bool = True
    rot90: bool = True
    degradation: str | dict | None = None  # YAML file or inline mapping; None: MATLAB bicubic
    workers: int = 1
    min_size: int = 0  # ignore images smaller than this (after the crop check)
    # multi-scale augmentation: train on each image at these sizes (FSRCNN: 1, 0.9, ..., 0.6)
    rescale: list[float] = field(default_factory=lambda: [1.0])

    def __post_init__(self) -> None:
        if not self.train:
            raise ValueError("data.train needs at least one source")
        check_rescale(self.rescale)
        if self.lr_patch < 4 or self.batch_size < 1 or self.workers < 0:
            raise ValueError("data: lr_patch >= 4, batch_size >= 1 and workers >= 0 are required")


def _bundled_set5() -> list[str]:
    return [str(bundled_set5())]


@dataclass
class ValConfig:
    data: list[str] = field(default_factory=_bundled_set5)
    every: int = 500  # iterations; 0 disables
    convention: Literal["modern", "legacy"] = "modern"


@dataclass
class ScheduleConfig:
    """Learning-rate schedule of one optimizer. Milestones and step sizes are in iterations of
    ``train.iters``; when ``--iters`` changes the length they are scaled with it. ``min_lr`` is
    the floor of every schedule (the cosine decays to it, not to 0)."""

    name: Literal["constant", "step", "multistep", "cosine"] = "constant"
    step_size: int = 0
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.5
    warmup: int = 0  # linear warm-up iterations
    min_lr: float = 0.0

    def __post_init__(self) -> None:
        if self.min_lr < 0 or self.warmup < 0:
            raise ValueError("schedule: min_lr and warmup must be >= 0")


@dataclass
class OptimizerConfig:
    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"optimizer lr must be > 0, got {self.lr}")
        if self.schedule.min_lr > self.lr:
            raise ValueError(
                f"schedule.min_lr {self.schedule.min_lr} is above the optimizer's lr {self.lr}"
            )


@dataclass
class InitConfig:
    """Weight transfer into the trained network (e.g. x2 -> x4): tensors whose names and
    shapes match are copied. ``sha256`` pins the file: a different file is an error."""

    path: str
    strict: bool = False
    sha256: str | None = None


@dataclass
class TeacherConfig:
    """A network whose output batches carry as ``teacher``; a loss term with ``target:
    teacher`` distils it (``losses: {g: [{name: mse, weight: 0.1}, {name: mse, weight: 0.9,
    target: teacher}]}``)."""

    model: str  # any weight file srkit.load reads
    arch: str | None = None


@dataclass
class CutConfig:
    """A run cut short: from iteration ``at`` the schedules run as if the stage had ``iters``
    iterations, and the stage ends there (what resuming with a smaller ``train.iters`` does)."""

    at: int
    iters: int

    def __post_init__(self) -> None:
        if not 0 < self.at < self.iters:
            raise ValueError(f"train.cut: 0 < at < iters is required, got {self.at}, {self.iters}")


@dataclass
class TrainConfig:
    """What the trainer owns, whatever the task."""

    iters: int = 1000
    cut: CutConfig | None = None
    grad_clip: float | None = None  # max global grad norm of each optimizer's parameters
    ema: float | None = None  # decay, e.g. 0.999; validation and export use the EMA weights
    ema_of: list[str] = field(default_factory=lambda: ["g"])  # the networks averaged
    precision: Literal["fp32", "bf16"] = "fp32"
    channels_last: bool = False
    # "auto": the GPU when torch sees one, else the CPU; "cuda:1" names a card. Patches are
    # still cut and degraded on the CPU (data.workers processes) and validation runs there too,
    # so the figures match `srkit bench` exactly.
    device: str = "auto"
    checkpoint_every: int = 500
    log_every: int = 50

    def __post_init__(self) -> None:
        if self.device not in ("auto", "cpu") and not re.fullmatch(r"cuda(:\d+)?", self.device):
            raise ValueError(f"train.device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.iters < 1:
            raise ValueError("train.iters must be >= 1")
        if self.cut is not None and self.cut.iters >= self.iters:
            raise ValueError("train.cut.iters must be below train.iters (it cuts the run short)")

    @property
    def end(self) -> int:
        """The number of iterations this stage runs."""
        return self.cut.iters if self.cut is not None else self.iters


@dataclass
class ExperimentConfig:
    name: str
    arch: str
    scale: int
    data: DataConfig
    task: str = "supervised"  # a built-in task name, or "package.module:Class"
    arch_options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    val: ValConfig = field(default_factory=ValConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    optimizers: dict[str, OptimizerConfig] = field(default_factory=lambda: {"g": OptimizerConfig()})
    losses: dict[str, list[LossTerm]] = field(default_factory=lambda: {"g": [LossTerm("l1")]})
    init: InitConfig | None = None
    teacher: TeacherConfig | None = None
    # the task's own section (typed by the task), filled in by load_experiment
    task_options: Any = None

    def __post_init__(self) -> None:
        if self.scale < 1:
            raise ValueError(f"scale must be >= 1, got {self.scale}")
        for name, terms in self.losses.items():
            if not terms:
                raise ValueError(f"losses.{name} needs at least one term")

    def to_dict(self) -> dict[str, Any]:
        """The stage as YAML would write it (the task's section under the task's name)."""
        data = to_dict(self)
        options = data.pop("task_options")
        if options:
            data[self.task] = options
        return data


def default_env() -> dict[str, str]:
    """What ``${SRKIT_...}`` in an experiment file means when the environment does not say."""
    return {
        "SRKIT_SET5": str(bundled_set5()),
        "SRKIT_DATA": str(data_dir()),
        "SRKIT_WEIGHTS": str(official_weights_dir()),
    }
