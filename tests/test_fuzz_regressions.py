"""Inputs that made srkit's readers crash under ``benchmarks/fuzz_*.py``, replayed through the same
drivers: each is now read, or refused with the reader's clean, one-line error.

``tests/data/fuzz/<reader>/<file>_<line>_<exception>_<sha>.bin`` names where the input crashed
before its fix (the first byte picks the input kind, as in the driver's docstring).
"""

from __future__ import annotations

import importlib
import sys
from functools import cache
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
DATA = Path(__file__).parent / "data" / "fuzz"
READERS = ("images", "sources", "weights", "config")
# Inputs a fixed reader now accepts (the rest must be refused with a clean error).
ACCEPTED = {
    # a 21-tap blur on the 4 x 4 image left after the resize: edge pixels now pad the border
    "degrade_92_RuntimeError_a95b5134.bin",
    # zip archives that open, with one damaged entry: that entry's ImageReadError is skipped
    "sources_335_UnicodeDecodeError_1bd1ac64.bin",
    "sources_335_error_608affd6.bin",
}


@cache
def driver(reader: str):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module(f"fuzz_{reader}")
    finally:
        sys.path.remove(str(BENCHMARKS))


CASES = [(reader, path) for reader in READERS for path in sorted((DATA / reader).glob("*.bin"))]


def test_every_reader_has_kept_inputs() -> None:
    kept = {reader for reader, _ in CASES}
    assert kept == {"sources", "weights", "config"}  # the image fuzzer found no crash


def _outcome(reader: str, data: bytes, folder: Path) -> str:
    target, clean = driver(reader).make_target()
    try:
        target(data, folder)
    except clean as error:
        message = str(error)
        assert message and "\n" not in message, repr(message)
        return "refused"
    return "read"


@pytest.mark.parametrize(("reader", "path"), CASES, ids=[p.name for _, p in CASES])
def test_crash_input_is_read_or_refused_cleanly(reader: str, path: Path, tmp_path: Path) -> None:
    expected = "read" if path.name in ACCEPTED else "refused"
    assert _outcome(reader, path.read_bytes(), tmp_path) == expected


@pytest.mark.parametrize("reader", READERS)
def test_fuzz_seeds_are_valid_inputs(reader: str, tmp_path: Path) -> None:
    """The drivers' seeds are real files of each kind: most must read (else the fuzzers would
    start from junk), none may crash."""
    seeds = driver(reader).seeds()
    outcomes = []
    for index, seed in enumerate(seeds):
        folder = tmp_path / str(index)
        folder.mkdir()
        outcomes.append(_outcome(reader, seed, folder))
    assert outcomes.count("read") >= len(seeds) // 2, outcomes
