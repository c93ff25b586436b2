"""Exceptions raised by stan_client.

Every error derives from :class:`StanError`, so a caller can catch the whole
family at once. The leaves are named after their cause and carry the facts an
operator needs (cluster ID, subject, guid); where callers would naturally
expect a built-in type, the leaf also derives from it (``TimeoutError``,
``ValueError``).
"""

from __future__ import annotations


class StanError(Exception):
    """Root of every error raised by stan_client."""


class ProtocolError(StanError):
    """The peer sent something this client cannot understand."""


# --- The NATS layer -------------------------------------------------------


class NatsConnectionError(StanError, ConnectionError):
    """The NATS connection could not be made or could not be kept."""

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(message)
        self.url = url


class ServerUnreachableError(NatsConnectionError):
    """No NATS server accepted the TCP connection, or it never said hello."""


class AuthorizationError(NatsConnectionError):
    """The NATS server refused the credentials (or their absence)."""


class TlsError(NatsConnectionError):
    """The TLS handshake failed, or client and server disagree on TLS."""


class StaleConnectionError(NatsConnectionError):
    """The server stopped answering PINGs: the link is silently dead."""


class ConnectionClosedByServerError(NatsConnectionError):
    """The server closed the socket, possibly after sending an -ERR."""


class NoRespondersError(StanError):
    """A request reached a NATS server where nobody listens on its subject."""

    def __init__(self, subject: str) -> None:
        super().__init__(f"no responders on subject {subject!r}")
        self.subject = subject


class RequestTimeoutError(StanError, TimeoutError):
    """A NATS request got no reply in time."""

    def __init__(self, subject: str, timeout: float) -> None:
        super().__init__(f"no reply on subject {subject!r} within {timeout:g} s")
        self.subject = subject
        self.timeout = timeout


class MaxPayloadError(StanError, ValueError):
    """A message is larger than the server's max_payload allows."""

    def __init__(self, size: int, max_payload: int) -> None:
        super().__init__(
            f"message of {size} bytes exceeds the server's max_payload of "
            f"{max_payload} bytes"
        )
        self.size = size
        self.max_payload = max_payload


# --- The streaming layer --------------------------------------------------


class ConnectError(StanError):
    """The NATS Streaming session could not be opened."""

    def __init__(self, message: str, *, cluster_id: str, client_id: str) -> None:
        super().__init__(message)
        self.cluster_id = cluster_id
        self.client_id = client_id


class ClusterNotFoundError(ConnectError):
    """Nothing answered the discover request for this cluster ID.

    Either the cluster ID is wrong, or the streaming server behind the NATS
    URL is not running (or is frozen). The message says so, naming the ID.
    """


class ClientIdInUseError(ConnectError):
    """The server has a live client registered under the same client ID."""


class ConnectRefusedError(ConnectError):
    """The streaming server answered the connect request with an error."""


class ConnectionLostError(StanError):
    """The session ended without :meth:`StanClient.close` being called.

    The cause (a dead socket, missed pings, a replaced client) is chained as
    ``__cause__`` and also kept in :attr:`reason` for logging.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"connection lost: {reason}")
        self.reason = reason


class MaxPingsError(ConnectionLostError):
    """The streaming server did not answer ``ping_max_out`` client pings."""


class ClientReplacedError(ConnectionLostError):
    """The server says this client was replaced or is no longer registered."""


class ClientClosedError(StanError):
    """The client was closed (or never connected) and cannot be used."""


class PublishError(StanError):
    """The server refused a published message."""

    def __init__(self, message: str, *, guid: str, channel: str) -> None:
        super().__init__(message)
        self.guid = guid
        self.channel = channel


class PublishAckTimeoutError(PublishError, TimeoutError):
    """No PubAck arrived within the publish ack wait.

    The message may or may not have been stored by the server.
    """


class SubscribeError(StanError):
    """The server refused or did not answer a subscription request."""

    def __init__(self, message: str, *, channel: str) -> None:
        super().__init__(message)
        self.channel = channel


class UnsubscribeError(SubscribeError):
    """The server refused or did not answer an unsubscribe or close request."""


class CloseError(StanError):
    """The server did not confirm the close request.

    The client is closed locally anyway; the server will drop the session
    once its heartbeats to this client fail.
    """
