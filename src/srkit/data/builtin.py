"""Where srkit's data lives: the shared data folder, and what ships inside the package (only
Set5 may be bundled)."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

_REPO = Path(__file__).resolve().parents[3]


def data_dir() -> Path:
    """``$SRKIT_DATA`` or ``<repo>/../shared/data``."""
    env = os.environ.get("SRKIT_DATA")
    return Path(env) if env else _REPO.parent / "shared" / "data"


def official_weights_dir() -> Path:
    """``$SRKIT_WEIGHTS`` or ``<repo>/../shared/weights/official``: the authors' released
    checkpoints, read as teachers and yardsticks, never bundled."""
    env = os.environ.get("SRKIT_WEIGHTS")
    return Path(env) if env else _REPO.parent / "shared" / "weights" / "official"


def bundled_set5() -> Path:
    """Folder of the five Set5 HR images bundled as srkit's sample and benchmark default."""
    path = Path(str(resources.files("srkit") / "assets" / "Set5"))
    if not path.is_dir():
        raise FileNotFoundError(f"bundled Set5 missing at {path}: reinstall srkit")
    return path
