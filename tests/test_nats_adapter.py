"""The defects of pynats2 0.9.0, and the adapter that contains them.

Each defect is one test body run twice: against bare pynats2, where it must
fail (``xfail(strict=True)``: if pynats2 ever stops failing, the suite says
so), and through :class:`stan_client.nats.NatsConnection`, where it must
pass. Both run in a separate process (``tests/pynats2_probe.py``) because
bare pynats2 spins or hangs once its server is gone, and because the CPU a
client burns is measured per process. The servers are the official
nats-server (and nats-streaming-server for the ordering of StanClient).

A bare variant fails with an :class:`AssertionError` about the behaviour
checked; trouble starting the probe raises :class:`ProbeError` instead, which
``xfail(raises=AssertionError)`` does not excuse.
"""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from stan_client import Msg, StanClient, StartPosition
from tests.support.factories import NatsServerFactory, RelayFactory
from tests.support.gotools import unique_client_id
from tests.support.process import ProcessRegistry
from tests.support.servers import NatsServer, StanServer
from tests.support.waiting import assert_stays, wait_until

REPO_ROOT = Path(__file__).resolve().parents[1]

#: Seconds within which a dead server must be reported (the socket says so).
PROMPT = 1.0
#: Seconds of wall time over which CPU use is measured while disconnected.
CPU_WINDOW = 3.0
#: Ping settings of the partition test, and the slack on top of them.
PING_INTERVAL = 0.5
MAX_PINGS_OUT = 2
MARGIN = 1.0


class ProbeError(RuntimeError):
    """The probe could not be started or driven: not a finding about a client."""


class Probe:
    """One ``tests/pynats2_probe.py`` process and what it printed."""

    def __init__(
        self,
        impl: str,
        url: str,
        registry: ProcessRegistry,
        *,
        ping_interval: float = 30.0,
        max_pings_out: int = 2,
        protocol: int = 0,
    ) -> None:
        self.impl = impl
        command = [
            sys.executable, "-m", "tests.pynats2_probe",
            "--impl", impl,
            "--url", url,
            "--ping-interval", str(ping_interval),
            "--max-pings-out", str(max_pings_out),
            "--protocol", str(protocol),
        ]  # fmt: skip
        self._changed = threading.Condition()
        self._events: list[dict[str, Any]] = []
        self._stderr: list[str] = []
        self._ids = itertools.count(1)
        self._process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        registry.track(f"probe-{impl}", self._process)
        self._readers = [
            threading.Thread(target=self._read_stdout, name="probe-out", daemon=True),
            threading.Thread(target=self._read_stderr, name="probe-err", daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        self._setup_wait(lambda: self.events("connected"), "connected")

    def _read_stdout(self) -> None:
        assert self._process.stdout is not None
        for raw in self._process.stdout:
            event = json.loads(raw)
            event["at"] = time.monotonic()
            with self._changed:
                self._events.append(event)
                self._changed.notify_all()

    def _read_stderr(self) -> None:
        assert self._process.stderr is not None
        for raw in self._process.stderr:
            with self._changed:
                self._stderr.append(raw.decode(errors="replace").rstrip())

    def output(self) -> str:
        with self._changed:
            return "\n".join(
                [
                    *(json.dumps(e) for e in self._events),
                    "--- stderr ---",
                    *self._stderr,
                ]
            )

    def _setup_wait(self, predicate: Any, what: str, timeout: float = 10.0) -> Any:
        try:
            return wait_until(predicate, timeout=timeout, message=f"probe {what}")
        except AssertionError as err:
            raise ProbeError(f"{err}\n{self.output()}") from err

    def send(self, cmd: str, **fields: Any) -> None:
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(json.dumps({"cmd": cmd, **fields}).encode())
            self._process.stdin.write(b"\n")
            self._process.stdin.flush()
        except OSError as err:
            raise ProbeError(f"probe is gone: {err}\n{self.output()}") from err

    def events(self, name: str) -> list[dict[str, Any]]:
        with self._changed:
            return [event for event in self._events if event["event"] == name]

    def status(self) -> dict[str, Any]:
        """Ask the probe for its state and wait for the answer."""
        request = next(self._ids)
        self.send("status", id=request)
        found: dict[str, Any] = self._setup_wait(
            lambda: next(
                (e for e in self.events("status") if e["id"] == request), None
            ),
            f"status {request}",
            timeout=5.0,
        )
        return found

    def received(self, subject: str) -> list[str]:
        received: list[str] = self.status()["received"].get(subject, [])
        return received

    def cpu_seconds(self) -> float:
        """User plus system CPU time the probe has used so far."""
        times = psutil.Process(self._process.pid).cpu_times()
        return float(times.user + times.system)

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait(timeout=10)
        for reader in self._readers:
            reader.join(5)
        for stream in (self._process.stdin, self._process.stdout, self._process.stderr):
            if stream is not None:
                stream.close()


ProbeStarter = Callable[..., Probe]


@pytest.fixture
def start_probe(process_registry: ProcessRegistry) -> Iterator[ProbeStarter]:
    """Call it like :class:`Probe` (without the registry); all die after."""
    probes: list[Probe] = []

    def start(impl: str, url: str, **options: Any) -> Probe:
        probe = Probe(impl, url, process_registry, **options)
        probes.append(probe)
        return probe

    yield start
    for probe in probes:
        probe.close()


def both(reason: str) -> list[Any]:
    """Bare pynats2 (expected to fail, strictly) and the adapter."""
    return [
        pytest.param(
            "pynats2",
            id="bare-pynats2",
            marks=pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason),
        ),
        pytest.param("adapter", id="adapter"),
    ]


def _wait_received(
    probe: Probe, subject: str, expected: list[str], timeout: float
) -> None:
    seen: list[str] = []

    def arrived() -> bool:
        seen[:] = probe.received(subject)
        return seen == expected

    try:
        wait_until(arrived, timeout=timeout, message=f"{probe.impl}: {subject}")
    except AssertionError as err:
        raise AssertionError(f"{err}; expected {expected}, got {seen}") from err


def _prove_delivery(probe: Probe, subject: str) -> None:
    """Subscribe and see two messages through: the client works before the test."""
    probe.send("subscribe", subject=subject)
    probe.send("publish", subject=subject, prefix="before", count=2)
    _wait_received(probe, subject, ["before0", "before1"], timeout=5)


# --- a: a dead server ------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "impl",
    both(
        "pynats2 tells no one that the server died, and its reader thread "
        "spins a core on recv() returning b'' forever"
    ),
)
def test_dead_server_is_reported_at_once_and_costs_no_cpu(
    impl: str, nats_server: NatsServer, start_probe: ProbeStarter
) -> None:
    probe = start_probe(impl, nats_server.url)
    _prove_delivery(probe, "a.alive")

    nats_server.kill()
    killed_at = time.monotonic()

    [lost] = wait_until(
        lambda: probe.events("lost"), timeout=PROMPT + 1.0, message="loss reported"
    )
    assert lost["at"] - killed_at < PROMPT
    before = probe.cpu_seconds()
    assert_stays(
        lambda: probe.cpu_seconds() - before < 0.1,
        duration=CPU_WINDOW,
        interval=0.1,
        message=f"CPU below 0.1 s over {CPU_WINDOW} s while disconnected",
    )
    assert len(probe.events("lost")) == 1


@pytest.mark.timeout(30)
def test_bare_pynats2_spins_a_core_after_the_server_died(
    nats_server: NatsServer, start_probe: ProbeStarter
) -> None:
    """The defect itself, measured: more than 1 CPU-second in 3 s of wall time."""
    probe = start_probe("pynats2", nats_server.url)
    _prove_delivery(probe, "a.spin")
    before = probe.cpu_seconds()

    nats_server.kill()

    wait_until(
        lambda: probe.cpu_seconds() - before > 1.0,
        timeout=CPU_WINDOW,
        interval=0.1,
        message="bare pynats2 burning over 1 CPU-second",
    )
    assert probe.status()["reader_alive"], "the spinning reader is still 'alive'"
    assert not probe.events("lost")


# --- b: a silent partition ---------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "impl",
    both(
        "pynats2 never checks PONGs: a silent partition goes unnoticed, with "
        "no callback and no error from publish()"
    ),
)
def test_silent_partition_is_reported_within_the_ping_budget(
    impl: str,
    nats_server: NatsServer,
    relay_factory: RelayFactory,
    start_probe: ProbeStarter,
) -> None:
    relay = relay_factory(nats_server.port)
    probe = start_probe(
        impl,
        relay.url_for(),
        ping_interval=PING_INTERVAL,
        max_pings_out=MAX_PINGS_OUT,
    )
    _prove_delivery(probe, "b.alive")

    relay.pause("both")
    paused_at = time.monotonic()
    budget = PING_INTERVAL * MAX_PINGS_OUT + MARGIN

    def told() -> list[dict[str, Any]]:
        # Keep using the client, as an application would: a loss may also
        # show as an exception from publish().
        probe.send("publish", subject="b.alive", prefix="during", count=1)
        return probe.events("lost") + probe.events("error")

    [first, *_] = wait_until(
        told, timeout=budget, interval=0.2, message="the partition noticed"
    )
    assert first["event"] == "lost", first
    assert first["error"] == "StaleConnectionError", first
    assert first["at"] - paused_at < budget


# --- c: a -ERR line ----------------------------------------------------------

_PERMISSIONS = """
authorization {
  users = [
    {user: "probe", password: "probe", permissions: {publish: {deny: ["forbidden.>"]}}}
  ]
}
"""


@pytest.mark.timeout(30)
@pytest.mark.parametrize("trigger", ["invalid-subject", "publish-permission"])
@pytest.mark.parametrize(
    "impl",
    both("an -ERR line is an unexpected response to pynats2's reader, which dies"),
)
def test_err_line_does_not_stop_delivery(
    impl: str,
    trigger: str,
    nats_server_factory: NatsServerFactory,
    start_probe: ProbeStarter,
) -> None:
    """nats-server answers both triggers with -ERR and keeps the connection.

    "invalid-subject" subscribes to ``foo..bar`` (-ERR 'Invalid Subject');
    "publish-permission" publishes to a subject the user may not publish to
    (-ERR 'Permissions Violation ...'), through the public publish().
    """
    if trigger == "publish-permission":
        server = nats_server_factory(config_text=_PERMISSIONS)
        url = f"nats://probe:probe@127.0.0.1:{server.port}"
    else:
        server = nats_server_factory()
        url = server.url
    probe = start_probe(impl, url)
    _prove_delivery(probe, "c.ok")

    if trigger == "publish-permission":
        probe.send("publish", subject="forbidden.x", prefix="no", count=1)
    else:
        probe.send("subscribe_invalid", subject="foo..bar")
    # Same connection: the server handles these after the trigger, so the
    # -ERR reaches the client before the messages do.
    probe.send("publish", subject="c.ok", prefix="after", count=2)

    _wait_received(probe, "c.ok", ["before0", "before1", "after0", "after1"], timeout=3)
    assert server.connz()["num_connections"] == 1
    assert not probe.events("lost")


# --- d: an asynchronous INFO -------------------------------------------------


@pytest.mark.timeout(40)
@pytest.mark.parametrize(
    "impl",
    both("an INFO line after the handshake is an unexpected response to pynats2"),
)
def test_async_info_does_not_stop_delivery(
    impl: str, nats_server_factory: NatsServerFactory, start_probe: ProbeStarter
) -> None:
    """A route forming makes the server send INFO with new connect_urls.

    Servers send asynchronous INFO only to clients that announce protocol 1
    in CONNECT; pynats2 announces 0, so the probe sets its
    ``_conn_options["protocol"] = 1`` (the adapter always announces 1).
    nats-server 2.15 also sends such a client an INFO right after its first
    PONG: bare pynats2's reader already dies on that one, during the first
    subscribe() (which sends a PING), so it fails before the route forms.
    """
    first = nats_server_factory(cluster=True)
    probe = start_probe(impl, first.url, protocol=1)
    _prove_delivery(probe, "d.ok")

    second = nats_server_factory(routes=[first.cluster_url])
    second_address = f"127.0.0.1:{second.port}"
    wait_until(
        lambda: second_address in (probe.status()["connect_urls"] or []),
        timeout=10,
        message="the client applied the INFO announcing the second server",
    )
    probe.send("publish", subject="d.ok", prefix="after", count=2)

    _wait_received(probe, "d.ok", ["before0", "before1", "after0", "after1"], timeout=3)


# --- e: message order --------------------------------------------------------

ORDER_COUNT = 300


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "impl",
    both("pynats2 runs callbacks on a pool of 3 threads, which reorders them"),
)
def test_callbacks_run_in_the_order_messages_arrived(
    impl: str, nats_server: NatsServer, start_probe: ProbeStarter
) -> None:
    """Each callback sleeps a random 0..1 ms, as real work would."""
    probe = start_probe(impl, nats_server.url)
    probe.send("subscribe", subject="e.order", sleep_ms=1)
    probe.send("publish", subject="e.order", count=ORDER_COUNT)

    received = wait_until(
        lambda: (lambda got: got if len(got) >= ORDER_COUNT else None)(
            probe.received("e.order")
        ),
        timeout=15,
        interval=0.1,
        message=f"{ORDER_COUNT} messages",
    )
    assert received == [str(index) for index in range(ORDER_COUNT)]


@pytest.mark.timeout(60)
def test_stan_subscription_callbacks_keep_the_channel_order(
    stan_server: StanServer,
) -> None:
    channel = f"order.{unique_client_id('ch')}"
    payloads = [f"m{index}".encode() for index in range(ORDER_COUNT)]
    received: list[Msg] = []
    randomness = random.Random(11)

    def slow_callback(message: Msg) -> None:
        time.sleep(randomness.uniform(0, 0.001))
        received.append(message)

    with (
        StanClient(
            stan_server.url, stan_server.cluster_id, unique_client_id("pub")
        ) as publisher,
        StanClient(
            stan_server.url, stan_server.cluster_id, unique_client_id("sub")
        ) as subscriber,
    ):
        acked = threading.Semaphore(0)
        for payload in payloads:
            publisher.publish_async(channel, payload, lambda guid, err: acked.release())
        for _ in payloads:
            assert acked.acquire(timeout=10)
        subscriber.subscribe(channel, slow_callback, start_position=StartPosition.FIRST)
        wait_until(
            lambda: len(received) >= ORDER_COUNT,
            timeout=20,
            interval=0.1,
            message=f"{ORDER_COUNT} messages",
        )

    assert [m.data for m in received] == payloads
    assert [m.sequence for m in received] == list(range(1, ORDER_COUNT + 1))


# --- f: pkg_resources --------------------------------------------------------

_IMPORT_WATCH = """
import importlib.abc, json, sys

requested = []

class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "pkg_resources":
            requested.append(name)
        return None

sys.meta_path.insert(0, Watch())
try:
    import {module}
    error = None
except Exception as err:
    error = repr(err)
print(json.dumps({{
    "requested": requested,
    "loaded": "pkg_resources" in sys.modules,
    "error": error,
}}))
"""


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "module",
    [
        pytest.param(
            "pynats2",
            id="bare-pynats2",
            marks=pytest.mark.xfail(
                strict=True,
                raises=AssertionError,
                reason="pynats2 imports pkg_resources at load time (and cannot "
                "be imported at all where setuptools no longer ships it)",
            ),
        ),
        pytest.param("stan_client", id="stan_client"),
    ],
)
def test_import_does_not_need_pkg_resources(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_WATCH.format(module=module)],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=20,
        check=False,
    )
    if result.returncode != 0:
        raise ProbeError(result.stderr.decode(errors="replace"))
    outcome = json.loads(result.stdout)
    assert outcome == {"requested": [], "loaded": False, "error": None}
