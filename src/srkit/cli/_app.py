"""The ``srkit`` application object and what every command shares (consoles, ``_fail``, the
variadic options).

Each command imports the library inside its body, so that ``srkit --help`` starts without torch.
"""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    name="srkit",
    help="Super-resolution toolkit: paper-exact evaluation, training and fast CPU inference.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True, soft_wrap=True)  # never break paths in messages
out = Console()

# Options that take several values after one flag (`--scale 2 3 4`), as SR users type them.
_VARIADIC_OPTIONS = {"--scale", "--data"}
_VARIADIC_BY_COMMAND = {
    "bench": {"--model"},  # several models side by side in one table
    "models": {"--update-docs"},  # several Markdown files
}


def _expand_variadic(argv: list[str]) -> list[str]:
    """Rewrite ``--scale 2 3 4`` as ``--scale 2 --scale 3 --scale 4`` for click."""
    command = next((token for token in argv if not token.startswith("-")), None)
    variadic = _VARIADIC_OPTIONS | _VARIADIC_BY_COMMAND.get(command or "", set())
    expanded: list[str] = []
    current: str | None = None
    for token in argv:
        if token == "--":
            current = None
            expanded.append(token)
        elif token in variadic:
            current = token
            expanded.append(token)
        elif current is not None and not token.startswith("-") and expanded[-1] != current:
            expanded.extend([current, token])
        else:
            if token.startswith("-"):
                current = None
            expanded.append(token)
    return expanded


def _fail(message: str, code: int = 1) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)
