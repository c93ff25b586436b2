"""Subscriptions of stan_client against the official nats-streaming-server.

Durable positions across client restarts and server crashes, close versus
unsubscribe, queue groups, redelivery after the ack wait, start positions
and max in flight. What the server believes (sent, pending, offline) is read
from its monitoring endpoint rather than inferred from the client.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from stan_client import ConnectionLostError, Msg, StanClient, StartPosition
from tests.support.gotools import unique_client_id
from tests.support.servers import StanServer
from tests.support.waiting import assert_stays, wait_until

#: Short client pings, so that a crashed server is noticed within seconds.
PING_INTERVAL = 0.5
PING_MAX_OUT = 2
LOSS_BUDGET = PING_INTERVAL * (PING_MAX_OUT + 1) + 1.0


class Collector:
    """A subscription callback that keeps every message and when it came."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[tuple[float, Msg]] = []

    def __call__(self, message: Msg) -> None:
        with self._lock:
            self._messages.append((time.monotonic(), message))

    @property
    def messages(self) -> list[Msg]:
        with self._lock:
            return [message for _, message in self._messages]

    @property
    def arrivals(self) -> list[float]:
        with self._lock:
            return [arrived for arrived, _ in self._messages]

    def data(self) -> list[bytes]:
        return [message.data for message in self.messages]

    def sequences(self) -> list[int]:
        return [message.sequence for message in self.messages]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Msg]:
        """Wait until at least ``count`` messages arrived; return them all."""
        wait_until(
            lambda: len(self.messages) >= count,
            timeout=timeout,
            message=f"{count} message(s), got {self.sequences()}",
        )
        return self.messages


def _channel(name: str) -> str:
    return f"subs.{name}.{unique_client_id('ch')}"


def _payloads(start: int, stop: int) -> list[bytes]:
    return [f"m{index}".encode() for index in range(start, stop)]


def _client(server: StanServer, client_id: str | None = None, **options: Any) -> Any:
    return StanClient(
        server.url,
        server.cluster_id,
        client_id or unique_client_id("py"),
        **options,
    )


@pytest.fixture
def publisher(stan_server: StanServer) -> Iterator[StanClient]:
    client = _client(stan_server, unique_client_id("pub"))
    client.connect()
    yield client
    if client.is_connected:
        client.close()


def _publish(client: StanClient, channel: str, payloads: list[bytes]) -> None:
    for payload in payloads:
        client.publish(channel, payload)


def _subscription(server: StanServer, channel: str, **match: Any) -> dict[str, Any]:
    """The server's view of the one subscription on ``channel`` matching ``match``.

    :raises AssertionError: none or several match.
    """
    found = [
        sub
        for sub in server.subscriptions(channel)
        if all(sub.get(key) == value for key, value in match.items())
    ]
    assert len(found) == 1, f"{match} in {server.subscriptions(channel)}"
    return found[0]


def _wait_all_acked(
    server: StanServer, channel: str, last_sent: int, **match: Any
) -> None:
    """Wait until the server sent up to ``last_sent`` and has no ack pending."""
    wait_until(
        lambda: (
            (state := _subscription(server, channel, **match))["last_sent"] == last_sent
            and state["pending_count"] == 0
        ),
        timeout=10,
        message=f"server: {match} sent {last_sent}, nothing pending",
    )


# --- durable subscriptions ---------------------------------------------------


@pytest.mark.timeout(60)
def test_durable_resumes_after_the_client_restarts(
    stan_server: StanServer, publisher: StanClient
) -> None:
    channel = _channel("restart")
    client_id = unique_client_id("durable")
    before = Collector()
    with _client(stan_server, client_id) as client:
        client.subscribe(
            channel, before, durable_name="keep", start_position=StartPosition.FIRST
        )
        _publish(publisher, channel, _payloads(0, 5))
        before.wait_for(5)
        _wait_all_acked(stan_server, channel, 5, durable_name="keep")
    assert _subscription(stan_server, channel, durable_name="keep")["is_offline"]

    _publish(publisher, channel, _payloads(5, 10))

    after = Collector()
    with _client(stan_server, client_id) as client:
        client.subscribe(
            channel, after, durable_name="keep", start_position=StartPosition.FIRST
        )
        after.wait_for(5)
        _wait_all_acked(stan_server, channel, 10, durable_name="keep")
        assert_stays(
            lambda: len(after.messages) == 5, duration=0.3, message="nothing twice"
        )

    assert before.data() == _payloads(0, 5)
    assert after.data() == _payloads(5, 10)
    assert after.sequences() == [6, 7, 8, 9, 10]
    assert not any(m.redelivered for m in before.messages + after.messages)


@pytest.mark.timeout(60)
def test_durable_resumes_after_the_server_is_killed_and_restarted(
    stan_server: StanServer,
) -> None:
    """kill -9, restart on the same file store, reconnect the same handle."""
    channel = _channel("crash")
    lost: list[ConnectionLostError] = []
    client = _client(
        stan_server,
        unique_client_id("durable"),
        ping_interval=PING_INTERVAL,
        ping_max_out=PING_MAX_OUT,
        connect_timeout=2.0,
        on_connection_lost=lambda _client, error: lost.append(error),
    )
    received = Collector()
    client.connect()
    try:
        client.subscribe(
            channel, received, durable_name="keep", start_position=StartPosition.FIRST
        )
        with _client(stan_server) as publisher:
            _publish(publisher, channel, _payloads(0, 3))
        received.wait_for(3)
        _wait_all_acked(stan_server, channel, 3, durable_name="keep")

        stan_server.kill()
        wait_until(lambda: lost, timeout=LOSS_BUDGET, message="loss reported")
        assert not client.is_connected
        stan_server.restart()
        with _client(stan_server) as publisher:
            _publish(publisher, channel, _payloads(3, 6))

        client.connect()
        client.subscribe(
            channel, received, durable_name="keep", start_position=StartPosition.FIRST
        )
        received.wait_for(6)
        with _client(stan_server) as publisher:
            _publish(publisher, channel, _payloads(6, 7))
        received.wait_for(7)
        _wait_all_acked(stan_server, channel, 7, durable_name="keep")
    finally:
        if client.is_connected:
            client.close()

    assert len(lost) == 1
    # Nothing lost: every message came, in order of first arrival. A crash
    # may cost the server the last acks it had not yet written, and messages
    # it sent to the dead session's inbox after restarting count as sent, so
    # repeats are allowed, but only as flagged redeliveries.
    first_arrivals: list[Msg] = []
    for message in received.messages:
        if message.sequence in {m.sequence for m in first_arrivals}:
            assert message.redelivered, message
        else:
            first_arrivals.append(message)
    assert [m.data for m in first_arrivals] == _payloads(0, 7)
    assert [m.sequence for m in first_arrivals] == list(range(1, 8))


@pytest.mark.timeout(60)
def test_close_keeps_the_durable_position_and_unsubscribe_removes_it(
    stan_server: StanServer, publisher: StanClient
) -> None:
    channel = _channel("close")
    _publish(publisher, channel, _payloads(0, 3))
    with _client(stan_server) as client:
        first = Collector()
        subscription = client.subscribe(
            channel, first, durable_name="d", start_position=StartPosition.FIRST
        )
        first.wait_for(3)
        _wait_all_acked(stan_server, channel, 3, durable_name="d")

        subscription.close()

        assert _subscription(stan_server, channel, durable_name="d")["is_offline"]
        resumed = Collector()
        subscription = client.subscribe(
            channel, resumed, durable_name="d", start_position=StartPosition.FIRST
        )
        _publish(publisher, channel, _payloads(3, 4))
        # Delivery is in order: had it started over, m0 would come first.
        resumed.wait_for(1)
        assert resumed.data() == [b"m3"]
        _wait_all_acked(stan_server, channel, 4, durable_name="d")

        subscription.unsubscribe()

        assert stan_server.subscriptions(channel) == []
        again = Collector()
        client.subscribe(
            channel, again, durable_name="d", start_position=StartPosition.FIRST
        )
        again.wait_for(4)

    assert first.data() == _payloads(0, 3)
    assert again.data() == _payloads(0, 4)
    assert again.sequences() == [1, 2, 3, 4]


# --- queue groups and redelivery ---------------------------------------------


@pytest.mark.timeout(60)
def test_two_queue_members_share_the_channel(
    stan_server: StanServer, publisher: StanClient
) -> None:
    channel = _channel("queue")
    members = [Collector(), Collector()]
    with _client(stan_server) as one, _client(stan_server) as two:
        one.subscribe(channel, members[0], queue_group="workers")
        two.subscribe(channel, members[1], queue_group="workers")
        _publish(publisher, channel, _payloads(0, 20))
        wait_until(
            lambda: sum(len(member.messages) for member in members) >= 20,
            timeout=10,
            message="20 messages between the members",
        )
        assert_stays(
            lambda: sum(len(member.messages) for member in members) == 20,
            duration=0.3,
            message="no message twice",
        )

    assert all(member.messages for member in members), [
        member.sequences() for member in members
    ]
    combined = members[0].sequences() + members[1].sequences()
    assert sorted(combined) == list(range(1, 21))
    for member in members:
        assert member.sequences() == sorted(member.sequences())


@pytest.mark.timeout(30)
def test_unacked_message_is_redelivered_after_the_ack_wait(
    stan_server: StanServer, publisher: StanClient
) -> None:
    channel = _channel("redeliver")
    received = Collector()
    with _client(stan_server) as client:
        client.subscribe(
            channel,
            received,
            manual_acks=True,
            ack_wait=1,
            start_position=StartPosition.FIRST,
        )
        _publish(publisher, channel, [b"ack me"])

        first, again = received.wait_for(2, timeout=5)[:2]

        assert not first.redelivered
        assert again.redelivered
        assert (again.sequence, again.data) == (first.sequence, b"ack me")
        waited = received.arrivals[1] - received.arrivals[0]
        assert 0.8 < waited < 3.0
        again.ack()
        _wait_all_acked(stan_server, channel, 1)


# --- start positions and flow control ------------------------------------------

_GAP = 0.3


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("position", "expected"),
    [
        (StartPosition.FIRST, [1, 2, 3, 4, 5, 6]),
        (StartPosition.NEW_ONLY, [6]),
        (StartPosition.LAST_RECEIVED, [5, 6]),
        (StartPosition.SEQUENCE, [3, 4, 5, 6]),
        (StartPosition.TIME, [4, 5, 6]),
    ],
    ids=lambda value: value.name if isinstance(value, StartPosition) else None,
)
def test_start_position_delivers_what_it_should(
    position: StartPosition,
    expected: list[int],
    stan_server: StanServer,
    publisher: StanClient,
) -> None:
    """Five stored messages with a gap in time between the third and fourth;
    then a sixth is published after subscribing, and the test ends when it
    arrives (delivery is in order, so everything before it came first)."""
    channel = _channel(position.value)
    _publish(publisher, channel, _payloads(1, 4))
    third_stored = time.time()
    wait_until(lambda: time.time() > third_stored + _GAP, timeout=5, interval=0.05)
    _publish(publisher, channel, _payloads(4, 6))
    between = datetime.fromtimestamp(third_stored + _GAP / 2, tz=UTC)

    received = Collector()
    with _client(stan_server) as client:
        client.subscribe(
            channel,
            received,
            start_position=position,
            start_sequence=3 if position is StartPosition.SEQUENCE else None,
            start_time=between if position is StartPosition.TIME else None,
        )
        _publish(publisher, channel, [b"m6"])
        wait_until(lambda: b"m6" in received.data(), timeout=10, message="m6 delivered")

    assert received.sequences() == expected
    assert received.data() == [f"m{sequence}".encode() for sequence in expected]


@pytest.mark.timeout(30)
def test_max_in_flight_holds_delivery_until_acks(
    stan_server: StanServer, publisher: StanClient
) -> None:
    channel = _channel("inflight")
    _publish(publisher, channel, _payloads(0, 10))
    received = Collector()
    with _client(stan_server) as client:
        client.subscribe(
            channel,
            received,
            max_in_flight=3,
            manual_acks=True,
            start_position=StartPosition.FIRST,
        )
        received.wait_for(3)
        assert_stays(
            lambda: len(received.messages) == 3,
            duration=0.5,
            message="held at 3 unacked messages",
        )
        state = _subscription(stan_server, channel)
        assert (state["last_sent"], state["pending_count"]) == (3, 3)

        for message in received.messages:
            message.ack()
        received.wait_for(6)
        assert_stays(
            lambda: len(received.messages) == 6,
            duration=0.3,
            message="held again at 3 unacked messages",
        )

        acked: set[int] = set()

        def ack_all_so_far() -> bool:
            for message in received.messages:
                if message.sequence not in acked:
                    message.ack()
                    acked.add(message.sequence)
            return len(acked) == 10

        wait_until(ack_all_so_far, timeout=10, message="all 10 delivered and acked")
        _wait_all_acked(stan_server, channel, 10)

    assert received.sequences() == list(range(1, 11))
    assert not any(m.redelivered for m in received.messages)
