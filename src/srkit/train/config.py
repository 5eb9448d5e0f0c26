"""The training experiment, one YAML file each (``configs/<arch>_x<scale>.yaml``).

Every key is typed; unknown keys and wrong types are errors before any work starts. Paths may use
``${SRKIT_DATA}`` (default: ``../shared/data`` beside the repository) and ``${SRKIT_SET5}`` (the
bundled Set5).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from srkit.config import ConfigError, from_dict, load_yaml, set_by_path
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
    from srkit.data.builtin import bundled_set5

    return [str(bundled_set5())]


@dataclass
class ValConfig:
    data: list[str] = field(default_factory=_bundled_set5)
    every: int = 500  # iterations; 0 disables
    convention: Literal["modern", "legacy"] = "modern"


@dataclass
class OptimizerConfig:
    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only


@dataclass
class ScheduleConfig:
    """Learning-rate schedule. Milestones and step sizes are in iterations of ``train.iters``;
    when ``--iters`` changes the length they are scaled with it."""

    name: Literal["constant", "step", "multistep", "cosine"] = "constant"
    step_size: int = 0
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.5
    warmup: int = 0  # linear warm-up iterations
    min_lr: float = 0.0  # cosine floor


@dataclass
class InitConfig:
    """Weight transfer (e.g. x2 -> x4): copy tensors whose names and shapes match."""

    path: str
    strict: bool = False


@dataclass
class TeacherConfig:
    """Knowledge distillation: loss = (1 - weight) * loss(sr, hr) + weight * loss(sr, teacher)."""

    model: str  # any weight file srkit.load reads
    weight: float = 0.5
    arch: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"teacher.weight must be in [0, 1], got {self.weight}")


@dataclass
class TrainConfig:
    iters: int = 1000
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    grad_clip: float | None = None  # max global grad norm (VDSR)
    ema: float | None = None  # decay, e.g. 0.999; validation and export use the EMA weights
    # HR pixels trimmed from each side of the output and target before the losses. The pixels
    # near a patch's cut edge see zero padding and (for nets that upscale first) a bicubic input
    # made without the neighbours beyond the cut, unlike almost every pixel of a real image;
    # SRCNN's valid convolutions left them out of its loss the same way.
    loss_crop: int = 0
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


@dataclass
class ExperimentConfig:
    name: str
    arch: str
    scale: int
    data: DataConfig
    arch_options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    val: ValConfig = field(default_factory=ValConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    losses: list[LossTerm] = field(default_factory=lambda: [LossTerm("l1")])
    init: InitConfig | None = None
    teacher: TeacherConfig | None = None

    def __post_init__(self) -> None:
        if self.scale < 1:
            raise ValueError(f"scale must be >= 1, got {self.scale}")
        if self.train.iters < 1:
            raise ValueError("train.iters must be >= 1")
        hr_patch = self.data.lr_patch * self.scale
        if not 0 <= 2 * self.train.loss_crop < hr_patch:
            raise ValueError(
                f"train.loss_crop must be >= 0 and leave pixels of the {hr_patch}-pixel HR patch "
                f"(lr_patch x scale): got {self.train.loss_crop}"
            )


def default_env() -> dict[str, str]:
    """What ``${SRKIT_...}`` in an experiment file means when the environment does not say."""
    from srkit.data.builtin import bundled_set5, data_dir, official_weights_dir

    return {
        "SRKIT_SET5": str(bundled_set5()),
        "SRKIT_DATA": str(data_dir()),
        "SRKIT_WEIGHTS": str(official_weights_dir()),
    }


def load_experiment(
    path: str | Path, overrides: list[str] | None = None, iters: int | None = None
) -> ExperimentConfig:
    """Read, override (``key=value``) and check an experiment file."""
    raw = load_yaml(path)
    for assignment in overrides or []:
        set_by_path(raw, assignment)
    config = from_dict(ExperimentConfig, raw, env=default_env())
    if iters is not None:
        apply_iters(config, iters)
    check_paths(config)
    return config


def apply_iters(config: ExperimentConfig, iters: int) -> None:
    """Change the run length; the schedule's milestones follow proportionally."""
    if iters < 1:
        raise ConfigError(f"--iters must be >= 1, got {iters}")
    ratio = iters / config.train.iters
    schedule = config.train.schedule
    schedule.milestones = [max(1, round(m * ratio)) for m in schedule.milestones]
    if schedule.step_size:
        schedule.step_size = max(1, round(schedule.step_size * ratio))
    schedule.warmup = round(schedule.warmup * ratio)
    config.train.iters = iters


def check_paths(config: ExperimentConfig) -> None:
    """Missing data or weight files are reported before any work starts."""
    import glob

    def exists(spec: str) -> bool:
        return os.path.exists(spec) or bool(glob.glob(spec))

    for key, specs in (("data.train", config.data.train), ("val.data", config.val.data)):
        for spec in specs:
            if not exists(spec):
                raise ConfigError(f"{key}: {spec} does not exist (set SRKIT_DATA?)")
    if isinstance(config.data.degradation, str) and not exists(config.data.degradation):
        raise ConfigError(f"data.degradation: {config.data.degradation} does not exist")
    for key, part in (("init.path", config.init), ("teacher.model", config.teacher)):
        if part is not None:
            target = part.path if key == "init.path" else part.model
            if not exists(target):
                raise ConfigError(f"{key}: {target} does not exist")
