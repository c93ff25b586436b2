"""Factories behind the pytest fixtures: they create servers and relays and
remember every one, so the fixture's teardown can clean up all of them."""

import itertools
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Generic, TypeVar

from tests.support.process import ManagedProcess, ProcessRegistry
from tests.support.relay import TcpRelay
from tests.support.servers import NatsServer, StanServer

T = TypeVar("T")
S = TypeVar("S", bound=ManagedProcess)


def _close_each(items: Iterable[T], close: Callable[[T], None]) -> None:
    """Close every item even if closing one fails; then raise the first error."""
    errors: list[Exception] = []
    for item in items:
        try:
            close(item)
        except Exception as err:
            errors.append(err)
    if errors:
        raise errors[0]


class _ServerFactory(Generic[S]):
    """Creates servers of one kind under one test's tmp_path."""

    kind: Callable[..., S]
    prefix: str

    def __init__(self, base_dir: Path, registry: ProcessRegistry) -> None:
        self._base_dir = base_dir
        self._registry = registry
        self._counter = itertools.count(1)
        self.servers: list[S] = []

    def __call__(self, *, start: bool = True, **options: Any) -> S:
        """Create a server in its own folder, started unless ``start=False``.

        :param options: keyword arguments of the server class.
        """
        index = next(self._counter)
        options.setdefault("name", f"{self.prefix}-{index}")
        server = self.kind(
            self._base_dir / f"{self.prefix}-{index}",
            registry=self._registry,
            **options,
        )
        self.servers.append(server)
        if start:
            server.start()
        return server

    def close_all(self) -> None:
        """Stop every server created here (SIGTERM, wait, SIGKILL)."""
        _close_each(self.servers, lambda server: server.stop())


class StanServerFactory(_ServerFactory[StanServer]):
    """Creates :class:`StanServer` instances (official nats-streaming-server)."""

    kind = StanServer
    prefix = "stan"


class NatsServerFactory(_ServerFactory[NatsServer]):
    """Creates :class:`NatsServer` instances (official nats-server)."""

    kind = NatsServer
    prefix = "nats"


class RelayFactory:
    """Creates :class:`TcpRelay` instances and closes them all at the end."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self.relays: list[TcpRelay] = []

    def __call__(self, target_port: int, target_host: str = "127.0.0.1") -> TcpRelay:
        """Start a relay from a free local port to ``target_host:target_port``."""
        relay = TcpRelay(target_host, target_port, name=f"relay{next(self._counter)}")
        self.relays.append(relay)
        return relay

    def close_all(self) -> None:
        """Close every relay: connections reset, threads joined."""
        _close_each(self.relays, lambda relay: relay.close())
