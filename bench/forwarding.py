"""How fast the aggregator forwards, next to the official NATS Streaming tools.

Run from the repository root, after ``scripts/bootstrap``::

    .venv/bin/python -m bench.forwarding            # full: 2 x 100,000 events
    .venv/bin/python -m bench.forwarding --quick    # 2 x 10,000, under a minute
    .venv/bin/python -m bench.forwarding --profile  # the drain under py-spy

It starts its own nats-streaming-server processes (file stores in a
temporary folder) and the real aggregator (``python aggregator.py cfg.yml``,
default settings, JSON logs at INFO), and prints each figure as it is
measured:

* validation: microseconds per event of the validator alone, on the typical
  1 KiB event of ``event_aggregator.validation.bench``;
* drain: two edges each hold N CloudEvents of 1 KiB; the aggregator starts
  and the clock runs from its process start until the center stores all 2N
  (polled every 50 ms); then the center must hold exactly 2N;
* memory: the aggregator's peak resident memory during the drain;
* latency: 1,000 events per second for 20 s (5 s with ``--quick``) to one
  edge through the running aggregator; p50 and p99 from the edge publish to
  the delivery to a subscriber on the center; for reference, the same load
  through one server alone (publisher and subscriber on the edge);
* baseline: the official Go ``stan-bench`` publishing 2N messages of 1 KiB
  asynchronously into a fresh center server;
* replicator: the same drain through ``nats-replicator`` (STAN to STAN, no
  validation), if ``go install`` can fetch it (tried once, the outcome kept
  in ``.local/stamps``).

The last line sums up, for scripts::

    forwarded_per_s=... baseline_per_s=... ratio=... replicator_per_s=...
    p50_ms=... p99_ms=... peak_rss_mb=... validate_us=...

Shared machines are noisy: compare ``ratio`` between runs, not rates.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import timeit
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from bench import profiling
from bench.baseline import BaselineError, stan_bench_rate
from bench.drain import DrainError, DrainResult, ForwardingProcess, watch_drain
from bench.events import EVENT_SIZE, backlog, bench_event, preload
from bench.latency import SLOW_MS, LatencyResult, measure_latency
from bench.replicator import write_config
from bench.tools import ToolMissingError, replicator_binary, require_tool
from event_aggregator.validation import EventValidator, ValidEvent
from event_aggregator.validation.bench import sample_events
from stan_client import StanError
from tests.support.servers import StanServer

CLUSTER_ID = "bench"
DRAIN_CHANNEL = "bench.drain"
LATENCY_CHANNEL = "bench.latency"
#: Not forwarded: for the latency of one server on its own.
HOP_CHANNEL = "bench.hop"
#: Longest run of the one-server latency reference.
HOP_SECONDS = 10.0
EDGES = ("edge-a", "edge-b")
MIB = 1024 * 1024
_WARNING_LEVELS = ("WARNING", "ERROR", "CRITICAL")


class BenchError(RuntimeError):
    """A step of the benchmark failed; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Settings:
    events_per_edge: int
    latency_rate: float
    latency_seconds: float
    baseline_window: int
    top: int
    gil_only: bool


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.forwarding",
        description="Forwarding benchmark: the aggregator against stan-bench "
        "and nats-replicator (see the module docstring).",
    )
    parser.add_argument(
        "--quick", action="store_true", help="2 x 10,000 events, 5 s of latency"
    )
    parser.add_argument(
        "--events", type=int, help="events per edge (default 100,000; 10,000 quick)"
    )
    parser.add_argument(
        "--latency-seconds", type=float, help="default 20 (5 with --quick)"
    )
    parser.add_argument("--latency-rate", type=float, default=1000.0)
    parser.add_argument(
        "--baseline-window",
        type=int,
        default=1000,
        help="stan-bench -mpa, PubAcks in flight (default 1000, its own default)",
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const="auto",
        choices=("auto", "py-spy", "cprofile"),
        help="only the drain, with the aggregator under a profiler "
        "(auto: py-spy if it can trace here, else cProfile)",
    )
    parser.add_argument(
        "--gil",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with py-spy: only samples of the thread holding the GIL (default); "
        "--no-gil: every thread that is not idle, waiting for the GIL included",
    )
    parser.add_argument(
        "--top", type=int, default=30, help="functions listed by --profile"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="keep stores, logs and profiles here instead of a temporary folder",
    )
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    default_events, default_seconds = (10_000, 5.0) if args.quick else (100_000, 20.0)
    return Settings(
        events_per_edge=args.events or default_events,
        latency_rate=args.latency_rate,
        latency_seconds=args.latency_seconds or default_seconds,
        baseline_window=args.baseline_window,
        top=args.top,
        gil_only=args.gil,
    )


def say(text: str) -> None:
    print(text, flush=True)


def machine_line() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0))
    server = subprocess.run(
        [str(require_tool("nats-streaming-server")), "--version"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return (
        f"machine: {cores} cores, {model}, Linux {platform.release()}, "
        f"Python {platform.python_version()}; {server}"
    )


# --- validation -------------------------------------------------------------


def _microseconds_per_call(payload: bytes, validator: EventValidator) -> float:
    """Best of several timed batches, in microseconds per call."""
    timer = timeit.Timer(lambda: validator.validate(payload))
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=5, number=number)) / number * 1e6


def measure_validation() -> float:
    """Microseconds per event for the typical 1 KiB event; prints both figures."""
    validator = EventValidator()
    typical = sample_events()["typical 1 KiB v1.0"]
    ours = bench_event("/edge-a", 1)
    for payload in (typical, ours):
        verdict = validator.validate(payload)
        if not isinstance(verdict, ValidEvent):
            raise BenchError(f"the validator refuses a bench event: {verdict}")
    typical_us = _microseconds_per_call(typical, validator)
    ours_us = _microseconds_per_call(ours, validator)
    say(
        f"validation: {typical_us:.1f} us per event (typical {len(typical)}-byte "
        f"event of event_aggregator.validation.bench); {ours_us:.1f} us for the "
        f"drain's {len(ours)}-byte events"
    )
    return typical_us


# --- the benchmark ----------------------------------------------------------


class Bench:
    """Servers, processes and figures of one run; everything it starts is
    stopped through ``stack``."""

    def __init__(self, workdir: Path, settings: Settings, stack: ExitStack) -> None:
        self.workdir = workdir
        self.settings = settings
        self.stack = stack

    # servers

    def server(self, name: str) -> StanServer:
        server = StanServer(
            self.workdir / name,
            cluster_id=CLUSTER_ID,
            # Production heartbeats: a busy 2-core machine must not make
            # the server drop a client that is merely slow to answer.
            hb_interval="30s",
            hb_timeout="10s",
            hb_fail_count=10,
            name=name,
        )
        self.stack.callback(server.stop)
        return server

    def start_servers(self, names: tuple[str, ...]) -> dict[str, StanServer]:
        servers = {name: self.server(name) for name in names}
        with ThreadPoolExecutor(len(servers)) as pool:
            for future in [pool.submit(s.start) for s in servers.values()]:
                future.result()
        return servers

    def load_edges(self, edges: dict[str, StanServer]) -> None:
        count = self.settings.events_per_edge
        started = time.monotonic()
        with ThreadPoolExecutor(len(edges)) as pool:
            futures = [
                pool.submit(
                    preload,
                    server.url,
                    CLUSTER_ID,
                    DRAIN_CHANNEL,
                    backlog(f"/{name}", count),
                    f"bench-preload-{name}",
                )
                for name, server in edges.items()
            ]
            for future in futures:
                future.result()
        seconds = time.monotonic() - started
        for name, server in edges.items():
            stored = server.channel_msg_count(DRAIN_CHANNEL)
            if stored != count:
                raise BenchError(f"{name} holds {stored} events, not {count}")
        total = count * len(edges)
        say(
            f"backlog: {len(edges)} edges x {count:,} events of {EVENT_SIZE} bytes "
            f"loaded in {seconds:.1f} s ({total / seconds:,.0f}/s)"
        )

    # processes

    def aggregator_config(
        self, edges: dict[str, StanServer], center: StanServer
    ) -> Path:
        config: dict[str, Any] = {
            "destination": {
                "name": "center",
                "url": center.url,
                "cluster_id": CLUSTER_ID,
                "client_id": "bench-aggregator",
            },
            "sources": [
                {
                    "name": name,
                    "url": server.url,
                    "cluster_id": CLUSTER_ID,
                    "client_id": f"bench-aggregator-{name}",
                    "channels": [DRAIN_CHANNEL, LATENCY_CHANNEL],
                }
                for name, server in edges.items()
            ],
            "logging": {"level": "INFO", "format": "json"},
        }
        path = self.workdir / "aggregator.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def start_forwarder(
        self, command: list[str], log_name: str, *, measured_child: bool = False
    ) -> ForwardingProcess:
        forwarder = ForwardingProcess(
            command, self.workdir / log_name, measured_child=measured_child
        )
        self.stack.callback(forwarder.terminate)
        forwarder.start()
        return forwarder

    def drain(
        self, forwarder: ForwardingProcess, center: StanServer, label: str
    ) -> DrainResult:
        expected = self.settings.events_per_edge * len(EDGES)
        timeout = max(120.0, expected / 200)
        try:
            result = watch_drain(forwarder, center, DRAIN_CHANNEL, expected, timeout)
        except DrainError as err:
            raise BenchError(f"{label}: {err}") from err
        say(
            f"{label}: {expected:,} events in {result.seconds:.2f} s from process "
            f"start: {result.per_second:,.0f}/s (first event stored after "
            f"{result.first_event_seconds:.2f} s; {result.steady_per_second:,.0f}/s "
            "from then on)"
        )
        say(
            f"{label}: {result.cpu_seconds:.1f} CPU seconds (user+system) of the "
            f"process: {result.cpu_us_per_event:.0f} us per event, "
            f"{100 * result.cpu_seconds / result.seconds:.0f}% of one core"
        )
        if result.duplicates:
            say(
                f"{label}: the center holds {result.stored:,} events: "
                f"{result.duplicates:,} DUPLICATES"
            )
        else:
            say(f"{label}: the center holds exactly {result.stored:,} events")
        return result

    # phases

    def run(self) -> int:
        validate_us = measure_validation()
        servers = self.start_servers((*EDGES, "center"))
        edges = {name: servers[name] for name in EDGES}
        center = servers["center"]
        self.load_edges(edges)

        aggregator = self.start_forwarder(
            [
                sys.executable,
                "aggregator.py",
                str(self.aggregator_config(edges, center)),
            ],
            "aggregator.log",
        )
        drained = self.drain(aggregator, center, "drain")
        say(f"memory: aggregator peak RSS {drained.peak_rss_bytes / MIB:.1f} MiB")
        self.latency_floor(edges["edge-a"])
        latency = self.latency(edges["edge-a"], center)
        status = aggregator.terminate()
        warnings = _count_warnings(aggregator.log_path)
        say(
            f"aggregator: exit status {status} after SIGTERM; {warnings} warnings "
            f"or errors in its log"
        )
        center.stop()

        baseline = self.baseline()
        replicator = self.replicator(edges)
        ratio = drained.per_second / baseline
        figures = {
            "forwarded_per_s": f"{drained.per_second:.0f}",
            "baseline_per_s": f"{baseline:.0f}",
            "ratio": f"{ratio:.3f}",
            "replicator_per_s": "na" if replicator is None else f"{replicator:.0f}",
            "p50_ms": f"{latency.p50_ms:.2f}",
            "p99_ms": f"{latency.p99_ms:.2f}",
            "peak_rss_mb": f"{drained.peak_rss_bytes / MIB:.1f}",
            "validate_us": f"{validate_us:.1f}",
        }
        say(" ".join(f"{key}={value}" for key, value in figures.items()))
        return 0

    def latency(self, edge: StanServer, center: StanServer) -> LatencyResult:
        settings = self.settings
        try:
            result = measure_latency(
                edge.url,
                center.url,
                CLUSTER_ID,
                LATENCY_CHANNEL,
                settings.latency_rate,
                settings.latency_seconds,
            )
        except StanError as err:
            raise BenchError(f"latency: {err}") from err
        say(
            f"latency: {result.sent:,} events at {settings.latency_rate:,.0f}/s "
            f"(achieved {result.achieved_rate:,.1f}/s) through the aggregator: "
            f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, max "
            f"{result.max_ms:.1f} ms; {result.received:,} received, "
            f"{result.publish_errors} publish errors"
        )
        if result.slow:
            spans = ", ".join(
                f"{first:.1f}-{last:.1f} s" for first, last in result.stalls[:8]
            )
            more = len(result.stalls) - 8
            say(
                f"latency: {result.slow} events over {SLOW_MS:g} ms, sent in "
                f"{len(result.stalls)} stretch(es): {spans}"
                + (f" and {more} more" if more > 0 else "")
            )
        if result.received != result.sent:
            say(f"latency: {result.sent - result.received} events did not arrive")
        return result

    def latency_floor(self, edge: StanServer) -> None:
        """The same load through one server and no aggregator, for reference:
        the aggregator's path crosses two servers, each storing the event."""
        settings = self.settings
        seconds = min(settings.latency_seconds, HOP_SECONDS)
        try:
            result = measure_latency(
                edge.url,
                edge.url,
                CLUSTER_ID,
                HOP_CHANNEL,
                settings.latency_rate,
                seconds,
            )
        except StanError as err:
            raise BenchError(f"latency floor: {err}") from err
        say(
            f"latency floor: {result.sent:,} events at {settings.latency_rate:,.0f}/s "
            f"through one server to a subscriber on it (no aggregator): p50 "
            f"{result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, max "
            f"{result.max_ms:.1f} ms; {result.slow} over {SLOW_MS:g} ms"
        )

    def baseline(self) -> float:
        count = self.settings.events_per_edge * len(EDGES)
        window = self.settings.baseline_window
        center = self.start_servers(("baseline-center",))["baseline-center"]
        try:
            rate = stan_bench_rate(
                center.url, CLUSTER_ID, DRAIN_CHANNEL, count, EVENT_SIZE, window
            )
        except BaselineError as err:
            raise BenchError(f"baseline: {err}") from err
        finally:
            center.stop()
        say(
            f"baseline: stan-bench, 1 async publisher, {count:,} x {EVENT_SIZE} "
            f"bytes, {window} in flight, into a fresh server: {rate:,.0f} msgs/s"
        )
        return rate

    def replicator(self, edges: dict[str, StanServer]) -> float | None:
        binary, reason = replicator_binary()
        if binary is None:
            say(f"replicator: could not install: {reason}")
            return None
        center = self.start_servers(("replicator-center",))["replicator-center"]
        config = write_config(
            self.workdir / "replicator.conf", list(edges.items()), center, DRAIN_CHANNEL
        )
        process = self.start_forwarder(
            [str(binary), "-c", str(config)], "replicator.log"
        )
        try:
            result = self.drain(process, center, "replicator")
        finally:
            process.terminate()
            center.stop()
        return result.per_second

    def profile(self, tool: str) -> int:
        binary = None
        if tool in ("auto", "py-spy"):
            binary = profiling.py_spy_binary()
            if binary is None and tool == "py-spy":
                raise BenchError("py-spy is not installed or cannot trace here")
        servers = self.start_servers((*EDGES, "center"))
        edges = {name: servers[name] for name in EDGES}
        center = servers["center"]
        self.load_edges(edges)
        program = ["aggregator.py", str(self.aggregator_config(edges, center))]
        output = self.workdir / "profile"
        if binary is not None:
            say(f"profile: py-spy ({binary}), {profiling.SAMPLE_RATE} samples/s")
            command = profiling.py_spy_command(
                binary,
                output.with_suffix(".txt"),
                [sys.executable, *program],
                gil_only=self.settings.gil_only,
            )
            forwarder = self.start_forwarder(
                command, "aggregator.log", measured_child=True
            )
        else:
            say("profile: cProfile on every thread (py-spy unavailable)")
            forwarder = self.start_forwarder(
                profiling.cprofile_command(output, program), "aggregator.log"
            )
        drained = self.drain(forwarder, center, "drain under the profiler")
        status = forwarder.terminate()
        say(f"profile: profiler exit status {status}")
        if binary is not None:
            report = profiling.format_py_spy(
                profiling.summarize_py_spy(output.with_suffix(".txt")),
                self.settings.top,
                "the thread holding the GIL"
                if self.settings.gil_only
                else "threads not idle (running or waiting for the GIL)",
            )
        else:
            report = profiling.format_cprofile(output, self.settings.top)
        say(report.rstrip())
        say(f"profiled_drain_per_s={drained.per_second:.0f}")
        return 0


def _count_warnings(log_path: Path) -> int:
    """JSON log records at WARNING or above."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return 0
    count = 0
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("level") in _WARNING_LEVELS:
            count += 1
    return count


def _interrupt_on_sigterm() -> None:
    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)


def _ignore_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status (0 ok, 1 failed, 130 stopped)."""
    args = parse_args(argv)
    settings = settings_from(args)
    _interrupt_on_sigterm()
    with ExitStack() as outer:
        if args.workdir is not None:
            workdir = args.workdir.resolve()
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(
                outer.enter_context(
                    tempfile.TemporaryDirectory(prefix="bench-forwarding-")
                )
            )
        try:
            with ExitStack() as stack:
                try:
                    say(machine_line())
                    bench = Bench(workdir, settings, stack)
                    if args.profile:
                        return bench.profile(args.profile)
                    return bench.run()
                finally:
                    # A second Ctrl-C must not cut the clean-up short.
                    _ignore_signals()
        except KeyboardInterrupt:
            say("interrupted: everything it started was stopped")
            return 130
        except (BenchError, ToolMissingError) as err:
            print(f"bench failed: {err}", file=sys.stderr, flush=True)
            return 1
        finally:
            if args.workdir is not None:
                say(f"stores, logs and profiles kept in {workdir}")
    return 1  # unreachable; the type checker cannot see it


if __name__ == "__main__":
    sys.exit(main())
