"""Lifecycle of one external server process: start, stop, crash, freeze.

A test bed that leaks processes poisons every later test (ports stay taken,
clients reconnect to a stale server), so every process is registered with a
:class:`ProcessRegistry` that a session-wide finalizer checks.
"""

import logging
import signal
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import IO

from tests.support.waiting import wait_until

logger = logging.getLogger(__name__)

#: Seconds a server gets to start before the test fails.
START_TIMEOUT = 15.0
#: Seconds a server gets to exit after SIGTERM before it is killed.
STOP_TIMEOUT = 10.0


class ProcessRegistry:
    """Every process the test bed started, to kill leftovers at session end."""

    def __init__(self) -> None:
        # Fixtures of different tests may start processes from helper threads.
        self._lock = threading.Lock()
        self._processes: list[tuple[str, subprocess.Popen[bytes]]] = []

    def track(self, name: str, process: subprocess.Popen[bytes]) -> None:
        """Remember ``process`` under a human-readable ``name``."""
        with self._lock:
            self._processes = [(n, p) for n, p in self._processes if p.poll() is None]
            self._processes.append((name, process))

    def kill_leftovers(self) -> list[str]:
        """Kill every tracked process that still runs.

        :returns: a description of each process that had to be killed; an empty
            list means nothing leaked.
        """
        with self._lock:
            alive = [(n, p) for n, p in self._processes if p.poll() is None]
            self._processes = []
        leaked = []
        for name, process in alive:
            leaked.append(f"{name} (pid {process.pid})")
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
        return leaked


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a text file, or a note that it is missing."""
    try:
        text = path.read_text(errors="replace")
    except OSError as err:
        return f"<cannot read {path}: {err}>"
    return "\n".join(text.splitlines()[-lines:])


class ManagedProcess(ABC):
    """One server process that tests can start, stop, crash and freeze.

    Subclasses give the command line and the readiness check. Output that the
    server writes before its own log file is open (bad flags, port in use)
    goes to ``<workdir>/<name>.out``, so a failed start can show it.
    """

    def __init__(
        self, name: str, workdir: Path, registry: ProcessRegistry | None
    ) -> None:
        self.name = name
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.output_path = workdir / f"{name}.out"
        self._registry = registry
        self._process: subprocess.Popen[bytes] | None = None
        self._frozen = False

    @abstractmethod
    def command(self) -> list[str]:
        """The full command line, rebuilt for every start."""

    @abstractmethod
    def is_ready(self) -> bool:
        """Whether the started server serves; may raise while it is not."""

    @property
    @abstractmethod
    def log_path(self) -> Path:
        """The server's own log file."""

    @property
    def pid(self) -> int:
        """The process id of the running server.

        :raises RuntimeError: if it was never started.
        """
        if self._process is None:
            raise RuntimeError(f"{self.name} was never started")
        return self._process.pid

    @property
    def running(self) -> bool:
        """Whether the process exists and has not exited (a frozen one runs)."""
        return self._process is not None and self._process.poll() is None

    @property
    def frozen(self) -> bool:
        """Whether the process is stopped with SIGSTOP."""
        return self._frozen and self.running

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the server and wait until it serves.

        :param timeout: seconds before giving up.
        :raises RuntimeError: if it already runs.
        :raises AssertionError: if it exits or is not ready in time; the message
            carries the tail of its log and output.
        """
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        command = self.command()
        with self.output_path.open("ab") as output:
            output.write(f"--- start: {' '.join(command)}\n".encode())
            output.flush()
            self._process = self._spawn(command, output)
        self._frozen = False
        if self._registry is not None:
            self._registry.track(self.name, self._process)
        started = time.monotonic()
        try:
            wait_until(
                lambda: not self.running or self.is_ready(),
                timeout=timeout,
                message=f"{self.name} ready",
            )
            if not self.running:
                raise AssertionError(
                    f"{self.name} exited with status {self._returncode()} "
                    "while starting"
                )
        except AssertionError as err:
            self.kill()
            raise AssertionError(f"{err}\n{self.diagnostics()}") from err
        logger.debug(
            "%s ready",
            self.name,
            extra={"pid": self.pid, "seconds": time.monotonic() - started},
        )

    def _spawn(self, command: list[str], output: IO[bytes]) -> subprocess.Popen[bytes]:
        # A new session keeps the terminal's Ctrl-C away from servers: the
        # fixtures, not the signal, decide when they stop.
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop gracefully: SIGTERM, wait, then SIGKILL. Works on a frozen one."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        if self._frozen:
            # SIGTERM stays pending while the process is stopped.
            process.send_signal(signal.SIGCONT)
            self._frozen = False
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            logger.warning(
                "%s ignored SIGTERM for %.1f s; killing it",
                self.name,
                timeout,
                extra={"pid": process.pid},
            )
            self.kill()

    def kill(self) -> None:
        """Crash the server with SIGKILL (kill -9) and reap it."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)
        self._frozen = False

    def restart(self, timeout: float = START_TIMEOUT) -> None:
        """Start again with the same ports and data; stops it first if it runs."""
        self.stop()
        self.start(timeout=timeout)

    def freeze(self) -> None:
        """Suspend the process (SIGSTOP): sockets stay open, nothing answers.

        :raises RuntimeError: if it does not run.
        """
        if not self.running or self._process is None:
            raise RuntimeError(f"{self.name} is not running")
        self._process.send_signal(signal.SIGSTOP)
        self._frozen = True

    def thaw(self) -> None:
        """Resume a frozen process (SIGCONT).

        :raises RuntimeError: if it does not run.
        """
        if not self.running or self._process is None:
            raise RuntimeError(f"{self.name} is not running")
        self._process.send_signal(signal.SIGCONT)
        self._frozen = False

    def diagnostics(self) -> str:
        """The tails of the server's log and raw output, for failure messages."""
        return (
            f"--- {self.log_path} (tail) ---\n{tail(self.log_path)}\n"
            f"--- {self.output_path} (tail) ---\n{tail(self.output_path)}"
        )
