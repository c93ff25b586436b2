"""stan_client and the official Go client exchange messages byte for byte.

Both directions, against the official nats-streaming-server: what our client
publishes, the Go client receives unchanged, and the other way round. The Go
side is stan-gopeer (the official client moving bytes through files and
base64, so any payload works) and the official stan-pub/stan-sub examples,
which carry text only: stan-pub takes the payload as a command-line argument
(no NUL byte, and Linux caps one argument at 128 KiB, so not 900 KiB), and
stan-sub prints it in protobuf text format.
"""

from __future__ import annotations

import random
import string
import threading
from pathlib import Path

import pytest

from stan_client import Msg, StanClient, StartPosition
from tests.support.gotools import (
    GoPeerSubProcess,
    StanSubProcess,
    gopeer_pub,
    stan_pub,
    unique_client_id,
)
from tests.support.process import ProcessRegistry
from tests.support.servers import StanServer
from tests.support.waiting import wait_until


def _text(size: int, seed: int) -> bytes:
    """Printable ASCII of exactly ``size`` bytes, not starting with '-'."""
    alphabet = string.ascii_letters + string.digits + string.punctuation + " "
    body = "".join(random.Random(seed).choices(alphabet, k=max(0, size - 4)))
    return ("txt:" + body).encode()[:size]


PAYLOADS = {
    "empty": b"",
    "1KiB": _text(1024, seed=1),
    "900KiB": _text(900 * 1024, seed=2),
    # Every byte value, NUL included, in an order that is no valid UTF-8.
    "binary": bytes(range(256)) + bytes(reversed(range(256))),
}
TEXT = ["empty", "1KiB", "900KiB"]
#: What stan-pub can carry: text that fits in one command-line argument.
ARGV_TEXT = ["empty", "1KiB"]


def test_payloads_are_what_their_names_say() -> None:
    assert len(PAYLOADS["1KiB"]) == 1024
    assert len(PAYLOADS["900KiB"]) == 900 * 1024
    assert set(PAYLOADS["binary"]) == set(range(256))
    with pytest.raises(UnicodeDecodeError):
        PAYLOADS["binary"].decode()


def _channel(name: str) -> str:
    return f"interop.{name}.{unique_client_id('ch')}"


def _publish_with_stan_client(server: StanServer, channel: str, data: bytes) -> None:
    with StanClient(server.url, server.cluster_id, unique_client_id("py-pub")) as pub:
        guid = pub.publish(channel, data)
    assert guid
    assert server.channel_msg_count(channel) == 1


def _receive_with_stan_client(server: StanServer, channel: str) -> Msg:
    """Subscribe from the first message and return the one message there."""
    received: list[Msg] = []
    lock = threading.Lock()

    def collect(message: Msg) -> None:
        with lock:
            received.append(message)

    with StanClient(server.url, server.cluster_id, unique_client_id("py-sub")) as sub:
        sub.subscribe(channel, collect, start_position=StartPosition.FIRST)
        wait_until(lambda: received, timeout=10, message="the message")
    [message] = received
    return message


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", list(PAYLOADS))
def test_ours_to_official_gopeer(
    name: str, stan_server: StanServer, process_registry: ProcessRegistry
) -> None:
    channel = _channel(name)
    _publish_with_stan_client(stan_server, channel, PAYLOADS[name])

    with GoPeerSubProcess(
        stan_server.url,
        stan_server.cluster_id,
        channel,
        count=1,
        registry=process_registry,
    ) as sub:
        assert sub.wait_exit(timeout=30) == 0

    [message] = sub.messages()
    assert message.sequence == 1
    assert len(message.data) == len(PAYLOADS[name])
    assert message.data == PAYLOADS[name]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", TEXT)
def test_ours_to_official_stan_sub(
    name: str, stan_server: StanServer, process_registry: ProcessRegistry
) -> None:
    channel = _channel(name)
    _publish_with_stan_client(stan_server, channel, PAYLOADS[name])

    with StanSubProcess(
        stan_server.url, stan_server.cluster_id, channel, registry=process_registry
    ) as sub:
        [message] = sub.wait_for_messages(1, timeout=30)

    assert message.sequence == 1
    assert message.subject == channel
    assert message.data == PAYLOADS[name]
    assert not message.redelivered


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", list(PAYLOADS))
def test_official_gopeer_to_ours(
    name: str, stan_server: StanServer, tmp_path: Path
) -> None:
    channel = _channel(name)
    gopeer_pub(
        stan_server.url, stan_server.cluster_id, channel, [PAYLOADS[name]], tmp_path
    )

    message = _receive_with_stan_client(stan_server, channel)

    assert message.sequence == 1
    assert message.channel == channel
    assert len(message.data) == len(PAYLOADS[name])
    assert message.data == PAYLOADS[name]
    assert not message.redelivered


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", ARGV_TEXT)
def test_official_stan_pub_to_ours(name: str, stan_server: StanServer) -> None:
    channel = _channel(name)
    stan_pub(stan_server.url, stan_server.cluster_id, channel, PAYLOADS[name].decode())

    message = _receive_with_stan_client(stan_server, channel)

    assert message.sequence == 1
    assert message.data == PAYLOADS[name]


@pytest.mark.timeout(60)
def test_mixed_payloads_keep_their_order_both_ways(
    stan_server: StanServer, process_registry: ProcessRegistry, tmp_path: Path
) -> None:
    """All payloads on one channel: ours, then the Go client's, read by both."""
    channel = _channel("mixed")
    ours = list(PAYLOADS.values())
    with StanClient(
        stan_server.url, stan_server.cluster_id, unique_client_id("py-pub")
    ) as pub:
        for payload in ours:
            pub.publish(channel, payload)
    theirs = [payload[::-1] for payload in ours]
    gopeer_pub(stan_server.url, stan_server.cluster_id, channel, theirs, tmp_path)
    expected = ours + theirs

    with GoPeerSubProcess(
        stan_server.url,
        stan_server.cluster_id,
        channel,
        count=len(expected),
        registry=process_registry,
    ) as go_sub:
        assert go_sub.wait_exit(timeout=30) == 0
    received: list[Msg] = []
    with StanClient(
        stan_server.url, stan_server.cluster_id, unique_client_id("py-sub")
    ) as sub:
        sub.subscribe(channel, received.append, start_position=StartPosition.FIRST)
        wait_until(
            lambda: len(received) >= len(expected), timeout=10, message="all messages"
        )

    assert [m.data for m in go_sub.messages()] == expected
    assert [m.data for m in received] == expected
    assert [m.sequence for m in received] == list(range(1, len(expected) + 1))
