"""``python -m srkit.cli``: the ``srkit`` command."""

from srkit.cli import main

main()
