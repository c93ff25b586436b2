"""CloudEvents for tests, and moving them in and out of real servers."""

import json
import threading
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from stan_client import StanClient, StanError, StartPosition
from tests.support.waiting import wait_until


def cloud_event(
    number: int, source: str = "/tests", size: int = 0, **extra: Any
) -> bytes:
    """A valid CloudEvents 1.0 JSON event, padded to about ``size`` bytes."""
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": f"{source}-{number}-{uuid.uuid4().hex[:8]}",
        "source": source,
        "type": "org.example.test",
        "time": "2026-12-03T10:00:00Z",
        "datacontenttype": "application/json",
        "data": {"number": number},
    }
    event.update(extra)
    body = json.dumps(event, separators=(",", ":")).encode()
    if size > len(body):
        event["data"]["padding"] = "x" * (size - len(body) - 14)
        body = json.dumps(event, separators=(",", ":")).encode()
    return body


def publish_all(
    url: str,
    cluster_id: str,
    channel: str,
    payloads: Iterable[bytes],
    client_id: str | None = None,
    window: int = 256,
) -> int:
    """Publish every payload and wait for all PubAcks; returns the count."""
    client = StanClient(
        url,
        cluster_id,
        client_id or f"pub-{uuid.uuid4().hex[:10]}",
        max_pub_acks_inflight=window,
    )
    client.connect()
    errors: list[StanError] = []
    done = threading.Semaphore(0)
    sent = 0

    def on_ack(guid: str, error: StanError | None) -> None:
        if error is not None:
            errors.append(error)
        done.release()

    try:
        for payload in payloads:
            client.publish_async(channel, payload, on_ack)
            sent += 1
        for _ in range(sent):
            assert done.acquire(timeout=30), "a PubAck never came"
    finally:
        client.close()
    assert not errors, f"publishing failed: {errors[:3]}"
    return sent


def read_channel(
    url: str,
    cluster_id: str,
    channel: str,
    expected: int,
    timeout: float = 30.0,
) -> list[bytes]:
    """Every message of ``channel`` from its start, once ``expected`` are there."""
    received: dict[int, bytes] = {}
    lock = threading.Lock()

    def on_message(message: Any) -> None:
        with lock:
            received[message.sequence] = message.data

    client = StanClient(url, cluster_id, f"reader-{uuid.uuid4().hex[:10]}")
    client.connect()
    try:
        client.subscribe(
            channel,
            on_message,
            start_position=StartPosition.FIRST,
            max_in_flight=10_000,
        )
        wait_until(
            lambda: len(received) >= expected,
            timeout,
            message=f"{expected} messages on {channel} (have {len(received)})",
        )
    finally:
        client.close()
    with lock:
        return [received[sequence] for sequence in sorted(received)]


def count_duplicates(payloads: Sequence[bytes]) -> int:
    """How many payloads appear more than once (extra copies counted)."""
    return len(payloads) - len(set(payloads))
