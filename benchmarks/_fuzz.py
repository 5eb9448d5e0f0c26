"""The driver shared by ``benchmarks/fuzz_*.py``: run a reader on mutated inputs for N seconds.

With ``atheris`` installed (``pip install 'srkit[fuzz]'``) the inputs come from libFuzzer, guided
by the coverage of srkit's own code (and of the pure-Python libraries named by each script); without
it, from a plain random mutator of the same seeds. Every input runs under a per-input time limit.

A *crash* is any exception other than the clean error types the script names (the ones the CLI
turns into one-line errors), or an input that runs past the time limit (a hang). Crashes are told
apart by exception type and innermost srkit frame; the first input of each is written to
``OUT/crash-*.bin`` with its traceback in ``OUT/crashes.txt``. The run ends with one summary line:
inputs tried, how many were rejected cleanly, distinct crashes; the exit code is 1 if any crashed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import random
import signal
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

Target = Callable[[bytes, Path], None]


class Hang(BaseException):
    """The input ran past the per-input time limit (a ``BaseException``, so that a reader's own
    ``except Exception`` cannot turn it into a clean error)."""


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def _crash_key(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if "srkit" in f.filename.replace(os.sep, "/")]
    frame = (ours or frames or [None])[-1]
    where = f"{Path(frame.filename).name}:{frame.lineno}" if frame else "?"
    return f"{type(error).__name__} at {where}"


class Run:
    def __init__(
        self, name: str, target: Target, clean: tuple[type[BaseException], ...], args
    ) -> None:
        self.name, self.target, self.clean, self.args = name, target, clean, args
        self.out = Path(args.out or Path("runs") / "fuzz" / name)
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=_scratch_root()))
        self.inputs = 0
        self.rejected = 0
        self.crashes: Counter[str] = Counter()
        self.start = time.monotonic()
        self.deadline = self.start + args.seconds
        self.next_report = self.start + 30

    def one(self, data: bytes) -> None:
        """Run the target on one input; record a crash instead of raising."""
        self.inputs += 1
        if time.monotonic() >= self.next_report:
            self.next_report += 30
            print(f"  {self.inputs} inputs, {len(self.crashes)} crashes", flush=True)
        folder = self.work / str(self.inputs % 4)
        _empty(folder)
        signal.setitimer(signal.ITIMER_REAL, self.args.timeout)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.target(data, folder)
        except self.clean:
            self.rejected += 1
        except (Exception, Hang) as error:  # everything else is what we are looking for
            self._record(data, error)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    def _record(self, data: bytes, error: BaseException) -> None:
        key = _crash_key(error)
        self.crashes[key] += 1
        if self.crashes[key] > 1:
            return
        digest = hashlib.sha256(data).hexdigest()[:12]
        (self.out / f"crash-{digest}.bin").write_bytes(data)
        with open(self.out / "crashes.txt", "a") as log:
            log.write(f"== {key}: crash-{digest}.bin ({len(data)} bytes)\n")
            log.write("".join(traceback.format_exception(error)) + "\n")
        print(f"crash: {key} -> {self.out / f'crash-{digest}.bin'}", flush=True)

    def summary(self, engine: str) -> int:
        seconds = time.monotonic() - self.start
        distinct = len(self.crashes)
        clean = ", ".join(c.__name__ for c in self.clean)
        print(
            f"{self.name}: {self.inputs} inputs in {seconds:.0f} s ({self.inputs / seconds:.0f}/s, "
            f"{engine}, 1 process, {cpu_name()}); rejected cleanly ({clean}): {self.rejected}; "
            f"crashes: {distinct} distinct, {sum(self.crashes.values())} inputs",
            flush=True,
        )
        for key, count in self.crashes.most_common():
            print(f"  {count:6d} x {key}")
        _empty(self.work)
        self.work.rmdir()
        return 1 if distinct else 0


def _scratch_root() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def _empty(folder: Path) -> None:
    if folder.exists():
        for path in sorted(folder.rglob("*"), reverse=True):
            with contextlib.suppress(OSError):
                path.rmdir() if path.is_dir() and not path.is_symlink() else path.unlink()
    folder.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield


def _on_alarm(signum, frame) -> None:
    raise Hang("the input ran past the per-input time limit")


# --- engines ----------------------------------------------------------------------------------


def _mutate(data: bytes, seeds: list[bytes], rng: random.Random, max_len: int) -> bytes:
    """A few random byte-level edits (libFuzzer's basic mutations, without the coverage)."""
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 6))):
        kind = rng.randrange(8)
        pos = rng.randrange(len(buf) + 1)
        if kind == 0 and buf:
            buf[min(pos, len(buf) - 1)] ^= 1 << rng.randrange(8)
        elif kind == 1 and buf:
            buf[min(pos, len(buf) - 1)] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        elif kind == 2:
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
        elif kind == 3 and buf:
            del buf[pos : pos + rng.randrange(1, 33)]
        elif kind == 4 and buf:
            del buf[rng.randrange(len(buf)) :]  # truncate
        elif kind == 5 and buf:
            start = rng.randrange(len(buf))
            buf[pos:pos] = buf[start : start + rng.randrange(1, 65)]
        elif kind == 6:
            other = rng.choice(seeds)
            start = rng.randrange(len(other) + 1)
            buf[pos:] = other[start:]
        elif kind == 7 and len(buf) >= 4:
            at = rng.randrange(len(buf) - 3)
            value = rng.choice((0, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, rng.randrange(1 << 32)))
            buf[at : at + 4] = value.to_bytes(4, rng.choice(("little", "big")))
    return bytes(buf[:max_len])


def _random_engine(run: Run, seeds: list[bytes]) -> Iterator[None]:
    rng = random.Random(run.args.seed)
    for seed in seeds:
        run.one(seed)
    while time.monotonic() < run.deadline:
        run.one(_mutate(rng.choice(seeds), seeds, rng, run.args.max_len))
        yield


def _atheris_engine(run: Run, seeds: list[bytes], atheris) -> None:
    corpus = run.out / "corpus"
    corpus.mkdir(exist_ok=True)
    for seed in seeds:
        (corpus / hashlib.sha256(seed).hexdigest()[:16]).write_bytes(seed)

    def one_input(data: bytes) -> None:
        if time.monotonic() >= run.deadline:
            code = run.summary("atheris, coverage-guided")
            sys.stdout.flush()
            os._exit(code)
        run.one(data)

    libfuzzer = [
        sys.argv[0],
        f"-max_len={run.args.max_len}",
        f"-timeout={int(run.args.timeout * 4) + 10}",  # backstop; the alarm reports hangs first
        "-rss_limit_mb=4096",
        f"-seed={run.args.seed}",
        "-print_final_stats=0",
        *([] if run.args.verbose else ["-close_fd_mask=2"]),  # the decoders' stderr chatter
        str(corpus),
    ]
    atheris.Setup(libfuzzer, one_input)
    atheris.Fuzz()


def main(
    name: str,
    make_target: Callable[[], tuple[Target, tuple[type[BaseException], ...]]],
    seeds: Callable[[], list[bytes]],
    *,
    instrument: tuple[str, ...] = ("srkit",),
    description: str = "",
    max_len: int = 8192,
) -> int:
    """Parse ``--seconds`` etc., import the target under coverage instrumentation, fuzz it.

    ``make_target()`` imports what it fuzzes and returns ``(target, clean error types)``;
    ``target(data, folder)`` feeds one input (``folder`` is an empty scratch folder). ``seeds()``
    returns the starting inputs. tests/test_fuzz_regressions.py replays kept crash inputs through
    the same ``make_target()``.
    """
    parser = argparse.ArgumentParser(description=description or __doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="How long to fuzz.")
    parser.add_argument("--timeout", type=float, default=10.0, help="Seconds per input (a hang).")
    parser.add_argument("--max-len", type=int, default=max_len, help="Largest input, bytes.")
    parser.add_argument("--seed", type=int, default=1, help="Random seed of the mutator.")
    parser.add_argument(
        "--engine", choices=("auto", "atheris", "random"), default="auto", help="Input source."
    )
    parser.add_argument("--out", type=Path, default=None, help="Crashes and corpus (runs/fuzz/).")
    parser.add_argument("--verbose", action="store_true", help="Keep the readers' stderr output.")
    args = parser.parse_args()
    try:
        import atheris
    except ImportError:
        atheris = None
    if args.engine == "atheris" and atheris is None:
        parser.error("atheris is not installed: pip install 'srkit[fuzz]'")
    use_atheris = atheris is not None and args.engine != "random"
    with atheris.instrument_imports(include=list(instrument)) if use_atheris else _nothing():
        target, clean = make_target()
        inputs = seeds()
    signal.signal(signal.SIGALRM, _on_alarm)
    run = Run(name, target, clean, args)
    if use_atheris:
        _atheris_engine(run, inputs, atheris)  # exits the process at the deadline
    for _ in _random_engine(run, inputs):
        pass
    return run.summary("random mutation, no coverage")
