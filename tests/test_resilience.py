"""Faults that forwarders between NATS Streaming clusters meet, as tests.

Each scenario kills, restarts, freezes (SIGSTOP/SIGCONT) or silently cuts
off (a relay that stops passing bytes) real servers while the real
aggregator process runs, then counts what reached the center: every event
published to an edge must be there; duplicates are counted against what the
edges hold.

The soak and the ten-minute freeze run shortened by default; set
``RESILIENCE_FULL=1`` for their full length (see the README).
"""

import os
import random
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.support.aggregator import (
    AggregatorFactory,
    AggregatorProcess,
    destination_entry,
    source_entry,
)
from tests.support.chaos import (
    SteadyPublisher,
    Tally,
    health,
    metric_sum,
    metrics_text,
    tally,
)
from tests.support.events import cloud_event, publish_all, read_channel
from tests.support.factories import (
    NatsServerFactory,
    RelayFactory,
    StanServerFactory,
)
from tests.support.ports import free_port
from tests.support.servers import StanServer
from tests.support.waiting import assert_stays, wait_until

CHANNEL = "cyverse.events"
FULL = os.environ.get("RESILIENCE_FULL") == "1"
# Fast failure detection everywhere: 0.5 s pings, lost after ~1.5 s.
FAST = {"ping_interval": 0.5, "ping_max_out": 2, "connect_timeout": 1}


def fast_source(name: str, edge: StanServer, **overrides: Any) -> dict[str, Any]:
    return source_entry(name, edge, [CHANNEL], **{**FAST, **overrides})


def fast_destination(center: StanServer, **overrides: Any) -> dict[str, Any]:
    return destination_entry(center, **{**FAST, **overrides})


def logged(aggregator: AggregatorProcess, text: str, **fields: Any) -> int:
    """How many log records contain ``text`` and carry ``fields``."""
    return sum(
        1
        for record in aggregator.records()
        if text in str(record.get("message", ""))
        and all(record.get(key) == value for key, value in fields.items())
    )


def stream_through_two_edges(
    center: StanServer,
    edges: list[StanServer],
    aggregator_factory: AggregatorFactory,
    *,
    ack_wait: int,
    count: int,
    rate: float,
) -> tuple[AggregatorProcess, list[SteadyPublisher]]:
    """An aggregator on two edges, and a steady publisher on each, flowing."""
    aggregator = aggregator_factory(
        {
            "destination": fast_destination(center, max_outage=60),
            "sources": [
                fast_source(f"edge{i}", edge, ack_wait=ack_wait)
                for i, edge in enumerate(edges, 1)
            ],
        }
    )
    aggregator.start()
    aggregator.wait_ready(["edge1", "edge2"])
    publishers = [
        SteadyPublisher(edge, CHANNEL, count=count, rate=rate, tag=f"e{i}").start()
        for i, edge in enumerate(edges, 1)
    ]
    return aggregator, publishers


def tally_published(
    center: StanServer, edges: list[StanServer], publishers: list[SteadyPublisher]
) -> Tally:
    """Wait for the publishers, then count what reached the center."""
    for publisher in publishers:
        publisher.join(60)
    sent = {payload for p in publishers for payload in p.sent}
    return tally(center, edges, CHANNEL, sent)


# --- 1. a network blip to an edge ------------------------------------------


@pytest.mark.timeout(120)
def test_a_network_blip_reconnects_with_the_same_client_id_within_a_heartbeat(
    center: StanServer,
    stan_server_factory: StanServerFactory,
    relay_factory: RelayFactory,
    aggregator_factory: AggregatorFactory,
) -> None:
    # The server gives up on a silent client only after ~25 s: the blip
    # below is shorter, so the server still holds the old session.
    edge = stan_server_factory(
        cluster_id="edge", name="edge", hb_interval="10s", hb_timeout="5s"
    )
    relay = relay_factory(edge.port)
    source = fast_source("edge1", edge, url=relay.url_for())
    aggregator = aggregator_factory(
        {"destination": fast_destination(center), "sources": [source]}
    )
    aggregator.start()
    aggregator.wait_ready(["edge1"])
    before = [cloud_event(n, source="/before") for n in range(5)]
    publish_all(edge.url, "edge", CHANNEL, before)
    wait_until(lambda: center.channel_msg_count(CHANNEL) == 5, 10, message="before")

    relay.pause("both")
    aggregator.wait_for_log(
        lambda r: r.get("source") == "edge1" and "lost its connection" in r["message"],
        0.5 * 3 + 3,
        "the blip noticed by the client pings",
    )
    relay.resume()
    resumed = time.monotonic()
    after = [cloud_event(n, source="/after") for n in range(5)]
    publish_all(edge.url, "edge", CHANNEL, after)
    wait_until(lambda: center.channel_msg_count(CHANNEL) == 10, 10, message="after")
    recovery = time.monotonic() - resumed

    assert recovery < 10, "forwarding again within one server heartbeat interval"
    assert sorted(read_channel(center.url, "center", CHANNEL, 10)) == sorted(
        before + after
    )
    assert "already registered" not in aggregator.log_text()
    server_log = edge.log_path.read_text()
    assert "Connect failed; already connected" not in server_log
    # The old session was closed by the aggregator, then the new one opened.
    client_lines = [
        line for line in server_log.splitlines() if "[Client:agg-edge1]" in line
    ]
    closed = [i for i, line in enumerate(client_lines) if "] Closed" in line]
    connected = [i for i, line in enumerate(client_lines) if "] Connected" in line]
    assert closed, "the old session is closed first"
    assert connected[-1] > closed[-1]
    print(f"blip recovery: {recovery:.2f} s after the link came back")


# --- 2. NATS answers, the streaming layer does not -------------------------


@pytest.mark.timeout(120)
def test_an_edge_frozen_after_a_restart_is_healthy_only_once_subscribed(
    center: StanServer,
    stan_server_factory: StanServerFactory,
    aggregator_factory: AggregatorFactory,
) -> None:
    edge = stan_server_factory(cluster_id="edge", name="edge")
    port = free_port()
    aggregator = aggregator_factory(
        {
            "destination": fast_destination(center),
            "sources": [fast_source("edge1", edge)],
            "http": {"listen": f"127.0.0.1:{port}"},
        }
    )
    aggregator.start()
    aggregator.wait_ready(["edge1"])

    edge.kill()
    edge.restart()
    meanwhile = [cloud_event(n, source="/meanwhile") for n in range(20)]
    publish_all(edge.url, "edge", CHANNEL, meanwhile)
    edge.freeze()
    frozen_at = time.monotonic()

    def edge_state() -> dict[str, Any]:
        state: dict[str, Any] = health(port)[1]["sources"][0]
        return state

    wait_until(lambda: not edge_state()["subscribed"], 10, message="edge reported down")
    assert_stays(
        lambda: not edge_state()["subscribed"],
        max(0.0, 10 - (time.monotonic() - frozen_at)),
        interval=0.2,
        message="a frozen edge is never reported subscribed",
    )
    edge.thaw()
    wait_until(lambda: edge_state()["subscribed"], 20, message="subscribed again")
    later = [cloud_event(n, source="/later") for n in range(5)]
    publish_all(edge.url, "edge", CHANNEL, later)
    result = tally(center, [edge], CHANNEL, set(meanwhile + later))
    print(f"frozen edge: duplicates {result.duplicates}")


@pytest.mark.timeout(120)
def test_a_frozen_streaming_layer_behind_a_live_nats_port_is_retried(
    center: StanServer,
    stan_server_factory: StanServerFactory,
    nats_server_factory: NatsServerFactory,
    aggregator_factory: AggregatorFactory,
) -> None:
    nats = nats_server_factory()
    edge = stan_server_factory(cluster_id="edge", name="edge", nats_url=nats.url)
    aggregator = aggregator_factory(
        {"destination": fast_destination(center), "sources": [fast_source("e", edge)]}
    )
    edge.freeze()
    aggregator.start()
    aggregator.wait_for_log(
        lambda r: r.get("source") == "e" and "unreachable" in r["message"],
        10,
        "the frozen streaming layer reported",
    )
    edge.thaw()
    aggregator.wait_ready(["e"])
    events = [cloud_event(n, source="/e") for n in range(10)]
    publish_all(edge.url, "edge", CHANNEL, events)
    assert sorted(read_channel(center.url, "center", CHANNEL, 10)) == sorted(events)


# --- 3. the center down for a minute ---------------------------------------


@pytest.mark.timeout(240)
def test_center_down_for_a_minute_loses_nothing_and_acks_nothing_early(
    center: StanServer,
    stan_server_factory: StanServerFactory,
    aggregator_factory: AggregatorFactory,
) -> None:
    edge = stan_server_factory(cluster_id="edge", name="edge")
    aggregator = aggregator_factory(
        {
            "destination": fast_destination(center, max_outage=120),
            "sources": [fast_source("edge1", edge, ack_wait=10)],
        }
    )
    aggregator.start()
    aggregator.wait_ready(["edge1"])
    warmup = [cloud_event(n, source="/warmup") for n in range(10)]
    publish_all(edge.url, "edge", CHANNEL, warmup)
    wait_until(lambda: center.channel_msg_count(CHANNEL) == 10, 10, message="warmup")

    def acked_at_edge() -> int:
        [sub] = edge.subscriptions(CHANNEL)
        return int(sub["last_sent"]) - int(sub["pending_count"])

    wait_until(lambda: acked_at_edge() == 10, 10, message="warmup acked")
    center.kill()
    down_at = time.monotonic()
    events = [cloud_event(n, source="/outage") for n in range(1000)]
    publish_all(edge.url, "edge", CHANNEL, events)
    assert_stays(
        lambda: acked_at_edge() == 10,
        60 - (time.monotonic() - down_at),
        interval=0.5,
        message="no edge message is acked while the center is down",
    )
    center.restart()
    result = tally(center, [edge], CHANNEL, set(warmup + events))
    wait_until(lambda: acked_at_edge() == 1010, 30, message="all acked at the edge")
    print(f"center down 60 s: duplicates {result.duplicates}")
    assert result.duplicates == 0


# --- 4. the center frozen longer than the source ack wait ------------------


@pytest.mark.timeout(180)
def test_center_frozen_longer_than_the_ack_wait_republishes_no_redelivery(
    center: StanServer,
    edges: list[StanServer],
    aggregator_factory: AggregatorFactory,
) -> None:
    aggregator, publishers = stream_through_two_edges(
        center, edges, aggregator_factory, ack_wait=2, count=600, rate=50
    )
    wait_until(lambda: center.channel_msg_count(CHANNEL) >= 200, 30, message="flow")
    center.freeze()
    # Three times the ack wait: the edges redeliver everything unacked.
    assert_stays(aggregator.running, 6, message="aggregator alive during the freeze")
    center.thaw()
    result = tally_published(center, edges, publishers)
    redeliveries = aggregator.log_text().count("ignoring redelivery")
    print(
        f"center frozen 6 s: duplicates {result.duplicates}, "
        f"redeliveries recognised {redeliveries}"
    )
    assert redeliveries > 0, "the edges did redeliver during the freeze"
    assert result.duplicates <= 5


# --- 5. the center killed with the window full -----------------------------


@pytest.mark.timeout(180)
def test_center_killed_with_the_window_full_exits_1_within_max_outage(
    center: StanServer,
    stan_server_factory: StanServerFactory,
    aggregator_factory: AggregatorFactory,
) -> None:
    edge = stan_server_factory(cluster_id="edge", name="edge")
    backlog = [cloud_event(n, source="/backlog", size=1024) for n in range(5000)]
    publish_all(edge.url, "edge", CHANNEL, backlog)
    config = {
        "destination": fast_destination(center, max_outage=5),
        "sources": [fast_source("edge1", edge)],
    }
    aggregator = aggregator_factory(config)
    aggregator.start()
    wait_until(lambda: center.channel_msg_count(CHANNEL) >= 300, 30, message="drain")
    center.kill()
    killed = time.monotonic()
    status = aggregator.wait(timeout=5 + 15)
    took = time.monotonic() - killed
    assert status == 1
    assert took < 5 + 10
    [giving_up] = [r for r in aggregator.records() if "giving up" in r["message"]]
    assert giving_up["level"] == "ERROR"
    assert "max_outage" in giving_up["message"]

    center.restart()
    rerun = aggregator_factory(config)
    rerun.start()
    result = tally(center, [edge], CHANNEL, set(backlog))
    print(
        f"center killed mid-drain: exit 1 after {took:.1f} s; "
        f"duplicates after the rerun {result.duplicates}"
    )


# --- 6. a half-open link ---------------------------------------------------


@pytest.mark.timeout(180)
def test_a_half_open_edge_link_is_detected_and_rebuilt(
    center: StanServer,
    stan_server_factory: StanServerFactory,
    relay_factory: RelayFactory,
    aggregator_factory: AggregatorFactory,
) -> None:
    edge = stan_server_factory(cluster_id="edge", name="edge")
    relay = relay_factory(edge.port)
    aggregator = aggregator_factory(
        {
            "destination": fast_destination(center),
            "sources": [fast_source("edge1", edge, url=relay.url_for())],
        }
    )
    aggregator.start()
    aggregator.wait_ready(["edge1"])
    relay.pause("downstream")
    cut_at = time.monotonic()
    aggregator.wait_for_log(
        lambda r: r.get("source") == "edge1" and "lost its connection" in r["message"],
        0.5 * 3 + 3,
        "the half-open link detected by the pings",
    )
    detected = time.monotonic() - cut_at
    during = [cloud_event(n, source="/during") for n in range(50)]
    publish_all(edge.url, "edge", CHANNEL, during)
    assert_stays(
        lambda: center.channel_msg_count(CHANNEL) == 0,
        30 - (time.monotonic() - cut_at),
        interval=0.5,
        message="nothing passes while the link is half-open",
    )
    relay.resume("downstream")
    resumed = time.monotonic()
    tally(center, [edge], CHANNEL, set(during))
    print(
        f"half-open link: detected after {detected:.1f} s; "
        f"forwarding again {time.monotonic() - resumed:.1f} s after it healed"
    )


# --- 7 and 8. junk, and events CloudEvents 1.0 forbids ---------------------


def _junk() -> dict[str, bytes]:
    rng = random.Random(7)
    deep = b'{"specversion":"1.0","id":"d","source":"/s","type":"t","data":'
    deep += b"[" * 100_000 + b"]" * 100_000 + b"}"
    huge = b'{"specversion":"1.0","id":"h","source":"/s","type":"t","data":"'
    huge += b"x" * 10_000_000 + b'"}'
    return {
        "empty": b"",
        "hello": b"hello",
        "empty object": b"{}",
        "array": b"[]",
        "null": b"null",
        "bad base64": b'{"specversion":"1.0","id":"b","source":"/s","type":"t",'
        b'"data_base64":"%%%"}',
        "random MiB": rng.randbytes(1024 * 1024),
        "invalid utf-8": b'{"specversion":"1.0","id":"\xff\xfe","source":"/s"}',
        "100k levels": deep,
        "10 MB string": huge,
        "extension event_source": b'{"specversion":"1.0","id":"e","source":"/s",'
        b'"type":"t","event_source":"legacy"}',
        "extension Source2": b'{"specversion":"1.0","id":"c","source":"/s",'
        b'"type":"t","Source2":"x"}',
        "zone name": b'{"specversion":"1.0","id":"z","source":"/s","type":"t",'
        b'"time":"2026-12-03T10:00:00 Europe/Paris"}',
    }


@pytest.mark.timeout(180)
def test_junk_never_forwarded_never_stalls_and_is_acked(
    center: StanServer,
    stan_server_factory: StanServerFactory,
    aggregator_factory: AggregatorFactory,
    tmp_path: Path,
) -> None:
    nats_config = tmp_path / "big.conf"
    nats_config.write_text("max_payload: 16777216\n")
    edge = stan_server_factory(
        cluster_id="edge", name="edge", extra_args=["--config", str(nats_config)]
    )
    port = free_port()
    config = {
        "destination": fast_destination(center),
        "sources": [fast_source("edge1", edge)],
        "http": {"listen": f"127.0.0.1:{port}"},
    }
    aggregator = aggregator_factory(config)
    aggregator.start()
    aggregator.wait_ready(["edge1"])

    junk = _junk()
    payloads: list[bytes] = []
    valid: list[bytes] = []
    for number, bad in enumerate(junk.values()):
        event = cloud_event(number, source="/neighbour")
        valid.append(event)
        payloads += [event, bad]
    tail = [cloud_event(100 + n, source="/after") for n in range(10)]
    valid += tail
    publish_all(edge.url, "edge", CHANNEL, payloads + tail, window=4)

    forwarded = read_channel(center.url, "center", CHANNEL, len(valid), 60)
    assert sorted(forwarded) == sorted(valid)
    wait_until(
        lambda: metric_sum(port, "aggregator_events_invalid_total") == len(junk),
        20,
        message="every junk message counted",
    )
    expected_reasons = {
        "not_json": 2,
        "missing_specversion": 1,
        "not_object": 2,
        "bad_data_base64": 1,
        "not_utf8": 2,
        "too_deep": 1,
        "too_large": 1,
        "bad_extension_name": 2,
        "bad_time": 1,
    }
    for reason, count in expected_reasons.items():
        got = metric_sum(port, "aggregator_events_invalid_total", reason=reason)
        assert got == count, (reason, metrics_text(port))

    # All acked: after a restart nothing comes back.
    assert aggregator.terminate() == 0
    again = aggregator_factory(config)
    again.start()
    again.wait_ready(["edge1"])
    assert_stays(
        lambda: center.channel_msg_count(CHANNEL) == len(valid),
        3,
        message="nothing redelivered",
    )
    [subscription] = edge.subscriptions(CHANNEL)
    assert subscription["pending_count"] == 0


# --- 9. a wrong cluster ID -------------------------------------------------


@pytest.mark.timeout(120)
def test_an_edge_with_a_wrong_cluster_id_is_retried_while_the_other_flows(
    center: StanServer,
    edges: list[StanServer],
    aggregator_factory: AggregatorFactory,
) -> None:
    good, bad = edges
    aggregator = aggregator_factory(
        {
            "destination": fast_destination(center),
            "sources": [
                fast_source("good", good),
                fast_source("bad", bad, cluster_id="no-such-cluster"),
            ],
        }
    )
    events = [cloud_event(n, source="/good") for n in range(10)]
    publish_all(good.url, "edge", CHANNEL, events)
    started = time.monotonic()
    aggregator.start()
    read_channel(center.url, "center", CHANNEL, 10, timeout=15)
    print(f"the good edge forwarded {time.monotonic() - started:.2f} s after start")
    wait_until(
        lambda: logged(aggregator, "unreachable", source="bad") >= 3,
        20,
        message="retries of the bad edge",
    )
    hints = [
        r["message"]
        for r in aggregator.records()
        if r.get("source") == "bad" and "unreachable" in r["message"]
    ]
    assert all("'no-such-cluster' may be wrong" in hint for hint in hints)
    delays = [
        float(hint.rsplit("retrying in ", 1)[1].split(" s", 1)[0]) for hint in hints
    ]
    assert delays[1] > delays[0] * 1.2, f"backoff grows: {delays}"


@pytest.mark.timeout(60)
def test_a_wrong_center_cluster_id_exits_1_after_max_outage_with_the_hint(
    center: StanServer,
    edges: list[StanServer],
    aggregator_factory: AggregatorFactory,
) -> None:
    aggregator = aggregator_factory(
        {
            "destination": fast_destination(
                center, cluster_id="not-the-center", max_outage=3
            ),
            "sources": [fast_source("edge1", edges[0])],
        }
    )
    aggregator.start()
    assert aggregator.wait(timeout=3 + 15) == 1
    [giving_up] = [r for r in aggregator.records() if "giving up" in r["message"]]
    assert "'not-the-center' may be wrong" in giving_up["message"]


# --- 10. SIGTERM mid-stream ------------------------------------------------


@pytest.mark.timeout(180)
def test_sigterm_mid_stream_loses_nothing_duplicates_within_the_window(
    center: StanServer,
    edges: list[StanServer],
    aggregator_factory: AggregatorFactory,
) -> None:
    config = {
        "destination": fast_destination(center),
        "sources": [
            fast_source(f"edge{i}", edge, max_in_flight=20)
            for i, edge in enumerate(edges, 1)
        ],
    }
    first = aggregator_factory(config)
    first.start()
    first.wait_ready(["edge1", "edge2"])
    publishers = [
        SteadyPublisher(edge, CHANNEL, count=1500, rate=300, tag=f"e{i}").start()
        for i, edge in enumerate(edges, 1)
    ]
    wait_until(lambda: center.channel_msg_count(CHANNEL) >= 500, 30, message="flow")
    assert first.terminate() == 0
    messages = [str(r["message"]) for r in first.records()]
    stopping = next(i for i, m in enumerate(messages) if "stopping on request" in m)
    waited = next(i for i, m in enumerate(messages) if "destination's acks" in m)
    closed = [
        i for i, m in enumerate(messages) if m.startswith("source ") and "closed" in m
    ]
    assert stopping < waited < min(closed)

    second = aggregator_factory(config)
    second.start()
    for publisher in publishers:
        publisher.join(60)
    sent = {payload for p in publishers for payload in p.sent}
    result = tally(center, edges, CHANNEL, sent)
    print(f"SIGTERM mid-stream: duplicates {result.duplicates}")
    assert result.duplicates <= 2 * 20


# --- 11. an edge frozen for ten minutes ------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_long_frozen_edge_keeps_memory_threads_and_subscriptions_flat(
    center: StanServer,
    stan_server_factory: StanServerFactory,
    nats_server_factory: NatsServerFactory,
    aggregator_factory: AggregatorFactory,
) -> None:
    freeze_for = 600 if FULL else 40
    nats = nats_server_factory()
    edge = stan_server_factory(cluster_id="edge", name="edge", nats_url=nats.url)
    source = fast_source(
        "edge1",
        edge,
        reconnect={"initial_delay": 0.2, "max_delay": 5, "jitter": 0.1},
    )
    aggregator = aggregator_factory(
        {"destination": fast_destination(center), "sources": [source]}
    )
    aggregator.start()
    aggregator.wait_ready(["edge1"])
    process = psutil.Process(aggregator.pid)

    def nats_load() -> tuple[int, int]:
        varz = nats.varz()
        return int(varz["connections"]), int(varz["subscriptions"])

    baseline_load = nats_load()
    edge.freeze()
    samples: list[tuple[float, int, int, tuple[int, int]]] = []
    deadline = time.monotonic() + freeze_for
    while time.monotonic() < deadline:
        samples.append(
            (
                time.monotonic(),
                process.memory_info().rss,
                process.num_threads(),
                nats_load(),
            )
        )
        assert_stays(
            aggregator.running, min(2.0, max(0.0, deadline - time.monotonic()))
        )
    edge.thaw()
    wait_until(
        lambda: logged(aggregator, "subscribed to", source="edge1") >= 2,
        30,
        message="subscribed again after the thaw",
    )
    events = [cloud_event(n, source="/thawed") for n in range(10)]
    publish_all(edge.url, "edge", CHANNEL, events)
    read_channel(center.url, "center", CHANNEL, 10, timeout=30)

    settled = [s for s in samples if s[0] > samples[0][0] + 10]
    rss = [s[1] for s in settled]
    threads = {s[2] for s in settled}
    loads = {s[3] for s in settled}
    attempts = logged(aggregator, "is unreachable", source="edge1")
    print(
        f"edge frozen {freeze_for} s: rss {min(rss) / 2**20:.1f}-"
        f"{max(rss) / 2**20:.1f} MiB, threads {sorted(threads)}, "
        f"nats connections/subscriptions {sorted(loads)} "
        f"(before {baseline_load}), attempts logged {attempts}"
    )
    assert max(rss) - min(rss) < 8 * 2**20, "resident memory stays flat"
    assert max(threads) - min(threads) <= 2, "thread count stays flat"
    assert max(load[1] for load in loads) <= baseline_load[1] + 10
    # One line per backoff step: with a 5 s cap, about freeze_for / 5 lines.
    assert attempts <= freeze_for / 5 + 10


# --- 12. a password in an edge URL -----------------------------------------


@pytest.mark.timeout(120)
def test_an_edge_password_appears_in_no_log_error_or_metric(
    center: StanServer,
    stan_server_factory: StanServerFactory,
    aggregator_factory: AggregatorFactory,
) -> None:
    edge = stan_server_factory(
        cluster_id="edge", name="edge", user="fwd", password="S3cret"
    )
    port = free_port()
    aggregator = aggregator_factory(
        {
            "destination": fast_destination(center),
            "sources": [fast_source("edge1", edge)],
            "http": {"listen": f"127.0.0.1:{port}"},
            "logging": {"level": "DEBUG", "format": "json"},
        }
    )
    assert "S3cret" in edge.url
    aggregator.start()
    aggregator.wait_ready(["edge1"])
    edge.kill()
    aggregator.wait_for_log(
        lambda r: r.get("source") == "edge1" and "unreachable" in r["message"],
        10,
        "the bounced edge retried",
    )
    edge.restart()
    publish_all(edge.url, "edge", CHANNEL, [cloud_event(1), b"not an event"])
    read_channel(center.url, "center", CHANNEL, 1)
    wait_until(
        lambda: "refused an invalid event" in aggregator.log_text(), 10, message="log"
    )
    scraped = metrics_text(port)
    body = str(health(port)[1])
    assert aggregator.terminate() == 0
    for text, where in (
        (aggregator.log_text(), "log"),
        (scraped, "metrics"),
        (body, "health"),
    ):
        assert "S3cret" not in text, where
    assert "fwd:***@" in aggregator.log_text()


# --- 13. the soak ----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_soak_random_faults_lose_nothing(
    center: StanServer,
    edges: list[StanServer],
    aggregator_factory: AggregatorFactory,
) -> None:
    per_edge = 25_000 if FULL else 3_000
    rate = 100.0 if FULL else 150.0
    config = {
        "destination": fast_destination(center, max_outage=60),
        "sources": [fast_source(f"edge{i}", e) for i, e in enumerate(edges, 1)],
    }
    aggregators = [aggregator_factory(config)]
    aggregators[0].start()
    aggregators[0].wait_ready(["edge1", "edge2"])
    publishers = [
        SteadyPublisher(edge, CHANNEL, count=per_edge, rate=rate, tag=f"e{i}").start()
        for i, edge in enumerate(edges, 1)
    ]
    rng = random.Random(int(os.environ.get("SOAK_SEED", "1")))
    duration = per_edge / rate
    kills_at = sorted(rng.uniform(0.2, 0.8) * duration for _ in range(2))
    events: list[str] = []
    started = time.monotonic()
    stop = threading.Event()

    def chaos() -> None:
        # Every server gets its turn, in a random order each round.
        rotation: list[StanServer] = []
        while not stop.wait(rng.uniform(2, 5)):
            if not rotation:
                rotation = rng.sample([center, *edges], 3)
            server = rotation.pop()
            outage = rng.uniform(1, 8)
            if rng.random() < 0.5:
                events.append(f"kill {server.name} {outage:.1f}s")
                server.kill()
                stop.wait(outage)
                server.restart()
            else:
                events.append(f"freeze {server.name} {outage:.1f}s")
                server.freeze()
                stop.wait(outage)
                server.thaw()

    chaos_thread = threading.Thread(target=chaos, name="chaos")
    chaos_thread.start()
    try:
        for kill_at in kills_at:
            time.sleep(max(0.0, started + kill_at - time.monotonic()))
            events.append("SIGKILL aggregator")
            aggregators[-1].kill()
            aggregators.append(aggregator_factory(config))
            aggregators[-1].start()
        for publisher in publishers:
            publisher.join(duration * 4 + 120)
    finally:
        stop.set()
        chaos_thread.join(60)
    for server in (center, *edges):
        if server.frozen:
            server.thaw()
    sent = {payload for p in publishers for payload in p.sent}
    result = tally(center, edges, CHANNEL, sent, timeout=300)
    print(
        f"soak: {len(sent)} events, faults: {events}; "
        f"duplicates {result.duplicates} ({result.at_center} at the center, "
        f"{result.at_edges} at the edges)"
    )
    assert aggregators[-1].running()


# --- 3b. the center killed and restarted under a steady stream -------------


@pytest.mark.timeout(180)
def test_center_killed_and_restarted_under_load_adds_few_duplicates(
    center: StanServer,
    edges: list[StanServer],
    aggregator_factory: AggregatorFactory,
) -> None:
    """Publishes the center stored but never acked are found, not repeated."""
    aggregator, publishers = stream_through_two_edges(
        center, edges, aggregator_factory, ack_wait=3, count=1000, rate=100
    )
    wait_until(lambda: center.channel_msg_count(CHANNEL) >= 300, 30, message="flow")
    center.kill()
    assert_stays(aggregator.running, 6, message="alive while the center is down")
    center.restart()
    result = tally_published(center, edges, publishers)
    print(f"center killed for 6 s under load: duplicates {result.duplicates}")
    assert result.duplicates <= 5


@pytest.mark.timeout(120)
def test_max_outage_counts_from_the_centers_last_sign_of_life(
    center: StanServer,
    edges: list[StanServer],
    aggregator_factory: AggregatorFactory,
) -> None:
    """Detection takes a few pings; the outage clock does not wait for it."""
    aggregator = aggregator_factory(
        {
            "destination": destination_entry(
                center, max_outage=10, ping_interval=2, ping_max_out=2
            ),
            "sources": [fast_source("edge1", edges[0])],
        }
    )
    aggregator.start()
    aggregator.wait_ready(["edge1"])
    center.freeze()
    frozen_at = time.monotonic()
    assert aggregator.wait(timeout=40) == 1
    took = time.monotonic() - frozen_at
    center.thaw()
    print(f"frozen center: exit 1 after {took:.1f} s with max_outage 10 s")
    # The pings need about 6 s to notice; counted from then, the exit would
    # come after 16 s. Counted from the last word of the server: about 10 s.
    assert took < 10 + 3
