"""srkit: super-resolution toolkit with paper-exact evaluation.

The public API is re-exported lazily so that ``import srkit`` stays cheap for the CLI.
"""

from __future__ import annotations

__version__ = "0.1.0"
