"""Shared test set-up: the NumPy reference lives beside the tests; shared data is optional."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from srkit.data.builtin import data_dir, official_weights_dir

TESTS_DIR = Path(__file__).resolve().parent
# `srkit upscale` defaults to --backend auto, which times every installed backend once per
# model; the tests of that choice ask for it (tests/test_backend_auto.py), the others run eager
os.environ.setdefault("SRKIT_BACKEND", "torch")
sys.path.insert(0, str(TESTS_DIR))


def shared_data_dir() -> Path:
    return data_dir()


def shared_weights_dir() -> Path:
    return official_weights_dir()


@pytest.fixture
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set SRKIT_DATA)")
    return path
