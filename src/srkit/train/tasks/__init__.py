"""The training tasks srkit ships, by name (``task:`` in a config).

An explicit table, not a scan of this folder: a new task is one module here plus one line below.
``task: package.module:Class`` names any other importable :class:`~srkit.train.task.Task`.
"""

from __future__ import annotations

import importlib

from srkit.train.task import Task
from srkit.train.tasks.adain import AdainTask
from srkit.train.tasks.blind import BlindGanTask, BlindSRTask
from srkit.train.tasks.degradation import DegradationTask
from srkit.train.tasks.gan import GanTask
from srkit.train.tasks.style import StyleTask
from srkit.train.tasks.supervised import SupervisedTask

TASKS: dict[str, type[Task]] = {
    SupervisedTask.name: SupervisedTask,
    GanTask.name: GanTask,
    StyleTask.name: StyleTask,
    AdainTask.name: AdainTask,
    DegradationTask.name: DegradationTask,
    BlindSRTask.name: BlindSRTask,
    BlindGanTask.name: BlindGanTask,
}


# tasks of higher layers (they use a stage above training, e.g. the face embedder), by path
TASK_PATHS: dict[str, str] = {
    "face": "srkit.faces.task:FaceTask",
    "face_gan": "srkit.faces.gan_task:FaceGanTask",
    "landmarks": "srkit.faces.landmark_task:LandmarkTask",
}


def task_names() -> list[str]:
    return sorted([*TASKS, *TASK_PATHS])


def task_class(name: str) -> type[Task]:
    """The task class for ``task:`` (a name above, or ``module:Class``)."""
    if name in TASKS:
        return TASKS[name]
    name = TASK_PATHS.get(name, name)
    if ":" not in name:
        raise ValueError(
            f"unknown task {name!r}; known: {', '.join(task_names())} (or module:Class)"
        )
    module_name, _, attr = name.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"task {name!r} cannot be imported: {error}") from error
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise ValueError(f"task {name!r} is not a srkit.train.task.Task subclass")
    return cls


__all__ = ["TASKS", "SupervisedTask", "task_class"]
