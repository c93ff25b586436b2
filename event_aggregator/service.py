"""The whole aggregator: sources, queue and forwarder, started and stopped."""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import asdict
from typing import Any

from event_aggregator.config import Config
from event_aggregator.forwarder import Forwarder
from event_aggregator.http import HealthServer
from event_aggregator.invalid import InvalidEventLog
from event_aggregator.metrics import Metrics
from event_aggregator.pipeline import ForwardItem, OrderCounter
from event_aggregator.source import Source, SourceStatus
from event_aggregator.validation import EventValidator, ValidationPolicy

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FATAL = 1
# How often the main thread looks at signals and at its workers' health.
_WATCH_SECONDS = 0.2
# Extra time for threads to end after their own deadlines.
_JOIN_GRACE_SECONDS = 5.0


class Aggregator:
    """Runs the fan-in until a signal or a fatal error.

    :meth:`run` blocks in the calling (main) thread. :meth:`request_stop` is
    safe to call from a signal handler: it only sets a flag.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.metrics = Metrics()
        self.events: queue.Queue[ForwardItem] = queue.Queue(
            maxsize=config.forwarding.queue_size
        )
        self.metrics.track_queue_depth(self.events.qsize)
        validation = config.validation
        validator = EventValidator(
            ValidationPolicy(
                specversions=validation.specversions,
                max_payload_bytes=validation.max_payload_bytes,
                max_nesting_depth=validation.max_nesting_depth,
            )
        )
        invalid_log = InvalidEventLog()
        order = OrderCounter()
        self.forwarder = Forwarder(
            config.destination,
            events=self.events,
            metrics=self.metrics,
            on_fatal=self._fatal,
        )
        self.sources = [
            Source(
                source_config,
                events=self.events,
                validator=validator,
                invalid_log=invalid_log,
                metrics=self.metrics,
                order=order,
                destination_channel=config.destination.channel,
                dead_letter_channel=validation.dead_letter_channel,
            )
            for source_config in config.sources
        ]
        self._stop_requested = False
        self._fatal_event = threading.Event()
        self._fatal_reason = ""
        self.http: HealthServer | None = None
        if config.http.port is not None:
            self.http = HealthServer(
                config.http.host or "",
                config.http.port,
                self.metrics.registry,
                self.health,
            )

    def run(self) -> int:
        """Start everything, wait for the end, stop in order; the exit code."""
        logger.info(
            "starting: sources %d, destination %s",
            len(self.sources),
            self.config.destination.name,
            extra={"sources": [source.name for source in self.sources]},
        )
        if self.http is not None:
            self.http.start()
        self.forwarder.start()
        for source in self.sources:
            source.start()

        while not self._stop_requested and not self._fatal_event.wait(_WATCH_SECONDS):
            self._check_workers()

        if self._fatal_event.is_set():
            self._shutdown(drain=False)
            logger.error("stopped: %s", self._fatal_reason)
            return EXIT_FATAL
        logger.info("stopping on request")
        self._shutdown(drain=True)
        logger.info("stopped")
        return EXIT_OK

    def request_stop(self) -> None:
        """Ask :meth:`run` to stop cleanly (signal-handler safe)."""
        self._stop_requested = True

    def statuses(self) -> list[SourceStatus]:
        return [source.status() for source in self.sources]

    def health(self) -> dict[str, Any]:
        """The body of /healthz and /readyz: what works and what does not."""
        sources = []
        for status in self.statuses():
            entry = asdict(status)
            since = entry["seconds_since_last_message"]
            entry["seconds_since_last_message"] = (
                None if since is None else round(since, 3)
            )
            sources.append(entry)
        return {
            "alive": self.workers_alive(),
            "ready": self.forwarder.connected,
            "destination": {
                "name": self.config.destination.name,
                "connected": self.forwarder.connected,
                "outage_seconds": round(self.forwarder.outage_seconds(), 3),
            },
            "queue_depth": self.events.qsize(),
            "sources": sources,
        }

    def workers_alive(self) -> bool:
        return self.forwarder.is_alive() and all(s.is_alive() for s in self.sources)

    def _fatal(self, reason: str) -> None:
        self._fatal_reason = reason
        self._fatal_event.set()

    def _check_workers(self) -> None:
        if self.workers_alive():
            return
        dead = [s.name for s in self.sources if not s.is_alive()]
        if not self.forwarder.is_alive():
            dead.append("forwarder")
        self._fatal(f"worker threads ended unexpectedly: {', '.join(dead)}")

    def _shutdown(self, *, drain: bool) -> None:
        """Stop intake, wait for the center's acks, ack at the edges, close.

        Events still queued are dropped unacked, and publishes without a
        PubAck at the deadline are abandoned: the edges redeliver both
        after a restart.
        """
        timeout = self.config.forwarding.shutdown_timeout
        for source in self.sources:
            source.stop_intake()
        if drain:
            started = time.monotonic()
            unacked = self.forwarder.drain(timeout)
            queued = self.events.qsize()
            risk = (
                " (the destination may have stored them: they can arrive twice "
                "after a restart)"
                if unacked
                else ""
            )
            logger.log(
                logging.WARNING if unacked else logging.INFO,
                "waited %.2f s for the destination's acks; %d left unacknowledged%s, "
                "%d queued events left for redelivery",
                time.monotonic() - started,
                unacked,
                risk,
                queued,
                extra={"unacknowledged": unacked, "queued": queued},
            )
        self.forwarder.stop(timeout + _JOIN_GRACE_SECONDS)
        for source in self.sources:
            source.request_stop()
        for source in self.sources:
            source.join(timeout + _JOIN_GRACE_SECONDS)
        if self.http is not None:
            self.http.stop()
