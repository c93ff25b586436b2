"""Run a Python script with cProfile on every thread it starts.

``python -m bench.thread_profile OUTPUT_DIR script.py ARGS...``

``python -m cProfile`` profiles only the main thread, where the aggregator
merely waits for a signal. This wraps :meth:`threading.Thread.run` so that
each thread profiles itself and writes ``OUTPUT_DIR/<thread name>-<id>.prof``
when it ends; the main thread's profile is written when the script exits.
Threads still running at exit (daemons nobody joined) write nothing.
"""

from __future__ import annotations

import cProfile
import runpy
import sys
import threading
from pathlib import Path


def _profiled(output_dir: Path) -> None:
    original_run = threading.Thread.run

    def run(self: threading.Thread) -> None:
        profile = cProfile.Profile()
        profile.enable()
        try:
            original_run(self)
        finally:
            profile.disable()
            profile.dump_stats(output_dir / f"{self.name}-{self.ident}.prof")

    threading.Thread.run = run  # type: ignore[method-assign]


def main() -> None:
    """Profile the script named on the command line, then exit as it did."""
    output_dir = Path(sys.argv[1])
    output_dir.mkdir(parents=True, exist_ok=True)
    script = sys.argv[2]
    sys.argv = sys.argv[2:]
    sys.path.insert(0, str(Path(script).resolve().parent))
    _profiled(output_dir)
    profile = cProfile.Profile()
    profile.enable()
    try:
        runpy.run_path(script, run_name="__main__")
    finally:
        profile.disable()
        profile.dump_stats(output_dir / "MainThread.prof")


if __name__ == "__main__":
    main()
