"""Reading a training stage: YAML -> a checked :class:`~srkit.train.config.ExperimentConfig`,
with the task's own section typed by the task that ``task:`` names."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any

from srkit.config import ConfigError, from_dict, load_yaml, set_by_path
from srkit.train.config import ExperimentConfig, default_env
from srkit.train.tasks import task_class


def experiment_from_dict(
    raw: dict[str, Any], *, where: str = "", env: dict[str, str] | None = None
) -> ExperimentConfig:
    """A raw stage mapping -> a checked :class:`ExperimentConfig` (no file-existence checks)."""
    env = env or default_env()
    raw = dict(raw)
    task_name = raw.get("task", "supervised")
    if not isinstance(task_name, str):
        raise ConfigError(f"{where + '.' if where else ''}task: expected a string")
    try:
        task_cls = task_class(task_name)
    except ValueError as error:
        raise ConfigError(str(error)) from error
    section = raw.pop(task_name, None) if task_name in raw and task_name != "task" else None
    config = from_dict(ExperimentConfig, raw, where=where, env=env)
    label = f"{where}.{task_name}" if where else task_name
    config.task_options = from_dict(task_cls.Options, section or {}, where=label, env=env)
    try:
        task_cls.check_config(config)
    except (ValueError, KeyError) as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(f"{where + ': ' if where else ''}{error}") from error
    return config


def load_experiment(
    path: str | Path, overrides: list[str] | None = None, iters: int | None = None
) -> ExperimentConfig:
    """Read, override (``key=value``) and check an experiment file."""
    raw = load_yaml(path)
    for assignment in overrides or []:
        set_by_path(raw, assignment)
    config = experiment_from_dict(raw, env=default_env())
    if iters is not None:
        apply_iters(config, iters)
    check_paths(config)
    return config


def apply_iters(config: ExperimentConfig, iters: int) -> None:
    """Change the run length; every schedule's milestones, steps and warm-up follow."""
    if iters < 1:
        raise ConfigError(f"--iters must be >= 1, got {iters}")
    ratio = iters / config.train.iters
    for optimizer in config.optimizers.values():
        schedule = optimizer.schedule
        schedule.milestones = [max(1, round(m * ratio)) for m in schedule.milestones]
        if schedule.step_size:
            schedule.step_size = max(1, round(schedule.step_size * ratio))
        schedule.warmup = round(schedule.warmup * ratio)
    cut = config.train.cut
    if cut is not None:
        cut.iters = min(iters - 1, max(2, round(cut.iters * ratio)))
        cut.at = min(cut.iters - 1, max(1, round(cut.at * ratio)))
        if iters < 3:
            config.train.cut = None
    config.train.checkpoint_every = max(1, min(config.train.checkpoint_every, iters))
    if config.val.every:
        config.val.every = max(1, min(config.val.every, iters))
    config.train.iters = iters


def _exists(spec: str) -> bool:
    return os.path.exists(spec) or bool(glob.glob(spec))


def check_paths(config: ExperimentConfig) -> None:
    """Missing data or weight files are reported before any work starts."""
    for key, specs in (("data.train", config.data.train), ("val.data", config.val.data)):
        for spec in specs:
            if not _exists(spec):
                raise ConfigError(f"{key}: {spec} does not exist (set SRKIT_DATA?)")
    if isinstance(config.data.degradation, str) and not _exists(config.data.degradation):
        raise ConfigError(f"data.degradation: {config.data.degradation} does not exist")
    if config.init is not None and not _exists(config.init.path):
        raise ConfigError(f"init.path: {config.init.path} does not exist")
    if config.teacher is not None and not _exists(config.teacher.model):
        raise ConfigError(f"teacher.model: {config.teacher.model} does not exist (SRKIT_WEIGHTS?)")
