"""Which unconfirmed publishes did the destination store anyway?

When the destination's session is lost, publishes that got no PubAck may
still have been stored: a frozen server, for one, reads and stores what was
already in its socket when it wakes up. Publishing them all again would
duplicate those. So after reconnecting, the forwarder reads the recent tail
of each channel it has to republish to, and counts which payloads are
already there.

This is best effort, never a risk of loss: a payload counts as stored only
if the very same bytes are read back from the destination. If the check
cannot finish in time, what it found so far still holds, and the rest is
published again (duplicates possible, as without it).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from datetime import datetime

from stan_client import Msg, StanClient, StartPosition

logger = logging.getLogger(__name__)

# How long to wait for the last message of a channel before taking it to be
# empty. The server sends it right after the subscription is made.
_LAST_MESSAGE_WAIT = 1.0
# Read in large windows; nothing waits for these acks.
_READ_IN_FLIGHT = 8192


def stored_copies(
    client: StanClient,
    channel: str,
    wanted: Counter[bytes],
    since: datetime,
    timeout: float,
) -> Counter[bytes]:
    """How many copies of each wanted payload ``channel`` holds since ``since``.

    Never counts more copies of a payload than are wanted.

    :raises StanError: the destination refused or did not answer the
        subscriptions used to read.
    """
    last = _last_sequence(client, channel)
    found: Counter[bytes] = Counter()
    if last == 0:
        return found
    reached_end = threading.Event()
    lock = threading.Lock()

    def on_message(message: Msg) -> None:
        data = message.data
        with lock:
            if found[data] < wanted.get(data, 0):
                found[data] += 1
        if message.sequence >= last:
            reached_end.set()

    subscription = client.subscribe(
        channel,
        on_message,
        start_position=StartPosition.TIME,
        start_time=since,
        max_in_flight=_READ_IN_FLIGHT,
    )
    try:
        if not reached_end.wait(timeout):
            logger.warning(
                "reading back %s did not reach sequence %d within %g s; events not "
                "found are published again and may arrive twice",
                channel,
                last,
                timeout,
                extra={"channel": channel},
            )
    finally:
        subscription.unsubscribe()
    with lock:
        # A callback may still be running: hand out a copy.
        return Counter(found)


def _last_sequence(client: StanClient, channel: str) -> int:
    """The sequence of the channel's last message; 0 for an empty channel."""
    last: list[int] = []
    arrived = threading.Event()

    def on_message(message: Msg) -> None:
        last.append(message.sequence)
        arrived.set()

    subscription = client.subscribe(
        channel, on_message, start_position=StartPosition.LAST_RECEIVED
    )
    try:
        arrived.wait(_LAST_MESSAGE_WAIT)
    finally:
        subscription.unsubscribe()
    return max(last, default=0)
