"""Helpers for fault scenarios: steady publishers, counting at the center."""

import json
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any

from stan_client import StanClient, StanError
from tests.support.events import cloud_event, read_channel
from tests.support.servers import StanServer
from tests.support.waiting import wait_until


class SteadyPublisher:
    """Publishes numbered events to one edge at a steady rate, in a thread.

    It survives the edge going away: a failed publish is retried (the same
    payload) after reconnecting, until it gets a PubAck. A publish that timed
    out may have been stored anyway, so the edge may hold a payload twice;
    duplicates the aggregator adds are therefore counted against what the
    edge holds, not against what was sent.
    """

    def __init__(
        self, edge: StanServer, channel: str, count: int, rate: float, tag: str
    ) -> None:
        self.edge = edge
        self.channel = channel
        self.count = count
        self.rate = rate
        self.tag = tag
        self.sent: list[bytes] = []
        self.done = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"publisher-{tag}")

    def start(self) -> "SteadyPublisher":
        self._thread.start()
        return self

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"publisher {self.tag} did not finish"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        client: StanClient | None = None
        started = time.monotonic()
        for number in range(self.count):
            due = started + number / self.rate
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
            payload = cloud_event(number, source=f"/{self.tag}")
            while not self._stop.is_set():
                try:
                    if client is None or not client.is_connected:
                        client = self._connect(client)
                    client.publish(self.channel, payload, timeout=5)
                    break
                except StanError:
                    time.sleep(0.1)
            self.sent.append(payload)
        self.done.set()
        if client is not None and client.is_connected:
            client.close()

    def _connect(self, old: StanClient | None) -> StanClient:
        if old is not None:
            try:
                old.close()
            except StanError:
                pass
        client = StanClient(
            self.edge.url,
            self.edge.cluster_id,
            f"steady-{self.tag}-{uuid.uuid4().hex[:6]}",
            connect_timeout=2,
            ping_interval=1,
            ping_max_out=2,
        )
        client.connect()
        return client


@dataclass
class Tally:
    """What reached the center, compared with what the edges hold."""

    at_edges: int
    at_center: int
    missing: set[bytes] = field(default_factory=set)

    @property
    def duplicates(self) -> int:
        """Copies the aggregator added beyond what the edges hold."""
        return self.at_center - self.at_edges


def tally(
    center: StanServer,
    edges: list[StanServer],
    channel: str,
    expected: set[bytes],
    timeout: float = 120,
) -> Tally:
    """Wait until every expected payload is at the center, then count.

    :raises AssertionError: if some payload never arrives (named in the
        message, with how many).
    """
    at_edges = sum(edge.channel_msg_count(channel) for edge in edges)
    wait_until(
        lambda: center.channel_msg_count(channel) >= len(expected),
        timeout,
        interval=0.1,
        message=f"{len(expected)} events at the center",
    )
    received: list[bytes] = []

    def everything_there() -> bool:
        nonlocal received
        count = center.channel_msg_count(channel)
        received = read_channel(center.url, center.cluster_id, channel, count)
        return expected <= set(received)

    try:
        wait_until(everything_there, timeout, interval=0.5, message="all events")
    except AssertionError as err:
        missing = expected - set(received)
        raise AssertionError(f"{len(missing)} events never arrived: {err}") from err
    return Tally(at_edges=at_edges, at_center=len(received))


def health(port: int) -> tuple[int, dict[str, Any]]:
    """GET /healthz: (status, JSON body), 503 included."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def metric(port: int, name: str, labels: dict[str, str] | None = None) -> float:
    """One sample of /metrics (0 when absent)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
        text = r.read().decode()
    wanted = name
    if labels:
        wanted += "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def metric_sum(port: int, name: str, **labels: str) -> float:
    """The sum of every sample of ``name`` whose labels include ``labels``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
        text = r.read().decode()
    total = 0.0
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    for line in text.splitlines():
        if line.startswith(name + "{") and all(w in line for w in wanted):
            total += float(line.rsplit(" ", 1)[1])
    return total


def metrics_text(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
        body: bytes = r.read()
    return body.decode()
