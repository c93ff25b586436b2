"""Locate the official binaries that the test bed runs."""

import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def _go_bin_dir() -> Path | None:
    """``$(go env GOPATH)/bin``, or None when Go is not installed."""
    try:
        result = subprocess.run(
            ["go", "env", "GOPATH"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    gopath = result.stdout.strip().split(os.pathsep)[0]
    return Path(gopath) / "bin" if gopath else None


def candidate_dirs() -> list[Path]:
    """The folders searched before PATH, in order of preference.

    The project's own ``.local/bin`` comes first because scripts/bootstrap
    installs exactly the pinned versions there.
    """
    dirs = [REPO_ROOT / ".local" / "bin"]
    go_bin = _go_bin_dir()
    if go_bin is not None:
        dirs.append(go_bin)
    dirs.append(REPO_ROOT / ".venv" / "bin")
    return dirs


def find_binary(name: str) -> Path:
    """Return the path of the executable ``name``.

    :param name: e.g. ``nats-streaming-server``, ``stan-sub``, ``nats-server``.
    :raises pytest.fail.Exception: when it is nowhere; the message says how to
        install it.
    """
    for folder in candidate_dirs():
        path = folder / name
        if path.is_file() and os.access(path, os.X_OK):
            return path
    found = shutil.which(name)
    if found is not None:
        return Path(found)
    searched = ", ".join(str(d) for d in candidate_dirs())
    pytest.fail(
        f"binary {name!r} not found in {searched} or PATH; "
        "run scripts/bootstrap to install the test binaries",
        pytrace=False,
    )
