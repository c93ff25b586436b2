"""``python -m stan_client pub|sub``, the contract of DESIGN.md, end to end.

The commands run as real subprocesses against the official server; ``sub``
must print each payload exactly as received, flushed as it arrives (so a
test can read it while the process still runs), and exit 0 on SIGINT.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.gotools import unique_client_id
from tests.support.process import ProcessRegistry
from tests.support.servers import StanServer
from tests.support.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[1]
COMMAND = [sys.executable, "-m", "stan_client"]


def _run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*COMMAND, *args],
        cwd=REPO_ROOT,
        input=stdin,
        capture_output=True,
        timeout=30,
        check=False,
    )


class Subscriber:
    """``python -m stan_client sub`` in the background; output kept as bytes."""

    def __init__(self, registry: ProcessRegistry, *args: str) -> None:
        self._lock = threading.Lock()
        self._stdout = b""
        self._stderr = b""
        self.process = subprocess.Popen(
            [*COMMAND, "sub", *args],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        registry.track("stan_client-sub", self.process)
        self._readers = [
            threading.Thread(target=self._pump, args=(True,), daemon=True),
            threading.Thread(target=self._pump, args=(False,), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _pump(self, is_stdout: bool) -> None:
        stream = self.process.stdout if is_stdout else self.process.stderr
        assert stream is not None
        # read1 returns what is there as soon as anything is: no waiting for
        # a full buffer, so "flushed as it arrives" is what is tested.
        while chunk := stream.read1(65536):  # type: ignore[attr-defined]
            with self._lock:
                if is_stdout:
                    self._stdout += chunk
                else:
                    self._stderr += chunk

    @property
    def stdout(self) -> bytes:
        with self._lock:
            return self._stdout

    @property
    def stderr(self) -> bytes:
        with self._lock:
            return self._stderr

    def wait_output(self, expected: bytes, timeout: float = 15.0) -> None:
        def seen() -> bool:
            if expected in self.stdout:
                return True
            if self.process.poll() is not None:
                raise AssertionError(
                    f"sub exited with {self.process.returncode}: {self.stderr!r}"
                )
            return False

        try:
            wait_until(seen, timeout=timeout, message=f"sub printed {expected[:60]!r}")
        except AssertionError as err:
            raise AssertionError(f"{err}\nstdout={self.stdout!r}") from err

    def interrupt(self, timeout: float = 10.0) -> int:
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout)
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def subscribers(process_registry: ProcessRegistry) -> Iterator[list[Subscriber]]:
    started: list[Subscriber] = []
    yield started
    for subscriber in started:
        subscriber.close()


def _server_args(server: StanServer) -> list[str]:
    return ["-s", server.url, "-c", server.cluster_id]


@pytest.mark.timeout(60)
def test_pub_then_sub_all_prints_the_payload_and_stops_on_sigint(
    stan_server: StanServer,
    process_registry: ProcessRegistry,
    subscribers: list[Subscriber],
) -> None:
    channel = f"cli.{unique_client_id('ch')}"
    payload = '{"specversion":"1.0","id":"é 1","data":"a  b\\t\'c\'"}'

    published = _run("pub", *_server_args(stan_server), channel, payload)

    assert published.returncode == 0, published.stderr
    assert f"published {len(payload.encode())} bytes".encode() in published.stderr
    sub = Subscriber(process_registry, *_server_args(stan_server), "--all", channel)
    subscribers.append(sub)
    sub.wait_output(payload.encode() + b"\n")
    [line] = sub.stdout.splitlines()
    assert line.endswith(b" " + payload.encode())
    assert b"seq=1" in line

    # A message published now shows up while sub still runs: it is flushed.
    binary = bytes(value for value in range(256) if value != 0x0A)
    published = _run("pub", *_server_args(stan_server), channel, "-", stdin=binary)
    assert published.returncode == 0, published.stderr
    sub.wait_output(b"seq=2 " + binary + b"\n")

    assert sub.interrupt() == 0
    assert b"listening on" in sub.stderr
    assert stan_server.channel_msg_count(channel) == 2


@pytest.mark.timeout(30)
@pytest.mark.parametrize("command", ["pub", "sub"])
def test_wrong_cluster_exits_1_with_the_hint(
    command: str, stan_server: StanServer
) -> None:
    arguments = ["-s", stan_server.url, "-c", "not-our-cluster", "cli.wrong"]
    if command == "pub":
        arguments.append("data")

    result = _run(command, *arguments)

    assert result.returncode == 1
    assert b"'not-our-cluster'" in result.stderr
    assert b"may be wrong" in result.stderr
    assert result.stdout == b""


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["pub", "", "data"], b"is not a channel name"),
        (["pub", "a b", "data"], b"is not a channel name"),
        (["pub", "cyverse.*", "data"], b"is not a channel name"),
        (["sub", "cyverse.>"], b"is not a channel name"),
        (["sub", "--seq", "0", "cli.seq"], b"sequence number from 1"),
        (["sub", "--seq", "-1", "cli.seq"], b"sequence number from 1"),
    ],
)
def test_a_bad_channel_or_sequence_is_a_usage_error_before_connecting(
    arguments: list[str], complaint: bytes
) -> None:
    """Caught by the command line: no 30 s wait for a PubAck, no traceback."""
    result = _run(*arguments[:1], "-s", "nats://127.0.0.1:1", *arguments[1:])

    assert result.returncode == 2
    assert complaint in result.stderr
    assert b"Traceback" not in result.stderr
