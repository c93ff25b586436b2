"""How fast stan_client publishes, and what it costs while the server is down.

Starts its own nats-streaming-server (file store in a temporary folder, the
binary that ``scripts/bootstrap`` installs) and measures, with 1 KiB
payloads:

* the publish rate with one publish in flight: ``publish()`` in a loop,
  each call waiting for its PubAck;
* the publish rate with a window of 256: ``publish_async()`` with
  ``max_pub_acks_inflight=256``, until every PubAck arrived;
* the CPU seconds the client process uses over 5 s while the server is
  down (killed with SIGKILL; the bench waits until the client reported the
  loss, then measures).

With ``--baseline`` (on by default when ``stan-bench`` is installed) the
official Go benchmark runs the same two publish loads for comparison.

Run from the repository root::

    .venv/bin/python bench/stan_publish_rate.py
    .venv/bin/python bench/stan_publish_rate.py --sync-count 5000 --async-count 100000

The figures are printed for humans, and the last line repeats them as
``key=value`` pairs for scripts.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from stan_client import StanClient, StanError  # noqa: E402
from tests.support.binaries import candidate_dirs, find_binary  # noqa: E402
from tests.support.servers import StanServer  # noqa: E402

PAYLOAD = bytes(1024)
CLUSTER_ID = "bench"


def measure_sync(client: StanClient, channel: str, count: int) -> float:
    """Messages per second with one publish in flight."""
    started = time.perf_counter()
    for _ in range(count):
        client.publish(channel, PAYLOAD)
    return count / (time.perf_counter() - started)


def measure_window(client: StanClient, channel: str, count: int) -> tuple[float, int]:
    """Messages per second with publish_async; returns (rate, failed acks)."""
    done = threading.Event()
    lock = threading.Lock()
    acked = 0
    failed = 0

    def on_ack(guid: str, error: StanError | None) -> None:
        nonlocal acked, failed
        with lock:
            acked += 1
            if error is not None:
                failed += 1
            if acked == count:
                done.set()

    started = time.perf_counter()
    for _ in range(count):
        client.publish_async(channel, PAYLOAD, on_ack)
    if not done.wait(timeout=120):
        raise SystemExit(f"only {acked} of {count} PubAcks arrived within 120 s")
    return count / (time.perf_counter() - started), failed


def measure_cpu_while_down(
    server: StanServer, client: StanClient, lost: threading.Event, seconds: float
) -> tuple[float, float]:
    """Kill the server; return (seconds to detect, CPU seconds over ``seconds``)."""
    killed = time.monotonic()
    server.kill()
    if not lost.wait(timeout=30):
        raise SystemExit("the client did not report the loss within 30 s")
    detected = time.monotonic() - killed
    cpu_before = time.process_time()
    time.sleep(seconds)
    return detected, time.process_time() - cpu_before


def _installed(name: str) -> bool:
    """Whether find_binary() would find ``name`` (it fails the test if not)."""
    folders = [*candidate_dirs()]
    return any((folder / name).is_file() for folder in folders) or bool(
        shutil.which(name)
    )


def run_baseline(url: str, count: int, window: int) -> float | None:
    """The official stan-bench, one publisher, no subscriber; msgs/s or None."""
    command = [
        str(find_binary("stan-bench")),
        "-s", url,
        "-c", CLUSTER_ID,
        "-np", "1",
        "-ns", "0",
        "-n", str(count),
        "-ms", str(len(PAYLOAD)),
        "-mpa", str(window),
    ]  # fmt: skip
    if window == 1:
        command.append("-sync")
    command.append(f"baseline.{window}")
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    match = re.search(r"Pub stats: ([\d,]+) msgs/sec", result.stdout)
    if result.returncode != 0 or match is None:
        print(f"stan-bench failed:\n{result.stdout}{result.stderr}", file=sys.stderr)
        return None
    return float(match.group(1).replace(",", ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sync-count", type=int, default=2_000)
    parser.add_argument("--async-count", type=int, default=50_000)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    parser.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also run the official stan-bench (default: when installed)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="stan-bench-") as folder:
        server = StanServer(Path(folder), cluster_id=CLUSTER_ID)
        server.start()
        try:
            return run(server, args)
        finally:
            server.stop()


def run(server: StanServer, args: argparse.Namespace) -> int:
    lost = threading.Event()
    client = StanClient(
        server.url,
        CLUSTER_ID,
        "bench-publisher",
        max_pub_acks_inflight=args.window,
        ping_interval=1.0,
        ping_max_out=3,
        on_connection_lost=lambda _client, _error: lost.set(),
    )
    client.connect()
    measure_sync(client, "warmup", 200)
    sync_rate = measure_sync(client, "bench.sync", args.sync_count)
    print(f"1 in flight:   {sync_rate:10,.0f} msgs/s  ({args.sync_count} x 1 KiB)")
    window_rate, failed = measure_window(client, "bench.window", args.async_count)
    print(
        f"{args.window} in flight: {window_rate:10,.0f} msgs/s  "
        f"({args.async_count} x 1 KiB, {failed} failed)"
    )

    baseline_sync = baseline_window = None
    run_go = args.baseline
    if run_go is None:
        run_go = _installed("stan-bench")
    if run_go:
        baseline_sync = run_baseline(server.url, args.sync_count, 1)
        baseline_window = run_baseline(server.url, args.async_count, args.window)
        print(
            f"official stan-bench: 1 in flight {baseline_sync or 0:,.0f} msgs/s, "
            f"{args.window} in flight {baseline_window or 0:,.0f} msgs/s"
        )

    detected, cpu = measure_cpu_while_down(server, client, lost, args.idle_seconds)
    print(
        f"server killed: loss reported after {detected:.3f} s; "
        f"{cpu:.3f} CPU-s used over the next {args.idle_seconds:g} s"
    )
    client.close()

    figures = {
        "sync_msgs_per_s": f"{sync_rate:.0f}",
        "window": str(args.window),
        "window_msgs_per_s": f"{window_rate:.0f}",
        "window_failed": str(failed),
        "speedup": f"{window_rate / sync_rate:.1f}",
        "go_sync_msgs_per_s": f"{baseline_sync:.0f}" if baseline_sync else "na",
        "go_window_msgs_per_s": f"{baseline_window:.0f}" if baseline_window else "na",
        "loss_detected_s": f"{detected:.3f}",
        "cpu_s_while_down": f"{cpu:.3f}",
        "idle_s": f"{args.idle_seconds:g}",
    }
    print(" ".join(f"{key}={value}" for key, value in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
