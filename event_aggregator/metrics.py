"""The aggregator's Prometheus metrics.

The metric names and labels are a contract with dashboards and alerts; see
the README's "Operating" section. Each :class:`Metrics` has its own
registry, so two aggregators in one process (as in tests) never share
counters.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Publish round trips are milliseconds; lag can reach the length of an outage.
_PUBLISH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_LAG_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    300,
    900,
)


class Metrics:
    """Counters, gauges and histograms updated by the pipeline's threads."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.events_received = Counter(
            "aggregator_events_received",
            "Messages received from a source channel, valid or not.",
            ["source", "channel"],
            registry=registry,
        )
        self.events_forwarded = Counter(
            "aggregator_events_forwarded",
            "Valid events the destination acknowledged.",
            ["source", "channel"],
            registry=registry,
        )
        self.events_invalid = Counter(
            "aggregator_events_invalid",
            "Messages refused as not valid CloudEvents, by reason code.",
            ["source", "reason"],
            registry=registry,
        )
        self.source_connected = Gauge(
            "aggregator_source_connected",
            "1 while the source is connected and subscribed, else 0.",
            ["source"],
            registry=registry,
        )
        self.source_reconnects = Counter(
            "aggregator_source_reconnects",
            "Successful reconnections to a source after a lost connection.",
            ["source"],
            registry=registry,
        )
        self.destination_connected = Gauge(
            "aggregator_destination_connected",
            "1 while the destination is connected, else 0.",
            registry=registry,
        )
        self.destination_outage_seconds = Gauge(
            "aggregator_destination_outage_seconds",
            "Length of the current destination outage; 0 when connected.",
            registry=registry,
        )
        self.queue_depth = Gauge(
            "aggregator_queue_depth",
            "Events validated and waiting to be published.",
            registry=registry,
        )
        self.publish_seconds = Histogram(
            "aggregator_publish_seconds",
            "Time from publishing to the destination until its ack.",
            buckets=_PUBLISH_BUCKETS,
            registry=registry,
        )
        self.forward_lag_seconds = Histogram(
            "aggregator_forward_lag_seconds",
            "Time from the source's message timestamp until the destination's ack.",
            ["source"],
            buckets=_LAG_BUCKETS,
            registry=registry,
        )

    def track_queue_depth(self, depth: Callable[[], float]) -> None:
        """Read the queue depth when scraped, instead of on every put/get."""
        self.queue_depth.set_function(depth)

    def track_outage(self, seconds: Callable[[], float]) -> None:
        """Read the outage length when scraped."""
        self.destination_outage_seconds.set_function(seconds)

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float:
        """The current value of one sample (for tests and the health page)."""
        value = self.registry.get_sample_value(name, labels or {})
        return 0.0 if value is None else value
