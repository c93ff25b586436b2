"""One NATS Streaming session: from the connect request to its end.

A session owns one :class:`~stan_client.nats.NatsConnection` and everything
tied to it: the subjects the server handed out, the subscriptions, the
publishes waiting for their PubAck, the client pings and the delivery
thread. It is used once; :class:`~stan_client.client.StanClient` makes a new
one to reconnect.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from stan_client.errors import (
    ClientClosedError,
    ClientIdInUseError,
    ClientReplacedError,
    CloseError,
    ClusterNotFoundError,
    ConnectionLostError,
    ConnectRefusedError,
    MaxPingsError,
    NatsConnectionError,
    NoRespondersError,
    ProtocolError,
    PublishAckTimeoutError,
    PublishError,
    RequestTimeoutError,
    StanError,
    SubscribeError,
)
from stan_client.frames import decode
from stan_client.messages import Deliverer, MessageCallback, Msg
from stan_client.nats import NatsConnection, TlsOptions
from stan_client.protocol_pb2 import (
    CloseRequest,
    CloseResponse,
    ConnectRequest,
    ConnectResponse,
    MsgProto,
    Ping,
    PingResponse,
    PubAck,
    PubMsg,
    SubscriptionRequest,
    SubscriptionResponse,
    UnsubscribeRequest,
)
from stan_client.protocol_pb2 import StartPosition as WireStartPosition
from stan_client.subscription import StartPosition, Subscription

logger = logging.getLogger(__name__)

AckHandler = Callable[[str, StanError | None], None]
"""Called as ``handler(guid, error)`` once per publish; ``error`` is None on success."""

PROTOCOL_VERSION = 1
DISCOVER_PREFIX = "_STAN.discover"
_DUPLICATE_CLIENT_ERROR = "clientID already registered"
# How often the PubAck deadlines are checked, at most.
_ACK_SWEEP_SECONDS = 0.25

_WIRE_START = {
    StartPosition.NEW_ONLY: WireStartPosition.NewOnly,
    StartPosition.LAST_RECEIVED: WireStartPosition.LastReceived,
    StartPosition.FIRST: WireStartPosition.First,
    StartPosition.SEQUENCE: WireStartPosition.SequenceStart,
    StartPosition.TIME: WireStartPosition.TimeDeltaStart,
}


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """Everything needed to open a session; see :class:`StanClient`."""

    url: str
    cluster_id: str
    client_id: str
    connect_timeout: float = 5.0
    ping_interval: float = 5.0
    ping_max_out: int = 3
    pub_ack_wait: float = 30.0
    max_pub_acks_inflight: int = 16384
    tls: TlsOptions | None = None
    name: str = ""


class _PendingPublish:
    __slots__ = ("channel", "deadline", "handler")

    def __init__(self, channel: str, handler: AckHandler | None, deadline: float):
        self.channel = channel
        self.handler = handler
        self.deadline = deadline


class Session:
    """One connected NATS Streaming session."""

    def __init__(
        self,
        options: ClientOptions,
        on_lost: Callable[[Session, ConnectionLostError], None],
    ) -> None:
        self.options = options
        self.client_id = options.client_id
        self.request_timeout = options.connect_timeout
        self.responses = ConnectResponse()
        self.lost_error: ConnectionLostError | None = None
        self._on_lost = on_lost
        self._open = False
        self._ended = threading.Event()
        # Set once the end is complete: publishes handed back and, after a
        # loss, the owner told. A new session waits for it (see wait_finished).
        self._finished = threading.Event()
        self._lock = threading.Lock()
        self._subscriptions: dict[int, Subscription] = {}
        self._pending: dict[str, _PendingPublish] = {}
        # The window of publishes in flight is the size of _pending: waiting
        # for room costs nothing extra on the lock that guards it anyway.
        self._room = threading.Condition(self._lock)
        self._window = options.max_pub_acks_inflight
        self._pings_out = 0
        self._deliverer: Deliverer | None = None
        self.nats = NatsConnection(
            options.url,
            name=options.client_id,
            thread_label=options.name,
            connect_timeout=options.connect_timeout,
            # The NATS-level PINGs watch the TCP link as the streaming
            # pings watch the session: same budget, whichever fails first.
            ping_interval=options.ping_interval,
            max_pings_out=options.ping_max_out,
            tls=options.tls,
            on_lost=self._nats_lost,
        )
        self._conn_id = self.nats.tokens.next().encode()
        self._ack_inbox = "_STAN.acks." + self.nats.tokens.next()
        self._ping_inbox = self.nats.tokens.inbox()
        self._ping_frame = Ping(connID=self._conn_id).SerializeToString()

    @property
    def is_open(self) -> bool:
        """True from a successful :meth:`open` until the session ends."""
        return self._open and not self._ended.is_set()

    # --- opening ----------------------------------------------------------

    def open(self, previous_close_subject: str = "") -> None:
        """Connect to NATS and register this client with the cluster.

        :param previous_close_subject: the close subject of an earlier
            session of the same client that was lost; it is closed first so
            that the server does not see a duplicate client ID.
        """
        self.nats.connect()
        try:
            if previous_close_subject:
                self._close_previous(previous_close_subject)
            heartbeat_inbox = self.nats.tokens.inbox()
            self.nats.subscribe(heartbeat_inbox, self._on_heartbeat)
            self.nats.subscribe(self._ack_inbox, self._on_pub_ack)
            self.nats.subscribe(self._ping_inbox, self._on_ping_response)
            self.responses = self._discover(heartbeat_inbox)
        except BaseException:
            self.nats.close()
            raise

        self._deliverer = Deliverer(
            f"stan-deliver-{self.options.name or self.client_id}"
        )
        self._open = True
        if self.responses.protocol >= PROTOCOL_VERSION and self.responses.pingRequests:
            self.nats.add_periodic(self.options.ping_interval, self._send_ping)
        self.nats.add_periodic(
            min(_ACK_SWEEP_SECONDS, self.options.pub_ack_wait), self._expire_publishes
        )

    def _discover(self, heartbeat_inbox: str) -> ConnectResponse:
        options = self.options
        request = ConnectRequest(
            clientID=options.client_id,
            heartbeatInbox=heartbeat_inbox,
            protocol=PROTOCOL_VERSION,
            connID=self._conn_id,
            # The server takes whole seconds; it only echoes them back.
            pingInterval=max(1, math.ceil(options.ping_interval)),
            pingMaxOut=options.ping_max_out,
        )
        subject = f"{DISCOVER_PREFIX}.{options.cluster_id}"
        try:
            reply = self.nats.request(
                subject, request.SerializeToString(), options.connect_timeout
            )
        except NoRespondersError as err:
            raise ClusterNotFoundError(
                f"nothing listens on {subject} at {self.nats.safe_url}: the cluster "
                f"ID {options.cluster_id!r} may be wrong, or no NATS Streaming "
                "server runs there",
                cluster_id=options.cluster_id,
                client_id=options.client_id,
            ) from err
        except RequestTimeoutError as err:
            raise ClusterNotFoundError(
                f"no answer on {subject} at {self.nats.safe_url} within "
                f"{options.connect_timeout:g} s: the cluster ID "
                f"{options.cluster_id!r} may be wrong, or the NATS Streaming "
                "server is down, frozen or overloaded",
                cluster_id=options.cluster_id,
                client_id=options.client_id,
            ) from err
        response = decode(ConnectResponse, reply)
        if not response.error and not (
            response.pubPrefix and response.subRequests and response.closeRequests
        ):
            # An empty reply decodes cleanly, as a response with no subjects.
            raise ProtocolError(
                f"the answer on {subject} at {self.nats.safe_url} names no "
                "publish, subscribe or close subjects: not a NATS Streaming server"
            )
        if response.error:
            error_type = (
                ClientIdInUseError
                if _DUPLICATE_CLIENT_ERROR in response.error
                else ConnectRefusedError
            )
            hint = (
                ": another running client uses this client ID (a second process "
                "with the same client_id?)"
                if error_type is ClientIdInUseError
                else ""
            )
            raise error_type(
                f"cluster {options.cluster_id!r} refused client ID "
                f"{options.client_id!r}: {response.error}{hint}",
                cluster_id=options.cluster_id,
                client_id=options.client_id,
            )
        return response

    def _close_previous(self, close_subject: str) -> None:
        request = CloseRequest(clientID=self.client_id).SerializeToString()
        try:
            reply = self.nats.request(close_subject, request, self.request_timeout)
            error = decode(CloseResponse, reply).error
        except (RequestTimeoutError, NoRespondersError, ProtocolError) as err:
            logger.debug("closing the previous session failed: %s", err)
            return
        logger.debug("closed the previous session: %s", error or "ok")

    # --- publishing -------------------------------------------------------

    def publish_async(
        self, channel: str, data: bytes, handler: AckHandler | None
    ) -> str:
        """Send one message; ``handler`` learns the outcome. Returns the guid.

        Blocks while ``max_pub_acks_inflight`` publishes await their PubAck.
        """
        guid = self.nats.tokens.next()
        frame = PubMsg(
            clientID=self.client_id,
            guid=guid,
            subject=channel,
            data=data,
            connID=self._conn_id,
        ).SerializeToString()
        room_deadline = time.monotonic() + self.options.pub_ack_wait
        with self._lock:
            while len(self._pending) >= self._window and self.is_open:
                remaining = room_deadline - time.monotonic()
                if remaining <= 0:
                    raise PublishAckTimeoutError(
                        f"no room to publish to {channel!r}: {self._window} "
                        "publishes awaited their PubAck for "
                        f"{self.options.pub_ack_wait:g} s",
                        guid="",
                        channel=channel,
                    )
                self._room.wait(remaining)
            if not self.is_open:
                raise self._unusable()
            # The PubAck wait starts now, not before the wait for room.
            ack_deadline = time.monotonic() + self.options.pub_ack_wait
            self._pending[guid] = _PendingPublish(channel, handler, ack_deadline)
        try:
            self.nats.publish(
                f"{self.responses.pubPrefix}.{channel}", frame, self._ack_inbox
            )
        except StanError:
            if self._take_pending(guid) is None:
                # The session ended meanwhile and told the handler already:
                # raising too would report this one failure twice.
                return guid
            raise
        return guid

    @property
    def publishes_in_flight(self) -> int:
        """Publishes sent whose PubAck has not arrived yet."""
        return len(self._pending)

    def _take_pending(self, guid: str) -> _PendingPublish | None:
        with self._lock:
            pending = self._pending.pop(guid, None)
            if pending is not None:
                self._room.notify()
            return pending

    def _on_pub_ack(self, subject: str, reply: str, payload: bytes) -> None:
        # Per message: protobuf's own error is enough here, since the I/O
        # thread logs a handler's failure and goes on.
        ack = PubAck.FromString(payload)
        pending = self._take_pending(ack.guid)
        if pending is None:
            return  # already timed out, or not ours
        error = None
        if ack.error:
            error = PublishError(
                f"the server refused the message to {pending.channel!r}: {ack.error}",
                guid=ack.guid,
                channel=pending.channel,
            )
        _call_ack_handler(pending.handler, ack.guid, error)

    def _expire_publishes(self) -> None:
        now = time.monotonic()
        expired: list[tuple[str, _PendingPublish]] = []
        with self._lock:
            # Deadlines grow with insertion order: stop at the first live one.
            for guid, pending in self._pending.items():
                if pending.deadline > now:
                    break
                expired.append((guid, pending))
            for guid, _pending in expired:
                del self._pending[guid]
            if expired:
                self._room.notify_all()
        for guid, pending in expired:
            error = PublishAckTimeoutError(
                f"no PubAck for the message to {pending.channel!r} within "
                f"{self.options.pub_ack_wait:g} s",
                guid=guid,
                channel=pending.channel,
            )
            _call_ack_handler(pending.handler, guid, error)

    # --- subscribing ------------------------------------------------------

    def subscribe(
        self,
        channel: str,
        callback: MessageCallback,
        *,
        durable_name: str | None,
        queue_group: str | None,
        max_in_flight: int,
        ack_wait: int,
        start_position: StartPosition,
        start_sequence: int | None,
        start_time: datetime | None,
        manual_acks: bool,
    ) -> Subscription:
        """Create a subscription; see :meth:`StanClient.subscribe`."""
        if not self.is_open:
            raise self._unusable()
        subscription = Subscription(
            self,
            channel=channel,
            callback=callback,
            inbox=self.nats.tokens.inbox(),
            durable_name=durable_name,
            queue_group=queue_group,
            max_in_flight=max_in_flight,
            ack_wait=ack_wait,
            manual_acks=manual_acks,
        )
        request = SubscriptionRequest(
            clientID=self.client_id,
            subject=channel,
            qGroup=queue_group or "",
            inbox=subscription.inbox,
            maxInFlight=max_in_flight,
            ackWaitInSecs=ack_wait,
            durableName=durable_name or "",
            startPosition=_WIRE_START[start_position],
        )
        if start_position is StartPosition.SEQUENCE:
            request.startSequence = start_sequence or 0
        elif start_position is StartPosition.TIME:
            assert start_time is not None
            delta = datetime.now(UTC) - start_time
            request.startTimeDelta = max(0, int(delta.total_seconds() * 1e9))

        subscription.sid = self.nats.subscribe(
            subscription.inbox, self._message_handler(subscription)
        )
        with self._lock:
            self._subscriptions[subscription.sid] = subscription
        try:
            reply = self.nats.request(
                self.responses.subRequests,
                request.SerializeToString(),
                self.request_timeout,
            )
        except (RequestTimeoutError, NoRespondersError) as err:
            self._abandon_subscription(subscription)
            raise SubscribeError(
                f"no answer to the subscription request for {channel!r} within "
                f"{self.request_timeout:g} s",
                channel=channel,
            ) from err
        except NatsConnectionError:
            self.forget(subscription)
            raise
        try:
            response = decode(SubscriptionResponse, reply)
        except ProtocolError as err:
            self._abandon_subscription(subscription)
            raise SubscribeError(
                f"the answer to the subscription request for {channel!r} is "
                f"not a NATS Streaming one: {err}",
                channel=channel,
            ) from err
        if response.error:
            self.forget(subscription)
            raise SubscribeError(
                f"the server refused the subscription to {channel!r}: {response.error}",
                channel=channel,
            )
        subscription.activate(response.ackInbox)
        return subscription

    def _message_handler(
        self, subscription: Subscription
    ) -> Callable[[str, str, bytes], None]:
        def on_message(subject: str, reply: str, payload: bytes) -> None:
            proto = MsgProto.FromString(payload)  # per message, as for PubAck
            deliverer = self._deliverer
            if deliverer is None:
                return
            deliverer.put(
                Msg(
                    subscription,
                    proto.sequence,
                    proto.data,
                    proto.timestamp,
                    proto.redelivered,
                    proto.redeliveryCount,
                )
            )

        return on_message

    def _abandon_subscription(self, subscription: Subscription) -> None:
        """Best effort after a subscription request timed out.

        The server may have created the subscription after all; without
        this it would live on, unseen, and hold messages back. The request
        carries the inbox, as the server falls back to it when it has no
        ack inbox to look the subscription up by.
        """
        self.forget(subscription)
        request = UnsubscribeRequest(
            clientID=self.client_id,
            subject=subscription.channel,
            inbox=subscription.inbox,
        )
        try:
            self.nats.publish(
                self.responses.subCloseRequests, request.SerializeToString()
            )
        except NatsConnectionError:
            pass

    def forget(self, subscription: Subscription) -> None:
        """Drop a subscription from this session (server side is done)."""
        subscription.deactivate()
        with self._lock:
            self._subscriptions.pop(subscription.sid, None)
        try:
            self.nats.unsubscribe(subscription.sid)
        except NatsConnectionError:
            pass

    # --- liveness ---------------------------------------------------------

    def _on_heartbeat(self, subject: str, reply: str, payload: bytes) -> None:
        if reply:
            self.nats.publish(reply, b"")

    def _send_ping(self) -> None:
        if self._pings_out >= self.options.ping_max_out:
            raise MaxPingsError(
                f"the streaming server did not answer {self._pings_out} client "
                f"pings sent {self.options.ping_interval:g} s apart"
            )
        self._pings_out += 1
        self.nats.publish(
            self.responses.pingRequests, self._ping_frame, self._ping_inbox
        )

    def _on_ping_response(self, subject: str, reply: str, payload: bytes) -> None:
        self._pings_out = 0
        error = decode(PingResponse, payload).error
        if error:
            self.nats.abort(ClientReplacedError(error))

    # --- ending -----------------------------------------------------------

    def close(self) -> None:
        """End the session: tell the server, then close the connection.

        Durable subscriptions keep their position. Publishes still waiting
        for a PubAck fail with :class:`ClientClosedError`.

        :raises CloseError: the server did not confirm; the session is
            closed locally all the same.
        """
        self._open = False
        error: CloseError | None = None
        if not self._ended.is_set():
            try:
                self._request_close()
            except CloseError as err:
                error = err
        self._end(ClientClosedError("the client was closed"))
        self.nats.close()
        self._finished.set()
        if error is not None:
            raise error

    def _request_close(self) -> None:
        request = CloseRequest(clientID=self.client_id).SerializeToString()
        try:
            reply = self.nats.request(
                self.responses.closeRequests, request, self.request_timeout
            )
            response = decode(CloseResponse, reply)
        except StanError as err:
            raise CloseError(
                f"close request for {self.client_id!r} failed: {err}"
            ) from err
        if response.error:
            raise CloseError(
                f"the server refused to close {self.client_id!r}: {response.error}"
            )

    def _nats_lost(self, error: NatsConnectionError) -> None:
        cause = error.__cause__
        if isinstance(cause, ConnectionLostError):
            lost = cause
        else:
            lost = ConnectionLostError(str(error))
            lost.__cause__ = error
        self.lost_error = lost
        was_open = self._open
        self._open = False
        try:
            self._end(lost)
            if was_open:
                self._on_lost(self, lost)
        finally:
            self._finished.set()

    def wait_finished(self, timeout: float) -> bool:
        """Wait until the end of this session is complete; False on timeout.

        After a loss, the publishes still awaiting their PubAck are handed
        back and the owner is told, on the I/O thread, a moment after
        :attr:`is_open` turned False. The next session waits for that, so
        that the report of this loss can never arrive after it and seem to be
        about it.
        """
        return self._finished.wait(timeout)

    def _end(self, error: StanError) -> None:
        """Release everything; runs once, on close or loss."""
        with self._lock:
            if self._ended.is_set():
                return
            self._ended.set()
        if self._deliverer is not None:
            # Never join here: this may run on the I/O thread, and a callback
            # may be blocked waiting for something this thread would do.
            self._deliverer.stop(timeout=None)
        with self._lock:
            subscriptions = list(self._subscriptions.values())
            self._subscriptions.clear()
            pending = list(self._pending.items())
            self._pending.clear()
            self._room.notify_all()
        for subscription in subscriptions:
            subscription.deactivate()
        for guid, publish in pending:
            _call_ack_handler(publish.handler, guid, error)

    def join_delivery(self, timeout: float) -> None:
        """Wait for the delivery thread to finish its current callback."""
        if self._deliverer is not None:
            self._deliverer.stop(timeout=timeout)

    def _unusable(self) -> StanError:
        if self.lost_error is not None:
            return self.lost_error
        return ClientClosedError("the session is closed")


def _call_ack_handler(
    handler: AckHandler | None, guid: str, error: StanError | None
) -> None:
    if handler is None:
        return
    try:
        handler(guid, error)
    except Exception:  # a handler bug must not break acking
        logger.exception("publish ack handler failed for guid %s", guid)
