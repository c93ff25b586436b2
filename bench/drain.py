"""A forwarding process draining the edges' backlogs into the center, timed.

The clock starts when the process is spawned (so its start-up counts, as it
does for a user) and stops at the first poll of the center's monitoring
endpoint that shows every event stored. The process's resident memory is
sampled at the same polls.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from tests.support.servers import StanServer

#: Seconds between two looks at the center and at the process's memory.
POLL_SECONDS = 0.05
#: A drain with no new event at the center for this long has stalled.
STALL_SECONDS = 60.0
#: How long the count must stay unchanged after the drain before the final
#: count is read (duplicates arrive, if at all, within the publish window).
SETTLE_SECONDS = 1.0
#: Seconds a process gets to exit after SIGTERM before it is killed.
STOP_SECONDS = 30.0


class DrainError(RuntimeError):
    """The drain did not complete: the process died or the flow stalled."""


@dataclass(frozen=True, slots=True)
class DrainResult:
    """What one drain measured."""

    expected: int
    stored: int
    seconds: float
    first_event_seconds: float
    peak_rss_bytes: int
    #: User plus system CPU seconds of the process from its start until
    #: all events were stored: less sensitive to a busy machine than rates.
    cpu_seconds: float

    @property
    def per_second(self) -> float:
        """Events per second from process start until all were stored."""
        return self.expected / self.seconds

    @property
    def steady_per_second(self) -> float:
        """Events per second from the first stored event to the last."""
        flowing = self.seconds - self.first_event_seconds
        return self.expected / flowing if flowing > 0 else float("nan")

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_seconds / self.expected * 1e6

    @property
    def duplicates(self) -> int:
        return max(0, self.stored - self.expected)


class ForwardingProcess:
    """One forwarder (the aggregator, nats-replicator, a profiler around one).

    :param command: the command line.
    :param log_path: receives its standard output and error.
    :param measured_child: the measured process is the first child of the
        spawned one (a profiler that runs the program), not itself.
    """

    def __init__(
        self, command: Sequence[str], log_path: Path, *, measured_child: bool = False
    ) -> None:
        self.command = list(command)
        self.log_path = log_path
        self.measured_child = measured_child
        self.started_at = 0.0
        self._process: subprocess.Popen[bytes] | None = None
        self._measured: psutil.Process | None = None

    def start(self) -> None:
        """Spawn it in its own session, so a Ctrl-C reaches only the bench."""
        with self.log_path.open("ab") as log:
            self.started_at = time.monotonic()
            self._process = subprocess.Popen(
                self.command,
                cwd=Path(__file__).resolve().parents[1],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError("start() was not called")
        return self._process

    def exit_status(self) -> int | None:
        return self.process.poll()

    def measured(self) -> psutil.Process | None:
        """The process whose memory counts (None while a profiler starts it)."""
        if self._measured is None:
            spawned = psutil.Process(self.process.pid)
            if not self.measured_child:
                self._measured = spawned
            else:
                children = spawned.children()
                self._measured = children[0] if children else None
        return self._measured

    def rss(self) -> int:
        """Resident bytes of the measured process now; 0 if not there (yet)."""
        try:
            measured = self.measured()
            return measured.memory_info().rss if measured is not None else 0
        except psutil.Error:
            return 0

    def cpu_seconds(self) -> float:
        """User plus system CPU seconds of the measured process so far."""
        try:
            measured = self.measured()
            if measured is None:
                return 0.0
            times = measured.cpu_times()
        except psutil.Error:
            return 0.0
        return float(times.user + times.system)

    def terminate(self, timeout: float = STOP_SECONDS) -> int:
        """SIGTERM to the measured process, then its exit status.

        Under a profiler the program itself gets the signal, so it ends
        cleanly and the profiler writes its output. Kills after ``timeout``.
        """
        if self._process is None:
            return 0
        if self._process.poll() is None:
            target = self.measured()
            try:
                if target is not None:
                    target.send_signal(signal.SIGTERM)
                else:
                    self._process.send_signal(signal.SIGTERM)
            except psutil.Error:
                pass  # it ended on its own meanwhile
        try:
            return self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
            return -signal.SIGKILL

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def watch_drain(
    forwarder: ForwardingProcess,
    center: StanServer,
    channel: str,
    expected: int,
    timeout: float,
) -> DrainResult:
    """Poll the center until ``expected`` events are in ``channel``.

    :raises DrainError: the process exited, the flow stalled for
        :data:`STALL_SECONDS`, or ``timeout`` passed.
    """
    started = forwarder.started_at
    peak_rss = 0
    stored = 0
    first_event_at: float | None = None
    last_progress_at = time.monotonic()
    while True:
        now = time.monotonic()
        peak_rss = max(peak_rss, forwarder.rss())
        count = center.channel_msg_count(channel)
        if count > stored:
            stored = count
            last_progress_at = now
            if first_event_at is None:
                first_event_at = now
        if stored >= expected:
            finished_at = now
            cpu_seconds = forwarder.cpu_seconds()
            break
        status = forwarder.exit_status()
        if status is not None:
            raise DrainError(
                f"the forwarder exited with {status} after {stored} of {expected} "
                f"events:\n{forwarder.log_tail()}"
            )
        if now - last_progress_at > STALL_SECONDS or now - started > timeout:
            raise DrainError(
                f"only {stored} of {expected} events after {now - started:.0f} s:\n"
                f"{forwarder.log_tail()}"
            )
        time.sleep(POLL_SECONDS)
    peak_rss = max(peak_rss, forwarder.rss())
    stored = _settled_count(center, channel, stored)
    assert first_event_at is not None
    return DrainResult(
        expected=expected,
        stored=stored,
        seconds=finished_at - started,
        first_event_seconds=first_event_at - started,
        peak_rss_bytes=peak_rss,
        cpu_seconds=cpu_seconds,
    )


def _settled_count(center: StanServer, channel: str, count: int) -> int:
    """The count once it stayed the same for :data:`SETTLE_SECONDS`."""
    deadline = time.monotonic() + 10 * SETTLE_SECONDS
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        now_count = center.channel_msg_count(channel)
        if now_count != count:
            count = now_count
            stable_since = time.monotonic()
        elif time.monotonic() - stable_since >= SETTLE_SECONDS:
            break
    return count
