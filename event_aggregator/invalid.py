"""What happens to a message that is not a valid CloudEvent.

It is counted, logged at WARNING with a reason code (identical warnings
rate-limited), and either acked and dropped or, with a dead-letter channel,
wrapped in an envelope and published there.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from datetime import UTC, datetime

logger = logging.getLogger(__name__)

# One warning per (source, channel, reason) per this many seconds; the next
# one says how many were left out meanwhile.
WARNING_INTERVAL_SECONDS = 10.0


class InvalidEventLog:
    """Logs refused messages without letting a flood of junk flood the log."""

    def __init__(self, interval: float = WARNING_INTERVAL_SECONDS) -> None:
        self._interval = interval
        self._lock = threading.Lock()
        # key -> (time of the last warning, warnings suppressed since)
        self._last: dict[tuple[str, str, str], tuple[float, int]] = {}

    def refused(
        self, source: str, channel: str, sequence: int, reason: str, message: str
    ) -> None:
        """Record one refused message; warn unless a twin was just logged."""
        key = (source, channel, reason)
        now = time.monotonic()
        with self._lock:
            last, suppressed = self._last.get(key, (-self._interval, 0))
            if now - last < self._interval:
                self._last[key] = (last, suppressed + 1)
                emit = False
            else:
                self._last[key] = (now, 0)
                emit = True
        fields = {
            "source": source,
            "channel": channel,
            "sequence": sequence,
            "reason": reason,
        }
        if not emit:
            logger.debug(
                "refused message %s/%d: %s (%s)",
                channel,
                sequence,
                reason,
                message,
                extra=fields,
            )
            return
        if suppressed:
            fields["suppressed"] = suppressed
            logger.warning(
                "refused an invalid event from %s on %s (sequence %d): %s: %s "
                "(and %d more with this reason since the last warning)",
                source,
                channel,
                sequence,
                reason,
                message,
                suppressed,
                extra=fields,
            )
        else:
            logger.warning(
                "refused an invalid event from %s on %s (sequence %d): %s: %s",
                source,
                channel,
                sequence,
                reason,
                message,
                extra=fields,
            )


# Payloads up to this size travel whole in their envelope: in base64 that
# is 683 KiB, which a server with the default max_payload (1 MiB) takes.
# Larger ones keep only their first DEAD_LETTER_KEPT_BYTES, so that the
# dead letter itself is never too large to publish.
DEAD_LETTER_MAX_WHOLE = 512 * 1024
DEAD_LETTER_KEPT_BYTES = 64 * 1024


def dead_letter_envelope(
    *,
    source: str,
    channel: str,
    sequence: int,
    reason: str,
    message: str,
    payload: bytes,
    edge_timestamp_ns: int,
) -> bytes:
    """The JSON document published to the dead-letter channel.

    The original payload is kept in base64, since it may not even be text;
    whole up to :data:`DEAD_LETTER_MAX_WHOLE` bytes, else its beginning
    only, with ``payload_truncated`` set. ``payload_size`` is always the
    original size.
    """
    truncated = len(payload) > DEAD_LETTER_MAX_WHOLE
    kept = payload[:DEAD_LETTER_KEPT_BYTES] if truncated else payload
    envelope = {
        "reason": reason,
        "message": message,
        "source": source,
        "channel": channel,
        "sequence": sequence,
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "edge_time": datetime.fromtimestamp(edge_timestamp_ns / 1e9, tz=UTC).isoformat(
            timespec="milliseconds"
        ),
        "payload_size": len(payload),
        "payload_truncated": truncated,
        "payload_base64": base64.b64encode(kept).decode("ascii"),
    }
    return json.dumps(envelope, separators=(",", ":")).encode()
