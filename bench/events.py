"""The 1 KiB CloudEvents the benchmark moves, and loading them into a server.

Every event is exactly :data:`EVENT_SIZE` bytes, valid for the aggregator's
validator, and unique (its ``id`` names the edge and the number), so that a
copy at the center can be told from a duplicate.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator

from stan_client import StanClient, StanError

EVENT_SIZE = 1024
#: Publishes in flight while loading a backlog: big, because only the rate
#: of loading matters there, not the aggregator's settings.
PRELOAD_WINDOW = 8192


def _envelope(source: str, event_id: str) -> dict[str, object]:
    # The attributes of a typical workflow event: an extension, a trace id,
    # a subject and a JSON body, as in event_aggregator.validation.bench.
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": "com.example.workflow.step.completed.v1",
        "time": "2024-05-17T09:41:27.318Z",
        "subject": "orders/81342/steps/pack",
        "datacontenttype": "application/json",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "attempt": 1,
    }


def bench_event(source: str, number: int, sent_at: float | None = None) -> bytes:
    """One valid CloudEvent of exactly :data:`EVENT_SIZE` bytes.

    :param source: the CloudEvents ``source`` (one per edge).
    :param number: makes the ``id`` unique within the source.
    :param sent_at: a ``time.time()`` stamp carried in ``data.sent_at``, for
        latency measurements.
    """
    event = _envelope(source, f"{source}-{number:09d}")
    data: dict[str, object] = {"order": number, "step": "pack", "padding": ""}
    if sent_at is not None:
        data["sent_at"] = sent_at
    event["data"] = data
    body = json.dumps(event, separators=(",", ":"))
    missing = EVENT_SIZE - len(body.encode())
    if missing < 0:
        raise ValueError(f"event of {len(body)} bytes exceeds {EVENT_SIZE}")
    data["padding"] = "x" * missing
    payload = json.dumps(event, separators=(",", ":")).encode()
    assert len(payload) == EVENT_SIZE, len(payload)
    return payload


def backlog(source: str, count: int) -> Iterator[bytes]:
    """``count`` distinct events of one source, numbered from 0."""
    for number in range(count):
        yield bench_event(source, number)


class _AckCount:
    """PubAcks counted on the I/O thread, awaited by the publisher."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._all_acked = threading.Event()
        self.sent = 0
        self.acked = 0
        self.errors: list[StanError] = []
        self._closed = False

    def on_sent(self) -> None:
        with self._lock:
            self.sent += 1

    def on_ack(self, guid: str, error: StanError | None) -> None:
        with self._lock:
            self.acked += 1
            if error is not None:
                self.errors.append(error)
            if self._closed and self.acked == self.sent:
                self._all_acked.set()

    def wait_all(self, timeout: float) -> bool:
        """No more sends; wait until every PubAck (or error) came."""
        with self._lock:
            self._closed = True
            if self.acked == self.sent:
                self._all_acked.set()
        return self._all_acked.wait(timeout)


def preload(
    url: str, cluster_id: str, channel: str, payloads: Iterable[bytes], client_id: str
) -> tuple[int, float]:
    """Publish every payload with a wide window; returns (count, seconds).

    :raises StanError: the server refused a message or a PubAck never came.
    """
    client = StanClient(
        url, cluster_id, client_id, max_pub_acks_inflight=PRELOAD_WINDOW
    )
    client.connect()
    count = _AckCount()
    started = time.monotonic()
    try:
        for payload in payloads:
            client.publish_async(channel, payload, count.on_ack)
            count.on_sent()
        if not count.wait_all(timeout=120):
            raise StanError(f"{count.sent - count.acked} PubAcks never came")
    finally:
        client.close()
    if count.errors:
        raise StanError(f"{len(count.errors)} publishes failed: {count.errors[0]}")
    return count.sent, time.monotonic() - started
