"""``${VAR}`` substitution in the string values of a parsed YAML document.

Secrets stay out of the config file: ``url: nats://agg:${EDGE_PASSWORD}@edge:4222``.
Only string *values* are substituted, never keys. The result is a string,
except that a value made of exactly one ``${VAR}`` may be read as a number
or a boolean by a key that wants one (``max_outage: ${MAX_OUTAGE}``).
``$${`` writes a literal ``${``; any other ``$`` is left alone. A missing
variable is a config error naming the variable and the key path; its value
is replaced by :data:`UNRESOLVED` so that validation does not report the
same key a second time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from event_aggregator.config.errors import Problems, child_path, index_path
from event_aggregator.config.values import UNRESOLVED, FromEnvironment

__all__ = ["MAX_VALUES", "TooLarge", "substitute"]

#: Most values (mapping entries, list items, scalars) a file may expand to.
#: YAML aliases can make a small file expand into billions of values.
MAX_VALUES: Final = 100_000

_TOKEN = re.compile(r"\$\$\{|\$\{(?P<body>[^}]*)(?P<close>\})?")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class TooLarge(Exception):
    """The document expands to more than :data:`MAX_VALUES` values."""


def substitute(document: Any, environ: Mapping[str, str], problems: Problems) -> Any:
    """Return a copy of *document* with ``${VAR}`` replaced in string values.

    :param document: what ``yaml.safe_load`` returned.
    :param environ: the variables, usually ``os.environ``.
    :param problems: where missing or malformed references are reported.
    :raises TooLarge: when aliases expand the document past :data:`MAX_VALUES`.
    """
    return _Walker(environ, problems).walk(document, "")


class _Walker:
    def __init__(self, environ: Mapping[str, str], problems: Problems) -> None:
        self._environ = environ
        self._problems = problems
        self._count = 0
        # ids of the containers on the way down: a YAML alias can make a list
        # contain itself, and walking that would never end.
        self._open: set[int] = set()

    def walk(self, node: Any, key_path: str) -> Any:
        self._count += 1
        if self._count > MAX_VALUES:
            raise TooLarge
        if isinstance(node, str):
            return self._string(node, key_path)
        if not isinstance(node, dict | list):
            return node
        if id(node) in self._open:
            self._problems.add(key_path, "contains itself through a YAML alias")
            return UNRESOLVED
        self._open.add(id(node))
        try:
            if isinstance(node, dict):
                return {
                    key: self.walk(value, child_path(key_path, key))
                    for key, value in node.items()
                }
            return [
                self.walk(item, index_path(key_path, index))
                for index, item in enumerate(node)
            ]
        finally:
            self._open.discard(id(node))

    def _string(self, text: str, key_path: str) -> Any:
        if "${" not in text:
            return text
        pieces: list[str] = []
        failed = False
        position = 0
        for match in _TOKEN.finditer(text):
            pieces.append(text[position : match.start()])
            position = match.end()
            if match.group(0) == "$${":
                pieces.append("${")
                continue
            body = match.group("body")
            if match.group("close") is None:
                self._problems.add(
                    key_path, "has a '${' without a closing '}' (write '$${' for '${')"
                )
                failed = True
            elif not _VAR_NAME.fullmatch(body):
                self._problems.add(
                    key_path,
                    f"'${{{body}}}' is not a variable reference: a name is letters,"
                    " digits and '_' (write '$${' for a literal '${')",
                )
                failed = True
            elif body not in self._environ:
                self._problems.add(
                    key_path, f"environment variable '{body}' is not set"
                )
                failed = True
            else:
                pieces.append(self._environ[body])
        pieces.append(text[position:])
        if failed:
            return UNRESOLVED
        result = "".join(pieces)
        if (
            _VAR_NAME.fullmatch(text[2:-1])
            and text.startswith("${")
            and text[-1] == "}"
        ):
            # The whole value is one variable: a numeric key may read it.
            return FromEnvironment(result)
        return result
