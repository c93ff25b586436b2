"""A subscription to one channel of a NATS Streaming session."""

from __future__ import annotations

import enum
import logging
import threading
from typing import TYPE_CHECKING

from stan_client.errors import (
    ClientClosedError,
    NatsConnectionError,
    NoRespondersError,
    ProtocolError,
    RequestTimeoutError,
    UnsubscribeError,
)
from stan_client.frames import decode
from stan_client.messages import MessageCallback, Msg
from stan_client.protocol_pb2 import Ack, SubscriptionResponse, UnsubscribeRequest

if TYPE_CHECKING:
    from stan_client.session import Session

logger = logging.getLogger(__name__)

# Field 2 (sequence) of an Ack, as a varint: (2 << 3) | 0.
_SEQUENCE_TAG = b"\x10"


def _varint(value: int) -> bytes:
    """Protobuf's base-128 varint encoding of a non-negative integer."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class StartPosition(enum.Enum):
    """Where a new subscription starts; a durable that exists resumes instead."""

    NEW_ONLY = "new_only"
    """Only messages published after the subscription was made."""
    LAST_RECEIVED = "last_received"
    """The last message stored in the channel, then everything after it."""
    FIRST = "first"
    """Everything the channel still holds."""
    SEQUENCE = "sequence"
    """From ``start_sequence`` on."""
    TIME = "time"
    """From the first message stored at or after ``start_time``."""


class Subscription:
    """One subscription: its inboxes, options and state.

    A subscription is active from the server's confirmation until it is
    unsubscribed or closed, or its session ends. Durable and queue-group
    subscriptions keep their position on the server after :meth:`close`
    (and after a lost connection); :meth:`unsubscribe` removes it.
    """

    def __init__(
        self,
        session: Session,
        *,
        channel: str,
        callback: MessageCallback,
        inbox: str,
        durable_name: str | None,
        queue_group: str | None,
        max_in_flight: int,
        ack_wait: int,
        manual_acks: bool,
    ) -> None:
        self.channel = channel
        self.inbox = inbox
        self.durable_name = durable_name
        self.queue_group = queue_group
        self.max_in_flight = max_in_flight
        self.ack_wait = ack_wait
        self.manual_acks = manual_acks
        self.ack_inbox = ""
        self.sid = 0
        self._session = session
        self._callback = callback
        self._active = False
        self._ack_prefix = Ack(subject=channel).SerializeToString()
        # Set once the server's answer is known (activate or deactivate).
        self._settled = threading.Event()

    @property
    def is_active(self) -> bool:
        """True while messages can arrive and acks can be sent."""
        return self._active and self._session.is_open

    def ack(self, sequence: int) -> None:
        """Acknowledge the message with this sequence number.

        :raises ClientClosedError: the subscription is no longer active.
        :raises NatsConnectionError: the connection is gone.
        """
        if not self._active:
            raise ClientClosedError(
                f"subscription to {self.channel!r} is closed; cannot ack {sequence}"
            )
        # An Ack is the channel (the same bytes every time) and the sequence.
        frame = self._ack_prefix + _SEQUENCE_TAG + _varint(sequence)
        self._session.nats.publish(self.ack_inbox, frame)

    def unsubscribe(self) -> None:
        """Remove the subscription on the server, durable position included.

        :raises UnsubscribeError: the server refused or did not answer.
        """
        self._end(self._session.responses.unsubRequests, "unsubscribe")

    def close(self) -> None:
        """Stop receiving but keep a durable's position on the server.

        :raises UnsubscribeError: the server refused or did not answer.
        """
        self._end(self._session.responses.subCloseRequests, "close")

    def activate(self, ack_inbox: str) -> None:
        """Called by the session once the server confirmed the subscription."""
        self.ack_inbox = ack_inbox
        self._active = True
        self._settled.set()

    def deactivate(self) -> None:
        """Called by the session when it ends: no more deliveries or acks."""
        self._active = False
        self._settled.set()

    def deliver(self, message: Msg) -> None:
        """Run the callback for one message; called by the delivery thread."""
        # The server starts sending as soon as it created the subscription,
        # so a message can get here before the thread that asked has read
        # the answer and activated it: wait for that instead of dropping it.
        if not self._settled.is_set():
            self._settled.wait(self._session.request_timeout)
        if not self.is_active:
            return
        try:
            self._callback(message)
        except Exception:  # one bad message must not stop delivery
            logger.exception(
                "callback for channel %s failed on sequence %d",
                self.channel,
                message.sequence,
                extra={"channel": self.channel, "sequence": message.sequence},
            )
            return
        if not self.manual_acks and self._active:
            try:
                self.ack(message.sequence)
            except (ClientClosedError, NatsConnectionError):
                pass  # the session ended meanwhile; the server redelivers

    def _end(self, request_subject: str, verb: str) -> None:
        if not self._active:
            raise ClientClosedError(f"subscription to {self.channel!r} is not active")
        self._active = False
        request = UnsubscribeRequest(
            clientID=self._session.client_id,
            subject=self.channel,
            inbox=self.ack_inbox,
            durableName=self.durable_name or "",
        )
        try:
            reply = self._session.nats.request(
                request_subject,
                request.SerializeToString(),
                self._session.request_timeout,
            )
            response = decode(SubscriptionResponse, reply)
        except (
            RequestTimeoutError,
            NoRespondersError,
            NatsConnectionError,
            ProtocolError,
        ) as err:
            raise UnsubscribeError(
                f"{verb} of the subscription to {self.channel!r} failed: {err}",
                channel=self.channel,
            ) from err
        finally:
            self._session.forget(self)
        if response.error:
            raise UnsubscribeError(
                f"the server refused to {verb} the subscription to "
                f"{self.channel!r}: {response.error}",
                channel=self.channel,
            )
