"""A synchronous NATS Streaming (STAN) client over pynats2.

Start with :class:`StanClient`; every error is a :class:`StanError`.
"""

from stan_client.client import StanClient
from stan_client.errors import (
    AuthorizationError,
    ClientClosedError,
    ClientIdInUseError,
    ClientReplacedError,
    CloseError,
    ClusterNotFoundError,
    ConnectError,
    ConnectionLostError,
    ConnectRefusedError,
    MaxPayloadError,
    MaxPingsError,
    NatsConnectionError,
    ProtocolError,
    PublishAckTimeoutError,
    PublishError,
    ServerUnreachableError,
    StaleConnectionError,
    StanError,
    SubscribeError,
    TlsError,
    UnsubscribeError,
)
from stan_client.messages import Msg
from stan_client.nats import TlsOptions
from stan_client.subscription import StartPosition, Subscription

__all__ = [
    "AuthorizationError",
    "ClientClosedError",
    "ClientIdInUseError",
    "ClientReplacedError",
    "CloseError",
    "ClusterNotFoundError",
    "ConnectError",
    "ConnectRefusedError",
    "ConnectionLostError",
    "MaxPayloadError",
    "MaxPingsError",
    "Msg",
    "NatsConnectionError",
    "ProtocolError",
    "PublishAckTimeoutError",
    "PublishError",
    "ServerUnreachableError",
    "StaleConnectionError",
    "StanClient",
    "StanError",
    "StartPosition",
    "SubscribeError",
    "Subscription",
    "TlsError",
    "TlsOptions",
    "UnsubscribeError",
]
