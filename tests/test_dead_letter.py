"""Invalid messages to the dead-letter channel, end to end through real servers."""

import base64
import json
import random
import time

import pytest

from tests.support.aggregator import AggregatorFactory, destination_entry, source_entry
from tests.support.chaos import SteadyPublisher
from tests.support.events import cloud_event, publish_all, read_channel
from tests.support.factories import StanServerFactory
from tests.support.waiting import assert_stays, wait_until
from tests.test_aggregator import CHANNEL

DEAD_LETTERS = "cyverse.deadletter"
JUNK = {
    b"": "not_json",
    b"hello": "not_json",
    b"[]": "not_object",
    b'{"specversion":"1.0","source":"/x","type":"t"}': "missing_id",
    b'{"specversion":"1.0","id":"1","source":"/x","type":"t","event_source":1}': (
        "bad_extension_name"
    ),
    b"\xff\xfe{}": "not_utf8",
}


@pytest.mark.timeout(120)
def test_valid_events_arrive_and_invalid_ones_are_dead_lettered_once(
    stan_server_factory: StanServerFactory, aggregator_factory: AggregatorFactory
) -> None:
    center = stan_server_factory(cluster_id="center", name="center")
    edges = [stan_server_factory(cluster_id="edge", name=f"edge{i}") for i in (1, 2)]
    config = {
        "destination": destination_entry(center),
        "sources": [
            source_entry(f"edge{i}", edge, [CHANNEL]) for i, edge in enumerate(edges, 1)
        ],
        "validation": {"dead_letter_channel": DEAD_LETTERS},
    }
    aggregator = aggregator_factory(config)
    aggregator.start()
    aggregator.wait_ready(["edge1", "edge2"])

    valid: list[bytes] = []
    for index, edge in enumerate(edges, start=1):
        payloads: list[bytes] = []
        for number, junk in enumerate(JUNK):
            event = cloud_event(number, source=f"/edge{index}")
            valid.append(event)
            payloads += [event, junk]
        publish_all(edge.url, "edge", CHANNEL, payloads)

    forwarded = read_channel(center.url, "center", CHANNEL, len(valid))
    assert sorted(forwarded) == sorted(valid)
    letters = [
        json.loads(raw)
        for raw in read_channel(center.url, "center", DEAD_LETTERS, 2 * len(JUNK))
    ]
    assert len(letters) == 2 * len(JUNK)
    for letter in letters:
        payload = base64.b64decode(letter["payload_base64"])
        assert letter["reason"] == JUNK[payload]
        assert letter["source"] in {"edge1", "edge2"}
        assert letter["channel"] == CHANNEL
        assert isinstance(letter["sequence"], int)
        assert letter["time"]
        assert letter["message"]
    assert {
        (letter["source"], base64.b64decode(letter["payload_base64"]))
        for letter in letters
    } == {(f"edge{i}", junk) for i in (1, 2) for junk in JUNK}

    # Everything was acked: a restart meets none of it again.
    assert aggregator.terminate() == 0
    again = aggregator_factory(config)
    again.start()
    again.wait_ready(["edge1", "edge2"])
    assert_stays(
        lambda: (
            center.channel_msg_count(CHANNEL) == len(valid)
            and center.channel_msg_count(DEAD_LETTERS) == 2 * len(JUNK)
        ),
        3.0,
        message="nothing is redelivered after the restart",
    )
    wait_until(
        lambda: all(
            s["pending_count"] == 0 for e in edges for s in e.subscriptions(CHANNEL)
        ),
        10,
        message="no message pending at the edges",
    )


@pytest.mark.timeout(120)
def test_a_large_invalid_message_is_dead_lettered_with_its_beginning(
    stan_server_factory: StanServerFactory, aggregator_factory: AggregatorFactory
) -> None:
    center = stan_server_factory(cluster_id="center", name="center")
    edge = stan_server_factory(cluster_id="edge", name="edge")
    aggregator = aggregator_factory(
        {
            "destination": destination_entry(center),
            "sources": [source_entry("edge1", edge, [CHANNEL])],
            "validation": {"dead_letter_channel": DEAD_LETTERS},
        }
    )
    aggregator.start()
    aggregator.wait_ready(["edge1"])
    big = random.Random(3).randbytes(900 * 1024)
    after = cloud_event(1, source="/after")
    publish_all(edge.url, "edge", CHANNEL, [big, after])

    assert read_channel(center.url, "center", CHANNEL, 1) == [after]
    [raw] = read_channel(center.url, "center", DEAD_LETTERS, 1)
    letter = json.loads(raw)
    assert letter["payload_truncated"] is True
    assert letter["payload_size"] == len(big)
    kept = base64.b64decode(letter["payload_base64"])
    assert big.startswith(kept)
    assert 0 < len(kept) < len(big)
    refusals = [r for r in aggregator.records() if "refused" in r["message"]]
    assert len(refusals) == 1, "counted and logged once"


@pytest.mark.timeout(120)
def test_a_center_that_refuses_dead_letters_is_asked_again_with_growing_delays(
    stan_server_factory: StanServerFactory, aggregator_factory: AggregatorFactory
) -> None:
    """One channel allowed: the dead-letter channel is refused every time."""
    center = stan_server_factory(
        cluster_id="center", name="center", extra_args=["--max_channels", "1"]
    )
    edge = stan_server_factory(cluster_id="edge", name="edge")
    aggregator = aggregator_factory(
        {
            "destination": destination_entry(center),
            "sources": [source_entry("edge1", edge, [CHANNEL])],
            "validation": {"dead_letter_channel": DEAD_LETTERS},
        }
    )
    aggregator.start()
    aggregator.wait_ready(["edge1"])
    valid = [cloud_event(n) for n in range(5)]
    publish_all(edge.url, "edge", CHANNEL, [valid[0], b"junk", *valid[1:]])
    assert sorted(read_channel(center.url, "center", CHANNEL, 5)) == sorted(valid)

    def resets() -> list[str]:
        return [
            str(r["message"])
            for r in aggregator.records()
            if "opening a new session in" in str(r["message"])
        ]

    wait_until(lambda: len(resets()) >= 4, 30, message="repeated refusals")
    delays = [float(m.rsplit(" in ", 1)[1].split(" s", 1)[0]) for m in resets()]
    assert delays[3] > delays[0] * 2, f"the delays grow: {delays}"
    assert "too many channels" in resets()[0]
    assert aggregator.running()


@pytest.mark.timeout(120)
def test_an_event_the_center_always_refuses_ends_in_exit_1_though_others_flow(
    stan_server_factory: StanServerFactory, aggregator_factory: AggregatorFactory
) -> None:
    """One channel allowed at the center: the second channel is always refused.

    The first channel's events keep succeeding meanwhile; they must not
    forgive the refused event, which would be retried forever unseen.
    """
    center = stan_server_factory(
        cluster_id="center", name="center", extra_args=["--max_channels", "1"]
    )
    edge = stan_server_factory(cluster_id="edge", name="edge")
    refused_channel = "cyverse.other"
    max_outage = 6
    aggregator = aggregator_factory(
        {
            "destination": destination_entry(center, max_outage=max_outage),
            "sources": [source_entry("edge1", edge, [CHANNEL, refused_channel])],
        }
    )
    aggregator.start()
    aggregator.wait_ready(["edge1"])
    publish_all(edge.url, "edge", CHANNEL, [cloud_event(0)])
    wait_until(lambda: center.channel_msg_count(CHANNEL) == 1, 20, message="first")

    flowing = SteadyPublisher(edge, CHANNEL, count=200, rate=10, tag="flow").start()
    publish_all(edge.url, "edge", refused_channel, [cloud_event(1000)])
    refused_at = time.monotonic()
    try:
        status = aggregator.wait(timeout=max_outage + 30)
    finally:
        flowing.stop()
    took = time.monotonic() - refused_at

    assert status == 1
    assert took < max_outage + 20, f"exit 1 after {took:.1f} s"
    assert center.channel_msg_count(CHANNEL) > 10, "the other channel flowed"
    [giving_up] = [r for r in aggregator.records() if "giving up" in r["message"]]
    assert f"{refused_channel}/1" in giving_up["message"]
    assert "too many channels" in giving_up["message"]
