"""Fixtures of the test bed: real servers, relays, and leak checks.

Every fixture cleans up in its teardown, which runs whether the test passed or
failed; the session-wide registry then proves that no process outlived it.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.aggregator import AggregatorFactory, AggregatorProcess
from tests.support.factories import NatsServerFactory, RelayFactory, StanServerFactory
from tests.support.process import ProcessRegistry
from tests.support.servers import NatsServer, StanServer


@pytest.fixture(scope="session")
def process_registry() -> Iterator[ProcessRegistry]:
    """Tracks every process the bed starts; fails the session on a leak."""
    registry = ProcessRegistry()
    yield registry
    leaked = registry.kill_leftovers()
    assert not leaked, f"processes outlived the tests (killed now): {leaked}"


@pytest.fixture
def stan_server_factory(
    tmp_path: Path, process_registry: ProcessRegistry
) -> Iterator[StanServerFactory]:
    """Call it to start more nats-streaming-servers; all stop after the test."""
    factory = StanServerFactory(tmp_path, process_registry)
    yield factory
    factory.close_all()


@pytest.fixture
def stan_server(stan_server_factory: StanServerFactory) -> StanServer:
    """One started nats-streaming-server with a file store in tmp_path."""
    return stan_server_factory()


@pytest.fixture
def nats_server_factory(
    tmp_path: Path, process_registry: ProcessRegistry
) -> Iterator[NatsServerFactory]:
    """Call it to start more nats-servers; all stop after the test."""
    factory = NatsServerFactory(tmp_path, process_registry)
    yield factory
    factory.close_all()


@pytest.fixture
def nats_server(nats_server_factory: NatsServerFactory) -> NatsServer:
    """One started nats-server."""
    return nats_server_factory()


@pytest.fixture
def relay_factory() -> Iterator[RelayFactory]:
    """Call it with a target port to get a :class:`TcpRelay`; all close after."""
    factory = RelayFactory()
    yield factory
    factory.close_all()


@pytest.fixture
def aggregator_factory(
    tmp_path: Path, process_registry: ProcessRegistry
) -> Iterator[AggregatorFactory]:
    """Makes aggregator processes (not started); all are stopped after the test."""
    made: list[AggregatorProcess] = []

    def make(
        config: dict[str, Any],
        name: str = "aggregator",
        env: dict[str, str] | None = None,
    ) -> AggregatorProcess:
        process = AggregatorProcess(
            tmp_path / "aggregator",
            config,
            process_registry,
            name=f"{name}{len(made)}",
            env=env,
        )
        made.append(process)
        return process

    yield make
    for process in made:
        process.stop()


@pytest.fixture
def center(stan_server_factory: StanServerFactory) -> StanServer:
    """The central server (cluster ID ``center``)."""
    return stan_server_factory(cluster_id="center", name="center")


@pytest.fixture
def edges(stan_server_factory: StanServerFactory) -> list[StanServer]:
    """Two edge servers (cluster ID ``edge``)."""
    return [
        stan_server_factory(cluster_id="edge", name=f"edge{index}") for index in (1, 2)
    ]
