"""The command line: ``python aggregator.py [--check] CONFIG``.

Exit status: 0 after a clean stop on SIGTERM or SIGINT (or a passing
``--check``), 1 when the destination stayed unreachable longer than
``max_outage`` or another fatal error happened, 2 for usage and
configuration errors.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from event_aggregator import __version__
from event_aggregator.config import ConfigError, load_config
from event_aggregator.http import ListenError
from event_aggregator.logs import configure_logging
from event_aggregator.service import EXIT_FATAL, Aggregator

EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aggregator.py",
        description=(
            "Forward every valid CloudEvent from edge NATS Streaming clusters "
            "into a central one. Runs until SIGTERM or SIGINT."
        ),
        epilog=(
            "Exit status: 0 clean stop, 1 destination unreachable longer than "
            "max_outage (or another fatal error), 2 usage or config error. "
            "config.example.yml documents every key."
        ),
    )
    parser.add_argument("config", type=Path, help="the YAML configuration file")
    parser.add_argument(
        "--check",
        action="store_true",
        help="validate the configuration, print a summary and exit",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    return parser


def main(argv: Sequence[str] | None = None, early_signals: Sequence[int] = ()) -> int:
    """Parse the arguments, load the config, run; returns the exit status.

    :param early_signals: stop signals that arrived before this ran (the
        entry script catches them while it imports); one means a clean
        stop as soon as the service has started.
    """
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return EXIT_CONFIG
    if args.check:
        print(config.summary())
        print("configuration OK")
        return 0

    configure_logging(config.logging.level, config.logging.format, config.secrets())
    try:
        aggregator = Aggregator(config)
    except ListenError as err:
        print(f"{args.config}: http.listen: {err}", file=sys.stderr)
        return EXIT_CONFIG

    signals_seen = 0

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal signals_seen
        signals_seen += 1
        if signals_seen == 1:
            aggregator.request_stop()
            return
        # A second signal: the operator will not wait for the clean stop.
        # Nothing is lost: whatever was not acked is redelivered next time.
        os.write(2, b"second signal: exiting at once\n")
        os._exit(EXIT_FATAL)

    for stop_signal in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(stop_signal, on_signal)
    for signum in early_signals:
        on_signal(signum, None)
    return aggregator.run()
