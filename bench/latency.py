"""Edge-publish to center-delivery latency at a fixed rate.

Each event carries the ``time.time()`` at which it was handed to
``publish_async`` (in ``data.sent_at``); a subscriber on the center takes
``time.time()`` when the message is delivered to it. Both run in this
process, so they read the same clock. The publisher keeps a schedule on the
monotonic clock (event ``i`` is due at ``start + i / rate``), so sleeping
late never lowers the rate.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from dataclasses import dataclass

from bench.events import bench_event
from stan_client import Msg, StanClient, StanError, StartPosition

#: Seconds to wait for the last events after the publisher stopped.
ARRIVAL_TIMEOUT = 30.0
#: Latencies above this are "slow" in the report of when they happened.
SLOW_MS = 50.0
#: Slow events closer in time than this belong to the same stall.
_STALL_GAP_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class LatencyResult:
    sent: int
    received: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    publish_errors: int
    achieved_rate: float
    slow: int
    #: (first, last) send time in seconds since the start, of each group
    #: of slow events: stalls rather than scattered outliers.
    stalls: tuple[tuple[float, float], ...]


class _Arrivals:
    """(send time, latency in ms) per event, appended on the delivery thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.samples: list[tuple[float, float]] = []

    def on_message(self, message: Msg) -> None:
        received_at = time.time()
        sent_at = float(json.loads(message.data)["data"]["sent_at"])
        with self._changed:
            self.samples.append((sent_at, (received_at - sent_at) * 1000.0))
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.samples) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            return len(self.samples)


def measure_latency(
    edge_url: str,
    center_url: str,
    cluster_id: str,
    channel: str,
    rate: float,
    seconds: float,
) -> LatencyResult:
    """Publish ``rate`` events per second for ``seconds`` to the edge.

    :raises StanError: a connection or subscription failed.
    """
    arrivals = _Arrivals()
    receiver = StanClient(center_url, cluster_id, "bench-latency-receiver")
    publisher = StanClient(edge_url, cluster_id, "bench-latency-publisher")
    errors: list[StanError] = []

    def on_ack(guid: str, error: StanError | None) -> None:
        if error is not None:
            errors.append(error)

    receiver.connect()
    try:
        receiver.subscribe(
            channel,
            arrivals.on_message,
            start_position=StartPosition.NEW_ONLY,
            max_in_flight=65_535,
        )
        publisher.connect()
        try:
            total = int(rate * seconds)
            started_at = time.time()
            started = time.monotonic()
            for number in range(total):
                delay = started + number / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                payload = bench_event("/latency", number, sent_at=time.time())
                publisher.publish_async(channel, payload, on_ack)
            achieved = total / (time.monotonic() - started)
            received = arrivals.wait_for(total, ARRIVAL_TIMEOUT)
        finally:
            publisher.close()
    finally:
        receiver.close()
    latencies = sorted(latency for _, latency in arrivals.samples)
    if len(latencies) < 2:
        raise StanError(f"only {len(latencies)} of {total} events reached the center")
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return LatencyResult(
        sent=total,
        received=received,
        p50_ms=cuts[49],
        p99_ms=cuts[98],
        max_ms=latencies[-1],
        publish_errors=len(errors),
        achieved_rate=achieved,
        slow=sum(1 for latency in latencies if latency > SLOW_MS),
        stalls=_stalls(arrivals.samples, started_at),
    )


def _stalls(
    samples: list[tuple[float, float]], started_at: float
) -> tuple[tuple[float, float], ...]:
    """Group the slow events by send time into (first, last) spans."""
    spans: list[tuple[float, float]] = []
    for sent_at, latency in sorted(samples):
        if latency <= SLOW_MS:
            continue
        offset = sent_at - started_at
        if spans and offset - spans[-1][1] <= _STALL_GAP_SECONDS:
            spans[-1] = (spans[-1][0], offset)
        else:
            spans.append((offset, offset))
    return tuple(spans)
