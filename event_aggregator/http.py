"""``/metrics``, ``/healthz`` and ``/readyz`` over HTTP.

``/metrics`` is the Prometheus text format of the aggregator's registry.
``/healthz`` answers 200 while every worker thread is alive (liveness: a
supervisor restarts the process otherwise); ``/readyz`` answers 200 only
while the destination is connected. Both return the same small JSON body,
which shows each source's state so that a person can see which edge is
down.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

logger = logging.getLogger(__name__)

HealthReport = Callable[[], dict[str, Any]]


class ListenError(Exception):
    """The HTTP server cannot listen where the config says (port taken, bad host)."""


class HealthServer:
    """A small threaded HTTP server for metrics and health checks.

    :param report: returns the JSON health body; it must contain the
        booleans ``alive`` and ``ready``.
    """

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        report: HealthReport,
    ) -> None:
        handler = _handler_class(registry, report)
        server_class = _Ipv6HttpServer if ":" in host else ThreadingHTTPServer
        try:
            self._server = server_class((host, port), handler)
        except OSError as err:
            raise ListenError(
                f"cannot listen on {_host_port(host, port)}: {err}"
            ) from err
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="http",
            daemon=True,
        )

    @property
    def address(self) -> tuple[str, int]:
        """Where it listens (the real port when 0 was asked for)."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()
        host, port = self.address
        logger.info(
            "serving /metrics, /healthz and /readyz on http://%s",
            shown := _host_port(host, port),
            extra={"listen": shown},
        )

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout)
        self._server.server_close()


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Ipv6HttpServer(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _handler_class(
    registry: CollectorRegistry, report: HealthReport
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "workflow-event-aggregator"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(
                    HTTPStatus.OK, CONTENT_TYPE_LATEST, generate_latest(registry)
                )
            elif path in ("/healthz", "/readyz"):
                body = report()
                healthy = body["alive"] if path == "/healthz" else body["ready"]
                status = HTTPStatus.OK if healthy else HTTPStatus.SERVICE_UNAVAILABLE
                payload = json.dumps(body, indent=2).encode() + b"\n"
                self._send(status, "application/json", payload)
            else:
                self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")

        def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            # Scrapes every few seconds would drown the log; DEBUG only.
            logger.debug("http %s", format % args)

    return Handler
