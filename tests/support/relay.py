"""A TCP relay that can silently partition a connection or cut it.

A network partition is not a crash: the sockets stay open and simply stop
carrying bytes, and only heartbeats or pings can tell. :class:`TcpRelay` sits
between a client and a server so a test can produce exactly that.

What a pause does to the bytes: by default they are **held**. The relay stops
reading in the paused direction, so the bytes wait in the kernel's socket
buffers (and at most one chunk inside the relay) and flow again, complete and
in order, after :meth:`TcpRelay.resume`. That is what TCP itself shows an
application during a partition that heals: nothing arrives, the sender's
buffer fills up, and then the stream goes on without a gap. With
``drop=True`` the relay keeps reading and throws the bytes away instead,
leaving a hole in the stream, which no real TCP connection ever shows; use it
only to test how a peer copes with a corrupted stream.

"upstream" is client to server, "downstream" is server to client.
"""

import itertools
import logging
import select
import socket
import struct
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, Self

logger = logging.getLogger(__name__)

Direction = Literal["both", "upstream", "downstream"]
_Mode = Literal["open", "hold", "drop"]

#: Seconds a relay thread waits before re-checking whether it must stop.
_TICK = 0.05
#: Bytes read at once.
_CHUNK = 65536
#: Seconds close() waits for each thread.
_JOIN_TIMEOUT = 5.0


class _Gate:
    """Whether bytes may pass in one direction, shared by all connections."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._mode: _Mode = "open"

    @property
    def mode(self) -> _Mode:
        with self._changed:
            return self._mode

    def set(self, mode: _Mode) -> None:
        with self._changed:
            self._mode = mode
            self._changed.notify_all()

    def wait_while_held(self, timeout: float) -> _Mode:
        """Wait up to ``timeout`` for the gate to leave "hold"; return the mode."""
        with self._changed:
            if self._mode == "hold":
                self._changed.wait(timeout)
            return self._mode


class _Link:
    """One relayed connection: a client socket, a server socket, two pumps."""

    def __init__(
        self,
        label: str,
        client: socket.socket,
        server: socket.socket,
        upstream: _Gate,
        downstream: _Gate,
    ) -> None:
        self.label = label
        # Non-blocking, so that no pump ever sits in a call that cut() cannot
        # interrupt; select() with a short tick does the waiting.
        client.setblocking(False)
        server.setblocking(False)
        self._client = client
        self._server = server
        self._stop = threading.Event()
        self._abort = False
        self._lock = threading.Lock()
        self._pumps_left = 2
        # Bytes per way: "up", "down", "dropped-up", "dropped-down".
        self.counts: Counter[str] = Counter()
        self._threads = [
            threading.Thread(
                target=self._pump,
                args=(client, server, upstream, "up"),
                name=f"{label}-up",
                daemon=True,
            ),
            threading.Thread(
                target=self._pump,
                args=(server, client, downstream, "down"),
                name=f"{label}-down",
                daemon=True,
            ),
        ]

    @property
    def alive(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def cut(self) -> None:
        """Reset both sockets (RST, no FIN) and wait for the pumps to end."""
        with self._lock:
            self._abort = True
        self._stop.set()
        self.join()

    def join(self) -> None:
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(_JOIN_TIMEOUT)
                if thread.is_alive():
                    logger.warning("relay thread %s did not stop", thread.name)

    def _pump(
        self, src: socket.socket, dst: socket.socket, gate: _Gate, way: str
    ) -> None:
        try:
            self._relay(src, dst, gate, way)
        except OSError as err:
            # A reset or a broken pipe on one side ends the whole connection,
            # as it would without the relay in between.
            logger.debug("relay %s-%s: %s", self.label, way, err)
            with self._lock:
                self._abort = True
            self._stop.set()
        finally:
            with self._lock:
                self._pumps_left -= 1
                last = self._pumps_left == 0
                abort = self._abort
            if last:
                self._close_sockets(abort)

    def _relay(
        self, src: socket.socket, dst: socket.socket, gate: _Gate, way: str
    ) -> None:
        while not self._stop.is_set():
            if gate.wait_while_held(_TICK) == "hold":
                continue
            readable, _, _ = select.select([src], [], [], _TICK)
            if not readable:
                continue
            try:
                data = src.recv(_CHUNK)
            except BlockingIOError:
                continue
            if not data:
                # The sender closed its side: pass the FIN on and end this way.
                dst.shutdown(socket.SHUT_WR)
                return
            # Paused while we read: keep the chunk until resumed (or drop it).
            mode = gate.mode
            while mode == "hold" and not self._stop.is_set():
                mode = gate.wait_while_held(_TICK)
            if self._stop.is_set():
                continue
            if mode == "drop":
                with self._lock:
                    self.counts[f"dropped-{way}"] += len(data)
                continue
            self._send_all(dst, data)
            with self._lock:
                self.counts[way] += len(data)

    def _send_all(self, dst: socket.socket, data: bytes) -> None:
        # Short timeouts instead of one blocking sendall, so that cut() and
        # close() end a pump even when the receiver stopped reading.
        view = memoryview(data)
        while view and not self._stop.is_set():
            _, writable, _ = select.select([], [dst], [], _TICK)
            if not writable:
                continue
            try:
                sent = dst.send(view)
            except BlockingIOError:
                continue
            view = view[sent:]

    def _close_sockets(self, abort: bool) -> None:
        for sock in (self._client, self._server):
            if abort:
                # Linger 0: close() sends RST, like a connection torn by a crash.
                try:
                    sock.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                except OSError:
                    logger.debug("relay %s: socket already gone", self.label)
            sock.close()


class TcpRelay:
    """Relays TCP connections from a free local port to ``target``.

    Every accepted connection gets its own connection to the target and two
    threads, one per direction. :meth:`pause` and :meth:`resume` apply to all
    connections, present and future; :meth:`cut` resets the present ones and
    keeps accepting new ones; :meth:`close` ends everything.
    """

    def __init__(self, target_host: str, target_port: int, name: str = "relay") -> None:
        """Start listening and relaying at once.

        :param target_host: where to connect for each accepted connection.
        :param target_port: the target's port.
        :param name: prefix of the thread names.
        """
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.name = f"{name}-{self.port}"
        self._upstream = _Gate()
        self._downstream = _Gate()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._counter = itertools.count(1)
        self._retired_counts: Counter[str] = Counter()
        self._acceptor = threading.Thread(
            target=self._accept_loop, name=f"{self.name}-accept", daemon=True
        )
        self._acceptor.start()

    def url_for(self, scheme: str = "nats") -> str:
        """``SCHEME://127.0.0.1:PORT`` for clients that should go through here."""
        return f"{scheme}://127.0.0.1:{self.port}"

    def _gates(self, direction: Direction) -> Iterator[_Gate]:
        if direction in ("both", "upstream"):
            yield self._upstream
        if direction in ("both", "downstream"):
            yield self._downstream
        if direction not in ("both", "upstream", "downstream"):
            raise ValueError(
                "direction must be 'both', 'upstream' or 'downstream', "
                f"got {direction!r}"
            )

    def pause(self, direction: Direction = "both", *, drop: bool = False) -> None:
        """Stop passing bytes in ``direction`` without closing any socket.

        :param direction: "both", "upstream" (client to server) or "downstream".
        :param drop: discard the bytes instead of holding them (see the module
            docstring); off by default because real TCP never loses bytes.
        """
        for gate in self._gates(direction):
            gate.set("drop" if drop else "hold")

    def resume(self, direction: Direction = "both") -> None:
        """Pass bytes again in ``direction``; held bytes flow first."""
        for gate in self._gates(direction):
            gate.set("open")

    @contextmanager
    def paused(
        self, direction: Direction = "both", *, drop: bool = False
    ) -> Iterator[None]:
        """Pause for the duration of a ``with`` block."""
        self.pause(direction, drop=drop)
        try:
            yield
        finally:
            self.resume(direction)

    @property
    def connection_count(self) -> int:
        """Relayed connections that are still open."""
        with self._lock:
            return sum(1 for link in self._links if link.alive)

    def _counts(self) -> Counter[str]:
        with self._lock:
            total = Counter(self._retired_counts)
            for link in self._links:
                total.update(link.counts)
        return total

    @property
    def bytes_relayed(self) -> tuple[int, int]:
        """Bytes passed so far as (upstream, downstream), over all connections."""
        counts = self._counts()
        return counts["up"], counts["down"]

    @property
    def bytes_dropped(self) -> tuple[int, int]:
        """Bytes discarded by ``pause(drop=True)`` as (upstream, downstream)."""
        counts = self._counts()
        return counts["dropped-up"], counts["dropped-down"]

    def cut(self) -> None:
        """Reset every relayed connection now; new connections are accepted."""
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            link.cut()
            self._retire(link)

    def close(self) -> None:
        """Stop accepting, reset every connection and join all threads."""
        self._stop.set()
        self._acceptor.join(_JOIN_TIMEOUT)
        if self._acceptor.is_alive():
            logger.warning("relay thread %s did not stop", self._acceptor.name)
        self._listener.close()
        self.cut()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _retire(self, link: _Link) -> None:
        with self._lock:
            self._retired_counts.update(link.counts)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            readable, _, _ = select.select([self._listener], [], [], _TICK)
            if not readable:
                continue
            try:
                client, _ = self._listener.accept()
            except OSError as err:
                logger.debug("relay %s: accept failed: %s", self.name, err)
                continue
            try:
                server = socket.create_connection(self.target, timeout=5.0)
            except OSError as err:
                # Like a refused connection: the client sees a reset.
                logger.debug("relay %s: target unreachable: %s", self.name, err)
                client.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                client.close()
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _Link(
                f"{self.name}-c{next(self._counter)}",
                client,
                server,
                self._upstream,
                self._downstream,
            )
            with self._lock:
                self._prune()
                self._links.append(link)
            link.start()

    def _prune(self) -> None:
        """Forget finished connections, keeping their byte counts (lock held)."""
        finished = [link for link in self._links if not link.alive]
        for link in finished:
            self._retired_counts.update(link.counts)
        self._links = [link for link in self._links if link.alive]
