"""The aggregator's configuration: load a YAML file into validated, typed objects.

``load_config(path)`` returns a :class:`Config` or raises one
:class:`ConfigError` listing every problem as ``<file>: <key path>: <what>``.
``config.example.yml`` at the top of the repository documents every key.
"""

from event_aggregator.config.errors import ConfigError
from event_aggregator.config.loader import load_config
from event_aggregator.config.model import (
    BackoffConfig,
    Config,
    DestinationConfig,
    ForwardingConfig,
    HttpConfig,
    LoggingConfig,
    SourceConfig,
    StartPosition,
    TlsConfig,
    ValidationConfig,
)
from event_aggregator.config.schema import KeyInfo, iter_keys

__all__ = [
    "BackoffConfig",
    "Config",
    "ConfigError",
    "DestinationConfig",
    "ForwardingConfig",
    "HttpConfig",
    "KeyInfo",
    "LoggingConfig",
    "SourceConfig",
    "StartPosition",
    "TlsConfig",
    "ValidationConfig",
    "iter_keys",
    "load_config",
]
