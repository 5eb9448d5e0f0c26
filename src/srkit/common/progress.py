"""The progress bar of every long-running command: description, bar, done/total, time elapsed.

Shown on stderr (stdout stays for results), cleared when done unless ``transient=False``::

    with progress_bar() as progress:
        task = progress.add_task("Set5 x4", total=5)
        ...
        progress.advance(task)
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def progress_bar(
    *extra: ProgressColumn | str,
    enabled: bool = True,
    transient: bool = True,
    remaining: bool = False,
    console: Console | None = None,
) -> Progress:
    """A ``rich`` progress display in srkit's layout.

    ``extra`` columns (a ``ProgressColumn`` or a ``TextColumn`` format such as
    ``"loss {task.fields[loss]:.4f}"``) stand after the done/total count; ``remaining`` adds the
    estimated time left. ``enabled=False`` shows nothing (non-main DDP ranks, ``--quiet``).
    """
    columns: list[ProgressColumn] = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *(TextColumn(c) if isinstance(c, str) else c for c in extra),
        TimeElapsedColumn(),
    ]
    if remaining:
        columns.append(TimeRemainingColumn())
    return Progress(
        *columns,
        console=console if console is not None else Console(stderr=True),
        transient=transient,
        disable=not enabled,
    )
