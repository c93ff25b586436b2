"""The official Go ``stan-bench``: how fast a Go publisher fills a server."""

from __future__ import annotations

import re
import subprocess

from bench.tools import require_tool

_PUB_STATS = re.compile(r"Pub stats: ([\d,]+) msgs/sec")
#: Seconds stan-bench may take for the largest run.
TIMEOUT = 600.0


class BaselineError(RuntimeError):
    """stan-bench failed or printed no publish rate."""


def stan_bench_rate(
    url: str, cluster_id: str, channel: str, count: int, size: int, window: int
) -> float:
    """Messages per second of one asynchronous stan-bench publisher.

    :param window: ``-mpa``, the PubAcks it may await at once.
    :raises BaselineError: it failed, timed out, or printed no rate.
    """
    command = [
        str(require_tool("stan-bench")),
        "-s", url,
        "-c", cluster_id,
        "-id", "bench-baseline",
        "-np", "1",
        "-ns", "0",
        "-n", str(count),
        "-ms", str(size),
        "-mpa", str(window),
        channel,
    ]  # fmt: skip
    try:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise BaselineError(f"stan-bench did not finish within {TIMEOUT:g} s") from err
    match = _PUB_STATS.search(result.stdout)
    if result.returncode != 0 or match is None:
        raise BaselineError(
            f"stan-bench exited with {result.returncode}:\n"
            f"{result.stdout}{result.stderr}"
        )
    return float(match.group(1).replace(",", ""))
