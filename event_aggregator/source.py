"""One edge cluster: connect, subscribe, validate, hand over, ack.

Each source has its own thread that owns the connection to its cluster and
retries it for the life of the process. Messages arrive on the client's
delivery thread (one per source, in order), are validated there and put on
the shared bounded queue; the source message is acked only when the
destination has acknowledged its copy (:meth:`Source.acknowledge`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from event_aggregator.backoff import Backoff
from event_aggregator.config import SourceConfig
from event_aggregator.connections import client_for
from event_aggregator.invalid import InvalidEventLog, dead_letter_envelope
from event_aggregator.metrics import Metrics
from event_aggregator.pipeline import ForwardItem, OrderCounter
from event_aggregator.validation import EventValidator, Rejection
from stan_client import (
    ConnectionLostError,
    Msg,
    StanClient,
    StanError,
    StartPosition,
    Subscription,
)

logger = logging.getLogger(__name__)

# How often a callback blocked on a full queue checks whether to give up.
_PUT_POLL_SECONDS = 0.25
# How many settled messages (forwarded, dead-lettered or refused) each source
# remembers. A redelivery of one of them is acked again, not forwarded
# again: the server redelivers a message whose ack was lost with a
# connection, or crossed the redelivery on the wire. Bounded: beyond it, such
# a redelivery is merely forwarded twice.
_MAX_REMEMBERED_DONE = 20_000
# Seconds to wait for acks to reach the server before closing.
_FLUSH_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """A snapshot of one source, for the health endpoints and logs."""

    name: str
    connected: bool
    subscribed: bool
    last_error: str
    seconds_since_last_message: float | None
    reconnects: int


class Source:
    """The connection to one edge cluster and the flow of its messages."""

    def __init__(
        self,
        config: SourceConfig,
        *,
        events: queue.Queue[ForwardItem],
        validator: EventValidator,
        invalid_log: InvalidEventLog,
        metrics: Metrics,
        order: OrderCounter,
        destination_channel: str | None,
        dead_letter_channel: str | None,
    ) -> None:
        self.name = config.name
        self.config = config
        self._events = events
        self._validator = validator
        self._invalid_log = invalid_log
        self._metrics = metrics
        self._order = order
        self._destination_channel = destination_channel
        self._dead_letter_channel = dead_letter_channel
        self._client = client_for("source", config, self._on_connection_lost)
        self._thread = threading.Thread(
            target=self._run, name=f"source-{self.name}", daemon=True
        )

        # _stopping ends the thread; _intake_closed makes callbacks give up
        # on new messages; _wake interrupts the wait for a lost connection.
        self._stopping = threading.Event()
        self._intake_closed = threading.Event()
        self._wake = threading.Event()

        # Guards the pipeline bookkeeping, touched by the delivery thread
        # (new messages) and the destination's I/O thread (acks).
        self._lock = threading.Lock()
        self._subscriptions: dict[str, Subscription] = {}
        # Key (channel, sequence) -> hash of the payload, for messages handed
        # to the forwarder and not yet settled, and for the last settled ones.
        # The hash guards against a reset edge store reusing sequences.
        self._in_pipeline: dict[tuple[str, int], int] = {}
        self._done: OrderedDict[tuple[str, int], int] = OrderedDict()

        self._subscribed = False
        self._last_error = ""
        self._last_message_at: float | None = None
        self._reconnects = 0
        # Every series exists from the start at 0, so that rate() and
        # increase() see the first event, not only the ones after it.
        self._metrics.source_connected.labels(self.name).set(0)
        self._metrics.source_reconnects.labels(self.name)
        # The per-channel children, looked up once: labels() costs a lock
        # and a dict lookup on every event otherwise.
        self._received = {
            channel: metrics.events_received.labels(self.name, channel)
            for channel in config.channels
        }
        self._forwarded = {
            channel: metrics.events_forwarded.labels(self.name, channel)
            for channel in config.channels
        }
        #: The forward-lag histogram of this source (used by the forwarder).
        self.lag_histogram = metrics.forward_lag_seconds.labels(self.name)

    # --- lifecycle (called by the service) --------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop_intake(self) -> None:
        """Stop handing new messages to the forwarder; acks still flow."""
        self._intake_closed.set()

    def request_stop(self) -> None:
        """Make the thread close the connection (durables keep their position)."""
        self._intake_closed.set()
        self._stopping.set()
        self._wake.set()

    def join(self, timeout: float) -> None:
        """Wait for the thread to end after :meth:`request_stop`."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning(
                "source %s did not stop within %g s",
                self.name,
                timeout,
                extra={"source": self.name},
            )

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def status(self) -> SourceStatus:
        last = self._last_message_at
        return SourceStatus(
            name=self.name,
            connected=self._client.is_connected,
            subscribed=self._subscribed and self._client.is_connected,
            last_error=self._last_error,
            seconds_since_last_message=None
            if last is None
            else time.monotonic() - last,
            reconnects=self._reconnects,
        )

    # --- the connection thread ----------------------------------------------

    def _run(self) -> None:
        reconnect = self.config.reconnect
        backoff = Backoff(
            reconnect.initial_delay,
            reconnect.max_delay,
            reconnect.multiplier,
            reconnect.jitter,
        )
        was_connected = False
        while not self._stopping.is_set():
            # A loss reported while the last attempt was still subscribing
            # is over: this attempt starts from a closed client.
            self._wake.clear()
            if self._stopping.is_set():
                break  # request_stop's wake may be the one just cleared
            try:
                self._open()
            except StanError as err:
                self._last_error = str(err)
                delay = backoff.next_delay()
                logger.warning(
                    "source %s is unreachable: %s; retrying in %.1f s (attempt %d)",
                    self.name,
                    err,
                    delay,
                    backoff.attempt,
                    extra={"source": self.name, "attempt": backoff.attempt},
                )
                self._stopping.wait(delay)
                continue

            backoff.reset()
            self._last_error = ""
            if was_connected:
                self._reconnects += 1
                self._metrics.source_reconnects.labels(self.name).inc()
            was_connected = True
            self._metrics.source_connected.labels(self.name).set(1)
            logger.info(
                "source %s connected to %s and subscribed to %s",
                self.name,
                self._client.safe_url,
                ", ".join(self.config.channels),
                extra={"source": self.name, "url": self._client.safe_url},
            )

            self._wake.wait()
            self._subscribed = False
            self._metrics.source_connected.labels(self.name).set(0)
            if not self._stopping.is_set():
                # Release the lost session, and wait for its delivery thread
                # to finish the message it holds, before a new one starts.
                self._close_client()
        self._close()

    def _open(self) -> None:
        """Connect and subscribe every channel; both are retried together.

        A cluster whose NATS port answers while its streaming layer does not
        fails here at the subscribe step, and counts as unreachable.
        """
        self._client.connect()
        with self._lock:
            self._subscriptions = {}
        try:
            for channel in self.config.channels:
                subscription = self._subscribe(channel)
                # Published at once: its first messages may be forwarded and
                # confirmed before the next channel is subscribed.
                with self._lock:
                    self._subscriptions[channel] = subscription
        except StanError:
            self._close_client()
            raise
        self._subscribed = True

    def _subscribe(self, channel: str) -> Subscription:
        config = self.config
        return self._client.subscribe(
            channel,
            self._on_message,
            durable_name=config.durable_name,
            queue_group=config.queue_group,
            max_in_flight=config.max_in_flight,
            ack_wait=config.ack_wait,
            start_position=StartPosition(config.start_position.value),
            start_sequence=config.start_sequence,
            start_time=config.start_time,
            manual_acks=True,
        )

    def _on_connection_lost(
        self, client: StanClient, error: ConnectionLostError
    ) -> None:
        self._last_error = error.reason
        logger.warning(
            "source %s lost its connection: %s; reconnecting",
            self.name,
            error.reason,
            extra={"source": self.name, "reason": error.reason},
        )
        self._wake.set()

    def _close(self) -> None:
        """Flush the acks still buffered, then close; durables stay."""
        if self._client.is_connected:
            try:
                self._client.flush(_FLUSH_SECONDS)
            except StanError as err:
                logger.warning(
                    "source %s: acks may not all have reached the server: %s",
                    self.name,
                    err,
                    extra={"source": self.name},
                )
        self._close_client()
        logger.info("source %s closed", self.name, extra={"source": self.name})

    def _close_client(self) -> None:
        try:
            self._client.close()
        except StanError as err:
            logger.debug("closing source %s: %s", self.name, err)

    # --- messages (on the client's delivery thread) -----------------------

    def _on_message(self, message: Msg) -> None:
        try:
            self._take(message)
        except Exception:  # a bug of ours must not wedge the message
            logger.exception(
                "source %s could not handle %s/%d; the server redelivers it",
                self.name,
                message.channel,
                message.sequence,
                extra={"source": self.name, "channel": message.channel},
            )
            self._forget((message.channel, message.sequence), hash(message.data))

    def _take(self, message: Msg) -> None:
        self._received[message.channel].inc()
        self._last_message_at = time.monotonic()
        key = (message.channel, message.sequence)
        fingerprint = hash(message.data)
        with self._lock:
            if self._in_pipeline.get(key) == fingerprint:
                # A redelivery of a message that is queued or being
                # published: its ack will come from that copy.
                logger.debug(
                    "ignoring redelivery of %s/%d still in the pipeline",
                    message.channel,
                    message.sequence,
                    extra={"source": self.name, "channel": message.channel},
                )
                return
            settled = message.redelivered and self._done.get(key) == fingerprint
            if not settled:
                self._in_pipeline[key] = fingerprint
        if settled:
            # Already forwarded; the ack was lost or crossed this redelivery.
            logger.debug(
                "acking again the redelivery of settled %s/%d",
                message.channel,
                message.sequence,
                extra={"source": self.name, "channel": message.channel},
            )
            self._ack(message.channel, message.sequence)
            return

        verdict = self._validator.validate(message.data)
        if isinstance(verdict, Rejection):
            self._refuse(message, fingerprint, verdict.reason, verdict.message)
            return
        if logger.isEnabledFor(logging.DEBUG):
            # Guarded: building the fields costs more than the check, per event.
            logger.debug(
                "accepted %s/%d (id %s)",
                message.channel,
                message.sequence,
                verdict.id,
                extra={"source": self.name, "channel": message.channel},
            )
        self._hand_over(
            message,
            ForwardItem(
                source=self,
                channel=message.channel,
                sequence=message.sequence,
                payload=message.data,
                destination_channel=self._destination_channel or message.channel,
                timestamp_ns=message.timestamp,
                order=self._order.next(),
                fingerprint=fingerprint,
            ),
        )

    def _refuse(self, message: Msg, fingerprint: int, reason: str, text: str) -> None:
        self._metrics.events_invalid.labels(self.name, reason).inc()
        self._invalid_log.refused(
            self.name, message.channel, message.sequence, reason, text
        )
        if self._dead_letter_channel is None:
            if self._settle((message.channel, message.sequence), fingerprint):
                self._ack(message.channel, message.sequence)
            return
        envelope = dead_letter_envelope(
            source=self.name,
            channel=message.channel,
            sequence=message.sequence,
            reason=reason,
            message=text,
            payload=message.data,
            edge_timestamp_ns=message.timestamp,
        )
        self._hand_over(
            message,
            ForwardItem(
                source=self,
                channel=message.channel,
                sequence=message.sequence,
                payload=envelope,
                destination_channel=self._dead_letter_channel,
                timestamp_ns=message.timestamp,
                order=self._order.next(),
                fingerprint=fingerprint,
                dead_letter=True,
            ),
        )

    def _hand_over(self, message: Msg, item: ForwardItem) -> None:
        """Put the item on the queue, waiting while it is full.

        Gives up (leaving the message unacked, so the server redelivers it)
        when intake stops or this subscription's connection is gone.
        """
        while not self._intake_closed.is_set() and message.subscription.is_active:
            try:
                self._events.put(item, timeout=_PUT_POLL_SECONDS)
                return
            except queue.Full:
                continue
        self._forget(item.key, item.fingerprint)

    def _forget(self, key: tuple[str, int], fingerprint: int) -> None:
        """Drop a message from the pipeline without settling it."""
        with self._lock:
            if self._in_pipeline.get(key) == fingerprint:
                del self._in_pipeline[key]

    # --- outcomes (on the destination's I/O thread) -----------------------

    def acknowledge(self, item: ForwardItem) -> None:
        """The destination stored the item: ack the source message."""
        if not self._settle(item.key, item.fingerprint):
            return  # another message has this sequence now: not this ack
        if not item.dead_letter:
            self._forwarded[item.channel].inc()
        self._ack(item.channel, item.sequence)

    def reject(self, item: ForwardItem, reason: str, message: str) -> None:
        """The item can never be published: count it, log it, ack it.

        A dead letter that cannot be published was counted already, when its
        message was refused; only the failed dead letter is logged.
        """
        if not self._settle(item.key, item.fingerprint):
            return  # another message has this sequence now: not this ack
        if item.dead_letter:
            logger.warning(
                "could not dead-letter %s/%d from %s: %s; it is dropped",
                item.channel,
                item.sequence,
                self.name,
                message,
                extra={
                    "source": self.name,
                    "channel": item.channel,
                    "sequence": item.sequence,
                    "reason": reason,
                },
            )
        else:
            self._metrics.events_invalid.labels(self.name, reason).inc()
            self._invalid_log.refused(
                self.name, item.channel, item.sequence, reason, message
            )
        self._ack(item.channel, item.sequence)

    def _settle(self, key: tuple[str, int], fingerprint: int) -> bool:
        """Move a message from the pipeline to the remembered settled ones.

        Returns False, changing nothing, when the pipeline holds no such
        message: the key now belongs to another payload (an edge store
        reset reuses sequences), whose ack must wait for its own copy.
        """
        with self._lock:
            if self._in_pipeline.get(key) != fingerprint:
                return False
            del self._in_pipeline[key]
            self._done[key] = fingerprint
            self._done.move_to_end(key)
            if len(self._done) > _MAX_REMEMBERED_DONE:
                self._done.popitem(last=False)
            return True

    def _ack(self, channel: str, sequence: int) -> None:
        """Ack on the channel's current subscription.

        When the source is down, the ack is lost; the server redelivers the
        message later, and the remembered settled key acks it then.
        """
        with self._lock:
            subscription = self._subscriptions.get(channel)
        if subscription is None or not subscription.is_active:
            return
        try:
            subscription.ack(sequence)
        except StanError as err:
            logger.debug("ack of %s/%d failed: %s", channel, sequence, err)
