"""The aggregator end to end: real servers, the real process, real signals."""

import json
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support.aggregator import (
    REPO,
    AggregatorFactory,
    destination_entry,
    source_entry,
)
from tests.support.events import (
    cloud_event,
    count_duplicates,
    publish_all,
    read_channel,
)
from tests.support.factories import StanServerFactory
from tests.support.servers import StanServer
from tests.support.waiting import wait_until

CHANNEL = "cyverse.events"
INVALID = [b"", b"hello", b"{}", b"[]", b"null", b'{"specversion":"1.0"}']


def two_edge_config(
    center: StanServer, edges: list[StanServer], **destination: Any
) -> dict[str, Any]:
    return {
        "destination": destination_entry(center, **destination),
        "sources": [
            source_entry(f"edge{index}", edge, [CHANNEL])
            for index, edge in enumerate(edges, start=1)
        ],
    }


def center_messages(
    center: StanServer, expected: int, channel: str = CHANNEL
) -> list[bytes]:
    wait_until(
        lambda: center.channel_msg_count(channel) >= expected,
        60,
        interval=0.1,
        message=f"{expected} messages at the center",
    )
    return read_channel(center.url, center.cluster_id, channel, expected)


@pytest.mark.timeout(120)
def test_valid_events_from_two_edges_arrive_once_and_unchanged_invalid_never(
    center: StanServer, edges: list[StanServer], aggregator_factory: AggregatorFactory
) -> None:
    aggregator = aggregator_factory(two_edge_config(center, edges))
    aggregator.start()
    aggregator.wait_ready(["edge1", "edge2"])

    expected: list[bytes] = []
    for index, edge in enumerate(edges, start=1):
        payloads: list[bytes] = []
        for number in range(300):
            event = cloud_event(number, source=f"/edge{index}", size=1024)
            payloads.append(event)
            expected.append(event)
            if number % 50 == 0:
                payloads.append(INVALID[(number // 50) % len(INVALID)])
        publish_all(edge.url, edge.cluster_id, CHANNEL, payloads)

    received = center_messages(center, len(expected))
    assert sorted(received) == sorted(expected)
    assert count_duplicates(received) == 0
    for index in (1, 2):
        # Per source channel the order is kept.
        mine = [p for p in received if f'"source":"/edge{index}"'.encode() in p]
        assert mine == [p for p in expected if f'"source":"/edge{index}"'.encode() in p]
    # Nothing more arrives: the invalid ones were dropped, not delayed.
    assert center.channel_msg_count(CHANNEL) == len(expected)
    refused = [r for r in aggregator.records() if "refused" in r["message"]]
    # Each refusal is recorded with its reason; identical warnings are
    # rate-limited, the rest go to DEBUG.
    assert len(refused) == 12
    assert all(r["reason"] and r["channel"] == CHANNEL for r in refused)
    warnings = [r for r in refused if r["level"] == "WARNING"]
    assert {r["source"] for r in warnings} == {"edge1", "edge2"}
    assert {r["reason"] for r in warnings} >= {"not_json", "not_object"}


@pytest.mark.timeout(120)
def test_forwarded_payload_is_byte_for_byte_on_the_configured_channel(
    center: StanServer, edges: list[StanServer], aggregator_factory: AggregatorFactory
) -> None:
    config = two_edge_config(center, edges[:1], channel="central.events")
    aggregator = aggregator_factory(config)
    aggregator.start()
    aggregator.wait_ready(["edge1"])
    # Unusual but valid bytes: unicode, escapes, a big number, spaces.
    event = json.dumps(
        {
            "specversion": "1.0",
            "id": "ü-1",
            "source": "urn:x",
            "type": "t",
            "data": {"text": 'a\u2028b \\ "q"', "n": 12345678901234567890},
        },
        ensure_ascii=False,
        indent=2,
    ).encode()
    publish_all(edges[0].url, "edge", CHANNEL, [event])
    assert center_messages(center, 1, channel="central.events") == [event]
    assert center.channel_msg_count(CHANNEL) == 0


@pytest.mark.timeout(180)
def test_restarted_aggregator_resumes_its_durables_with_nothing_lost(
    center: StanServer, edges: list[StanServer], aggregator_factory: AggregatorFactory
) -> None:
    config = two_edge_config(center, edges)
    first = aggregator_factory(config)
    first.start()
    first.wait_ready(["edge1", "edge2"])

    expected: list[bytes] = []
    publishing_done = threading.Event()

    def publish_stream() -> None:
        for batch in range(20):
            for index, edge in enumerate(edges, start=1):
                payloads = [
                    cloud_event(batch * 100 + n, source=f"/edge{index}")
                    for n in range(100)
                ]
                expected.extend(payloads)
                publish_all(edge.url, "edge", CHANNEL, payloads)
        publishing_done.set()

    publisher = threading.Thread(target=publish_stream, name="publisher")
    publisher.start()
    wait_until(
        lambda: center.channel_msg_count(CHANNEL) >= 500, 60, message="mid-stream"
    )
    assert first.terminate() == 0

    second = aggregator_factory(config)
    second.start()
    publisher.join(120)
    assert publishing_done.is_set()
    received = center_messages(center, len(expected))
    assert set(received) == set(expected), "every event arrives after the restart"
    # A clean stop acks what the center confirmed: duplicates stay within
    # the window of publishes in flight at the moment of the signal.
    assert count_duplicates(received) <= 256


@pytest.mark.timeout(120)
def test_an_edge_down_at_start_is_picked_up_while_the_other_flows(
    center: StanServer,
    stan_server_factory: StanServerFactory,
    aggregator_factory: AggregatorFactory,
) -> None:
    up = stan_server_factory(cluster_id="edge", name="up")
    late = stan_server_factory(cluster_id="edge", name="late", start=False)
    aggregator = aggregator_factory(two_edge_config(center, [up, late]))
    aggregator.start()
    aggregator.wait_ready(["edge1"])

    early = [cloud_event(n, source="/up") for n in range(20)]
    publish_all(up.url, "edge", CHANNEL, early)
    assert sorted(center_messages(center, 20)) == sorted(early)
    aggregator.wait_for_log(
        lambda r: r.get("source") == "edge2" and "unreachable" in r["message"],
        10,
        "edge2 reported unreachable",
    )

    late.start()
    aggregator.wait_ready(["edge1", "edge2"])
    later = [cloud_event(n, source="/late") for n in range(20)]
    publish_all(late.url, "edge", CHANNEL, later)
    assert sorted(center_messages(center, 40)) == sorted(early + later)


@pytest.mark.timeout(120)
def test_center_down_longer_than_max_outage_exits_1_and_a_later_run_delivers(
    center: StanServer, edges: list[StanServer], aggregator_factory: AggregatorFactory
) -> None:
    config = two_edge_config(center, edges[:1], max_outage=4)
    aggregator = aggregator_factory(config)
    aggregator.start()
    aggregator.wait_ready(["edge1"])
    before = [cloud_event(n, source="/before") for n in range(10)]
    publish_all(edges[0].url, "edge", CHANNEL, before)
    center_messages(center, 10)

    center.kill()
    during = [cloud_event(n, source="/during") for n in range(50)]
    publish_all(edges[0].url, "edge", CHANNEL, during)
    assert aggregator.wait(timeout=4 + 15) == 1
    giving_up = [r for r in aggregator.records() if "giving up" in r["message"]]
    assert giving_up
    assert "max_outage" in giving_up[0]["message"]

    center.restart()
    rerun = aggregator_factory(config)
    rerun.start()
    received = center_messages(center, 60)
    assert set(received) == set(before + during)


@pytest.mark.timeout(60)
def test_sigterm_stops_cleanly_with_exit_0_and_keeps_the_durable(
    center: StanServer, edges: list[StanServer], aggregator_factory: AggregatorFactory
) -> None:
    aggregator = aggregator_factory(two_edge_config(center, edges[:1]))
    aggregator.start()
    aggregator.wait_ready(["edge1"])
    assert aggregator.terminate() == 0
    # Closed, not unsubscribed: the durable still exists, offline.
    subscriptions = edges[0].subscriptions(CHANNEL)
    assert [s.get("durable_name") for s in subscriptions] == [
        "workflow-event-aggregator"
    ]
    assert edges[0].client_ids() == set()


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "aggregator.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("config_text", "expected"),
    [
        (
            "destination: {url: 'nats://h:1', cluster_id: c}\n"
            "sources:\n  - {name: a, url: 'nats://h:2', cluster_id: c, channels: [x]}\n"
            "  - {name: b, url: 'nats://h:3', channels: [x]}\n",
            "sources[1].cluster_id",
        ),
        (
            "destination: {url: 'nats://h:1', cluster_id: c, max_outage: soon}\n"
            "sources: [{name: a, url: 'nats://h:2', cluster_id: c, channels: [x]}]\n",
            "destination.max_outage",
        ),
        (
            "destination: {url: 'nats://h:1', cluster_id: c, colour: red}\n"
            "sources: [{name: a, url: 'nats://h:2', cluster_id: c, channels: [x]}]\n",
            "destination.colour",
        ),
    ],
)
def test_bad_configs_exit_2_naming_the_file_and_the_key_path(
    tmp_path: Path, config_text: str, expected: str
) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(config_text)
    result = run_cli(str(path))
    assert result.returncode == 2
    assert str(path) in result.stderr
    assert expected in result.stderr


@pytest.mark.timeout(60)
def test_check_version_and_help() -> None:
    checked = run_cli("--check", str(REPO / "config.example.yml"))
    assert checked.returncode == 0, checked.stderr
    assert "configuration OK" in checked.stdout
    version = run_cli("--version")
    assert version.returncode == 0
    assert version.stdout.strip()
    helped = run_cli("--help")
    assert helped.returncode == 0
    assert "--check" in helped.stdout


@pytest.mark.timeout(60)
@pytest.mark.parametrize("listen", ["taken", "nosuchhost.invalid:9191"])
def test_an_unusable_http_listen_address_exits_2_naming_the_key(
    tmp_path: Path, listen: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        if listen == "taken":
            listen = f"127.0.0.1:{taken.getsockname()[1]}"
        path = tmp_path / "config.yml"
        path.write_text(
            "destination: {url: 'nats://127.0.0.1:1', cluster_id: c}\n"
            "sources: [{name: a, url: 'nats://127.0.0.1:2', cluster_id: c, "
            "channels: [x]}]\n"
            f"http: {{listen: '{listen}'}}\n"
        )
        result = run_cli(str(path))
    assert result.returncode == 2, result.stderr
    assert f"{path}: http.listen: cannot listen on" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.timeout(120)
def test_two_replicas_share_an_edge_through_a_durable_queue_group(
    center: StanServer, edges: list[StanServer], aggregator_factory: AggregatorFactory
) -> None:
    replicas = []
    for index in (1, 2):
        source = source_entry(
            "edge1",
            edges[0],
            [CHANNEL],
            client_id=f"replica-{index}",
            queue_group="aggregators",
        )
        config = {
            "destination": destination_entry(center, client_id=f"replica-{index}"),
            "sources": [source],
        }
        replica = aggregator_factory(config, name=f"replica{index}")
        replica.start()
        replica.wait_ready(["edge1"])
        replicas.append(replica)

    events = [cloud_event(n, source="/shared") for n in range(400)]
    publish_all(edges[0].url, "edge", CHANNEL, events)
    received = center_messages(center, len(events))
    assert sorted(received) == sorted(events)
    assert count_duplicates(received) == 0
    # Both replicas did part of the work.
    for replica in replicas:
        assert "accepted" in replica.log_text()


@pytest.mark.timeout(60)
def test_a_second_signal_exits_at_once_without_the_clean_stop(
    center: StanServer, edges: list[StanServer], aggregator_factory: AggregatorFactory
) -> None:
    aggregator = aggregator_factory(two_edge_config(center, edges[:1]))
    aggregator.start()
    aggregator.wait_ready(["edge1"])
    # A frozen center makes the clean stop wait on its close request.
    center.freeze()
    aggregator.process.send_signal(signal.SIGTERM)
    aggregator.wait_for_log(
        lambda r: "stopping on request" in r["message"], 10, "the clean stop began"
    )
    aggregator.process.send_signal(signal.SIGINT)
    assert aggregator.wait(timeout=5) == 1
    center.thaw()


@pytest.mark.timeout(60)
def test_sighup_stops_cleanly_too(
    center: StanServer, edges: list[StanServer], aggregator_factory: AggregatorFactory
) -> None:
    aggregator = aggregator_factory(two_edge_config(center, edges[:1]))
    aggregator.start()
    aggregator.wait_ready(["edge1"])
    aggregator.process.send_signal(signal.SIGHUP)
    assert aggregator.wait(timeout=30) == 0


@pytest.mark.timeout(60)
def test_a_signal_during_start_up_is_a_clean_stop(
    center: StanServer, edges: list[StanServer], aggregator_factory: AggregatorFactory
) -> None:
    aggregator = aggregator_factory(two_edge_config(center, edges[:1]))
    aggregator.start()
    # As early as possible: once the entry script catches SIGTERM (the
    # kernel shows caught signals in SigCgt), while it still imports the
    # service and long before the service runs.
    wait_until(
        lambda: _catches(aggregator.pid, signal.SIGTERM), 5, message="handler set"
    )
    aggregator.process.send_signal(signal.SIGTERM)
    assert aggregator.wait(timeout=30) == 0
    assert "stopping on request" in aggregator.log_text()


def _catches(pid: int, signum: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    [mask] = [
        line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")
    ]
    return bool(int(mask, 16) >> (signum - 1) & 1)
