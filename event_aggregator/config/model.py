"""The validated configuration, as the rest of the aggregator sees it.

Every value here has been checked and every default filled in, so the code
that uses a :class:`Config` never has to wonder whether a key is present or
sane. The objects are frozen: the configuration is read once at start-up and
shared by all threads.
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from event_aggregator.redact import redact_url, url_secrets

__all__ = [
    "BackoffConfig",
    "Config",
    "DestinationConfig",
    "ForwardingConfig",
    "HttpConfig",
    "LoggingConfig",
    "SourceConfig",
    "StartPosition",
    "TlsConfig",
    "ValidationConfig",
]


class StartPosition(enum.Enum):
    """Where a *new* durable subscription starts; an existing one resumes."""

    FIRST = "first"
    NEW_ONLY = "new_only"
    LAST_RECEIVED = "last_received"
    SEQUENCE = "sequence"
    TIME = "time"


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS for one connection; ``None`` in a file means "use the default".

    Relative paths in the file are resolved against the config file's folder,
    so these are absolute and were readable when the config was loaded.
    """

    ca_file: Path | None
    cert_file: Path | None
    key_file: Path | None
    insecure_skip_verify: bool


@dataclass(frozen=True, slots=True)
class BackoffConfig:
    """Capped exponential backoff with jitter, between reconnect attempts.

    The n-th delay (from 0) is ``min(max_delay, initial_delay * multiplier**n)``,
    moved at random by up to ``jitter`` times itself either way.
    """

    initial_delay: float
    max_delay: float
    multiplier: float
    jitter: float


@dataclass(frozen=True, slots=True)
class DestinationConfig:
    """The central NATS Streaming cluster that receives every valid event."""

    name: str
    url: str
    cluster_id: str
    client_id: str
    channel: str | None
    max_outage: float
    connect_timeout: float
    ping_interval: float
    ping_max_out: int
    publish_ack_wait: float
    max_pending_publishes: int
    tls: TlsConfig | None

    @property
    def display_url(self) -> str:
        """The URL with its password masked, for logs and messages."""
        return redact_url(self.url)


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One edge NATS Streaming cluster and the channels read from it."""

    name: str
    url: str
    cluster_id: str
    client_id: str
    channels: tuple[str, ...]
    durable_name: str
    queue_group: str | None
    start_position: StartPosition
    start_sequence: int | None
    start_time: datetime.datetime | None
    max_in_flight: int
    ack_wait: int
    connect_timeout: float
    ping_interval: float
    ping_max_out: int
    tls: TlsConfig | None
    reconnect: BackoffConfig

    @property
    def display_url(self) -> str:
        """The URL with its password masked, for logs and messages."""
        return redact_url(self.url)


@dataclass(frozen=True, slots=True)
class ForwardingConfig:
    """The bounded queue between the sources and the forwarder."""

    queue_size: int
    shutdown_timeout: float


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    """Log level (an upper-case :mod:`logging` level name) and line format."""

    level: str
    format: Literal["json", "text"]


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """Where /metrics, /healthz and /readyz listen; all ``None`` when off.

    ``host`` is ``""`` for all interfaces and has no brackets for IPv6; ``port``
    0 asks the system for a free port.
    """

    listen: str | None
    host: str | None
    port: int | None


@dataclass(frozen=True, slots=True)
class ValidationConfig:
    """What counts as a valid event, and where invalid ones may go."""

    specversions: frozenset[str]
    dead_letter_channel: str | None
    max_payload_bytes: int
    max_nesting_depth: int


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated configuration, and the file it came from."""

    path: Path
    destination: DestinationConfig
    sources: tuple[SourceConfig, ...]
    forwarding: ForwardingConfig
    logging: LoggingConfig
    http: HttpConfig
    validation: ValidationConfig

    def secrets(self) -> frozenset[str]:
        """Passwords and tokens of every URL, for log filters to mask."""
        found: set[str] = set(url_secrets(self.destination.url))
        for source in self.sources:
            found.update(url_secrets(source.url))
        return frozenset(found)

    def summary(self) -> str:
        """A few lines for humans (``aggregator.py --check``); no passwords."""
        dest = self.destination
        lines = [
            f"config: {self.path}",
            f"destination {dest.name}: {dest.display_url} cluster {dest.cluster_id}"
            f" client {dest.client_id}",
            "  channel: "
            + (dest.channel or "same as the source channel")
            + f"; max outage {_seconds(dest.max_outage)}"
            + f"; tls {_tls(dest.tls)}",
        ]
        for source in self.sources:
            start = source.start_position.value
            if source.start_sequence is not None:
                start += f" {source.start_sequence}"
            if source.start_time is not None:
                start += f" {source.start_time.isoformat()}"
            queue = f" queue group {source.queue_group}" if source.queue_group else ""
            lines += [
                f"source {source.name}: {source.display_url}"
                f" cluster {source.cluster_id} client {source.client_id}",
                f"  channels: {', '.join(source.channels)}",
                f"  durable {source.durable_name}{queue}; new durables start at"
                f" {start}; max in flight {source.max_in_flight}"
                f"; ack wait {_seconds(source.ack_wait)}; tls {_tls(source.tls)}",
            ]
        valid = self.validation
        http = self.http
        lines += [
            f"forwarding: queue size {self.forwarding.queue_size}"
            f", shutdown timeout {_seconds(self.forwarding.shutdown_timeout)}",
            "http: " + (f"listening on {http.listen}" if http.listen else "off"),
            "validation: specversions "
            + ", ".join(sorted(valid.specversions, reverse=True))
            + "; dead letters: "
            + (valid.dead_letter_channel or "off")
            + f"; max payload {valid.max_payload_bytes} bytes"
            + f"; max nesting depth {valid.max_nesting_depth}",
            f"logging: {self.logging.level}, {self.logging.format}",
        ]
        return "\n".join(lines)


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _tls(tls: TlsConfig | None) -> str:
    if tls is None:
        return "not configured"
    parts = [f"ca {tls.ca_file}" if tls.ca_file else "system CAs"]
    if tls.cert_file:
        parts.append(f"client cert {tls.cert_file}")
    if tls.insecure_skip_verify:
        parts.append("NOT VERIFIED")
    return ", ".join(parts)
