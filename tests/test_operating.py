"""Operating the aggregator: /metrics, /healthz and /readyz on real servers.

The aggregator runs as a real process with ``http.listen`` on a port the
system picks; the tests read its endpoints as Prometheus and a load
balancer would, and check exact counts, the readiness flip when the center
dies, the state of an unreachable source, and that passwords never leak.
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.aggregator import (
    REPO,
    AggregatorProcess,
    destination_entry,
    source_entry,
)
from tests.support.events import cloud_event, publish_all
from tests.support.factories import StanServerFactory
from tests.support.servers import StanServer
from tests.support.waiting import wait_until

CHANNEL = "cyverse.events"
HTTP_TIMEOUT = 5.0
# How quickly the endpoints must show a dead center (the issue: "a few seconds").
OUTAGE_SEEN_WITHIN = 10.0

# (payload, reason code) of the invalid messages each edge gets.
INVALID_EDGE1 = [(b"hello", "not_json"), (b"[1, 2]", "not_object")]
INVALID_EDGE2 = [
    (b'{"specversion":"1.0","source":"/e2","type":"t"}', "missing_id"),
    (
        b'{"specversion":"1.0","id":"1","source":"/e2","type":"t","time":"yesterday"}',
        "bad_time",
    ),
]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
AggregatorFactory = Callable[..., AggregatorProcess]


# --- reading the endpoints ----------------------------------------------------


class Endpoints:
    """The HTTP endpoints of one running aggregator."""

    def __init__(self, aggregator: AggregatorProcess) -> None:
        record = aggregator.wait_for_log(
            lambda r: "listen" in r and "/metrics" in str(r.get("message")),
            timeout=20,
            message="the HTTP server's start line",
        )
        self.base = f"http://{record['listen']}"

    def get(self, path: str) -> tuple[int, str, str]:
        """Status, content type and body; an error status is not an exception."""
        try:
            with urllib.request.urlopen(
                self.base + path, timeout=HTTP_TIMEOUT
            ) as answer:
                return (
                    answer.status,
                    answer.headers.get("Content-Type", ""),
                    answer.read().decode(),
                )
        except urllib.error.HTTPError as err:
            with err:
                return (
                    err.code,
                    err.headers.get("Content-Type", ""),
                    err.read().decode(),
                )

    def health(self, path: str = "/healthz") -> tuple[int, dict[str, Any]]:
        status, content_type, body = self.get(path)
        assert content_type == "application/json", (path, content_type, body)
        parsed: dict[str, Any] = json.loads(body)
        return status, parsed

    def metrics_text(self) -> str:
        status, content_type, body = self.get("/metrics")
        assert status == 200, (status, body)
        assert content_type.startswith("text/plain"), content_type
        return body

    def samples(self) -> Samples:
        """Every sample of /metrics by (name, labels)."""
        found: Samples = {}
        for family in text_string_to_metric_families(self.metrics_text()):
            for sample in family.samples:
                key = (sample.name, frozenset(sample.labels.items()))
                found[key] = sample.value
        return found

    def sample(self, name: str, **labels: str) -> float | None:
        return self.samples().get((name, frozenset(labels.items())))

    def source_states(self) -> dict[str, dict[str, Any]]:
        _, body = self.health()
        return {source["name"]: source for source in body["sources"]}


def samples_named(samples: Samples, name: str) -> dict[frozenset[Any], float]:
    """The samples of one name, by their labels."""
    return {labels: value for (n, labels), value in samples.items() if n == name}


def labels(**pairs: str) -> frozenset[tuple[str, str]]:
    return frozenset(pairs.items())


# --- fixtures -----------------------------------------------------------------


@pytest.fixture
def aggregator_factory(aggregator_factory: AggregatorFactory) -> AggregatorFactory:
    """The shared factory, with the HTTP endpoints on by default."""

    def make(
        config: dict[str, Any], env: dict[str, str] | None = None
    ) -> AggregatorProcess:
        config.setdefault("http", {"listen": "127.0.0.1:0"})
        return aggregator_factory(config, env=env)

    return make


def wait_all_connected(
    endpoints: Endpoints, sources: list[str], timeout: float = 30
) -> None:
    def ready() -> bool:
        status, body = endpoints.health("/readyz")
        states = {s["name"]: s for s in body["sources"]}
        return status == 200 and all(
            states[name]["connected"] and states[name]["subscribed"] for name in sources
        )

    wait_until(ready, timeout, interval=0.1, message=f"ready with {sources}")


# --- tests --------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_metrics_count_exactly_and_readiness_follows_the_center(
    center: StanServer,
    edges: list[StanServer],
    aggregator_factory: AggregatorFactory,
) -> None:
    aggregator = aggregator_factory(
        {
            "destination": destination_entry(center, name="center"),
            "sources": [
                source_entry(f"edge{index}", edge, [CHANNEL])
                for index, edge in enumerate(edges, start=1)
            ],
        }
    )
    aggregator.start()
    endpoints = Endpoints(aggregator)
    wait_all_connected(endpoints, ["edge1", "edge2"])

    # Valid and invalid events interleaved on both edges.
    valid = {"edge1": 5, "edge2": 3}
    invalid = {"edge1": INVALID_EDGE1, "edge2": INVALID_EDGE2}
    for index, edge in enumerate(edges, start=1):
        name = f"edge{index}"
        payloads = [cloud_event(n, source=f"/{name}") for n in range(valid[name])]
        for position, (payload, _) in enumerate(invalid[name]):
            payloads.insert(2 * position + 1, payload)
        publish_all(edge.url, edge.cluster_id, CHANNEL, payloads)

    total_valid = sum(valid.values())

    def counted() -> bool:
        # The forwarded counter moves last for each ack (after the latency
        # histograms), so once it is complete, so is everything else.
        samples = endpoints.samples()
        forwarded = samples_named(samples, "aggregator_events_forwarded_total")
        refused = samples_named(samples, "aggregator_events_invalid_total")
        return sum(forwarded.values()) == total_valid and sum(refused.values()) == 4

    wait_until(counted, 30, interval=0.1, message="every event counted")
    assert center.channel_msg_count(CHANNEL) == total_valid

    samples = endpoints.samples()
    assert samples_named(samples, "aggregator_events_received_total") == {
        labels(source="edge1", channel=CHANNEL): 7.0,
        labels(source="edge2", channel=CHANNEL): 5.0,
    }
    assert samples_named(samples, "aggregator_events_forwarded_total") == {
        labels(source="edge1", channel=CHANNEL): 5.0,
        labels(source="edge2", channel=CHANNEL): 3.0,
    }
    assert samples_named(samples, "aggregator_events_invalid_total") == {
        labels(source="edge1", reason="not_json"): 1.0,
        labels(source="edge1", reason="not_object"): 1.0,
        labels(source="edge2", reason="missing_id"): 1.0,
        labels(source="edge2", reason="bad_time"): 1.0,
    }
    assert samples_named(samples, "aggregator_source_connected") == {
        labels(source="edge1"): 1.0,
        labels(source="edge2"): 1.0,
    }
    # A reconnect counter appears with the first reconnection; none yet.
    assert all(
        value == 0
        for value in samples_named(
            samples, "aggregator_source_reconnects_total"
        ).values()
    )
    assert samples[("aggregator_destination_connected", labels())] == 1.0
    assert samples[("aggregator_destination_outage_seconds", labels())] == 0.0
    assert samples[("aggregator_queue_depth", labels())] == 0.0
    assert samples[("aggregator_publish_seconds_count", labels())] == total_valid
    assert samples_named(samples, "aggregator_forward_lag_seconds_count") == {
        labels(source="edge1"): 5.0,
        labels(source="edge2"): 3.0,
    }

    for path in ("/healthz", "/readyz"):
        status, body = endpoints.health(path)
        assert status == 200, (path, body)
        assert body["alive"] is True
        assert body["ready"] is True
        assert body["destination"] == {
            "name": "center",
            "connected": True,
            "outage_seconds": 0.0,
        }
        assert body["queue_depth"] == 0
        states = {source["name"]: source for source in body["sources"]}
        assert set(states) == {"edge1", "edge2"}
        for state in states.values():
            assert state["connected"] is True
            assert state["subscribed"] is True
            assert state["last_error"] == ""
            assert state["reconnects"] == 0
            assert 0 <= state["seconds_since_last_message"] < 60
    assert endpoints.get("/nothing")[0] == 404

    # The center dies: not ready within seconds, but still alive.
    center.kill()
    killed = time.monotonic()
    wait_until(
        lambda: endpoints.health("/readyz")[0] == 503,
        OUTAGE_SEEN_WITHIN,
        interval=0.05,
        message="/readyz 503 after the center died",
    )
    readyz_after = time.monotonic() - killed
    wait_until(
        lambda: (
            endpoints.sample("aggregator_destination_connected") == 0
            and (endpoints.sample("aggregator_destination_outage_seconds") or 0) > 0
        ),
        OUTAGE_SEEN_WITHIN,
        interval=0.05,
        message="destination_connected 0 and an outage length",
    )
    print(f"/readyz turned 503 {readyz_after:.3f} s after the center was killed")
    status, body = endpoints.health("/healthz")
    assert status == 200, body
    assert body["alive"] is True
    assert body["ready"] is False
    assert body["destination"]["connected"] is False
    assert body["destination"]["outage_seconds"] > 0
    assert all(source["connected"] for source in body["sources"])
    status, body = endpoints.health("/readyz")
    assert status == 503
    assert body["ready"] is False

    # It comes back: ready again, and events flow again.
    center.restart()
    restarted = time.monotonic()
    wait_until(
        lambda: endpoints.health("/readyz")[0] == 200,
        30,
        interval=0.1,
        message="/readyz 200 after the center came back",
    )
    print(f"/readyz was 200 again {time.monotonic() - restarted:.2f} s after restart")
    assert endpoints.sample("aggregator_destination_connected") == 1.0
    assert endpoints.sample("aggregator_destination_outage_seconds") == 0.0
    publish_all(edges[0].url, "edge", CHANNEL, [cloud_event(99, source="/edge1")])
    wait_until(
        lambda: (
            endpoints.sample(
                "aggregator_events_forwarded_total", source="edge1", channel=CHANNEL
            )
            == 6
        ),
        30,
        interval=0.1,
        message="the event after the outage forwarded",
    )
    assert endpoints.health("/healthz")[0] == 200


@pytest.mark.timeout(90)
def test_readiness_notices_a_center_that_hangs_without_closing(
    center: StanServer,
    edges: list[StanServer],
    aggregator_factory: AggregatorFactory,
) -> None:
    """A frozen center keeps its sockets open: only pings can tell."""
    aggregator = aggregator_factory(
        {
            "destination": destination_entry(center),
            "sources": [source_entry("edge1", edges[0], [CHANNEL])],
        }
    )
    aggregator.start()
    endpoints = Endpoints(aggregator)
    wait_all_connected(endpoints, ["edge1"])

    center.freeze()
    frozen = time.monotonic()
    try:
        wait_until(
            lambda: endpoints.health("/readyz")[0] == 503,
            OUTAGE_SEEN_WITHIN,
            interval=0.05,
            message="/readyz 503 after the center froze",
        )
        print(
            f"/readyz turned 503 {time.monotonic() - frozen:.2f} s after the "
            "center froze (ping_interval 1 s, ping_max_out 2)"
        )
        assert endpoints.sample("aggregator_destination_connected") == 0
        assert endpoints.health("/healthz")[0] == 200
    finally:
        center.thaw()
    wait_until(
        lambda: endpoints.health("/readyz")[0] == 200,
        30,
        interval=0.1,
        message="/readyz 200 after the center thawed",
    )


@pytest.mark.timeout(90)
def test_an_unreachable_source_shows_in_the_health_body(
    center: StanServer,
    stan_server_factory: StanServerFactory,
    aggregator_factory: AggregatorFactory,
) -> None:
    up = stan_server_factory(cluster_id="edge", name="up")
    down = stan_server_factory(cluster_id="edge", name="down", start=False)
    aggregator = aggregator_factory(
        {
            "destination": destination_entry(center),
            "sources": [
                source_entry("up", up, [CHANNEL]),
                source_entry("down", down, [CHANNEL]),
            ],
        }
    )
    aggregator.start()
    endpoints = Endpoints(aggregator)

    def down_state() -> dict[str, Any] | None:
        state = endpoints.source_states()["down"]
        return state if state["last_error"] else None

    wait_all_connected(endpoints, ["up"])
    state = wait_until(down_state, 20, interval=0.1, message="an error for 'down'")
    assert state["connected"] is False
    assert state["subscribed"] is False
    assert state["seconds_since_last_message"] is None
    # The error names the server that cannot be reached.
    assert f"127.0.0.1:{down.port}" in state["last_error"], state
    assert endpoints.sample("aggregator_source_connected", source="down") == 0
    assert endpoints.sample("aggregator_source_connected", source="up") == 1
    # One edge down does not make the aggregator unready or dead.
    assert endpoints.health("/readyz")[0] == 200
    assert endpoints.health("/healthz")[0] == 200

    down.start()
    wait_all_connected(endpoints, ["up", "down"])
    state = endpoints.source_states()["down"]
    assert state["last_error"] == ""
    assert endpoints.sample("aggregator_source_connected", source="down") == 1


@pytest.mark.timeout(90)
def test_passwords_never_appear_in_logs_metrics_or_health(
    stan_server_factory: StanServerFactory,
    aggregator_factory: AggregatorFactory,
) -> None:
    center_password = "Center-Secret-7c41f0"
    edge_password = "Edge-Secret-93be2d"
    wrong_password = "Wrong-Secret-5a8e11"
    secrets = (center_password, edge_password, wrong_password)
    center = stan_server_factory(
        cluster_id="center", name="center", user="agg", password=center_password
    )
    edge = stan_server_factory(
        cluster_id="edge", name="edge", user="agg", password=edge_password
    )
    env = {
        "CENTER_PASSWORD": center_password,
        "EDGE_PASSWORD": edge_password,
        "WRONG_PASSWORD": wrong_password,
    }
    config = {
        "destination": destination_entry(
            center, url=f"nats://agg:${{CENTER_PASSWORD}}@127.0.0.1:{center.port}"
        ),
        "sources": [
            source_entry(
                "edge",
                edge,
                [CHANNEL],
                url=f"nats://agg:${{EDGE_PASSWORD}}@127.0.0.1:{edge.port}",
            ),
            source_entry(
                "intruder",
                edge,
                [CHANNEL],
                url=f"nats://agg:${{WRONG_PASSWORD}}@127.0.0.1:{edge.port}",
                client_id="agg-intruder",
            ),
        ],
    }
    aggregator = aggregator_factory(config, env=env)
    # The config file itself holds only the references.
    assert not any(secret in aggregator.config_path.read_text() for secret in secrets)
    check = subprocess.run(
        [
            sys.executable,
            str(REPO / "aggregator.py"),
            "--check",
            str(aggregator.config_path),
        ],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert "agg:***@" in check.stdout

    aggregator.start()
    endpoints = Endpoints(aggregator)
    wait_all_connected(endpoints, ["edge"])
    publish_all(edge.url, "edge", CHANNEL, [cloud_event(1), b"not an event"])
    wait_until(
        lambda: (
            endpoints.sample(
                "aggregator_events_forwarded_total", source="edge", channel=CHANNEL
            )
            == 1
        ),
        30,
        interval=0.1,
        message="the event forwarded",
    )
    # The wrong password is refused, and the refusal is shown without it.
    intruder = wait_until(
        lambda: endpoints.source_states()["intruder"]["last_error"],
        20,
        interval=0.1,
        message="the intruder's refusal",
    )
    # It names the server, with the password masked.
    assert f"agg:***@127.0.0.1:{edge.port}" in intruder, intruder

    # The edge dies: its errors (with its URL) reach the log and health body.
    edge.kill()
    wait_until(
        lambda: endpoints.source_states()["edge"]["last_error"],
        20,
        interval=0.1,
        message="the edge's error",
    )
    wait_until(
        lambda: "is unreachable" in aggregator.log_text(),
        20,
        interval=0.1,
        message="a retry logged",
    )

    shown = {
        "log": aggregator.log_text(),
        "/metrics": endpoints.metrics_text(),
        "/healthz": endpoints.get("/healthz")[2],
        "/readyz": endpoints.get("/readyz")[2],
    }
    assert "agg:***@" in shown["log"]
    for where, text in shown.items():
        for secret in secrets:
            assert secret not in text, f"a password appears in {where}"
