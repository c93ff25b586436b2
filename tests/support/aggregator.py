"""The aggregator as a real process, configured for servers of the test bed.

Tests run ``python aggregator.py config.yml`` exactly as users do, with JSON
logs to a file, so that exit codes, signals and log lines are the real ones.
"""

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.support.process import ProcessRegistry
from tests.support.servers import StanServer
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
#: Seconds the aggregator gets to exit after SIGTERM in tests.
EXIT_TIMEOUT = 30.0


def source_entry(
    name: str, server: StanServer, channels: Sequence[str], **overrides: Any
) -> dict[str, Any]:
    """One ``sources[]`` entry pointing at a test server, with fast retries."""
    entry: dict[str, Any] = {
        "name": name,
        "url": server.url,
        "cluster_id": server.cluster_id,
        "client_id": f"agg-{name}",
        "channels": list(channels),
        "ping_interval": 1,
        "ping_max_out": 2,
        "connect_timeout": 2,
        "ack_wait": 5,
        "reconnect": {"initial_delay": 0.2, "max_delay": 1, "jitter": 0.1},
    }
    entry.update(overrides)
    return entry


def destination_entry(server: StanServer, **overrides: Any) -> dict[str, Any]:
    """The ``destination`` section for a test server, with fast failure checks."""
    entry: dict[str, Any] = {
        "url": server.url,
        "cluster_id": server.cluster_id,
        "client_id": "agg-center",
        "max_outage": 60,
        "ping_interval": 1,
        "ping_max_out": 2,
        "connect_timeout": 2,
    }
    entry.update(overrides)
    return entry


class AggregatorProcess:
    """``python aggregator.py`` with a generated config and JSON logs in a file."""

    def __init__(
        self,
        base_dir: Path,
        config: dict[str, Any],
        registry: ProcessRegistry | None = None,
        name: str = "aggregator",
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Write the config; nothing runs until :meth:`start`.

        :param env: variables added to the process's environment, for
            ``${VAR}`` references in the config.
        """
        base_dir.mkdir(parents=True, exist_ok=True)
        config.setdefault("logging", {"level": "DEBUG", "format": "json"})
        self.config = config
        self.config_path = base_dir / f"{name}.yml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.log_path = base_dir / f"{name}.log"
        self.name = name
        self.env = dict(env or {})
        self._registry = registry
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process; returns at once (see :meth:`wait_for_log`)."""
        log = self.log_path.open("ab")
        try:
            self._process = subprocess.Popen(
                [sys.executable, str(REPO / "aggregator.py"), str(self.config_path)],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
            )
        finally:
            log.close()
        if self._registry is not None:
            self._registry.track(self.name, self._process)

    @property
    def process(self) -> subprocess.Popen[bytes]:
        assert self._process is not None, "start() was not called"
        return self._process

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def terminate(self, timeout: float = EXIT_TIMEOUT) -> int:
        """SIGTERM, then the exit status (fails the test if it hangs)."""
        self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: a crash, with nothing cleaned up."""
        self.process.kill()
        self.process.wait(timeout=EXIT_TIMEOUT)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as err:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"{self.name} did not exit within {timeout:g} s; log tail:\n"
                + self.log_tail()
            ) from err

    def stop(self) -> None:
        """Teardown: terminate if still running, kill if it hangs."""
        if not self.running():
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def records(self) -> list[dict[str, Any]]:
        """Every JSON log line so far (non-JSON lines are skipped)."""
        records = []
        for line in self.log_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records

    def wait_for_log(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float,
        message: str = "log line",
    ) -> dict[str, Any]:
        """The first log record matching ``predicate``, waiting for it."""

        def find() -> dict[str, Any] | None:
            for record in self.records():
                if predicate(record):
                    return record
            return None

        return wait_until(find, timeout, interval=0.05, message=message)

    def wait_ready(self, sources: Sequence[str], timeout: float = 30.0) -> None:
        """Wait until the destination and these sources are connected."""
        wanted = {f"source:{name}" for name in sources} | {"destination"}
        wait_until(
            lambda: wanted <= self.connected_parts(),
            timeout,
            interval=0.05,
            message=f"{self.name}: {sorted(wanted)} connected",
        )

    def connected_parts(self) -> set[str]:
        """``destination`` and ``source:<name>`` for each connection logged."""
        assert self.running(), f"{self.name} exited early:\n{self.log_tail()}"
        parts = set()
        for record in self.records():
            message = str(record.get("message", ""))
            if "subscribed to" in message and "source" in record:
                parts.add(f"source:{record['source']}")
            elif message.startswith("destination ") and " connected " in message:
                parts.add("destination")
        return parts


AggregatorFactory = Callable[..., "AggregatorProcess"]
"""``make(config, name="aggregator")``: the ``aggregator_factory`` fixture."""
