"""Datasets that ship inside the package (only Set5 may be bundled)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def bundled_set5() -> Path:
    """Folder of the five Set5 HR images bundled as srkit's sample and benchmark default."""
    path = Path(str(resources.files("srkit") / "assets" / "Set5"))
    if not path.is_dir():
        raise FileNotFoundError(f"bundled Set5 missing at {path}: reinstall srkit")
    return path
