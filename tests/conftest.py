"""Shared test set-up: the NumPy reference lives beside the tests; shared data is optional."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
sys.path.insert(0, str(TESTS_DIR))


def shared_data_dir() -> Path:
    return Path(os.environ.get("SRKIT_DATA", REPO_ROOT.parent / "shared" / "data"))


def shared_weights_dir() -> Path:
    default = REPO_ROOT.parent / "shared" / "weights" / "official"
    return Path(os.environ.get("SRKIT_WEIGHTS", default))


@pytest.fixture
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set SRKIT_DATA)")
    return path
