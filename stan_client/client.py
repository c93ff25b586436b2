"""The public NATS Streaming client."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from stan_client.errors import (
    ClientClosedError,
    CloseError,
    ConnectionLostError,
    PublishAckTimeoutError,
    StanError,
)
from stan_client.messages import MessageCallback
from stan_client.nats import TlsOptions
from stan_client.session import AckHandler, ClientOptions, Session
from stan_client.subscription import StartPosition, Subscription
from stan_client.urls import normalize_url, redact_url

logger = logging.getLogger(__name__)

ConnectionLostCallback = Callable[["StanClient", ConnectionLostError], None]


class StanClient:
    """A synchronous client of one NATS Streaming cluster.

    The client is a reusable handle; each :meth:`connect` opens a new
    session, which ends with :meth:`close` or when the connection is lost.

    Every method may be called from any thread. Subscription callbacks run
    on one delivery thread per session, in the order the server sent the
    messages; ack handlers of :meth:`publish_async` and the connection-lost
    callback run on the connection's I/O thread and must return quickly
    (and must not call :meth:`connect`, which waits for them to finish).

    The client does not reconnect by itself: when the connection is lost,
    ``on_connection_lost`` is called once, and the owner decides when to call
    :meth:`connect` again (with its own backoff). The new session first
    closes the lost one on the server, so the same client ID is accepted at
    once, and the owner subscribes again; durable subscriptions resume where
    they were.

    :param url: ``nats://[user:password@]host[:port]`` or ``tls://...``.
    :param cluster_id: the streaming cluster ID (``-cid`` of the server).
    :param client_id: unique per live client: letters, digits, ``-``, ``_``.
    :param connect_timeout: seconds for the NATS handshake, and for each
        request to the streaming server (connect, subscribe, close).
    :param ping_interval: seconds between client pings to the server.
    :param ping_max_out: unanswered pings after which the connection is
        declared lost; detection takes at most about
        ``ping_interval * (ping_max_out + 1)`` seconds.
    :param pub_ack_wait: seconds to wait for each PubAck.
    :param max_pub_acks_inflight: publishes that may await a PubAck at once;
        :meth:`publish_async` blocks beyond that.
    :param tls: certificates for a ``tls://`` URL.
    :param on_connection_lost: called as ``callback(client, error)``.
    :param name: names this client's threads (default: the client ID), so
        that several clients in one process can be told apart; the server
        still sees the client ID as the connection's name.
    """

    def __init__(
        self,
        url: str,
        cluster_id: str,
        client_id: str,
        *,
        connect_timeout: float = 5.0,
        ping_interval: float = 5.0,
        ping_max_out: int = 3,
        pub_ack_wait: float = 30.0,
        max_pub_acks_inflight: int = 16384,
        tls: TlsOptions | None = None,
        on_connection_lost: ConnectionLostCallback | None = None,
        name: str = "",
    ) -> None:
        _check_positive("connect_timeout", connect_timeout)
        _check_positive("ping_interval", ping_interval)
        _check_positive("pub_ack_wait", pub_ack_wait)
        if ping_max_out < 1:
            raise ValueError(f"ping_max_out must be >= 1, got {ping_max_out!r}")
        if max_pub_acks_inflight < 1:
            raise ValueError(
                f"max_pub_acks_inflight must be >= 1, got {max_pub_acks_inflight!r}"
            )
        if not cluster_id:
            raise ValueError("cluster_id must not be empty")
        if not client_id:
            raise ValueError("client_id must not be empty")
        self.options = ClientOptions(
            url=normalize_url(url),
            cluster_id=cluster_id,
            client_id=client_id,
            connect_timeout=connect_timeout,
            ping_interval=ping_interval,
            ping_max_out=ping_max_out,
            pub_ack_wait=pub_ack_wait,
            max_pub_acks_inflight=max_pub_acks_inflight,
            tls=tls,
            name=name,
        )
        self._on_connection_lost = on_connection_lost
        self._lock = threading.Lock()
        self._session: Session | None = None
        # The close subject of the last session; a reconnect closes it first.
        self._previous_close_subject = ""

    # --- lifecycle --------------------------------------------------------

    def connect(self) -> None:
        """Open a session; also the way to reconnect after a lost connection.

        :raises ServerUnreachableError: no NATS server at the URL.
        :raises ClusterNotFoundError: no streaming server answered for the
            cluster ID; the message says the ID may be wrong.
        :raises ClientIdInUseError: a live client holds the same client ID.
        :raises ProtocolError: what answered is not a NATS Streaming server.
        :raises ConnectionLostError: the new session was lost before this
            returned (``on_connection_lost`` may hear of it too).
        :raises RuntimeError: called on the lost session's I/O thread (from
            an ack handler or the connection-lost callback).
        """
        with self._lock:
            previous_session = self._session
            if previous_session is not None and previous_session.is_open:
                raise StanError(f"client {self.client_id!r} is already connected")
            session = Session(self.options, self._session_lost)
            previous = self._previous_close_subject
        if previous_session is not None:
            if previous_session.nats.on_io_thread():
                raise RuntimeError("connect() would deadlock on the I/O thread")
            # A lost session is told to the owner before the next one opens.
            if not previous_session.wait_finished(self.options.connect_timeout):
                logger.warning(
                    "the connection-lost callback of client %s still runs after "
                    "%g s; connecting anyway",
                    self.client_id,
                    self.options.connect_timeout,
                )
        session.open(previous)
        with self._lock:
            self._session = session
            self._previous_close_subject = session.responses.closeRequests
            # Lost while opening: _session_lost, finding another session
            # current, may have dropped the report. Never return a dead one.
            lost = session.lost_error
        if lost is not None:
            raise lost
        logger.debug(
            "connected to NATS Streaming cluster %s at %s as %s",
            self.cluster_id,
            self.safe_url,
            self.client_id,
            extra={
                "cluster_id": self.cluster_id,
                "url": self.safe_url,
                "client_id": self.client_id,
            },
        )

    def close(self) -> None:
        """Close the session; durable subscriptions keep their position.

        Publishes still awaiting their PubAck fail with
        :class:`ClientClosedError`. Waits (bounded) for a running
        subscription callback to return. Also the way to release a lost
        session. The client may :meth:`connect` again afterwards.

        :raises ClientClosedError: the client is not connected (never was,
            or was closed already).
        :raises CloseError: the server did not confirm; closed locally anyway.
        """
        with self._lock:
            session = self._session
            if session is None:
                raise ClientClosedError("the client is not connected")
            self._session = None
            if session.lost_error is None:
                # Closed properly: the next connect() has nothing to clean up.
                self._previous_close_subject = ""
        try:
            session.close()
        except CloseError:
            logger.warning(
                "the server did not confirm closing client %s", self.client_id
            )
            raise
        finally:
            session.join_delivery(timeout=self.options.connect_timeout)

    def flush(self, timeout: float) -> None:
        """Wait until the NATS server has received everything sent so far.

        Acks are sent without waiting; flush before closing to make sure
        they left this process.

        :raises StaleConnectionError: no answer within ``timeout`` seconds.
        :raises ClientClosedError: not connected.
        """
        self._current_session().nats.flush(timeout)

    def __enter__(self) -> StanClient:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._session is not None:
            try:
                self.close()
            except CloseError:
                pass  # already logged; leaving the block must not fail on it

    @property
    def client_id(self) -> str:
        return self.options.client_id

    @property
    def cluster_id(self) -> str:
        return self.options.cluster_id

    @property
    def safe_url(self) -> str:
        """The server URL with any password hidden."""
        return redact_url(self.options.url)

    @property
    def is_connected(self) -> bool:
        """True while a session is open (not closed, not lost)."""
        session = self._session
        return session is not None and session.is_open

    @property
    def last_heard(self) -> float | None:
        """``time.monotonic()`` when the server last sent anything, or None.

        After a lost connection, this is when the outage really began: the
        loss itself is only noticed some pings later.
        """
        session = self._session
        return session.nats.last_received if session is not None else None

    @property
    def publishes_in_flight(self) -> int:
        """Publishes awaiting their PubAck in the current session."""
        session = self._session
        return session.publishes_in_flight if session is not None else 0

    # --- publishing -------------------------------------------------------

    def publish(self, channel: str, data: bytes, timeout: float | None = None) -> str:
        """Publish and wait for the server's PubAck; returns the guid.

        :param timeout: seconds to wait; default ``pub_ack_wait``.
        :raises PublishError: the server refused the message.
        :raises PublishAckTimeoutError: no PubAck in time.
        :raises ConnectionLostError: the connection ended meanwhile.
        """
        done = threading.Event()
        outcome: list[StanError | None] = []

        def on_ack(guid: str, error: StanError | None) -> None:
            outcome.append(error)
            done.set()

        guid = self.publish_async(channel, data, on_ack)
        wait = self.options.pub_ack_wait if timeout is None else timeout
        if not done.wait(wait):
            raise PublishAckTimeoutError(
                f"no PubAck for the message to {channel!r} within {wait:g} s",
                guid=guid,
                channel=channel,
            )
        error = outcome[0]
        if error is not None:
            raise error
        return guid

    def publish_async(
        self, channel: str, data: bytes, ack_handler: AckHandler | None = None
    ) -> str:
        """Publish without waiting for the PubAck; returns the guid.

        ``ack_handler(guid, error)`` is called exactly once: with ``None``
        after the PubAck, or with the error (refused, timed out, connection
        lost, client closed); when this raises instead, it is never called.
        Blocks while ``max_pub_acks_inflight`` publishes are in flight.

        :raises ClientClosedError: not connected.
        :raises ConnectionLostError: the connection was lost.
        :raises MaxPayloadError: ``data`` is too large for the server.
        """
        return self._current_session().publish_async(channel, data, ack_handler)

    # --- subscribing ------------------------------------------------------

    def subscribe(
        self,
        channel: str,
        callback: MessageCallback,
        *,
        durable_name: str | None = None,
        queue_group: str | None = None,
        max_in_flight: int = 1024,
        ack_wait: int = 30,
        start_position: StartPosition = StartPosition.NEW_ONLY,
        start_sequence: int | None = None,
        start_time: datetime | None = None,
        manual_acks: bool = False,
    ) -> Subscription:
        """Subscribe to a channel.

        :param callback: called with each :class:`Msg` on the delivery
            thread; it may block, which stops the flow once
            ``max_in_flight`` messages are unacknowledged.
        :param durable_name: keep the position on the server across
            restarts of this client (with the same client ID).
        :param queue_group: share the channel's messages with the other
            members of the group; with ``durable_name``, a durable group.
        :param ack_wait: whole seconds before the server redelivers an
            unacknowledged message.
        :param start_position: where a new subscription starts; an existing
            durable resumes instead. ``SEQUENCE`` needs ``start_sequence``,
            ``TIME`` needs an aware ``start_time``.
        :param manual_acks: if False, each message is acknowledged after its
            callback returns without raising.
        :raises SubscribeError: the server refused or did not answer.
        """
        _check_subscription_options(
            max_in_flight, ack_wait, start_position, start_sequence, start_time
        )
        return self._current_session().subscribe(
            channel,
            callback,
            durable_name=durable_name,
            queue_group=queue_group,
            max_in_flight=max_in_flight,
            ack_wait=ack_wait,
            start_position=start_position,
            start_sequence=start_sequence,
            start_time=start_time,
            manual_acks=manual_acks,
        )

    # --- internals --------------------------------------------------------

    def _current_session(self) -> Session:
        session = self._session
        if session is None:
            raise ClientClosedError("the client is not connected; call connect()")
        if session.lost_error is not None:
            raise session.lost_error
        return session

    def _session_lost(self, session: Session, error: ConnectionLostError) -> None:
        with self._lock:
            if session is not self._session:
                # Closed by the owner, or lost before connect() returned
                # (which raises it): the owner knows already.
                return
        # DEBUG only: the owner hears of it through on_connection_lost and
        # logs it with its own context (which source, what happens next).
        logger.debug(
            "lost the connection to NATS Streaming cluster %s at %s: %s",
            self.cluster_id,
            self.safe_url,
            error.reason,
            extra={
                "cluster_id": self.cluster_id,
                "url": self.safe_url,
                "client_id": self.client_id,
                "reason": error.reason,
            },
        )
        callback = self._on_connection_lost
        if callback is not None:
            try:
                callback(self, error)
            except Exception:  # the owner's bug must not hide the loss
                logger.exception("on_connection_lost callback failed")


def _check_positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def _check_subscription_options(
    max_in_flight: int,
    ack_wait: int,
    start_position: StartPosition,
    start_sequence: int | None,
    start_time: datetime | None,
) -> None:
    if not 1 <= max_in_flight <= 2**31 - 1:
        raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight!r}")
    if not isinstance(ack_wait, int) or ack_wait < 1:
        raise ValueError(f"ack_wait must be whole seconds >= 1, got {ack_wait!r}")
    if start_position is StartPosition.SEQUENCE and not start_sequence:
        raise ValueError("start_position SEQUENCE needs start_sequence >= 1")
    if start_position is StartPosition.TIME and (
        start_time is None or start_time.tzinfo is None
    ):
        raise ValueError("start_position TIME needs an aware datetime start_time")
