"""The one thread that publishes to the central cluster.

It takes validated events from the bounded queue and publishes them with a
window of PubAcks in flight. A PubAck triggers the ack of the source
message. When the destination goes away, every publish without a PubAck is
kept and published again, in its original order, once the destination is
back; if it stays away longer than ``max_outage``, the forwarder gives up
and the process exits with status 1, leaving the unacknowledged messages
at the sources for the next run.
"""

from __future__ import annotations

import heapq
import logging
import queue
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime

from event_aggregator.backoff import Backoff
from event_aggregator.config import DestinationConfig
from event_aggregator.connections import client_for
from event_aggregator.metrics import Metrics
from event_aggregator.pipeline import ForwardItem
from event_aggregator.reconcile import stored_copies
from stan_client import (
    ConnectionLostError,
    MaxPayloadError,
    PublishError,
    StanClient,
    StanError,
)

logger = logging.getLogger(__name__)

# Reconnect attempts to the destination: max_outage is the real budget, so
# the delay stays short enough to notice the destination's return quickly.
_RECONNECT_INITIAL = 0.5
_RECONNECT_MAX = 5.0
# Between new sessions while the destination keeps refusing publishes.
_REFUSAL_MAX = 30.0
# How long the thread waits on an empty queue before looking around again.
_POLL_SECONDS = 0.25

TOO_LARGE_REASON = "too_large"
# Reading back starts this long before the first publish of the oldest
# unconfirmed event, to allow for the destination's clock being behind ours.
_CLOCK_MARGIN_SECONDS = 5.0


class Forwarder:
    """Publishes queued events to the destination, in order, acked."""

    def __init__(
        self,
        config: DestinationConfig,
        *,
        events: queue.Queue[ForwardItem],
        metrics: Metrics,
        on_fatal: Callable[[str], None],
    ) -> None:
        self.config = config
        self._events = events
        self._metrics = metrics
        self._on_fatal = on_fatal
        self._client = client_for(
            "destination",
            config,
            self._on_connection_lost,
            pub_ack_wait=config.publish_ack_wait,
            max_pub_acks_inflight=config.max_pending_publishes,
        )
        self._thread = threading.Thread(target=self._run, name="forwarder", daemon=True)
        self._stopping = threading.Event()
        self._draining = threading.Event()
        # Set by the client's lost callback, which runs after every publish
        # of the lost session has been handed back: none is missed.
        self._connection_down = threading.Event()

        # Items to publish again, smallest order first; filled by the
        # destination's I/O thread, emptied by the forwarder thread.
        self._retry_lock = threading.Lock()
        self._retry: list[tuple[int, ForwardItem]] = []
        # A publish failure that calls for a fresh session (set by the I/O
        # thread, acted on by the forwarder thread).
        self._reset_reason: StanError | None = None
        self._outage_since: float | None = time.monotonic()
        # Delays between new sessions while some item keeps being refused.
        self._refusal_backoff: Backoff | None = None
        self._metrics.destination_connected.set(0)
        self._metrics.track_outage(self.outage_seconds)

    # --- lifecycle ----------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def drain(self, timeout: float) -> int:
        """Stop taking new events and wait for the PubAcks of those in flight.

        Returns how many were still unacknowledged at the deadline; they
        stay unacked at their source and come back after a restart.
        """
        self._draining.set()
        deadline = time.monotonic() + timeout
        while self._unconfirmed() and time.monotonic() < deadline:
            time.sleep(0.02)
        return self._unconfirmed()

    def stop(self, timeout: float) -> None:
        """End the thread and close the destination connection."""
        self._draining.set()
        self._stopping.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("the forwarder did not stop within %g s", timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _unconfirmed(self) -> int:
        """Events in flight or waiting to be published again."""
        with self._retry_lock:
            waiting = len(self._retry)
        return self._client.publishes_in_flight + waiting

    @property
    def connected(self) -> bool:
        return self._client.is_connected and not self._connection_down.is_set()

    def outage_seconds(self) -> float:
        """Length of the current outage; 0 while connected."""
        since = self._outage_since
        return 0.0 if since is None else time.monotonic() - since

    # --- the forwarding thread ----------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                if self._needs_connection():
                    if not self._restore_connection():
                        break
                    continue
                item = self._next_item()
                if item is not None:
                    self._publish(item)
        finally:
            self._close_client()

    def _needs_connection(self) -> bool:
        return (
            self._connection_down.is_set()
            or self._reset_reason is not None
            or not self._client.is_connected
        )

    def _next_item(self) -> ForwardItem | None:
        with self._retry_lock:
            if self._retry:
                return heapq.heappop(self._retry)[1]
        if self._draining.is_set():
            self._stopping.wait(_POLL_SECONDS)
            return None
        try:
            return self._events.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            return None

    def _publish(self, item: ForwardItem) -> None:
        started = time.monotonic()
        if not item.first_sent:
            item.first_sent = time.time()

        def on_ack(guid: str, error: StanError | None) -> None:
            self._on_ack(item, started, error)

        try:
            self._client.publish_async(item.destination_channel, item.payload, on_ack)
        except MaxPayloadError as err:
            item.source.reject(
                item, TOO_LARGE_REASON, f"the destination refuses it: {err}"
            )
        except StanError as err:
            self._retry_later(item)
            if isinstance(err, PublishError):
                self._request_reset(err)

    def _on_ack(
        self, item: ForwardItem, started: float, error: StanError | None
    ) -> None:
        """Runs on the destination's I/O thread: quick, never blocks."""
        if error is None:
            self._metrics.publish_seconds.observe(time.monotonic() - started)
            lag = time.time() - item.timestamp_ns / 1e9
            item.source.lag_histogram.observe(max(0.0, lag))
            item.source.acknowledge(item)
            return
        if isinstance(error, PublishError):
            # Refused, or no PubAck in time: the session is suspect. The
            # budget is per item, so that one event the destination always
            # refuses is not forgiven by the successes of its neighbours.
            if not item.refused_since:
                item.refused_since = time.monotonic()
            item.last_refusal = str(error)
            self._retry_later(item)
            self._request_reset(error)  # last: the reset looks at the retries
            return
        if isinstance(error, ConnectionLostError):
            # Not a refusal: the outage budget covers the time it was away.
            item.refused_since = 0.0
        self._retry_later(item)

    def _retry_later(self, item: ForwardItem) -> None:
        with self._retry_lock:
            heapq.heappush(self._retry, (item.order, item))

    def _request_reset(self, reason: StanError) -> None:
        with self._retry_lock:
            self._reset_reason = reason

    def _take_reset_reason(self) -> StanError | None:
        with self._retry_lock:
            reason, self._reset_reason = self._reset_reason, None
        return reason

    # --- the destination connection ---------------------------------------

    def _on_connection_lost(
        self, client: StanClient, error: ConnectionLostError
    ) -> None:
        self._mark_outage()
        with self._retry_lock:
            unconfirmed = len(self._retry)
        logger.warning(
            "lost the destination %s: %s; events to publish again: %d",
            self.config.name,
            error.reason,
            unconfirmed,
            extra={"destination": self.config.name, "reason": error.reason},
        )
        self._connection_down.set()

    def _mark_outage(self) -> None:
        """Note that the destination is away, unless already noted."""
        if self._outage_since is None:
            # The outage began at the last sign of life, not when the pings
            # finally noticed it: max_outage counts from there.
            last_heard = self._client.last_heard
            self._outage_since = time.monotonic() if last_heard is None else last_heard
        self._metrics.destination_connected.set(0)

    def _restore_connection(self) -> bool:
        """Reconnect within max_outage; False when giving up or stopping."""
        # Also here: the loss may be noticed before its report arrives, or
        # connect() may have raised it instead of reporting it.
        self._mark_outage()
        reason = self._take_reset_reason()
        if reason is not None:
            backoff = self._refusal_backoff
            if backoff is None or self._oldest_refusal() is None:
                # Nothing refused is waiting: the delays start over.
                backoff = self._refusal_backoff = Backoff(
                    _RECONNECT_INITIAL, _REFUSAL_MAX
                )
            delay = backoff.next_delay()
            logger.warning(
                "destination %s: %s; opening a new session in %.1f s",
                self.config.name,
                reason,
                delay,
                extra={"destination": self.config.name},
            )
            self._close_client()
            # A destination that refuses at once would otherwise be asked
            # again at once, in a loop that floods the log.
            if self._stopping.wait(delay):
                return False
        if self._refusals_exceed_budget():
            return False

        backoff = Backoff(_RECONNECT_INITIAL, _RECONNECT_MAX)
        while not self._stopping.is_set():
            # A session that is open is healthy whatever the flag says: the
            # flag may hold a late report of an earlier session.
            if not self._client.is_connected:
                try:
                    self._client.connect()
                except StanError as err:
                    if not self._wait_before_retry(backoff, err):
                        return False
                    continue
            # Cleared once connect() returned: it waited for the report of
            # the previous session's loss, and a loss of the new one from now
            # on also shows in is_connected, which _needs_connection checks.
            self._connection_down.clear()
            self._skip_what_was_stored()
            if not self.connected:
                # Lost again already: the outage goes on, with the backoff.
                lost = ConnectionLostError("lost again right after connecting")
                if not self._wait_before_retry(backoff, lost):
                    return False
                continue
            outage = self.outage_seconds()
            self._outage_since = None
            self._metrics.destination_connected.set(1)
            logger.info(
                "destination %s connected at %s (after %.1f s without it)",
                self.config.name,
                self._client.safe_url,
                outage,
                extra={
                    "destination": self.config.name,
                    "url": self._client.safe_url,
                    "outage_seconds": round(outage, 3),
                },
            )
            return True
        return False

    def _skip_what_was_stored(self) -> None:
        """Ack, without publishing again, what the destination already holds.

        Publishes without a PubAck may have been stored all the same (see
        :mod:`event_aggregator.reconcile`); reading the channels back finds
        them, so that a stalled destination does not cost a duplicate for
        every publish that was in flight.
        """
        with self._retry_lock:
            pending = [item for _order, item in self._retry if item.first_sent]
        by_channel: dict[str, list[ForwardItem]] = defaultdict(list)
        for item in pending:
            by_channel[item.destination_channel].append(item)
        skipped: set[int] = set()
        for channel, items in by_channel.items():
            since = min(item.first_sent for item in items) - _CLOCK_MARGIN_SECONDS
            wanted = Counter(item.payload for item in items)
            try:
                found = stored_copies(
                    self._client,
                    channel,
                    wanted,
                    datetime.fromtimestamp(since, tz=UTC),
                    timeout=self.config.connect_timeout * 2,
                )
            except StanError as err:
                logger.warning(
                    "could not read %s back from the destination: %s; unconfirmed "
                    "events published again (they may arrive twice): %d",
                    channel,
                    err,
                    len(items),
                    extra={"channel": channel},
                )
                continue
            for item in items:
                if found[item.payload] > 0:
                    found[item.payload] -= 1
                    skipped.add(item.order)
                    item.source.acknowledge(item)
        if not skipped:
            return
        with self._retry_lock:
            self._retry = [entry for entry in self._retry if entry[0] not in skipped]
            heapq.heapify(self._retry)
        logger.info(
            "events without a PubAck but stored by the destination after all: %d; "
            "not publishing them again",
            len(skipped),
            extra={"destination": self.config.name, "skipped": len(skipped)},
        )

    def _wait_before_retry(self, backoff: Backoff, error: StanError) -> bool:
        elapsed = self.outage_seconds()
        budget = self.config.max_outage
        if elapsed >= budget:
            self._give_up(
                f"the destination {self.config.name} was unreachable for "
                f"{elapsed:.0f} s, longer than max_outage ({budget:g} s): {error}"
            )
            return False
        delay = min(backoff.next_delay(), budget - elapsed)
        logger.warning(
            "destination %s is unreachable (%.0f s of the %g s allowed): %s; "
            "retrying in %.1f s",
            self.config.name,
            elapsed,
            budget,
            error,
            delay,
            extra={"destination": self.config.name, "attempt": backoff.attempt},
        )
        return not self._stopping.wait(delay)

    def _oldest_refusal(self) -> ForwardItem | None:
        """The waiting item that the destination began refusing first."""
        with self._retry_lock:
            refused = [item for _order, item in self._retry if item.refused_since]
        return min(refused, key=lambda item: item.refused_since, default=None)

    def _refusals_exceed_budget(self) -> bool:
        item = self._oldest_refusal()
        if item is None:
            return False
        if time.monotonic() - item.refused_since < self.config.max_outage:
            return False
        self._give_up(
            f"the destination {self.config.name} has refused or not acknowledged "
            f"the event {item.channel}/{item.sequence} from {item.source.name} for "
            f"longer than max_outage ({self.config.max_outage:g} s): "
            f"{item.last_refusal}"
        )
        return True

    def _give_up(self, reason: str) -> None:
        logger.error(
            "giving up: %s; events not acknowledged stay at their sources and "
            "are delivered after a restart",
            reason,
            extra={"destination": self.config.name},
        )
        self._on_fatal(reason)

    def _close_client(self) -> None:
        try:
            self._client.close()
        except StanError as err:
            # Not connected at all, or the server did not confirm.
            logger.debug("closing the destination: %s", err)
