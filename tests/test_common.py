"""srkit.common: atomic writes, the progress bar, the machine description."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from rich.progress import TimeRemainingColumn

from srkit.common.files import AtomicFile, atomic_path, write_bytes_atomic, write_text_atomic
from srkit.common.machine import SPEED_FLAGS, cpu_flags, cpu_name, machine_summary
from srkit.common.progress import progress_bar


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_atomic_writes_create_folders_replace_and_leave_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.bin"
    assert write_bytes_atomic(target, b"first") == target
    write_bytes_atomic(target, b"second")
    assert target.read_bytes() == b"second"
    text = tmp_path / "t.csv"
    write_text_atomic(text, "x,y\r\n1,2\r\n", newline="")
    assert text.read_bytes() == b"x,y\r\n1,2\r\n"  # line ends as given
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.bin"]
    # an ordinary file's permissions, not mkstemp's private 0o600
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_a_failed_write_keeps_the_previous_file_and_no_partial_one(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("previous")
    with pytest.raises(RuntimeError, match="mid-write"), AtomicFile(target, "w") as stream:
        stream.write("half of the new")
        raise RuntimeError("mid-write")
    assert target.read_text() == "previous"
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("library failed")
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_path_hands_a_library_a_path_and_publishes_it(tmp_path: Path) -> None:
    target = tmp_path / "model.pt"
    with atomic_path(target, fsync=True) as temporary:
        assert temporary.parent == target.parent and temporary != target
        assert not target.exists()
        torch.save({"w": torch.ones(2)}, temporary)
    assert torch.equal(torch.load(target, weights_only=True)["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_atomic_file_streams_then_commits_or_aborts(tmp_path: Path) -> None:
    target = tmp_path / "stream.bin"
    writer = AtomicFile(target)
    writer.file.write(b"ab")
    writer.file.write(b"cd")
    assert not target.exists()  # nothing visible before commit
    writer.commit()
    assert target.read_bytes() == b"abcd"
    dropped = AtomicFile(tmp_path / "dropped.bin")
    dropped.file.write(b"x")
    dropped.abort()
    assert [p.name for p in tmp_path.iterdir()] == ["stream.bin"]
    with pytest.raises(ValueError, match="new file"):
        AtomicFile(target, "ab")


def test_progress_bar_layout() -> None:
    plain = progress_bar()
    assert plain.console.stderr and not plain.disable
    assert [type(c).__name__ for c in plain.columns] == [
        "TextColumn", "BarColumn", "MofNCompleteColumn", "TimeElapsedColumn"
    ]  # fmt: skip
    training = progress_bar("loss {task.fields[loss]:.4f}", enabled=False, remaining=True)
    assert training.disable
    assert training.columns[3].text_format == "loss {task.fields[loss]:.4f}"
    assert isinstance(training.columns[-1], TimeRemainingColumn)


def test_machine_summary() -> None:
    summary = machine_summary()
    assert summary["cpu"] == cpu_name() and summary["cpu"]
    assert summary["threads"] == torch.get_num_threads()
    assert summary["torch"] == torch.__version__
    assert summary["cores"] == os.cpu_count()
    assert "cpu_flags" not in summary
    timed = machine_summary(speed=True)
    assert set(timed) == set(summary) | {"cpu_flags", "load_average"}
    assert set(timed["cpu_flags"].split()) <= set(SPEED_FLAGS)
    assert timed["cpu_flags"] == cpu_flags()
