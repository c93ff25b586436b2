"""The part of pynats2 this package uses: the connection handshake.

pynats2 0.9.0 is used for what it does well: parsing a ``nats://`` or
``tls://`` URL, opening the TCP socket, reading the server's INFO, wrapping
the socket in TLS and sending CONNECT with the credentials. Its defects sit
elsewhere (its reader thread, its pinger and its callback pool), and
:mod:`stan_client.nats` replaces those parts instead of using them.

Two defects do reach the handshake, and are contained here:

* ``import pynats2`` loads ``pkg_resources`` (slow, deprecated, and gone
  when setuptools is absent) only to read its own version string. The
  import below hands it a small stand-in backed by :mod:`importlib.metadata`
  for the duration of the import, then restores ``sys.modules``.
* its line reader loops forever when the server closes the socket (``recv``
  returns ``b""``, which it appends and reads again). :class:`Handshake`
  overrides it so that an early close is an error.
"""

from __future__ import annotations

import importlib.metadata
import json
import ssl
import sys
import types
from typing import Any
from urllib.parse import unquote

_MISSING = object()


class _Distribution:
    """What pynats2 reads from ``pkg_resources.get_distribution()``."""

    def __init__(self, name: str) -> None:
        try:
            self.version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            self.version = "0"


def _import_pynats2_client() -> Any:
    """Import ``pynats2.client`` without loading the real ``pkg_resources``."""
    already_loaded = sys.modules.get("pynats2.client")
    if already_loaded is not None:
        return already_loaded

    stand_in = types.ModuleType("pkg_resources")
    stand_in.get_distribution = _Distribution  # type: ignore[attr-defined]
    previous = sys.modules.get("pkg_resources", _MISSING)
    sys.modules["pkg_resources"] = stand_in
    try:
        import pynats2.client as client_module
    finally:
        if previous is _MISSING:
            del sys.modules["pkg_resources"]
        else:
            sys.modules["pkg_resources"] = previous  # type: ignore[assignment]
    return client_module


_client: Any = _import_pynats2_client()
_ThreadFreeClient: Any = _client.NATSNoSubscribeClient

import pynats2.exceptions as pynats2_errors  # noqa: E402  (after the stand-in)

PYNATS2_VERSION = _Distribution("pynats2").version
CLIENT_VERSION = _Distribution("workflow-event-aggregator").version


class ClosedDuringHandshake(Exception):
    """The server closed the socket before the handshake completed."""


class Handshake(_ThreadFreeClient):  # type: ignore[misc]
    """pynats2's thread-free client, used only to open a connection.

    After :meth:`connect` returns, the caller takes the socket (and any bytes
    already read past INFO) and never calls pynats2 again for this connection.
    """

    # Set by pynats2's constructor and connect(); declared for the type checker.
    _socket: Any
    _socket_buffer: bytes
    _conn_options: dict[str, Any]

    def __init__(self, url: str, *, connect_options: dict[str, Any], **kwargs: Any):
        super().__init__(url, **kwargs)
        self._connect_options = connect_options
        self.server_info: dict[str, Any] = {}

    def _recv(self, *commands: Any) -> tuple[Any, Any]:
        # pynats2 parses INFO but keeps nothing of it; max_payload is needed.
        command, result = super()._recv(*commands)
        if result is not None and command is _client.INFO_RE:
            self.server_info = json.loads(result.group(1))
        return command, result

    def _readline(self, *, size: int | None = None) -> bytes:
        # pynats2 appends whatever recv() returns until a line is complete;
        # on a closed socket recv() returns b"" forever and it spins.
        wanted = None if size is None else size + 2
        while True:
            if wanted is None:
                end = self._socket_buffer.find(b"\r\n")
                if end >= 0:
                    line = self._socket_buffer[: end + 2]
                    self._socket_buffer = self._socket_buffer[end + 2 :]
                    return bytes(line)
            elif len(self._socket_buffer) >= wanted:
                line = self._socket_buffer[:wanted]
                self._socket_buffer = self._socket_buffer[wanted:]
                return bytes(line)
            try:
                chunk = self._socket.recv(65536)
            except (TimeoutError, ssl.SSLError):
                raise  # pynats2 turns these into "no answer", quietly
            except OSError as err:
                # pynats2 would log this at ERROR and carry on as "no answer".
                raise ClosedDuringHandshake(f"{type(err).__name__}: {err}") from err
            if not chunk:
                # Not an OSError on purpose: pynats2 would log and swallow it.
                raise ClosedDuringHandshake("the server closed the connection")
            self._socket_buffer += chunk

    def _send_connect_command(self) -> None:
        options = dict(self._connect_options)
        # pynats2 takes them from urlparse() without undoing %-escapes, so
        # a password holding "@" or ":" would reach the server still escaped.
        username = unquote(self._conn_options["username"] or "")
        password = unquote(self._conn_options["password"] or "")
        if username and password:
            options["user"] = username
            options["pass"] = password
        elif username:
            options["auth_token"] = username
        self._send(b"CONNECT", json.dumps(options))

    def take_socket(self) -> tuple[Any, bytes]:
        """Hand over the socket and the bytes read past the last line."""
        sock = self._socket
        leftover = bytes(self._socket_buffer)
        self._socket_buffer = b""
        return sock, leftover


__all__ = [
    "CLIENT_VERSION",
    "PYNATS2_VERSION",
    "ClosedDuringHandshake",
    "Handshake",
    "pynats2_errors",
]
