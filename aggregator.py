#!/usr/bin/env python3
"""Run the aggregator: ``python aggregator.py config.yml`` (see ``--help``)."""

import sys

from event_aggregator.cli import main

if __name__ == "__main__":
    sys.exit(main())
