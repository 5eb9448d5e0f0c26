"""The ``srkit`` command line: parses arguments and calls the library, nothing more.

One module per group of commands (:mod:`.evaluation`, :mod:`.training`, :mod:`.inference`,
:mod:`.serving`, :mod:`.catalog`), each registering its commands on the one :data:`app`;
``srkit faces`` is the sub-app of :mod:`srkit.faces.cli`. Importing this package loads no
torch: the commands import the library when they run, so ``srkit --help`` starts at once.
"""

from __future__ import annotations

import sys

# the command groups register their commands on `app`, in the order `srkit --help` lists them
from srkit.cli import evaluation  # noqa: F401  # isort: skip
from srkit.cli import training  # noqa: F401  # isort: skip
from srkit.cli import inference  # noqa: F401  # isort: skip
from srkit.cli import serving  # noqa: F401  # isort: skip
from srkit.cli import catalog  # noqa: F401  # isort: skip
from srkit.cli import style  # noqa: F401  # isort: skip
from srkit.cli import degrade  # noqa: F401  # isort: skip
from srkit.cli._app import _expand_variadic, _fail, app, console, out
from srkit.faces.cli import faces_app

app.add_typer(faces_app, name="faces")

__all__ = ["_expand_variadic", "_fail", "app", "console", "main", "out"]


def main(argv: list[str] | None = None) -> None:
    from srkit.common.allocator import retain_freed_memory

    retain_freed_memory()  # large tensors reuse freed pages instead of faulting in new ones
    args = sys.argv[1:] if argv is None else argv
    app(args=_expand_variadic(args), prog_name="srkit")
