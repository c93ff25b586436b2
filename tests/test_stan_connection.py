"""Connecting, publishing, and losing the connection, against real servers.

Losses are produced the three ways production sees them: the server crashes
(kill -9), the link goes silent both ways, or only the server-to-client half
goes silent (a TCP relay that holds bytes without closing a socket). Client
pings are short here (0.5 s, 2 outstanding), so a loss must be reported
within ``ping_interval * (ping_max_out + 1)`` plus a margin.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from stan_client import (
    ClientClosedError,
    ClientIdInUseError,
    ClusterNotFoundError,
    ConnectError,
    ConnectionLostError,
    MaxPayloadError,
    Msg,
    ProtocolError,
    ServerUnreachableError,
    StanClient,
    StanError,
    StartPosition,
)
from stan_client.nats import NatsConnection
from tests.support.factories import RelayFactory, StanServerFactory
from tests.support.gotools import unique_client_id
from tests.support.ports import free_port
from tests.support.servers import NatsServer, StanServer
from tests.support.waiting import assert_stays, wait_until

PING_INTERVAL = 0.5
PING_MAX_OUT = 2
MARGIN = 1.0
LOSS_BUDGET = PING_INTERVAL * (PING_MAX_OUT + 1) + MARGIN
#: The server's default max_payload (1 MiB).
MAX_PAYLOAD = 1024 * 1024


def _channel(name: str) -> str:
    return f"conn.{name}.{unique_client_id('ch')}"


class LossRecorder:
    """An on_connection_lost callback that remembers each call and its time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[tuple[float, StanClient, ConnectionLostError]] = []

    def __call__(self, client: StanClient, error: ConnectionLostError) -> None:
        with self._lock:
            self.calls.append((time.monotonic(), client, error))


class AckRecorder:
    """A publish_async ack handler that counts calls per guid."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[tuple[str, StanError | None]] = []

    def __call__(self, guid: str, error: StanError | None) -> None:
        with self._lock:
            self.calls.append((guid, error))

    def snapshot(self) -> list[tuple[str, StanError | None]]:
        with self._lock:
            return list(self.calls)


class Outcome:
    """Runs ``function`` on a thread and keeps what it returned or raised."""

    def __init__(self, name: str, function: Callable[[], object]) -> None:
        self.value: object = None
        self.error: BaseException | None = None
        self._function = function
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.value = self._function()
        except BaseException as err:
            self.error = err

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"{self.thread.name} is still parked"


def _client(url: str, cluster_id: str, **options: Any) -> StanClient:
    options.setdefault("client_id", unique_client_id("py"))
    client_id = options.pop("client_id")
    return StanClient(url, cluster_id, client_id, **options)


@pytest.fixture
def client(stan_server: StanServer) -> Iterator[StanClient]:
    """A connected client with default settings; closed after the test."""
    connected = _client(stan_server.url, stan_server.cluster_id)
    connected.connect()
    yield connected
    if connected.is_connected:
        connected.close()


# --- publishing ------------------------------------------------------------


@pytest.mark.timeout(30)
def test_publish_returns_a_guid_and_the_message_is_stored(
    stan_server: StanServer, client: StanClient
) -> None:
    channel = _channel("stored")

    guid = client.publish(channel, b"stored")

    assert isinstance(guid, str)
    assert guid
    assert stan_server.channel_msg_count(channel) == 1
    received: list[Msg] = []
    client.subscribe(channel, received.append, start_position=StartPosition.FIRST)
    wait_until(lambda: received, timeout=10, message="the stored message")
    assert [(m.sequence, m.data) for m in received] == [(1, b"stored")]


@pytest.mark.timeout(60)
def test_publish_async_with_a_window_calls_each_handler_exactly_once(
    stan_server: StanServer,
) -> None:
    channel = _channel("window")
    window = 8
    count = 500
    acks = AckRecorder()
    most_in_flight = 0
    with _client(
        stan_server.url, stan_server.cluster_id, max_pub_acks_inflight=window
    ) as client:
        guids = []
        for index in range(count):
            guids.append(client.publish_async(channel, b"w%d" % index, acks))
            most_in_flight = max(most_in_flight, client.publishes_in_flight)
        wait_until(
            lambda: len(acks.snapshot()) >= count,
            timeout=20,
            message=f"{count} ack handler calls",
        )
        assert client.publishes_in_flight == 0
        client.flush(timeout=5)

    calls = acks.snapshot()
    assert len(calls) == count
    assert [error for _, error in calls if error is not None] == []
    assert Counter(guid for guid, _ in calls) == Counter(guids)
    assert len(set(guids)) == count
    assert 1 <= most_in_flight <= window
    assert stan_server.channel_msg_count(channel) == count


@pytest.mark.timeout(60)
def test_publish_stays_prompt_after_a_windowed_burst(stan_server: StanServer) -> None:
    """Writes from other threads must always wake the I/O thread.

    A burst of publish_async calls, released by PubAcks arriving on the
    I/O thread, once left the connection's "wake-up pending" flag stuck:
    from then on every write waited for the next read or timer tick (up to
    0.25 s) before going out, which cut the windowed rate by two thirds and
    made each later publish() take about 0.1 s on average.
    """
    channel = _channel("prompt")
    with _client(
        stan_server.url, stan_server.cluster_id, max_pub_acks_inflight=256
    ) as client:
        for burst in range(3):
            _publish_burst(client, channel, 3000)

            started = time.monotonic()
            for index in range(10):
                client.publish(channel, b"after %d" % index)
            elapsed = time.monotonic() - started

            assert elapsed < 0.5, f"burst {burst}: 10 publish() took {elapsed:.2f} s"


def _publish_burst(client: StanClient, channel: str, count: int) -> None:
    """publish_async ``count`` messages and wait for every PubAck."""
    acks = AckRecorder()
    for index in range(count):
        client.publish_async(channel, b"burst %d" % index, acks)
    wait_until(lambda: len(acks.snapshot()) == count, timeout=30, message="acked")
    assert [error for _, error in acks.snapshot() if error is not None] == []


@pytest.mark.timeout(30)
def test_too_large_message_raises_before_anything_is_sent(
    stan_server: StanServer, client: StanClient
) -> None:
    channel = _channel("large")
    acks = AckRecorder()

    with pytest.raises(MaxPayloadError) as raised:
        client.publish_async(channel, bytes(MAX_PAYLOAD), acks)

    assert raised.value.max_payload == MAX_PAYLOAD
    assert raised.value.size > MAX_PAYLOAD
    assert client.publishes_in_flight == 0
    # Had it been sent, the server would have closed the connection for it.
    client.publish(channel, b"small")
    assert client.is_connected
    assert stan_server.channel_msg_count(channel) == 1
    with pytest.raises(MaxPayloadError):
        client.publish(channel, bytes(MAX_PAYLOAD + 1))
    assert acks.snapshot() == []


@pytest.mark.timeout(30)
def test_publish_after_close_and_a_second_close_raise_client_closed(
    stan_server: StanServer,
) -> None:
    client = _client(stan_server.url, stan_server.cluster_id)
    with pytest.raises(ClientClosedError):
        client.publish(_channel("closed"), b"before connect")
    client.connect()
    client.publish(_channel("closed"), b"connected")

    client.close()

    assert not client.is_connected
    with pytest.raises(ClientClosedError):
        client.publish(_channel("closed"), b"after close")
    with pytest.raises(ClientClosedError):
        client.publish_async(_channel("closed"), b"after close")
    with pytest.raises(ClientClosedError):
        client.close()
    assert client.client_id not in stan_server.client_ids()


# --- losing the connection ---------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("cause", ["kill-9", "pause-both", "pause-downstream"])
def test_lost_connection_is_reported_and_releases_every_waiter(
    cause: str, stan_server: StanServer, relay_factory: RelayFactory
) -> None:
    """Four publishes await their PubAck (the window is full), a fifth
    publish_async and a blocking publish() wait for room: once the loss is
    detected, every one of them ends with ConnectionLostError, long before
    the 30 s pub_ack_wait."""
    relay = relay_factory(stan_server.port)
    url = stan_server.url if cause == "kill-9" else relay.url_for()
    channel = _channel(cause)
    lost = LossRecorder()
    acks = AckRecorder()
    client = _client(
        url,
        stan_server.cluster_id,
        ping_interval=PING_INTERVAL,
        ping_max_out=PING_MAX_OUT,
        pub_ack_wait=30.0,
        max_pub_acks_inflight=4,
        on_connection_lost=lost,
    )
    client.connect()
    client.publish(channel, b"before")

    if cause == "kill-9":
        stan_server.freeze()  # no PubAck for what follows; killed below
    else:
        relay.pause("both" if cause == "pause-both" else "downstream")
    cut_at = time.monotonic()
    for index in range(4):
        client.publish_async(channel, b"pending %d" % index, acks)
    parked_async = Outcome(
        "parked-async", lambda: client.publish_async(channel, b"parked", acks)
    )
    parked_sync = Outcome("parked-sync", lambda: client.publish(channel, b"sync"))
    wait_until(
        lambda: (
            client.publishes_in_flight == 4
            and parked_async.thread.is_alive()
            and parked_sync.thread.is_alive()
        ),
        timeout=5,
        message="four publishes in flight and two callers waiting for room",
    )
    if cause == "kill-9":
        stan_server.kill()
        cut_at = time.monotonic()

    wait_until(lambda: lost.calls, timeout=LOSS_BUDGET + 1, message="loss reported")
    reported_at, reported_client, error = lost.calls[0]
    assert reported_at - cut_at < LOSS_BUDGET
    assert reported_client is client
    assert isinstance(error, ConnectionLostError)
    assert not client.is_connected

    parked_async.join(timeout=5)
    parked_sync.join(timeout=5)
    assert isinstance(parked_async.error, ConnectionLostError), parked_async.error
    assert isinstance(parked_sync.error, ConnectionLostError), parked_sync.error
    calls = acks.snapshot()
    assert len(calls) == 4
    assert len({guid for guid, _ in calls}) == 4
    assert all(isinstance(e, ConnectionLostError) for _, e in calls), calls
    with pytest.raises(ConnectionLostError):
        client.publish(channel, b"after the loss")
    assert client.publishes_in_flight == 0
    assert len(lost.calls) == 1

    client.close()  # releases the lost session without a server round trip
    with pytest.raises(ClientClosedError):
        client.close()


@pytest.mark.timeout(60)
def test_reconnect_with_the_same_client_id_after_a_silent_loss(
    stan_server_factory: StanServerFactory, relay_factory: RelayFactory
) -> None:
    """The server still holds the old session when the client reconnects.

    The server's heartbeats are slowed down (2 s, 2 s, 3 failures) so that
    it certainly has not dropped the old session yet when the client, having
    declared the loss after about a second, connects again: the previous
    session is closed first, so the same ID is accepted at once instead of
    "clientID already registered".
    """
    server = stan_server_factory(hb_interval="2s", hb_timeout="2s", hb_fail_count=3)
    relay = relay_factory(server.port)
    channel = _channel("same-id")
    client_id = unique_client_id("same-id")
    lost = LossRecorder()
    client = _client(
        relay.url_for(),
        server.cluster_id,
        client_id=client_id,
        ping_interval=PING_INTERVAL,
        ping_max_out=PING_MAX_OUT,
        connect_timeout=2.0,
        on_connection_lost=lost,
    )
    client.connect()
    client.publish(channel, b"first session")

    relay.pause("both")
    wait_until(lambda: lost.calls, timeout=LOSS_BUDGET, message="loss reported")
    relay.resume()
    assert client_id in server.client_ids(), "the server already dropped it"

    started = time.monotonic()
    client.connect()
    elapsed = time.monotonic() - started

    try:
        assert elapsed < 1.0
        assert client.is_connected
        client.publish(channel, b"second session")
        received: list[Msg] = []
        client.subscribe(channel, received.append, start_position=StartPosition.FIRST)
        wait_until(lambda: len(received) >= 2, timeout=10, message="both messages")
        assert [m.data for m in received] == [b"first session", b"second session"]
        assert server.client_ids() >= {client_id}
        # Closed by this client's request, not replaced by the server after
        # its own check of the old session (which v0.25.6 logs this way).
        log = server.log_since_start()
        assert b"Replaced old client" not in log
        assert log.count(f"[Client:{client_id}] Connected".encode()) == 2

        twin = _client(server.url, server.cluster_id, client_id=client_id)
        with pytest.raises(ClientIdInUseError) as raised:
            twin.connect()
        assert client_id in str(raised.value)
        assert not twin.is_connected
        assert client.is_connected
        client.publish(channel, b"still the first")
    finally:
        client.close()
    assert len(lost.calls) == 1


# --- failing to connect --------------------------------------------------------


@pytest.mark.timeout(30)
def test_wrong_cluster_id_says_the_cluster_id_may_be_wrong(
    stan_server: StanServer,
) -> None:
    client = _client(stan_server.url, "no-such-cluster", connect_timeout=2.0)

    with pytest.raises(ClusterNotFoundError) as raised:
        client.connect()

    message = str(raised.value)
    assert "'no-such-cluster'" in message
    assert "may be wrong" in message
    assert isinstance(raised.value, ConnectError)
    assert raised.value.cluster_id == "no-such-cluster"
    assert not client.is_connected


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("answer", "complaint"),
    [(b"garbage", "not a valid ConnectResponse"), (b"", "names no publish")],
)
def test_a_garbage_answer_to_connect_is_a_protocol_error(
    answer: bytes, complaint: str, nats_server: NatsServer
) -> None:
    """Something that is not a streaming server answers the discover request.

    The error must be one of the client's own (a StanError, which callers
    retry), not protobuf's DecodeError, which would escape their handlers.
    """
    impostor = NatsConnection(nats_server.url, name="impostor")
    impostor.connect()
    impostor.subscribe(
        "_STAN.discover.impostor",
        lambda _subject, reply, _payload: impostor.publish(reply, answer),
    )
    impostor.flush(5)
    client = _client(nats_server.url, "impostor", connect_timeout=2.0)
    try:
        with pytest.raises(ProtocolError, match=complaint):
            client.connect()
        assert not client.is_connected
    finally:
        impostor.close()


@pytest.mark.timeout(60)
def test_a_new_session_opens_only_after_the_loss_of_the_last_was_reported(
    stan_server: StanServer,
) -> None:
    """connect() waits while the connection-lost callback of the last session runs.

    Otherwise the report of the old loss could reach the owner after the
    new session opened, and make it tear down a healthy connection.
    """
    in_callback = threading.Event()
    release = threading.Event()
    events: list[str] = []

    def blocking_callback(client: StanClient, error: ConnectionLostError) -> None:
        in_callback.set()
        release.wait(30)
        events.append("loss reported")

    client = _client(
        stan_server.url,
        stan_server.cluster_id,
        connect_timeout=10.0,
        on_connection_lost=blocking_callback,
    )
    client.connect()
    stan_server.kill()
    wait_until(in_callback.is_set, 10, message="the callback runs")
    stan_server.restart()  # ready again: a connect could succeed at once

    reconnect = Outcome("reconnect", client.connect)
    assert_stays(
        reconnect.thread.is_alive, 1.0, message="connect() did not wait for it"
    )
    release.set()
    reconnect.join(timeout=15)
    events.append("reconnected")

    assert reconnect.error is None, reconnect.error
    assert events == ["loss reported", "reconnected"]
    assert client.is_connected
    client.close()


@pytest.mark.timeout(30)
def test_nothing_listening_raises_server_unreachable() -> None:
    port = free_port()
    client = _client(f"nats://127.0.0.1:{port}", "test-cluster", connect_timeout=2.0)

    started = time.monotonic()
    with pytest.raises(ServerUnreachableError) as raised:
        client.connect()

    assert time.monotonic() - started < 2.0
    assert str(port) in str(raised.value)
    assert not client.is_connected


@pytest.mark.timeout(30)
def test_frozen_server_fails_connect_within_the_connect_timeout(
    stan_server: StanServer,
) -> None:
    connect_timeout = 1.0
    client = _client(
        stan_server.url, stan_server.cluster_id, connect_timeout=connect_timeout
    )
    stan_server.freeze()

    started = time.monotonic()
    with pytest.raises(ServerUnreachableError) as raised:
        client.connect()
    elapsed = time.monotonic() - started

    assert elapsed < connect_timeout + 1.5
    assert f"no answer within {connect_timeout:g} s" in str(raised.value)
    assert not client.is_connected
    stan_server.thaw()
    client.connect()  # the same handle works once the server does
    client.close()
