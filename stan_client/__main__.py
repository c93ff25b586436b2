"""Entry point of ``python -m stan_client``."""

import sys

from stan_client.cli import main

sys.exit(main())
