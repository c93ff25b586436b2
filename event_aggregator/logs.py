"""Log output: JSON lines for machines, or text for a terminal.

Both formats carry the structured fields that modules pass with
``extra={...}`` (``source``, ``channel``, ``sequence``, ``reason``, ...).
Every finished line goes through a last scrub that replaces known secrets,
so a password cannot reach the log even through an exception message or a
third-party library.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

# Attributes every LogRecord has; anything else on a record came from extra.
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()
) | {"message", "asctime", "taskName"}

REDACTED = "***"


class SecretScrubber:
    """Replaces each known secret, raw or as JSON would escape it."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret:
                forms.add(secret)
                forms.add(json.dumps(secret)[1:-1])
        # Longest first, so that a secret containing another is replaced whole.
        self._forms = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, REDACTED)
        return text


class _ScrubbingJsonFormatter(JsonFormatter):
    def __init__(self, scrub: SecretScrubber) -> None:
        super().__init__(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,
        )
        self._scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        return self._scrub(super().format(record))


class _ScrubbingTextFormatter(logging.Formatter):
    """``time LEVEL logger: message key=value ...`` for people."""

    def __init__(self, scrub: SecretScrubber) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = [
            f"{key}={value}"
            for key, value in vars(record).items()
            if key not in _STANDARD_ATTRIBUTES
        ]
        if fields:
            first, newline, rest = line.partition("\n")
            line = f"{first} {' '.join(fields)}{newline}{rest}"
        return self._scrub(line)


def configure_logging(
    level: str,
    log_format: str,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Send all logs to ``stream`` (stderr) in the chosen format.

    Replaces the root logger's handlers, so calling it again reconfigures.

    :param level: DEBUG, INFO, WARNING or ERROR.
    :param log_format: ``json`` or ``text``.
    :param secrets: strings never to be written (passwords, tokens).
    """
    scrub = SecretScrubber(secrets)
    handler = logging.StreamHandler(stream or sys.stderr)
    if log_format == "json":
        handler.setFormatter(_ScrubbingJsonFormatter(scrub))
    else:
        handler.setFormatter(_ScrubbingTextFormatter(scrub))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
