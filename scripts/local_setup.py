"""The seed's local setup without Docker: three clusters and the aggregator.

Starts stan1 (the central NATS Streaming server) and the edges stan2 and
stan3 (client ports 4222 and 4333 when free), writes a config for them,
starts the aggregator and a subscriber that prints what reaches stan1, then
publishes the example event to stan2 and an invalid message to stan3 so the
first screen already shows one forwarded and one refused. It runs until
Ctrl-C. Run it through ``scripts/local-setup``, which installs things first.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[1]
CLUSTER_ID = "stan"
CHANNEL = "cyverse.events"
EXAMPLE_EVENT = {
    "specversion": "1.0",
    "id": "3f1c9b6e-0d55-4a8c-9a4e-6b2f1e7c2d10",
    "source": "/de/apps/analyses",
    "type": "org.cyverse.analysis.status.changed",
    "time": "2026-12-03T10:00:00Z",
    "datacontenttype": "application/json",
    "data": {"analysis_id": "a-1234", "status": "Completed"},
}
INVALID_MESSAGE = '{"specversion": "1.0", "source": "/de", "type": "no.id"}'
READY_TIMEOUT = 20.0


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        # As the servers bind: a port whose last connections linger in
        # TIME_WAIT (a stop a moment ago) is free for them.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pick_port(preferred: int) -> int:
    if _port_is_free(preferred):
        return preferred
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    print(f"port {preferred} is taken; using {port} instead")
    return port


def _find_server() -> str:
    for folder in (REPO / ".local" / "bin", Path.home() / "go" / "bin"):
        candidate = folder / "nats-streaming-server"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("nats-streaming-server")
    if found is None:
        sys.exit("nats-streaming-server not found: run scripts/bootstrap first")
    return found


class Demo:
    """The processes of the local setup, started and stopped together."""

    def __init__(self, workdir: Path, ports: dict[str, int]) -> None:
        self.workdir = workdir
        self.ports = ports
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        # What the subscriber on stan1 and the aggregator printed, by name.
        self.lines: dict[str, list[str]] = {"stan_sub": [], "aggregator": []}
        self._line_arrived = threading.Condition()
        # Several threads print the children's output: one line at a time.
        self._output_lock = threading.Lock()

    def say(self, text: str) -> None:
        """Print whole lines, never interleaved with another thread's."""
        with self._output_lock:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()

    def url(self, name: str) -> str:
        return f"nats://127.0.0.1:{self.ports[name]}"

    def start_servers(self) -> None:
        server = _find_server()
        for name, port in self.ports.items():
            folder = self.workdir / name
            folder.mkdir(parents=True, exist_ok=True)
            self._spawn(
                name,
                [
                    server,
                    "--cluster_id",
                    CLUSTER_ID,
                    "--store",
                    "FILE",
                    "--dir",
                    str(folder / "store"),
                    "--addr",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--log",
                    str(folder / "server.log"),
                ],
                output=subprocess.DEVNULL,
            )
            self.say(
                f"{name}: nats-streaming-server on {self.url(name)} (log {folder})"
            )
        for name in self.ports:
            self._wait_for_port(name)

    def write_config(self) -> Path:
        config = {
            "destination": {
                "name": "stan1",
                "url": self.url("stan1"),
                "cluster_id": CLUSTER_ID,
                "max_outage": 300,
            },
            "sources": [
                {
                    "name": edge,
                    "url": self.url(edge),
                    "cluster_id": CLUSTER_ID,
                    "channels": [CHANNEL],
                }
                for edge in ("stan2", "stan3")
            ],
            "logging": {"level": "INFO", "format": "text"},
        }
        path = self.workdir / "config.yml"
        # JSON is valid YAML; no extra dependency needed here.
        path.write_text(json.dumps(config, indent=2) + "\n")
        return path

    def start_aggregator(self, config: Path) -> None:
        self._spawn(
            "aggregator",
            [sys.executable, str(REPO / "aggregator.py"), str(config)],
            output=None,
            prefix="[aggregator] ",
        )

    def start_subscriber(self) -> None:
        command = [
            sys.executable, "-m", "stan_client", "sub",
            "-s", self.url("stan1"), "-c", CLUSTER_ID, "--all", CHANNEL,
        ]  # fmt: skip
        self._spawn("stan_sub", command, output=None, prefix="[stan1 received] ")

    def publish(self, edge: str, data: str) -> None:
        command = pub_command(self.url(edge), data)
        self.say(f"$ {' '.join(_quote(part) for part in command)}")
        result = subprocess.run(
            [sys.executable, *command[1:]],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
        )
        self.say((result.stdout + result.stderr).rstrip())
        result.check_returncode()

    def wait_for_line(self, name: str, text: str, timeout: float) -> bool:
        """Wait until the output of ``name`` has a line containing ``text``."""
        deadline = time.monotonic() + timeout
        with self._line_arrived:
            while not any(text in line for line in self.lines[name]):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._line_arrived.wait(remaining)
        return True

    def stop(self) -> None:
        """Stop in reverse order: subscriber, aggregator, then the servers."""
        for name, process in reversed(self.processes):
            if process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.say(f"{name} did not stop; killing it")
                process.kill()
                process.wait()

    def _spawn(
        self,
        name: str,
        command: Sequence[str],
        output: int | None,
        prefix: str = "",
    ) -> None:
        piped = output is None
        process = subprocess.Popen(
            command,
            cwd=REPO,
            stdout=subprocess.PIPE if piped else output,
            stderr=subprocess.STDOUT if piped else output,
            # Ctrl-C goes to this script, which stops the others in order.
            start_new_session=True,
        )
        self.processes.append((name, process))
        if piped:
            assert process.stdout is not None
            threading.Thread(
                target=self._relay_output,
                args=(name, process.stdout, prefix),
                name=f"output-{name}",
                daemon=True,
            ).start()

    def _relay_output(self, name: str, stream: IO[bytes], prefix: str) -> None:
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.say(prefix + line)
            if name in self.lines:
                with self._line_arrived:
                    self.lines[name].append(line)
                    self._line_arrived.notify_all()

    def _wait_for_port(self, name: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.ports[name]), 0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        sys.exit(f"{name} did not start; see {self.workdir / name / 'server.log'}")


def pub_command(url: str, data: str) -> list[str]:
    python = Path(sys.executable)
    try:
        shown = str(python.relative_to(REPO))
    except ValueError:
        shown = "python"
    return [
        shown,
        "-m",
        "stan_client",
        "pub",
        "-s",
        url,
        "-c",
        CLUSTER_ID,
        CHANNEL,
        data,
    ]


def _quote(part: str) -> str:
    return f"'{part}'" if any(c in part for c in ' {}"') else part


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--central-port", type=int, default=4111)
    parser.add_argument("--edge-ports", type=int, nargs=2, default=[4222, 4333])
    parser.add_argument(
        "--workdir", type=Path, default=REPO / ".local" / "demo", help="stores and logs"
    )
    parser.add_argument(
        "--exit-after-demo",
        action="store_true",
        help="stop everything once the example event reached stan1 (for tests)",
    )
    args = parser.parse_args(argv)

    ports = {
        "stan1": _pick_port(args.central_port),
        "stan2": _pick_port(args.edge_ports[0]),
        "stan3": _pick_port(args.edge_ports[1]),
    }
    shutil.rmtree(args.workdir, ignore_errors=True)
    demo = Demo(args.workdir, ports)
    stop = threading.Event()
    # The children run in sessions of their own (so that Ctrl-C reaches only
    # this script, which stops them in order): every signal that ends a
    # terminal session must stop them here, or they would outlive it.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda signum, frame: stop.set())
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        demo.start_servers()
        demo.start_aggregator(demo.write_config())
        demo.start_subscriber()
        example = json.dumps(EXAMPLE_EVENT, separators=(",", ":"))
        demo.say("\npublishing the example event to stan2 and an invalid one to stan3:")
        demo.publish("stan2", example)
        demo.publish("stan3", INVALID_MESSAGE)
        arrived = demo.wait_for_line(
            "stan_sub", str(EXAMPLE_EVENT["id"]), READY_TIMEOUT
        )
        refused = demo.wait_for_line(
            "aggregator", "refused an invalid event from stan3", READY_TIMEOUT
        )
        demo.say(
            "\nthe example event reached stan1"
            if arrived
            else "\nthe example event did not reach stan1 in time: see the logs above"
        )
        demo.say(
            "the invalid one was refused (see the aggregator's warning above)."
            if refused
            else "the aggregator did not report the invalid one: see the logs above"
        )
        if args.exit_after_demo:
            return 0 if arrived and refused else 1
        command = " ".join(_quote(p) for p in pub_command(demo.url("stan2"), example))
        demo.say(f"\npublish more from another terminal (in this folder):\n  {command}")
        demo.say("press Ctrl-C to stop everything\n")
        stop.wait()
        return 0
    finally:
        demo.say("stopping...")
        demo.stop()


if __name__ == "__main__":
    sys.exit(main())
