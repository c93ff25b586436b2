"""TLS: tls:// URLs against a real server with certificates made for the test."""

import threading
from pathlib import Path

import pytest

from stan_client import Msg, StanClient, StartPosition, TlsError, TlsOptions
from tests.support.factories import StanServerFactory
from tests.support.pki import make_certificates
from tests.support.servers import StanServer
from tests.support.waiting import wait_until


@pytest.fixture
def certificates(tmp_path: Path) -> Path:
    """A CA and a server certificate for 127.0.0.1, signed by it."""
    return make_certificates(tmp_path / "pki")


@pytest.fixture
def tls_server(
    stan_server_factory: StanServerFactory, certificates: Path
) -> StanServer:
    tls_arguments = [
        "--tls",
        "--tlscert", str(certificates / "server.pem"),
        "--tlskey", str(certificates / "server.key"),
        # The streaming layer's own connection to its NATS server.
        "--tls_client_cacert", str(certificates / "ca.pem"),
    ]  # fmt: skip
    return stan_server_factory(cluster_id="secure", extra_args=tls_arguments)


def _tls_url(server: StanServer) -> str:
    return f"tls://127.0.0.1:{server.port}"


@pytest.mark.timeout(60)
def test_a_tls_session_publishes_and_receives_with_a_verified_server(
    tls_server: StanServer, certificates: Path
) -> None:
    options = TlsOptions(ca_file=str(certificates / "ca.pem"))
    received: list[bytes] = []
    lock = threading.Lock()

    def on_message(message: Msg) -> None:
        with lock:
            received.append(message.data)

    url = _tls_url(tls_server)
    with StanClient(url, "secure", "tls-client", tls=options) as client:
        payloads = [bytes([n]) * 2048 for n in range(50)]
        for payload in payloads:
            client.publish_async("secure.channel", payload)
        client.subscribe(
            "secure.channel", on_message, start_position=StartPosition.FIRST
        )
        wait_until(lambda: len(received) == 50, 15, message="50 messages over TLS")
    assert received == payloads


@pytest.mark.timeout(30)
def test_an_unverifiable_server_certificate_is_a_tls_error(
    tls_server: StanServer,
) -> None:
    client = StanClient(_tls_url(tls_server), "secure", "no-ca", connect_timeout=3)
    with pytest.raises(TlsError, match="TLS handshake"):
        client.connect()


@pytest.mark.timeout(30)
def test_insecure_skip_verify_connects_without_the_ca(tls_server: StanServer) -> None:
    options = TlsOptions(insecure_skip_verify=True)
    with StanClient(_tls_url(tls_server), "secure", "skip", tls=options) as client:
        client.publish("secure.channel", b"x")


@pytest.mark.timeout(30)
def test_a_plain_url_to_a_tls_server_says_tls_is_required(
    tls_server: StanServer,
) -> None:
    client = StanClient(tls_server.url, "secure", "plain", connect_timeout=3)
    with pytest.raises(TlsError, match="requires TLS"):
        client.connect()
