"""Rules that involve several sections: what no single key can get wrong.

They run on the sources that are valid so far (with their list index), so that
a forwarding loop is reported in the same run as a typo in another source.
"""

from __future__ import annotations

from typing import Final

from event_aggregator.config import values as v
from event_aggregator.config.errors import Problems, child_path, index_path
from event_aggregator.config.model import (
    DestinationConfig,
    SourceConfig,
    ValidationConfig,
)

__all__ = ["check_connections", "check_dead_letters"]


_LOOPBACK: Final = frozenset({"localhost", "127.0.0.1", "::1"})


def _cluster(url: str, cluster_id: str) -> tuple[str, int, str]:
    host, port = v.endpoint(url)
    host = host.lower()
    return ("loopback" if host in _LOOPBACK else host, port, cluster_id)


def check_connections(
    destination: DestinationConfig,
    sources: tuple[tuple[int, SourceConfig], ...],
    problems: Problems,
) -> None:
    """Client IDs unique per cluster; no source reading what it forwards into.

    NATS Streaming refuses a second connection with a client ID that is still
    connected, and a source on the destination's own cluster and channel would
    forward every event back to itself forever.
    """
    center = _cluster(destination.url, destination.cluster_id)
    users: dict[tuple[tuple[str, int, str], str], str] = {
        (center, destination.client_id): "destination"
    }
    for index, source in sources:
        path = index_path("sources", index)
        cluster = _cluster(source.url, source.cluster_id)
        other = users.setdefault((cluster, source.client_id), path)
        if other != path:
            problems.add(
                child_path(path, "client_id"),
                f"'{source.client_id}' is also the client ID of {other} on the same"
                " cluster; NATS Streaming allows one connection per client ID",
            )
        if cluster != center:
            continue
        for channel_index, channel in enumerate(source.channels):
            if (destination.channel or channel) == channel:
                problems.add(
                    index_path(child_path(path, "channels"), channel_index),
                    f"'{channel}' is read from the destination's own cluster and"
                    " forwarded back into it: events would loop forever",
                )


def check_dead_letters(
    destination: DestinationConfig,
    sources: tuple[tuple[int, SourceConfig], ...],
    validation: ValidationConfig,
    problems: Problems,
) -> None:
    """The dead-letter channel must not receive valid events or feed a source."""
    dead = validation.dead_letter_channel
    if dead is None:
        return
    key_path = "validation.dead_letter_channel"
    if destination.channel is not None:
        forwarded = {destination.channel}
    else:
        forwarded = {channel for _i, source in sources for channel in source.channels}
    if dead in forwarded:
        problems.add(
            key_path,
            f"'{dead}' is also where valid events are forwarded;"
            " invalid ones must go to another channel",
        )
        return
    center = _cluster(destination.url, destination.cluster_id)
    for index, source in sources:
        if (
            dead in source.channels
            and _cluster(source.url, source.cluster_id) == center
        ):
            problems.add(
                key_path,
                f"'{dead}' is read back by sources[{index}] from the destination's"
                " cluster: invalid events would loop forever",
            )
