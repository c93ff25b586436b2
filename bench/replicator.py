"""nats-replicator configured STAN to STAN, as a user would set it up.

One NATS connection and one streaming connection per cluster; one
``STANToSTAN`` connector per edge, with a durable subscription that starts
at the first stored message (the replicator validates nothing).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from tests.support.servers import StanServer


def _connection(name: str, server: StanServer) -> tuple[dict[str, object], ...]:
    nats = {
        "Name": f"nats-{name}",
        "Servers": [server.url],
        "ConnectTimeout": 5000,
        "MaxReconnects": 5,
        "ReconnectWait": 1000,
    }
    stan = {
        "Name": f"stan-{name}",
        "NATSConnection": f"nats-{name}",
        "ClusterID": server.cluster_id,
        "ClientID": f"replicator-{name}",
        "PubAckWait": 30000,
        "ConnectWait": 5000,
    }
    return nats, stan


def write_config(
    path: Path,
    edges: Sequence[tuple[str, StanServer]],
    center: StanServer,
    channel: str,
) -> Path:
    """Write the replicator's config; JSON is valid in its config syntax."""
    nats: list[dict[str, object]] = []
    stan: list[dict[str, object]] = []
    connectors: list[dict[str, object]] = []
    for name, server in [*edges, ("center", center)]:
        nats_entry, stan_entry = _connection(name, server)
        nats.append(nats_entry)
        stan.append(stan_entry)
    for name, _server in edges:
        connectors.append(
            {
                "type": "STANToSTAN",
                "id": f"{name}-to-center",
                "IncomingConnection": f"stan-{name}",
                "IncomingChannel": channel,
                "IncomingDurableName": "bench-replicator",
                "IncomingStartAtSequence": 0,
                "OutgoingConnection": "stan-center",
                "OutgoingChannel": channel,
            }
        )
    config = {
        "reconnectinterval": 1000,
        "logging": {"Time": True, "Debug": False, "Trace": False, "Colors": False},
        "nats": nats,
        "stan": stan,
        "connect": connectors,
    }
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path
