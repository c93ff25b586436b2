"""A NATS client in a process of its own, driven by tests/test_nats_adapter.py.

Bare pynats2 cannot be tested inside the pytest process: after the server
dies its reader thread spins forever and ``close()`` joins that thread, so
it would hang the test run (and its threads are not daemons). This script
runs one client, either bare pynats2 (``--impl pynats2``) or the adapter
(``--impl adapter``, :class:`stan_client.nats.NatsConnection`), and lets the
test drive it through the same line protocol, so that one test body can
check both.

Run from the repository root as ``python -m tests.pynats2_probe --impl
adapter --url nats://127.0.0.1:4222``. It prints one JSON object per line on
stdout:

* ``{"event": "connected"}`` once connected;
* ``{"event": "lost", "error": "<class>", "message": "..."}`` when the
  client reports a lost connection (only the adapter ever does);
* ``{"event": "status", "id": N, ...}`` in answer to a status command;
* ``{"event": "error", "cmd": "...", "error": "..."}`` when a command raised.

It reads one JSON command per line on stdin:

* ``{"cmd": "subscribe", "subject": S, "sleep_ms": X}``: record every
  message of ``S`` (payloads in arrival order); the callback first sleeps a
  random 0..X ms, as a handler doing some work would;
* ``{"cmd": "subscribe_invalid", "subject": S}``: subscribe to a subject the
  server rejects with ``-ERR 'Invalid Subject'``. Bare pynats2 gets the raw
  ``SUB`` line, because its ``subscribe()`` replaces the reader thread right
  after the ``SUB``, and the thread being replaced would swallow the -ERR;
* ``{"cmd": "publish", "subject": S, "prefix": P, "count": N}``: publish
  ``P0`` .. ``P{N-1}`` on this same connection, so the server handles them
  after every earlier command;
* ``{"cmd": "status", "id": N}``: report what was received, whether the
  reader is alive and the server's ``connect_urls`` as the client knows them;
* ``{"cmd": "exit"}``: leave at once (``os._exit``; bare pynats2 could not
  close).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import random
import sys
import threading
import time
import types
from collections.abc import Callable
from typing import Any


class Recorder:
    """Payloads per subject, in the order the callbacks ran."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: dict[str, list[str]] = {}

    def callback(self, subject: str, sleep_ms: float) -> Callable[[bytes], None]:
        randomness = random.Random()

        def record(payload: bytes) -> None:
            if sleep_ms:
                time.sleep(randomness.uniform(0, sleep_ms) / 1000)
            with self._lock:
                self._received.setdefault(subject, []).append(
                    payload.decode(errors="backslashreplace")
                )

        return record

    def snapshot(self) -> dict[str, list[str]]:
        with self._lock:
            return {subject: list(items) for subject, items in self._received.items()}


class Output:
    """JSON lines on stdout, written whole even from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def emit(self, event: str, **fields: Any) -> None:
        line = json.dumps({"event": event, **fields})
        with self._lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()


def _import_bare_pynats2() -> Any:
    """Import pynats2 as it is, lending it ``pkg_resources`` only if absent.

    pynats2 0.9.0 imports ``pkg_resources`` to read its own version, and
    setuptools 81 and later no longer ship that module, so on such a
    machine pynats2 cannot even be imported (tests/test_nats_adapter.py
    shows that defect on its own). The runtime defects probed here are
    elsewhere, so a stand-in with the one function pynats2 calls is lent
    when, and only when, the real module is missing.
    """
    try:
        importlib.import_module("pkg_resources")
    except ImportError:
        stand_in = types.ModuleType("pkg_resources")

        class _Distribution:
            def __init__(self, name: str) -> None:
                self.version = importlib.metadata.version(name)

        stand_in.get_distribution = _Distribution  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = stand_in
    import pynats2

    return pynats2


class BarePynats2:
    """pynats2's own threaded client, used exactly as its README shows."""

    def __init__(self, args: argparse.Namespace, output: Output) -> None:
        pynats2 = _import_bare_pynats2()
        self._client = pynats2.NATSClient(
            args.url,
            name="pynats2-probe",
            ping_interval=args.ping_interval,
            socket_timeout=args.connect_timeout,
        )
        if args.protocol:
            # pynats2 announces protocol 0, and servers send asynchronous
            # INFO lines only to clients that announce protocol 1.
            self._client._conn_options["protocol"] = args.protocol
        self._client.connect()
        self._next_raw_sid = 10_000

    def subscribe(self, subject: str, record: Callable[[bytes], None]) -> None:
        self._client.subscribe(subject, callback=lambda msg: record(msg.payload))

    def subscribe_invalid(self, subject: str) -> None:
        self._next_raw_sid += 1
        self._client._send(b"SUB", subject, self._next_raw_sid)

    def publish(self, subject: str, payload: bytes) -> None:
        self._client.publish(subject, payload=payload)

    def reader_alive(self) -> bool:
        waiter = self._client._waiter
        return waiter is not None and waiter.is_alive()

    def connect_urls(self) -> list[str] | None:
        return None  # pynats2 keeps nothing of INFO


class Adapter:
    """stan_client.nats.NatsConnection, the adapter under test."""

    def __init__(self, args: argparse.Namespace, output: Output) -> None:
        from stan_client.nats import NatsConnection

        def on_lost(error: Exception) -> None:
            output.emit("lost", error=type(error).__name__, message=str(error))

        self._connection = NatsConnection(
            args.url,
            name="adapter-probe",
            connect_timeout=args.connect_timeout,
            ping_interval=args.ping_interval,
            max_pings_out=args.max_pings_out,
            on_lost=on_lost,
        )
        self._connection.connect()

    def subscribe(self, subject: str, record: Callable[[bytes], None]) -> None:
        self._connection.subscribe(
            subject, lambda _subject, _reply, payload: record(payload)
        )

    def subscribe_invalid(self, subject: str) -> None:
        self._connection.subscribe(subject, lambda *_message: None)

    def publish(self, subject: str, payload: bytes) -> None:
        self._connection.publish(subject, payload)

    def reader_alive(self) -> bool:
        return self._connection.is_connected

    def connect_urls(self) -> list[str] | None:
        urls = self._connection.server_info.get("connect_urls")
        return list(urls) if urls is not None else None


def _run_command(
    client: BarePynats2 | Adapter,
    recorder: Recorder,
    output: Output,
    command: dict[str, Any],
) -> None:
    name = command.get("cmd")
    if name == "subscribe":
        subject = command["subject"]
        client.subscribe(
            subject, recorder.callback(subject, float(command.get("sleep_ms", 0)))
        )
    elif name == "subscribe_invalid":
        client.subscribe_invalid(command["subject"])
    elif name == "publish":
        prefix = command.get("prefix", "")
        for index in range(int(command.get("count", 1))):
            client.publish(command["subject"], f"{prefix}{index}".encode())
    elif name == "status":
        output.emit(
            "status",
            id=command.get("id"),
            received=recorder.snapshot(),
            reader_alive=client.reader_alive(),
            connect_urls=client.connect_urls(),
            threads=sorted(thread.name for thread in threading.enumerate()),
        )
    elif name == "exit":
        sys.stdout.flush()
        os._exit(0)
    else:
        raise ValueError(f"unknown command {command!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=["pynats2", "adapter"], required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--ping-interval", type=float, default=30.0)
    parser.add_argument("--max-pings-out", type=int, default=2)
    parser.add_argument("--connect-timeout", type=float, default=2.0)
    parser.add_argument(
        "--protocol", type=int, default=0, help="bare pynats2 only: CONNECT protocol"
    )
    args = parser.parse_args()

    output = Output()
    recorder = Recorder()
    client: BarePynats2 | Adapter = (
        BarePynats2(args, output) if args.impl == "pynats2" else Adapter(args, output)
    )
    output.emit("connected", pid=os.getpid())
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        try:
            _run_command(client, recorder, output, command)
        except Exception as err:
            output.emit("error", cmd=command.get("cmd"), error=repr(err))
    # stdin closed: the test is gone. Bare pynats2 could not close cleanly.
    os._exit(0)


if __name__ == "__main__":
    main()
