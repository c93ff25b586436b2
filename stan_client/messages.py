"""What a subscriber receives, and the in-order delivery of it."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stan_client.subscription import Subscription

logger = logging.getLogger(__name__)


class Msg:
    """One message delivered to a subscription.

    ``data`` is the payload exactly as published. ``timestamp`` is the time
    the server stored the message, in nanoseconds since the Unix epoch.
    """

    __slots__ = (
        "channel",
        "data",
        "redelivered",
        "redelivery_count",
        "sequence",
        "subscription",
        "timestamp",
    )

    def __init__(
        self,
        subscription: Subscription,
        sequence: int,
        data: bytes,
        timestamp: int,
        redelivered: bool,
        redelivery_count: int,
    ) -> None:
        self.subscription = subscription
        self.channel = subscription.channel
        self.sequence = sequence
        self.data = data
        self.timestamp = timestamp
        self.redelivered = redelivered
        self.redelivery_count = redelivery_count

    @property
    def time(self) -> datetime:
        """The server's timestamp as an aware datetime in UTC."""
        return datetime.fromtimestamp(self.timestamp / 1e9, tz=UTC)

    def ack(self) -> None:
        """Acknowledge this message on the subscription that received it.

        :raises StanError: the subscription or the connection is gone.
        """
        self.subscription.ack(self.sequence)

    def __repr__(self) -> str:
        return (
            f"Msg(channel={self.channel!r}, sequence={self.sequence}, "
            f"size={len(self.data)}, redelivered={self.redelivered})"
        )


MessageCallback = Callable[[Msg], None]


class Deliverer:
    """Runs subscription callbacks on one thread, in arrival order.

    The I/O thread must never wait for application code, so it only appends
    here. A callback may block (that is how a slow consumer applies
    backpressure): the server then stops sending once ``max_in_flight``
    messages are unacknowledged, which bounds this queue. Redeliveries of a
    message that is still waiting here are dropped, so a consumer stalled
    for longer than the ack wait does not make the queue grow either.
    """

    def __init__(self, name: str) -> None:
        self._condition = threading.Condition()
        self._messages: deque[Msg] = deque()
        self._waiting: set[tuple[Subscription, int]] = set()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, message: Msg) -> None:
        """Queue one message; called by the I/O thread."""
        key = (message.subscription, message.sequence)
        with self._condition:
            if self._stopped or key in self._waiting:
                return
            self._waiting.add(key)
            self._messages.append(message)
            if len(self._messages) == 1:
                # Only an empty queue can have the thread waiting on it.
                self._condition.notify()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Drop what is waiting and end the thread after its current callback.

        Joins the thread unless called from it (a callback closing its own
        client) or with ``timeout=None`` meaning "do not wait".
        """
        with self._condition:
            self._stopped = True
            self._messages.clear()
            self._waiting.clear()
            self._condition.notify()
        if timeout is not None and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning(
                    "delivery thread %s is still in a callback after %g s",
                    self._thread.name,
                    timeout,
                )

    @property
    def backlog(self) -> int:
        """Messages received but not yet handed to a callback."""
        return len(self._messages)

    def _run(self) -> None:
        while True:
            # Take everything that is waiting at once: one lock round trip
            # per burst instead of one per message.
            with self._condition:
                while not self._messages and not self._stopped:
                    self._condition.wait()
                if self._stopped:
                    return
                batch = self._messages
                self._messages = deque()
                self._waiting.clear()
            for message in batch:
                if self._stopped:
                    return
                message.subscription.deliver(message)
