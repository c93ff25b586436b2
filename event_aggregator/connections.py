"""A stan_client for one configured connection (a source or the destination)."""

from __future__ import annotations

from typing import Any

from event_aggregator.config import DestinationConfig, SourceConfig, TlsConfig
from stan_client import StanClient, TlsOptions
from stan_client.client import ConnectionLostCallback


def tls_options(config: TlsConfig | None) -> TlsOptions | None:
    """The stan_client TLS options for a configured TLS section."""
    if config is None:
        return None
    return TlsOptions(
        ca_file=str(config.ca_file) if config.ca_file else None,
        cert_file=str(config.cert_file) if config.cert_file else None,
        key_file=str(config.key_file) if config.key_file else None,
        insecure_skip_verify=config.insecure_skip_verify,
    )


def client_for(
    role: str,
    config: SourceConfig | DestinationConfig,
    on_connection_lost: ConnectionLostCallback,
    **publishing: Any,
) -> StanClient:
    """A client with the connection settings every configured cluster has.

    :param role: ``source`` or ``destination``; with the configured name it
        labels the client's threads (``nats-io-source-edge-1``).
    :param publishing: extra :class:`StanClient` options (the destination's
        publish window and ack wait).
    """
    return StanClient(
        config.url,
        config.cluster_id,
        config.client_id,
        connect_timeout=config.connect_timeout,
        ping_interval=config.ping_interval,
        ping_max_out=config.ping_max_out,
        tls=tls_options(config.tls),
        on_connection_lost=on_connection_lost,
        name=f"{role}-{config.name}",
        **publishing,
    )
