"""``python -m stan_client pub|sub``: the official stan-pub and stan-sub, in Python.

``pub`` publishes one message and waits for its PubAck. ``sub`` prints one
line per message as it arrives: ``[#n] seq=<sequence> `` followed by the
payload exactly as received (raw bytes), flushed at once; it stops on
SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import BinaryIO

from stan_client.client import StanClient
from stan_client.errors import StanError
from stan_client.messages import Msg
from stan_client.subscription import StartPosition
from stan_client.tokens import TokenGenerator

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m stan_client``."""
    parser = argparse.ArgumentParser(
        prog="python -m stan_client",
        description="Publish to or subscribe from a NATS Streaming channel.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    pub = commands.add_parser("pub", help="publish one message and wait for its ack")
    _add_connection_arguments(pub, default_id="stan-py-pub")
    pub.add_argument("channel", type=_channel_name)
    pub.add_argument(
        "data", help="the message; '-' reads the bytes from standard input"
    )

    sub = commands.add_parser("sub", help="print the messages of a channel")
    _add_connection_arguments(sub, default_id="stan-py-sub")
    start = sub.add_mutually_exclusive_group()
    start.add_argument(
        "--all", action="store_true", help="deliver all available messages"
    )
    start.add_argument(
        "--last", action="store_true", help="start with the last message"
    )
    start.add_argument(
        "--seq", type=_sequence, help="start at this sequence number (from 1)"
    )
    start.add_argument(
        "--since",
        type=_parse_since,
        help="deliver messages newer than this age (e.g. 90s, 10m, 2h)",
    )
    sub.add_argument("--durable", help="durable subscription name")
    sub.add_argument("--qgroup", help="queue group name")
    sub.add_argument(
        "--unsubscribe",
        action="store_true",
        help="remove the durable subscription on exit (default: keep it)",
    )
    sub.add_argument("channel", type=_channel_name)
    return parser


def _add_connection_arguments(
    parser: argparse.ArgumentParser, *, default_id: str
) -> None:
    parser.add_argument(
        "-s", "--server", default="nats://127.0.0.1:4222", help="NATS URL"
    )
    parser.add_argument(
        "-c", "--cluster", default="test-cluster", help="NATS Streaming cluster ID"
    )
    parser.add_argument(
        "--id",
        "--clientid",
        dest="client_id",
        help=f"client ID (default: {default_id}-<random>; set it for durables)",
    )
    parser.set_defaults(default_id=default_id)


def _channel_name(text: str) -> str:
    """A channel is one NATS subject: dot-separated, no spaces, no wildcards."""
    tokens = text.split(".")
    if not text or any(
        not token or token in ("*", ">") or any(c.isspace() for c in token)
        for token in tokens
    ):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a channel name (dot-separated tokens without "
            "spaces or wildcards, such as cyverse.events)"
        )
    return text


def _sequence(text: str) -> int:
    """A message sequence number: the server counts from 1, in 64 bits."""
    problem = f"expected a sequence number from 1, got {text!r}"
    try:
        sequence = int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(problem) from err
    if not 1 <= sequence < 2**64:
        raise argparse.ArgumentTypeError(problem)
    return sequence


def _parse_since(text: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        return timedelta(seconds=float(text[:-1]) * units[text[-1]])
    except (KeyError, ValueError, IndexError) as err:
        raise argparse.ArgumentTypeError(
            f"expected a number followed by s, m or h, got {text!r}"
        ) from err


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    args = build_parser().parse_args(argv)
    client_id = args.client_id or f"{args.default_id}-{TokenGenerator().next()}"
    stop = threading.Event()
    lost: list[StanError] = []

    def on_connection_lost(client: StanClient, error: StanError) -> None:
        lost.append(error)
        stop.set()

    try:
        client = StanClient(
            args.server, args.cluster, client_id, on_connection_lost=on_connection_lost
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    try:
        client.connect()
    except StanError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILURE
    if args.command == "pub":
        return _publish(client, args)
    return _subscribe(client, args, sys.stdout.buffer, stop, lost)


def _publish(client: StanClient, args: argparse.Namespace) -> int:
    data = sys.stdin.buffer.read() if args.data == "-" else args.data.encode()
    try:
        guid = client.publish(args.channel, data)
    except StanError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        _close(client)
    print(
        f"published {len(data)} bytes to {args.channel} [guid: {guid}]", file=sys.stderr
    )
    return EXIT_OK


def _subscribe(
    client: StanClient,
    args: argparse.Namespace,
    out: BinaryIO,
    stop: threading.Event,
    lost: list[StanError],
) -> int:
    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    count = 0

    def on_message(message: Msg) -> None:
        nonlocal count
        count += 1
        out.write(b"[#%d] seq=%d " % (count, message.sequence) + message.data + b"\n")
        out.flush()

    position, sequence, since = _start_position(args)
    try:
        subscription = client.subscribe(
            args.channel,
            on_message,
            durable_name=args.durable,
            queue_group=args.qgroup,
            start_position=position,
            start_sequence=sequence,
            start_time=since,
        )
    except StanError as err:
        print(f"error: {err}", file=sys.stderr)
        _close(client)
        return EXIT_FAILURE
    print(
        f"listening on {args.channel} as {client.client_id}",
        file=sys.stderr,
        flush=True,
    )
    stop.wait()

    if lost:
        print(f"error: {lost[0]}", file=sys.stderr)
        return EXIT_FAILURE
    if args.unsubscribe:
        try:
            subscription.unsubscribe()
        except StanError as err:
            print(f"error: {err}", file=sys.stderr)
    _close(client)
    return EXIT_OK


def _start_position(
    args: argparse.Namespace,
) -> tuple[StartPosition, int | None, datetime | None]:
    if args.all:
        return StartPosition.FIRST, None, None
    if args.last:
        return StartPosition.LAST_RECEIVED, None, None
    if args.seq is not None:
        return StartPosition.SEQUENCE, args.seq, None
    if args.since is not None:
        return StartPosition.TIME, None, datetime.now(UTC) - args.since
    return StartPosition.NEW_ONLY, None, None


def _close(client: StanClient) -> None:
    try:
        client.close()
    except StanError as err:
        print(f"warning: {err}", file=sys.stderr)
