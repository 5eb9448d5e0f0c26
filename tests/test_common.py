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
    assert set(timed) == set(summary) | {"cpu_flags", "load_average", "allocator"}
    assert timed["allocator"] in ("retained", "system")
    assert set(timed["cpu_flags"].split()) <= set(SPEED_FLAGS)
    assert timed["cpu_flags"] == cpu_flags()


_MALLINFO_PROBE = """
import ctypes, sys
from srkit.common.allocator import retain_freed_memory
applied = retain_freed_memory() if sys.argv[1] == "retain" else False
libc = ctypes.CDLL("libc.so.6")
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split())]
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
block = libc.malloc(64 << 20)
mapped = libc.mallinfo2().hblkhd
libc.free(ctypes.c_void_p(block))
print(applied, mapped, libc.mallinfo2().fordblks)
"""


def _mallinfo_probe(mode: str, **env: str) -> tuple[bool, int, int]:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", _MALLINFO_PROBE, mode], capture_output=True, text=True,
        env={**os.environ, **env}, check=True,
    )  # fmt: skip
    applied, mapped, free = result.stdout.split()
    return applied == "True", int(mapped), int(free)


def test_retained_memory_serves_large_blocks_from_the_heap_and_keeps_them() -> None:
    import ctypes
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("the allocator tuning is for glibc on Linux")
    if not hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2"):
        pytest.skip("glibc older than 2.33 has no mallinfo2 to check it with")
    # glibc's default: a 64 MB block is its own mmap, given back to the kernel on free
    applied, mapped, _ = _mallinfo_probe("default")
    assert not applied and mapped >= 64 << 20
    # retained: the block comes from the heap and stays there, free, for the next tensor
    applied, mapped, free = _mallinfo_probe("retain")
    assert applied and mapped < 64 << 20 and free >= 64 << 20
    # SRKIT_MALLOC=system opts out
    applied, mapped, _ = _mallinfo_probe("retain", SRKIT_MALLOC="system")
    assert not applied and mapped >= 64 << 20


_EXIT_PROBE = """
import atexit, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import torch  # the quick exit is taken only when torch is loaded
from srkit.cli import _exit_now
out = Path(sys.argv[1])
atexit.register(lambda: (out / "atexit").write_text("ran"))
def late(name):
    time.sleep(0.3)
    (out / name).write_text("done")
threading.Thread(target=late, args=("thread",)).start()  # a non-daemon thread still working
pool = ThreadPoolExecutor(1)  # never shut down: its idle worker must be woken, not waited on
pool.submit(late, "pool")
class Teardown:  # reached only by the interpreter's own teardown
    def __del__(self):
        sys.stderr.write("teardown")
keep = Teardown()
print("buffered", end="")
_exit_now(int(sys.argv[2]) if sys.argv[2].isdigit() else sys.argv[2])
"""


@pytest.mark.parametrize(("code", "status"), [("0", 0), ("3", 3), ("a message", 1)])
def test_the_quick_exit_finishes_threads_atexit_and_streams(tmp_path, code, status) -> None:
    """After a command that succeeded, `srkit` ends with os._exit (Python's teardown with torch
    loaded takes ~0.4 s), but only after what an orderly exit does: threads and pools finish,
    atexit handlers run, buffered output is flushed. A failure exits the ordinary way, with its
    status (a message: printed, status 1)."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", _EXIT_PROBE, str(tmp_path), code], capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == status, result.stderr
    assert result.stdout == "buffered"
    assert (tmp_path / "thread").read_text() == "done"
    assert (tmp_path / "pool").read_text() == "done"
    assert (tmp_path / "atexit").read_text() == "ran"
    if status == 0:  # the interpreter was not torn down
        assert "teardown" not in result.stderr
    else:
        assert "teardown" in result.stderr
    if status == 1:
        assert "a message" in result.stderr


def test_over_bands_covers_the_rows_and_raises_after_every_band() -> None:
    import threading
    import time

    import numpy as np

    from srkit.common import bands

    bands.set_threads(2)
    try:
        out = np.zeros(300, dtype=np.int64)
        seen: list[str] = []

        def fill(a: int, b: int) -> None:
            seen.append(threading.current_thread().name)
            out[a:b] += 1

        bands.over_bands(fill, 300)
        assert (out == 1).all() and len(seen) == 2  # two bands, every row once

        finished: list[int] = []

        def fail_first(a: int, b: int) -> None:
            if a == 0:
                raise ValueError("band 0")
            time.sleep(0.05)
            finished.append(a)

        with pytest.raises(ValueError, match="band 0"):
            bands.over_bands(fail_first, 300)
        assert finished == [150]  # the other band had finished when the error came

        inner: list[int] = []

        def nested(a: int, b: int) -> None:  # a band that cuts bands: run whole, no deadlock
            bands.over_bands(lambda c, d: inner.append(d - c), b - a)

        bands.over_bands(nested, 300)
        assert sorted(inner) == [75, 75, 150]  # the pool's band whole; the caller's split
    finally:
        bands.set_threads(None)
