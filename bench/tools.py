"""The external programs the benchmark runs, and where they come from."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support.binaries import candidate_dirs

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCAL_BIN = REPO_ROOT / ".local" / "bin"
#: Remembers the outcome of the one attempt to install nats-replicator, so
#: that a refused download is not retried on every run.
REPLICATOR_STAMP = REPO_ROOT / ".local" / "stamps" / "bench-nats-replicator"
REPLICATOR_MODULE = "github.com/nats-io/nats-replicator@latest"


class ToolMissingError(RuntimeError):
    """A program the benchmark needs is not installed."""


def find_tool(name: str) -> Path | None:
    """The executable ``name`` from the project's folders or PATH, or None."""
    for folder in candidate_dirs():
        path = folder / name
        if path.is_file() and os.access(path, os.X_OK):
            return path
    found = shutil.which(name)
    return Path(found) if found is not None else None


def require_tool(name: str) -> Path:
    """Like :func:`find_tool`, but missing is an error that says what to do.

    :raises ToolMissingError: when ``name`` is nowhere.
    """
    path = find_tool(name)
    if path is None:
        raise ToolMissingError(
            f"{name} not found in {LOCAL_BIN} or PATH; run scripts/bootstrap"
        )
    return path


def replicator_binary() -> tuple[Path | None, str]:
    """nats-replicator, installed with ``go install`` on first use.

    The attempt is made once per checkout; its outcome is kept in
    :data:`REPLICATOR_STAMP` (delete it to try again).

    :returns: (path, "") when available, else (None, why not in one line).
    """
    found = find_tool("nats-replicator")
    if found is not None:
        return found, ""
    if REPLICATOR_STAMP.is_file():
        reason = REPLICATOR_STAMP.read_text().strip()
        return None, f"{reason} (cached in {REPLICATOR_STAMP.relative_to(REPO_ROOT)})"
    reason = _go_install_replicator()
    found = find_tool("nats-replicator")
    if found is not None:
        return found, ""
    REPLICATOR_STAMP.parent.mkdir(parents=True, exist_ok=True)
    REPLICATOR_STAMP.write_text(reason + "\n")
    return None, reason


def _go_install_replicator() -> str:
    """Run ``go install``; returns the first line of its error output."""
    LOCAL_BIN.mkdir(parents=True, exist_ok=True)
    try:
        result = subprocess.run(
            ["go", "install", REPLICATOR_MODULE],
            env={**os.environ, "GOBIN": str(LOCAL_BIN)},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as err:
        return f"go install failed to run: {err}"
    if result.returncode == 0:
        return "go install succeeded but left no nats-replicator"
    lines = (result.stderr or result.stdout).strip().splitlines()
    return lines[0] if lines else f"go install exited with {result.returncode}"
