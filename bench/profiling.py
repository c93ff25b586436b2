"""Where the aggregator's time goes during a drain.

Preferred: py-spy, a sampling profiler that sees every thread (the
aggregator's work happens on its source, delivery, I/O and forwarder
threads, never on the main thread) and barely slows the program. When
py-spy cannot trace here (it needs ptrace), cProfile runs inside the
aggregator through :mod:`bench.thread_profile`, one profile per thread,
merged at the end; it slows the program several times over, so its
shares matter, not its rate.
"""

from __future__ import annotations

import io
import pstats
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.tools import find_tool

#: py-spy samples per second.
SAMPLE_RATE = 100


def py_spy_binary() -> Path | None:
    """py-spy, if it is installed and allowed to trace a child here."""
    beside_python = Path(sys.executable).parent / "py-spy"
    binary = beside_python if beside_python.is_file() else find_tool("py-spy")
    if binary is None:
        return None
    probe = [
        str(binary), "record", "--format", "raw", "--output", "/dev/null",
        "--", sys.executable, "-c", "import time; time.sleep(0.3)",
    ]  # fmt: skip
    try:
        result = subprocess.run(
            probe, stdin=subprocess.DEVNULL, capture_output=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return binary if result.returncode == 0 else None


def py_spy_command(
    binary: Path, output: Path, program: Sequence[str], *, gil_only: bool = False
) -> list[str]:
    """``py-spy record`` of ``program``, raw stacks per thread into ``output``.

    :param gil_only: keep only samples of the thread holding the GIL: with
        one GIL and two cores, that is the time that limits the rate.
    """
    command = [
        str(binary), "record",
        "--threads", "--function",
        "--rate", str(SAMPLE_RATE),
        "--format", "raw",
        "--output", str(output),
    ]  # fmt: skip
    if gil_only:
        command.append("--gil")
    return [*command, "--", *program]


def cprofile_command(output_dir: Path, program: Sequence[str]) -> list[str]:
    """``program`` (a Python script and its arguments) under per-thread cProfile."""
    return [sys.executable, "-m", "bench.thread_profile", str(output_dir), *program]


@dataclass
class StackSummary:
    """Samples by thread, by function on top of the stack (self) and by
    function anywhere in it (cumulative)."""

    total: int = 0
    threads: Counter[str] = field(default_factory=Counter)
    own: Counter[str] = field(default_factory=Counter)
    cumulative: Counter[str] = field(default_factory=Counter)


def _thread_label(frame: str) -> str:
    # "thread (12345): source-edge-a" -> "source-edge-a"
    _, _, name = frame.partition("): ")
    return name or frame


def summarize_py_spy(raw: Path) -> StackSummary:
    """Count the collapsed stacks py-spy wrote (``frame;frame;... count``)."""
    summary = StackSummary()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        count = int(number)
        thread, *frames = stack.split(";")
        summary.total += count
        summary.threads[_thread_label(thread)] += count
        if frames:
            summary.own[frames[-1]] += count
            for frame in set(frames):
                summary.cumulative[frame] += count
    return summary


def format_py_spy(summary: StackSummary, top: int, what: str) -> str:
    """Threads, then the ``top`` functions by cumulative and by own samples."""
    total = max(summary.total, 1)
    out = io.StringIO()
    print(f"py-spy: {summary.total} samples of {what}", file=out)
    print("by thread:", file=out)
    for name, count in summary.threads.most_common():
        print(f"  {100 * count / total:5.1f}%  {name}", file=out)
    for title, counter in (
        ("by cumulative samples (function anywhere on the stack)", summary.cumulative),
        ("by own samples (function on top of the stack)", summary.own),
    ):
        print(f"top {top} {title}:", file=out)
        for frame, count in counter.most_common(top):
            print(f"  {100 * count / total:5.1f}%  {frame}", file=out)
    return out.getvalue()


def format_cprofile(output_dir: Path, top: int) -> str:
    """The per-thread profiles merged: top functions by cumulative and own time."""
    files = sorted(output_dir.glob("*.prof"))
    if not files:
        return "cProfile: no thread wrote a profile\n"
    out = io.StringIO()
    print(
        f"cProfile: {len(files)} thread profiles (wall-clock: time spent waiting "
        "on locks and sockets counts)",
        file=out,
    )
    for path in files:
        own = pstats.Stats(str(path)).total_tt  # type: ignore[attr-defined]
        print(f"  {own:8.3f} s  {path.stem}", file=out)
    stats = pstats.Stats(*(str(path) for path in files), stream=out)
    stats.strip_dirs()
    stats.files = []  # type: ignore[attr-defined]  # no list of input files
    for key in ("cumulative", "tottime"):
        print(f"top {top} by {key}:", file=out)
        stats.sort_stats(key).print_stats(top)
    return out.getvalue()
