"""Factories behind the pytest fixtures: they create servers and relays and
remember every one, so the fixture's teardown can clean up all of them."""

import itertools
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from tests.support.process import ProcessRegistry
from tests.support.relay import TcpRelay
from tests.support.servers import NatsServer, StanServer

T = TypeVar("T")


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


class StanServerFactory:
    """Creates :class:`StanServer` instances under one test's tmp_path."""

    def __init__(self, base_dir: Path, registry: ProcessRegistry) -> None:
        self._base_dir = base_dir
        self._registry = registry
        self._counter = itertools.count(1)
        self.servers: list[StanServer] = []

    def __call__(self, *, start: bool = True, **options: Any) -> StanServer:
        """Create a server in its own folder, started unless ``start=False``.

        :param options: keyword arguments of :class:`StanServer`.
        """
        index = next(self._counter)
        options.setdefault("name", f"stan-{index}")
        server = StanServer(
            self._base_dir / f"stan-{index}", registry=self._registry, **options
        )
        self.servers.append(server)
        if start:
            server.start()
        return server

    def close_all(self) -> None:
        """Stop every server created here (SIGTERM, wait, SIGKILL)."""
        _close_each(self.servers, lambda server: server.stop())


class NatsServerFactory:
    """Creates :class:`NatsServer` instances under one test's tmp_path."""

    def __init__(self, base_dir: Path, registry: ProcessRegistry) -> None:
        self._base_dir = base_dir
        self._registry = registry
        self._counter = itertools.count(1)
        self.servers: list[NatsServer] = []

    def __call__(self, *, start: bool = True, **options: Any) -> NatsServer:
        """Create a server in its own folder, started unless ``start=False``.

        :param options: keyword arguments of :class:`NatsServer`.
        """
        index = next(self._counter)
        options.setdefault("name", f"nats-{index}")
        server = NatsServer(
            self._base_dir / f"nats-{index}", registry=self._registry, **options
        )
        self.servers.append(server)
        if start:
            server.start()
        return server

    def close_all(self) -> None:
        """Stop every server created here (SIGTERM, wait, SIGKILL)."""
        _close_each(self.servers, lambda server: server.stop())


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
