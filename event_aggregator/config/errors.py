"""The one error a bad configuration raises, and the collector that builds it.

Validation never stops at the first problem: an operator fixing a config file
should see everything that is wrong in one run. Every check reports into a
:class:`Problems` collector, and :func:`load_config` raises one
:class:`ConfigError` at the end when the collector is not empty.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from event_aggregator.redact import redact_text, redact_url

__all__ = ["ConfigError", "Problems", "child_path", "index_path"]

# Longest value echoed back in a message, in characters.
_MAX_SHOWN = 80

# Keys that can be written after a dot in a key path; others go in brackets.
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


class ConfigError(Exception):
    """The configuration cannot be used; :attr:`problems` lists every reason.

    Each problem reads ``<file>: <key path>: <what is wrong>`` (or
    ``<file>: <what is wrong>`` for the file as a whole); ``str(err)`` is all of
    them, one per line. No problem contains a password.
    """

    def __init__(self, path: Path, problems: Sequence[str]) -> None:
        self.path = path
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("\n".join(self.problems))


class Problems:
    """Collects problems for one file, formats them and hides secrets.

    :param path: the config file, shown as given at the start of each problem.
    :param secrets: strings never to show (passwords and tokens found in the
        file's URLs); more can be added with :meth:`add_secrets`.
    """

    def __init__(self, path: Path, secrets: Iterable[str] = ()) -> None:
        self.path = path
        self._secrets: set[str] = set(secrets)
        self._items: list[str] = []

    def add_secrets(self, secrets: Iterable[str]) -> None:
        """Remember more strings that must never appear in a message."""
        self._secrets.update(s for s in secrets if s)

    def add(self, key_path: str, message: str) -> None:
        """Record that the value at *key_path* (``""``: the file) is wrong.

        Values quoted in *message* must come from :meth:`show`, which hides the
        known secrets; here only URL credentials are masked, so that a short
        password does not also mask its letters in our own words.
        """
        text = redact_text(message)
        where = f"{self.path}: {key_path}: " if key_path else f"{self.path}: "
        self._items.append(where + text)

    def show(self, value: object) -> str:
        """Describe *value* for a message: quoted, shortened and redacted."""
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return repr(value)
        if isinstance(value, str):
            text = redact_text(redact_url(value) if "@" in value else value)
            text = redact_text(text, self._secrets)
            if len(text) > _MAX_SHOWN:
                text = text[: _MAX_SHOWN - 3] + "..."
            return repr(text)
        if isinstance(value, dict):
            return "a mapping" if value else "an empty mapping"
        if isinstance(value, list):
            return "a list" if value else "an empty list"
        if isinstance(value, datetime.date):  # also datetime.datetime
            return value.isoformat()
        return f"a value of type {type(value).__name__}"

    def __bool__(self) -> bool:
        return bool(self._items)

    def error(self) -> ConfigError:
        """Return the :class:`ConfigError` carrying every problem so far."""
        return ConfigError(self.path, self._items)


def child_path(parent: str, key: object) -> str:
    """Return the key path of *key* inside the mapping at *parent*."""
    if isinstance(key, str) and _PLAIN_KEY.fullmatch(key):
        return f"{parent}.{key}" if parent else key
    return f"{parent}[{key!r}]"


def index_path(parent: str, index: int) -> str:
    """Return the key path of item *index* (from 0) of the list at *parent*."""
    return f"{parent}[{index}]"
