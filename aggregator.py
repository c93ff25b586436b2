#!/usr/bin/env python3
"""Run the aggregator: ``python aggregator.py config.yml`` (see ``--help``)."""

import signal
import sys

# Importing the service takes a few tenths of a second. A stop signal that
# arrives meanwhile must not kill the process with the default action: it
# is remembered here and honoured as a clean stop once the service runs.
early_signals: list[int] = []
for _stop_signal in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_stop_signal, lambda signum, frame: early_signals.append(signum))

from event_aggregator.cli import main  # noqa: E402  (after the handlers above)

if __name__ == "__main__":
    sys.exit(main(early_signals=early_signals))
