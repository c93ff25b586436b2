"""What travels from a source thread to the forwarding thread."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import Histogram


class Acknowledger(Protocol):
    """The source side of an item: told how its publish ended."""

    name: str
    #: Where the forwarder records this source's forward lag.
    lag_histogram: Histogram

    def acknowledge(self, item: ForwardItem) -> None:
        """The destination stored the item: ack the source message."""

    def reject(self, item: ForwardItem, reason: str, message: str) -> None:
        """The item can never be published: count it invalid and ack it."""


@dataclass(slots=True)
class ForwardItem:
    """One message to publish to the destination, and how to ack its origin.

    ``order`` is taken from one counter shared by all sources, so that items
    that must be published again after a lost destination go out in the
    order they first went out: per source channel, order is kept.
    """

    source: Acknowledger
    channel: str
    sequence: int
    payload: bytes
    destination_channel: str
    timestamp_ns: int
    order: int
    #: Hash of the source message's payload: with the key, tells this
    #: message from another one that reuses its sequence (a reset edge store).
    fingerprint: int
    dead_letter: bool = False
    #: Wall-clock time of the first publish attempt (0 before it).
    first_sent: float = 0.0
    #: ``time.monotonic()`` when the destination first refused this item or
    #: let its PubAck time out (0 while it never did).
    refused_since: float = 0.0
    #: The destination's last refusal of this item, for the log.
    last_refusal: str = ""

    @property
    def key(self) -> tuple[str, int]:
        """Identifies the source message within its source."""
        return (self.channel, self.sequence)


class OrderCounter:
    """Hands out increasing order numbers from any thread."""

    def __init__(self) -> None:
        # next() on itertools.count is atomic under the GIL.
        self._counter = itertools.count()

    def next(self) -> int:
        return next(self._counter)
