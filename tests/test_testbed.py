"""The test bed itself works: real servers, Go peers, relay, parsers.

Every other test builds on these pieces, so each one is proven here against
the real thing before anything depends on it.
"""

import random
import socket
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.factories import NatsServerFactory, RelayFactory, StanServerFactory
from tests.support.gogotext import (
    TextFormatError,
    escape_bytes,
    parse_stan_sub_line,
    unescape_bytes,
)
from tests.support.gotools import (
    GoPeerSubProcess,
    StanSubProcess,
    gopeer_pub,
    stan_pub,
    unique_client_id,
)
from tests.support.monitoring import MonitoringError
from tests.support.process import ProcessRegistry
from tests.support.servers import NatsServer, StanServer
from tests.support.waiting import assert_stays, wait_until


def _channel(name: str) -> str:
    return f"{name}.{unique_client_id('ch')}"


@pytest.mark.timeout(60)
def test_stan_pub_message_reaches_stan_sub_through_real_server(
    stan_server: StanServer, process_registry: ProcessRegistry
) -> None:
    channel = _channel("roundtrip")
    with StanSubProcess(
        stan_server.url, stan_server.cluster_id, channel, registry=process_registry
    ) as sub:
        sub.wait_subscribed()
        assert sub.client_id in stan_server.client_ids()
        stan_pub(stan_server.url, stan_server.cluster_id, channel, 'hello "stan"\t!')

        [message] = sub.wait_for_messages(1)

    assert message.sequence == 1
    assert message.subject == channel
    assert message.data == b'hello "stan"\t!'
    assert stan_server.channel_msg_count(channel) == 1


@pytest.mark.timeout(60)
def test_gopeer_carries_900_kib_of_binary_byte_for_byte(
    stan_server: StanServer, process_registry: ProcessRegistry, tmp_path: Path
) -> None:
    channel = _channel("big")
    payload = bytes(range(256)) + random.Random(7).randbytes(900 * 1024 - 256)
    gopeer_pub(stan_server.url, stan_server.cluster_id, channel, [payload], tmp_path)

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
    assert len(message.data) == len(payload)
    assert message.data == payload


@pytest.mark.timeout(60)
def test_stan_sub_output_is_parsed_back_to_every_byte_value(
    stan_server: StanServer, process_registry: ProcessRegistry, tmp_path: Path
) -> None:
    """The real Go text formatter, not only our own escaper, feeds the parser."""
    channel = _channel("bytes")
    payloads = [bytes(range(256)), b"", b"\\\"'\n\r\t\x00\x7f\xff"]
    gopeer_pub(stan_server.url, stan_server.cluster_id, channel, payloads, tmp_path)

    with StanSubProcess(
        stan_server.url, stan_server.cluster_id, channel, registry=process_registry
    ) as sub:
        received = sub.wait_for_messages(len(payloads))

    assert [m.data for m in received] == payloads
    assert [m.sequence for m in received] == [1, 2, 3]


@pytest.mark.timeout(90)
def test_kill_9_and_restart_keep_the_file_store_and_the_port(
    stan_server: StanServer, process_registry: ProcessRegistry, tmp_path: Path
) -> None:
    channel = _channel("durable")
    payloads = [b"one", b"two\x00", b"three"]
    gopeer_pub(stan_server.url, stan_server.cluster_id, channel, payloads, tmp_path)
    assert stan_server.channel_msg_count(channel) == 3
    port, old_pid = stan_server.port, stan_server.pid

    stan_server.kill()
    assert not stan_server.running
    with pytest.raises(MonitoringError):
        stan_server.serverz()

    stan_server.restart()

    assert stan_server.port == port
    assert stan_server.pid != old_pid
    assert stan_server.channel_msg_count(channel) == 3
    with GoPeerSubProcess(
        stan_server.url,
        stan_server.cluster_id,
        channel,
        count=3,
        registry=process_registry,
    ) as sub:
        assert sub.wait_exit(timeout=30) == 0
    assert [m.data for m in sub.messages()] == payloads


@pytest.mark.timeout(60)
def test_freeze_makes_monitoring_fail_fast_and_thaw_brings_it_back(
    stan_server: StanServer,
) -> None:
    stan_server.freeze()
    started = time.monotonic()
    with pytest.raises(MonitoringError, match="no answer"):
        stan_server.serverz()
    assert time.monotonic() - started < 3.0
    assert stan_server.running

    stan_server.thaw()

    state = wait_until(
        lambda: stan_server.serverz()["state"], timeout=10, message="serverz again"
    )
    assert state == "STANDALONE"


@pytest.mark.timeout(30)
def test_stop_ends_a_frozen_server(stan_server: StanServer) -> None:
    stan_server.freeze()
    stan_server.stop(timeout=10)
    assert not stan_server.running


@pytest.mark.timeout(60)
def test_stan_server_with_credentials_rejects_anonymous_clients(
    stan_server_factory: StanServerFactory,
) -> None:
    server = stan_server_factory(user="edge", password="s3cret/:@")
    assert server.url == f"nats://edge:s3cret%2F%3A%40@127.0.0.1:{server.port}"
    channel = _channel("auth")

    stan_pub(server.url, server.cluster_id, channel, "with credentials")
    anonymous = f"nats://127.0.0.1:{server.port}"
    with pytest.raises(AssertionError, match=r"[Aa]uthorization"):
        stan_pub(anonymous, server.cluster_id, channel, "without", timeout=30)
    assert server.channel_msg_count(channel) == 1


def _recv_until(sock: socket.socket, marker: bytes, timeout: float = 5.0) -> bytes:
    """Read from ``sock`` until ``marker`` appeared; fail on EOF or deadline."""
    received = b""
    sock.settimeout(0.05)

    def seen() -> bool:
        nonlocal received
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return False
        if not chunk:
            raise AssertionError(f"EOF after {received!r}")
        received += chunk
        return marker in received

    wait_until(seen, timeout=timeout, message=f"{marker!r} from the relay")
    return received


def _assert_nothing_to_read(sock: socket.socket) -> None:
    """No byte and no EOF waits on ``sock`` right now."""
    sock.setblocking(False)
    try:
        chunk = sock.recv(65536)
    except BlockingIOError:
        return
    finally:
        sock.setblocking(True)
    raise AssertionError(f"expected nothing to read, got {chunk!r} (b'' is EOF)")


@pytest.mark.timeout(60)
def test_relay_pause_downstream_holds_bytes_without_closing_the_socket(
    nats_server: NatsServer, relay_factory: RelayFactory
) -> None:
    relay = relay_factory(nats_server.port)
    with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as sock:
        assert _recv_until(sock, b"\r\n").startswith(b"INFO ")
        sock.sendall(b'CONNECT {"verbose":false}\r\nPING\r\n')
        assert b"PONG\r\n" in _recv_until(sock, b"PONG\r\n")
        before = nats_server.varz()

        relay.pause("downstream")
        sock.sendall(b"SUB bed.pause 1\r\nPUB bed.pause 2\r\nhi\r\nPING\r\n")

        # The server got the message and wrote it back towards the client...
        wait_until(
            lambda: nats_server.varz()["out_msgs"] > before["out_msgs"],
            timeout=5,
            message="server delivered the message",
        )
        # ...yet the client sees neither data nor EOF, and stays connected.
        _assert_nothing_to_read(sock)
        assert relay.connection_count == 1
        assert nats_server.connz()["num_connections"] == 1

        relay.resume()

        held = _recv_until(sock, b"PONG\r\n")
        assert held == b"MSG bed.pause 1 2\r\nhi\r\nPONG\r\n"


@pytest.mark.timeout(60)
def test_relay_pause_upstream_keeps_client_bytes_from_the_server(
    nats_server: NatsServer, relay_factory: RelayFactory
) -> None:
    relay = relay_factory(nats_server.port)
    with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as sock:
        _recv_until(sock, b"\r\n")
        sock.sendall(b'CONNECT {"verbose":false}\r\nPING\r\n')
        _recv_until(sock, b"PONG\r\n")
        in_msgs = nats_server.varz()["in_msgs"]

        with relay.paused("upstream"):
            sock.sendall(b"PUB bed.up 2\r\nhi\r\nPING\r\n")
            assert_stays(
                lambda: nats_server.varz()["in_msgs"] == in_msgs,
                duration=0.5,
                message="server must not get the message while paused",
            )
            _assert_nothing_to_read(sock)

        assert _recv_until(sock, b"PONG\r\n") == b"PONG\r\n"
        assert nats_server.varz()["in_msgs"] == in_msgs + 1


@pytest.mark.timeout(60)
def test_relay_pause_with_drop_discards_bytes(
    nats_server: NatsServer, relay_factory: RelayFactory
) -> None:
    relay = relay_factory(nats_server.port)
    with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as sock:
        _recv_until(sock, b"\r\n")
        sock.sendall(b'CONNECT {"verbose":false}\r\nPING\r\n')
        _recv_until(sock, b"PONG\r\n")

        relay.pause("downstream", drop=True)
        sock.sendall(b"PING\r\n")
        wait_until(
            lambda: relay.bytes_dropped == (0, len(b"PONG\r\n")),
            timeout=5,
            message="the PONG dropped",
        )
        relay.resume()
        sock.sendall(b"PING\r\n")

        assert _recv_until(sock, b"PONG\r\n") == b"PONG\r\n"


@pytest.mark.timeout(60)
def test_relay_cut_resets_connections_and_accepts_new_ones(
    nats_server: NatsServer, relay_factory: RelayFactory
) -> None:
    relay = relay_factory(nats_server.port)
    with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as sock:
        _recv_until(sock, b"\r\n")
        relay.cut()
        sock.settimeout(5)
        try:
            leftover = sock.recv(1024)
        except ConnectionResetError:
            leftover = b""
        assert leftover == b""
    assert relay.connection_count == 0
    wait_until(
        lambda: nats_server.connz()["num_connections"] == 0,
        timeout=5,
        message="server saw the connection go",
    )

    with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as again:
        assert _recv_until(again, b"\r\n").startswith(b"INFO ")


@pytest.mark.timeout(60)
def test_official_client_works_through_the_relay(
    stan_server: StanServer,
    relay_factory: RelayFactory,
    process_registry: ProcessRegistry,
    tmp_path: Path,
) -> None:
    relay = relay_factory(stan_server.port)
    channel = _channel("relayed")
    gopeer_pub(
        relay.url_for(), stan_server.cluster_id, channel, [b"via relay"], tmp_path
    )
    with GoPeerSubProcess(
        relay.url_for(),
        stan_server.cluster_id,
        channel,
        count=1,
        registry=process_registry,
    ) as sub:
        assert sub.wait_exit(timeout=30) == 0
    assert [m.data for m in sub.messages()] == [b"via relay"]
    assert relay.bytes_relayed[1] > len(b"via relay")


@pytest.mark.timeout(60)
def test_second_nats_server_routes_to_the_first(
    nats_server_factory: NatsServerFactory,
) -> None:
    first = nats_server_factory(cluster=True)
    second = nats_server_factory(routes=[first.cluster_url])

    wait_until(
        lambda: (
            first.routez()["num_routes"] >= 1 and second.routez()["num_routes"] >= 1
        ),
        timeout=10,
        message="route established",
    )


@pytest.mark.timeout(30)
def test_nats_server_config_text_enforces_auth(
    nats_server_factory: NatsServerFactory,
) -> None:
    server = nats_server_factory(
        config_text='authorization { user: "a", password: "b" }\n'
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        _recv_until(sock, b"\r\n")
        sock.sendall(b'CONNECT {"verbose":false}\r\nPING\r\n')
        assert b"-ERR 'Authorization Violation'" in _recv_until(sock, b"Violation")


@pytest.mark.timeout(10)
def test_gogo_text_round_trips_all_256_byte_values() -> None:
    every_byte = bytes(range(256))
    escaped = escape_bytes(every_byte)
    assert escaped.isascii()
    assert unescape_bytes(escaped) == every_byte
    for value in range(256):
        assert unescape_bytes(escape_bytes(bytes([value]))) == bytes([value])


@pytest.mark.timeout(30)
@given(st.binary(max_size=300))
def test_gogo_text_round_trips_any_bytes(data: bytes) -> None:
    assert unescape_bytes(escape_bytes(data)) == data


@pytest.mark.timeout(10)
def test_stan_sub_line_as_go_prints_it() -> None:
    line = (
        '[#1] Received: sequence:7 subject:"a.b" '
        'data:"a\\tb\\"c\\\\d\\001\\303\\251\\\'\\x41" '
        "timestamp:1796322548516321710 redelivered:true "
    )
    message = parse_stan_sub_line(line)
    assert message is not None
    assert message.sequence == 7
    assert message.subject == "a.b"
    assert message.data == b"a\tb\"c\\d\x01\xc3\xa9'A"
    assert message.redelivered
    assert parse_stan_sub_line("Listening on [a.b], clientID=[x]") is None
    with pytest.raises(TextFormatError):
        unescape_bytes('"unterminated\\"')
    with pytest.raises(TextFormatError):
        unescape_bytes('"bad \\q escape"')


@pytest.mark.timeout(10)
def test_wait_until_reports_the_last_value_and_error() -> None:
    values = iter([0, 0, 0])
    with pytest.raises(AssertionError, match=r"counter at 3 .* last value: 0"):
        wait_until(lambda: next(values, 0), timeout=0.1, message="counter at 3")

    def broken() -> bool:
        raise ConnectionRefusedError("nobody home")

    with pytest.raises(AssertionError, match="nobody home") as failure:
        wait_until(broken, timeout=0.1, message="server up")
    assert isinstance(failure.value.__cause__, ConnectionRefusedError)
