"""A NATS connection that survives what pynats2 0.9.0 does not.

pynats2 opens the connection (see :mod:`stan_client._pynats`); from then on
this module owns the socket with one I/O thread per connection that reads,
writes, answers PINGs and runs timers. That replaces the parts of pynats2
that are defective, each of which has a test in ``tests/test_nats_adapter.py``:

* its reader thread spins a CPU core after the server dies, and tells no one:
  here end-of-file or a socket error ends the thread and calls ``on_lost``;
* it never checks PONGs: here PINGs are sent every ``ping_interval`` and the
  connection is declared stale after ``max_pings_out`` unanswered ones;
* a ``-ERR`` line or an asynchronous ``INFO`` kills its reader: here both are
  understood (the first logged, the second applied);
* it runs callbacks on a pool of three threads, which reorders messages:
  here handlers run on the I/O thread, in the order the server sent them.

Handlers therefore must be quick and must never block: they hand work to
another thread. The one I/O thread also means a TLS socket is only ever used
by a single thread, which OpenSSL requires.
"""

from __future__ import annotations

import itertools
import json
import logging
import selectors
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stan_client import _pynats
from stan_client.errors import (
    AuthorizationError,
    ConnectionClosedByServerError,
    MaxPayloadError,
    NatsConnectionError,
    NoRespondersError,
    ProtocolError,
    RequestTimeoutError,
    ServerUnreachableError,
    StaleConnectionError,
    StanError,
    TlsError,
)
from stan_client.tokens import TokenGenerator
from stan_client.urls import redact_url

logger = logging.getLogger(__name__)

MessageHandler = Callable[[str, str, bytes], None]
"""Called as ``handler(subject, reply, payload)`` on the I/O thread."""

LostHandler = Callable[[NatsConnectionError], None]

_CRLF = b"\r\n"
_READ_SIZE = 256 * 1024
# Writers block once this much is waiting to be sent: memory stays bounded
# even when the server reads slower than the application writes.
_MAX_OUTBOUND_BYTES = 8 * 1024 * 1024
# How long close() keeps sending what is still buffered before giving up.
_CLOSE_FLUSH_SECONDS = 2.0
_NO_RESPONDERS_STATUS = b"503"


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """TLS settings for a ``tls://`` URL.

    Certificates are verified unless ``insecure_skip_verify`` is set;
    pynats2's own default is to skip verification, which this class does
    not inherit.
    """

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure_skip_verify: bool = False


class _Periodic:
    """A function the I/O thread runs every ``interval`` seconds."""

    __slots__ = ("due", "function", "interval")

    def __init__(self, interval: float, function: Callable[[], None]) -> None:
        self.interval = interval
        self.function = function
        self.due = time.monotonic() + interval


class _PendingRequest:
    """A request waiting for its reply; filled in by the I/O thread."""

    __slots__ = ("done", "error", "payload", "subject")

    def __init__(self, subject: str) -> None:
        self.subject = subject
        self.done = threading.Event()
        self.payload = b""
        self.error: StanError | None = None


class NatsConnection:
    """One connection to a NATS server, safe to use from any thread.

    :param url: ``nats://[user:password@]host:port`` or ``tls://...``.
    :param name: the client name the server shows in its monitoring.
    :param thread_label: names the I/O thread (``nats-io-<label>``);
        ``name`` when empty.
    :param connect_timeout: seconds for TCP connect, INFO and the first PONG.
    :param ping_interval: seconds between PINGs sent to detect a dead link.
    :param max_pings_out: unanswered PINGs after which the link is stale.
    :param on_lost: called once, on the I/O thread after it stopped, when the
        connection ends without :meth:`close`; it may block briefly.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str = "stan_client",
        connect_timeout: float = 5.0,
        ping_interval: float = 30.0,
        max_pings_out: int = 2,
        tls: TlsOptions | None = None,
        on_lost: LostHandler | None = None,
        thread_label: str = "",
    ) -> None:
        if ping_interval <= 0:
            raise ValueError(f"ping_interval must be > 0, got {ping_interval!r}")
        if max_pings_out < 1:
            raise ValueError(f"max_pings_out must be >= 1, got {max_pings_out!r}")
        self.url = url
        self.name = name
        self._thread_label = thread_label or name
        self.server_info: dict[str, Any] = {}
        self._connect_timeout = connect_timeout
        self._ping_interval = ping_interval
        self._max_pings_out = max_pings_out
        self._tls = tls
        self._on_lost = on_lost

        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._closing = False
        self._lost_error: NatsConnectionError | None = None
        self._abort_error: StanError | None = None
        #: time.monotonic() of the last bytes read from the server: the last
        #: sign of life, from which an outage really started.
        self.last_received = time.monotonic()
        self._io_thread_id = 0
        self._last_server_error = ""

        # Outbound bytes: appended by any thread, sent by the I/O thread.
        # The lock also guards _wake_pending. Writers wait on _drained when
        # the buffer is full.
        self._out_lock = threading.Lock()
        self._drained = threading.Condition(self._out_lock)
        self._outbound: list[bytes] = []
        self._outbound_size = 0
        self._wake_pending = False
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)

        # Owned by the I/O thread only.
        self._inbound = bytearray()
        self._sending = memoryview(b"")
        # One entry per PING in flight, oldest first, so that each PONG is
        # matched to its PING: None for a keepalive, or the Event a flush()
        # waits on. Guarded by _out_lock, like the buffer the PINGs go into.
        self._pings: deque[threading.Event | None] = deque()
        # Keepalive PINGs sent since the last PONG (I/O thread only).
        self._pings_out = 0
        self._close_deadline = 0.0

        # Subscriptions and timers: written by any thread under _state_lock,
        # read by the I/O thread (dict reads are atomic).
        self._state_lock = threading.Lock()
        self._sids = itertools.count(1)
        self._handlers: dict[int, MessageHandler] = {}
        self._periodic: list[_Periodic] = []

        self.tokens = TokenGenerator()
        self._reply_prefix = self.tokens.inbox() + "."
        self._request_ids = itertools.count(1)
        self._requests: dict[str, _PendingRequest] = {}

    # --- lifecycle --------------------------------------------------------

    def connect(self) -> None:
        """Open the connection and start the I/O thread.

        :raises ServerUnreachableError: nothing answered as a NATS server.
        :raises AuthorizationError: the server refused the credentials.
        :raises TlsError: TLS was required, refused, or failed.
        """
        if self._thread is not None:
            raise NatsConnectionError("connect() was already called", url=self.safe_url)
        sock, leftover = self._handshake()
        sock.setblocking(False)
        self._sock = sock
        self._inbound += leftover
        self._add_periodic(self._ping_interval, self._send_keepalive_ping)
        self._subscribe_locked(self._reply_prefix + "*", self._on_reply)

        self._thread = threading.Thread(
            target=self._run, name=f"nats-io-{self._thread_label}", daemon=True
        )
        self._thread.start()
        logger.debug("connected to %s", self.safe_url, extra={"url": self.safe_url})

    def close(self, timeout: float = _CLOSE_FLUSH_SECONDS) -> None:
        """Send what is buffered (for at most ``timeout`` s), then close.

        Closing an already closed or lost connection does nothing; it never
        calls ``on_lost``.
        """
        thread = self._thread
        with self._out_lock:
            if self._closing:
                return
            self._close_deadline = time.monotonic() + timeout
            self._closing = True
        if thread is None:
            self._closed.set()
            self._close_wake_sockets()
            return
        self._wake()
        if thread is not threading.current_thread():
            thread.join(timeout + 1.0)
            if thread.is_alive():
                logger.warning("I/O thread of %s did not stop", self.safe_url)

    @property
    def is_connected(self) -> bool:
        """True from a successful :meth:`connect` until closed or lost."""
        return self._thread is not None and not self._closed.is_set()

    def on_io_thread(self) -> bool:
        """Whether the caller is this connection's I/O thread."""
        return threading.current_thread() is self._thread

    @property
    def safe_url(self) -> str:
        """The URL with any password replaced, for logs and errors."""
        return redact_url(self.url)

    @property
    def max_payload(self) -> int:
        """The largest message body the server accepts (bytes)."""
        return int(self.server_info.get("max_payload", 1024 * 1024))

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Block until the connection is closed or lost; True if it is."""
        return self._closed.wait(timeout)

    # --- writing ------------------------------------------------------------

    def publish(self, subject: str, payload: bytes, reply: str = "") -> None:
        """Queue a message for sending; returns before it is on the wire.

        :raises MaxPayloadError: the payload exceeds the server's limit.
        :raises NatsConnectionError: the connection is closed or lost.
        """
        if len(payload) > self.max_payload:
            raise MaxPayloadError(len(payload), self.max_payload)
        if reply:
            header = f"PUB {subject} {reply} {len(payload)}\r\n"
        else:
            header = f"PUB {subject} {len(payload)}\r\n"
        self._write(header.encode() + payload + _CRLF)

    def subscribe(self, subject: str, handler: MessageHandler, queue: str = "") -> int:
        """Subscribe; ``handler`` runs on the I/O thread. Returns the sid."""
        return self._subscribe_locked(subject, handler, queue)

    def unsubscribe(self, sid: int) -> None:
        """Stop a subscription; messages already read are dropped."""
        with self._state_lock:
            self._handlers.pop(sid, None)
        self._write(f"UNSUB {sid}\r\n".encode())

    def request(self, subject: str, payload: bytes, timeout: float) -> bytes:
        """Send a request and wait for the first reply.

        :raises RequestTimeoutError: no reply within ``timeout`` seconds.
        :raises NoRespondersError: nobody subscribes to ``subject``.
        :raises NatsConnectionError: the connection ended meanwhile.
        """
        if self.on_io_thread():
            raise RuntimeError("request() would deadlock on the I/O thread")
        token = str(next(self._request_ids))
        pending = _PendingRequest(subject)
        self._requests[token] = pending
        try:
            self.publish(subject, payload, self._reply_prefix + token)
            if not pending.done.wait(timeout):
                raise RequestTimeoutError(subject, timeout)
        finally:
            self._requests.pop(token, None)
        if pending.error is not None:
            raise pending.error
        return pending.payload

    def flush(self, timeout: float) -> None:
        """Wait until the server has processed everything sent so far.

        :raises StaleConnectionError: no PONG within ``timeout`` seconds.
        """
        if threading.current_thread() is self._thread:
            raise RuntimeError("flush() would deadlock on the I/O thread")
        done = threading.Event()
        self._write(b"PING\r\n", ping_waiter=done)
        if not done.wait(timeout):
            raise StaleConnectionError(
                f"no PONG from {self.safe_url} within {timeout:g} s", url=self.safe_url
            )
        if self._lost_error is not None and self._closed.is_set():
            raise self._lost_error

    def abort(self, error: StanError) -> None:
        """End the connection as lost, with ``error`` as the cause.

        For a layer above that learns the session is dead although the
        socket is fine (the streaming server says the client was replaced).
        Safe from any thread, handlers included.
        """
        self._abort_error = error
        self._wake()

    def add_periodic(self, interval: float, function: Callable[[], None]) -> None:
        """Run ``function`` on the I/O thread every ``interval`` seconds.

        Like handlers, it must be quick. An exception it raises is logged.
        """
        self._add_periodic(interval, function)
        self._wake()

    # --- internals: connecting --------------------------------------------

    def _handshake(self) -> tuple[Any, bytes]:
        tls = self._tls or TlsOptions()
        options = {
            "verbose": False,
            "pedantic": False,
            "lang": "python",
            "version": _pynats.CLIENT_VERSION,
            "name": self.name,
            # Protocol 1 lets the server send INFO updates; headers and
            # no_responders make a request to a subject nobody serves fail
            # at once instead of timing out.
            "protocol": 1,
            "headers": True,
            "no_responders": True,
        }
        try:
            handshake = _pynats.Handshake(
                self.url,
                connect_options=options,
                name=self.name,
                socket_timeout=self._connect_timeout,
                tls_cacert=tls.ca_file,
                tls_client_cert=tls.cert_file,
                tls_client_key=tls.key_file,
                tls_verify=not tls.insecure_skip_verify,
            )
        except (_pynats.pynats2_errors.NATSError, ValueError) as err:
            raise NatsConnectionError(
                f"invalid NATS URL {self.safe_url}: {type(err).__name__}",
                url=self.safe_url,
            ) from err

        try:
            handshake.connect()
            self.server_info = handshake.server_info
            handshake._send(b"PING")
            self._await_first_pong(handshake)
        except _pynats.pynats2_errors.NATSTLSConnectionRequiredError as err:
            self._close_quietly(handshake)
            raise TlsError(
                f"{self.safe_url} requires TLS: use a tls:// URL", url=self.safe_url
            ) from err
        except _pynats.pynats2_errors.NATSTCPConnectionRequiredError as err:
            self._close_quietly(handshake)
            raise TlsError(
                f"{self.safe_url} does not offer TLS: use a nats:// URL",
                url=self.safe_url,
            ) from err
        except ssl.SSLError as err:
            self._close_quietly(handshake)
            raise TlsError(
                f"TLS handshake with {self.safe_url} failed: {err}", url=self.safe_url
            ) from err
        except NatsConnectionError:
            self._close_quietly(handshake)
            raise
        except (
            OSError,
            _pynats.ClosedDuringHandshake,
            _pynats.pynats2_errors.NATSError,
        ) as err:
            self._close_quietly(handshake)
            if isinstance(err, TimeoutError | _pynats.pynats2_errors.NATSError):
                problem = f"no answer within {self._connect_timeout:g} s"
            elif isinstance(err, _pynats.ClosedDuringHandshake):
                problem = str(err)
            else:
                problem = _describe(err)
            raise ServerUnreachableError(
                f"no NATS server at {self.safe_url}: {problem}", url=self.safe_url
            ) from err
        return handshake.take_socket()

    def _await_first_pong(self, handshake: _pynats.Handshake) -> None:
        """Read until the PONG that proves CONNECT was accepted."""
        deadline = time.monotonic() + self._connect_timeout
        while time.monotonic() < deadline:
            line = handshake._readline().rstrip(_CRLF)
            if line == b"PONG":
                return
            if line.startswith(b"-ERR"):
                text = _error_text(line)
                if "authorization" in text.lower() or "authentication" in text.lower():
                    raise AuthorizationError(
                        f"{self.safe_url} refused the credentials: {text}",
                        url=self.safe_url,
                    )
                raise NatsConnectionError(
                    f"{self.safe_url} refused the connection: {text}", url=self.safe_url
                )
            if line == b"PING":
                handshake._send(b"PONG")
            # +OK and INFO lines are possible here and carry nothing needed.
        raise ServerUnreachableError(
            f"no PONG from {self.safe_url} within {self._connect_timeout:g} s",
            url=self.safe_url,
        )

    @staticmethod
    def _close_quietly(handshake: _pynats.Handshake) -> None:
        try:
            handshake._socket.close()
        except (AttributeError, OSError):
            pass

    # --- internals: writing -----------------------------------------------

    def _write(self, data: bytes, ping_waiter: threading.Event | None = None) -> None:
        with self._out_lock:
            # The I/O thread itself (answering a PING or a heartbeat) never
            # waits: it is the one that drains the buffer.
            while (
                self._outbound_size >= _MAX_OUTBOUND_BYTES
                and not self._closed_for_writes()
                and threading.get_ident() != self._io_thread_id
            ):
                self._drained.wait(1.0)
            if self._closed_for_writes():
                raise self._write_error()
            if ping_waiter is not None:
                # The deque is only appended to under _out_lock, in the same
                # order as the PINGs go into the buffer.
                self._pings.append(ping_waiter)
            self._outbound.append(data)
            self._outbound_size += len(data)
            if self._wake_pending:
                return
            self._wake_pending = True
        self._wake_writer_send()

    def _closed_for_writes(self) -> bool:
        return self._closing or self._closed.is_set() or self._thread is None

    def _write_error(self) -> NatsConnectionError:
        if self._lost_error is not None:
            return NatsConnectionError(
                f"connection to {self.safe_url} was lost: {self._lost_error}",
                url=self.safe_url,
            )
        return NatsConnectionError(
            f"connection to {self.safe_url} is closed", url=self.safe_url
        )

    def _wake(self) -> None:
        with self._out_lock:
            if self._wake_pending:
                return
            self._wake_pending = True
        self._wake_writer_send()

    def _wake_writer_send(self) -> None:
        try:
            self._wake_writer.send(b"\0")
        except OSError:
            pass  # the I/O thread is gone; there is nobody to wake

    def _subscribe_locked(
        self, subject: str, handler: MessageHandler, queue: str = ""
    ) -> int:
        with self._state_lock:
            sid = next(self._sids)
            self._handlers[sid] = handler
        line = (
            f"SUB {subject} {queue} {sid}\r\n" if queue else f"SUB {subject} {sid}\r\n"
        )
        if self._thread is None:
            # Still connecting: the I/O thread is not there to be woken.
            with self._out_lock:
                self._outbound.append(line.encode())
                self._outbound_size += len(line)
        else:
            self._write(line.encode())
        return sid

    def _add_periodic(self, interval: float, function: Callable[[], None]) -> None:
        with self._state_lock:
            self._periodic = [*self._periodic, _Periodic(interval, function)]

    def _send_keepalive_ping(self) -> None:
        if self._pings_out >= self._max_pings_out:
            raise StaleConnectionError(
                f"{self.safe_url} did not answer {self._pings_out} PINGs sent "
                f"{self._ping_interval:g} s apart",
                url=self.safe_url,
            )
        self._pings_out += 1
        with self._out_lock:
            self._pings.append(None)
            self._outbound.append(b"PING\r\n")
            self._outbound_size += 6

    # --- internals: the I/O thread ----------------------------------------

    def _run(self) -> None:
        assert self._sock is not None
        self._io_thread_id = threading.get_ident()
        selector = selectors.DefaultSelector()
        selector.register(self._wake_reader, selectors.EVENT_READ)
        selector.register(self._sock, selectors.EVENT_READ)
        error: NatsConnectionError | None = None
        try:
            self._loop(selector, self._sock)
        except NatsConnectionError as err:
            error = err
        except (OSError, ssl.SSLError) as err:
            error = ConnectionClosedByServerError(
                f"connection to {self.safe_url} failed: {_describe(err)}",
                url=self.safe_url,
            )
            error.__cause__ = err
        except ProtocolError as err:
            error = NatsConnectionError(
                f"protocol error from {self.safe_url}: {err}", url=self.safe_url
            )
            error.__cause__ = err
        except Exception as err:  # a bug of ours: end as a loss, never silently
            logger.exception("I/O thread of %s failed", self.safe_url)
            error = NatsConnectionError(
                f"internal error on the connection to {self.safe_url}: {err!r}",
                url=self.safe_url,
            )
            error.__cause__ = err
        finally:
            selector.close()
            self._shutdown(error)

    def _loop(self, selector: selectors.BaseSelector, sock: socket.socket) -> None:
        writing = False
        while True:
            if self._closing and not self._has_outbound():
                return
            if self._closing and time.monotonic() > self._close_deadline:
                logger.warning(
                    "closing %s with %d bytes unsent",
                    self.safe_url,
                    self._outbound_size + len(self._sending),
                )
                return

            timeout = self._run_due_timers()
            self._send_some(sock)
            want_write = self._has_outbound()
            if want_write != writing:
                events = selectors.EVENT_READ
                if want_write:
                    events |= selectors.EVENT_WRITE
                selector.modify(sock, events)
                writing = want_write

            if self._closing:
                timeout = min(timeout, 0.05)
            for key, mask in selector.select(timeout):
                if key.fileobj is self._wake_reader:
                    self._drain_wake_socket()
                elif mask & selectors.EVENT_READ:
                    self._read(sock)
            if self._abort_error is not None:
                raise NatsConnectionError(
                    str(self._abort_error), url=self.safe_url
                ) from self._abort_error

    def _has_outbound(self) -> bool:
        return bool(self._sending) or self._outbound_size > 0

    def _send_some(self, sock: socket.socket) -> None:
        """Send as much as the socket takes without blocking."""
        while True:
            if not self._sending:
                with self._out_lock:
                    if not self._outbound:
                        return
                    chunk = (
                        self._outbound[0]
                        if len(self._outbound) == 1
                        else b"".join(self._outbound)
                    )
                    self._outbound.clear()
                    self._outbound_size = 0
                    self._drained.notify_all()
                self._sending = memoryview(chunk)
            try:
                sent = sock.send(self._sending)
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                return
            self._sending = self._sending[sent:]

    def _drain_wake_socket(self) -> None:
        # Drain first, then clear the flag: cleared first, a writer could set
        # it and send its byte in between, the drain would swallow that byte,
        # and the flag would stay set with nothing left to wake this thread;
        # every later write would then wait for a read or a timer.
        try:
            while self._wake_reader.recv(4096):
                pass
        except BlockingIOError:
            pass
        with self._out_lock:
            self._wake_pending = False

    def _read(self, sock: socket.socket) -> None:
        while True:
            try:
                chunk = sock.recv(_READ_SIZE)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            if not chunk:
                raise self._closed_by_server()
            self.last_received = time.monotonic()
            self._inbound += chunk
            # A TLS socket may hold decrypted bytes that select() cannot see.
            if not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
                break
        self._parse()

    def _closed_by_server(self) -> ConnectionClosedByServerError:
        reason = f"{self.safe_url} closed the connection"
        if self._last_server_error:
            reason += f" after -ERR {self._last_server_error!r}"
        return ConnectionClosedByServerError(reason, url=self.safe_url)

    def _parse(self) -> None:
        buffer = self._inbound
        position = 0
        size = len(buffer)
        while position < size:
            end = buffer.find(_CRLF, position)
            if end < 0:
                break
            verb = buffer[position : position + 4]
            if verb == b"MSG ":
                frame_end = self._parse_msg(buffer, position, end, headers=False)
            elif verb == b"HMSG":
                frame_end = self._parse_msg(buffer, position, end, headers=True)
            else:
                self._control_line(bytes(buffer[position:end]))
                frame_end = end + 2
            if frame_end < 0:
                break  # the payload has not fully arrived yet
            position = frame_end
        if position:
            del buffer[:position]

    def _parse_msg(
        self, buffer: bytearray, start: int, end: int, *, headers: bool
    ) -> int:
        """Dispatch one MSG or HMSG; return where the next frame starts."""
        fields = bytes(buffer[start:end]).split()
        try:
            if headers:
                # HMSG <subject> <sid> [reply] <header size> <total size>
                total = int(fields[-1])
                header_size = int(fields[-2])
                reply = fields[3] if len(fields) == 6 else b""
            else:
                # MSG <subject> <sid> [reply] <size>
                total = int(fields[-1])
                header_size = 0
                reply = fields[3] if len(fields) == 5 else b""
            sid = int(fields[2])
        except (IndexError, ValueError) as err:
            raise ProtocolError(
                f"malformed message line {bytes(buffer[start:end])!r}"
            ) from err

        payload_start = end + 2
        frame_end = payload_start + total + 2
        if len(buffer) < frame_end:
            return -1
        payload = bytes(buffer[payload_start + header_size : payload_start + total])
        handler = self._handlers.get(sid)
        if handler is None:
            return frame_end  # unsubscribed meanwhile
        if headers and _is_no_responders(buffer, payload_start, header_size):
            subject = fields[1].decode()
            pending = self._requests.get(subject.rpartition(".")[2])
            if pending is not None and subject.startswith(self._reply_prefix):
                pending.error = NoRespondersError(pending.subject)
                pending.done.set()
            return frame_end
        try:
            handler(fields[1].decode(), reply.decode(), payload)
        except Exception:  # a handler bug must not kill I/O
            logger.exception("message handler for sid %d failed", sid)
        return frame_end

    def _control_line(self, line: bytes) -> None:
        if line == b"PING":
            with self._out_lock:
                self._outbound.append(b"PONG\r\n")
                self._outbound_size += 6
        elif line == b"PONG":
            self._pings_out = 0
            with self._out_lock:
                waiter = self._pings.popleft() if self._pings else None
            if waiter is not None:
                waiter.set()
        elif line.startswith(b"+OK"):
            pass
        elif line.startswith(b"-ERR"):
            self._last_server_error = _error_text(line)
            logger.warning(
                "NATS server %s reported an error: %s",
                self.safe_url,
                self._last_server_error,
                extra={"url": self.safe_url, "server_error": self._last_server_error},
            )
        elif line.startswith(b"INFO"):
            self._apply_info(line)
        else:
            raise ProtocolError(f"unexpected line from server: {line[:80]!r}")

    def _apply_info(self, line: bytes) -> None:
        try:
            info = json.loads(line[4:])
        except ValueError as err:
            raise ProtocolError(f"malformed INFO line: {line[:80]!r}") from err
        if not isinstance(info, dict):
            raise ProtocolError(f"malformed INFO line: {line[:80]!r}")
        self.server_info = {**self.server_info, **info}
        if info.get("ldm"):
            logger.warning(
                "NATS server %s entered lame duck mode and will close connections",
                self.safe_url,
                extra={"url": self.safe_url},
            )
        else:
            logger.debug("NATS server %s sent an INFO update", self.safe_url)

    def _on_reply(self, subject: str, reply: str, payload: bytes) -> None:
        pending = self._requests.get(subject.rpartition(".")[2])
        if pending is not None and not pending.done.is_set():
            pending.payload = payload
            pending.done.set()

    def _run_due_timers(self) -> float:
        """Run the timers that are due; return seconds until the next one."""
        now = time.monotonic()
        next_due = now + 1.0
        for timer in self._periodic:
            if timer.due <= now:
                timer.due = now + timer.interval
                try:
                    timer.function()
                except NatsConnectionError:
                    raise
                except StanError as err:
                    raise NatsConnectionError(str(err), url=self.safe_url) from err
                except Exception:  # a timer bug must not kill I/O
                    logger.exception("periodic task %r failed", timer.function)
            next_due = min(next_due, timer.due)
        return max(0.0, next_due - time.monotonic())

    def _shutdown(self, error: NatsConnectionError | None) -> None:
        """Runs last on the I/O thread: release everything, tell the owner."""
        with self._out_lock:
            was_closing = self._closing
            self._lost_error = None if was_closing else error
            self._closed.set()
            self._drained.notify_all()
            self._outbound.clear()
            self._outbound_size = 0
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._close_wake_sockets()

        failure = error or NatsConnectionError(
            f"connection to {self.safe_url} is closed", url=self.safe_url
        )
        for pending in list(self._requests.values()):
            pending.error = failure
            pending.done.set()
        with self._out_lock:
            waiters = [waiter for waiter in self._pings if waiter is not None]
            self._pings.clear()
        for waiter in waiters:
            waiter.set()

        if was_closing or error is None:
            logger.debug("connection to %s closed", self.safe_url)
            return
        logger.debug("connection to %s lost: %s", self.safe_url, error)
        if self._on_lost is not None:
            try:
                self._on_lost(error)
            except Exception:  # the owner's bug; I/O is over
                logger.exception("on_lost handler failed")

    def _close_wake_sockets(self) -> None:
        for sock in (self._wake_reader, self._wake_writer):
            try:
                sock.close()
            except OSError:
                pass


def _is_no_responders(buffer: bytearray, start: int, header_size: int) -> bool:
    status_line_end = buffer.find(_CRLF, start, start + header_size)
    status = bytes(buffer[start:status_line_end]).split()
    return len(status) >= 2 and status[1] == _NO_RESPONDERS_STATUS


def _error_text(line: bytes) -> str:
    text = line[4:].strip().decode("utf-8", "replace")
    return text.strip("'")


def _describe(err: BaseException) -> str:
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
