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
    """The ``srkit`` command (``argv``: its arguments; ``None``: the process's own, and the
    process then ends through :func:`_exit_now`)."""
    from srkit.common.allocator import retain_freed_memory

    retain_freed_memory()  # large tensors reuse freed pages instead of faulting in new ones
    args = sys.argv[1:] if argv is None else argv
    try:
        app(args=_expand_variadic(args), prog_name="srkit")
        code: object = 0
    except SystemExit as done:
        code = done.code
    if argv is None:
        _exit_now(code)
    raise SystemExit(code)


def _exit_now(code: object) -> None:
    """End the process without tearing the interpreter down, after a command that succeeded.
    With torch loaded, Python's finalisation alone takes about 0.4 s (module teardown and the
    last garbage collections over torch's objects): a tenth of `srkit upscale` on a small
    image. What an orderly exit does that matters still runs first: other threads finish (and
    idle thread pools are woken and joined), the ``atexit`` handlers run (temporary folders,
    logging, child processes), Python's and C's output streams are flushed. A failure, a
    profiler or tracer, or ``SRKIT_FAST_EXIT=0`` takes the ordinary exit."""
    import os

    ordinary = (
        code not in (0, None)  # a failure: whatever it left open is closed the usual way
        or "torch" not in sys.modules  # a light command: the ordinary exit is fast
        or sys.getprofile() is not None
        or sys.gettrace() is not None
        or os.environ.get("SRKIT_FAST_EXIT", "1") == "0"
    )
    if ordinary:
        raise SystemExit(code)
    import atexit
    import ctypes
    import threading

    try:
        shutdown = getattr(threading, "_shutdown", None)  # what the interpreter calls at exit
        if shutdown is not None:
            shutdown()
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            if stream is not None:
                stream.flush()
        ctypes.CDLL(None).fflush(None)  # what C++ extensions printed through stdio
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except BaseException:  # noqa: BLE001 - e.g. a closed pipe: fall back to the ordinary exit
        raise SystemExit(code) from None
    os._exit(0)
