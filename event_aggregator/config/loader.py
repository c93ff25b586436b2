"""``load_config``: from a file name to a validated :class:`Config`, or one error."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from event_aggregator.config.envsubst import MAX_VALUES, TooLarge, substitute
from event_aggregator.config.errors import Problems
from event_aggregator.config.model import Config
from event_aggregator.config.reader import parse_yaml, read_text, secrets_in_text
from event_aggregator.config.schema import check_document
from event_aggregator.redact import url_secrets

__all__ = ["load_config"]


def load_config(path: Path | str, environ: Mapping[str, str] | None = None) -> Config:
    """Read, substitute and validate the YAML config file at *path*.

    Every problem in the file is found in one run and reported together.

    :param path: the config file; it is named as given in every message.
    :param environ: the variables for ``${VAR}``; default ``os.environ``.
    :returns: the configuration, defaults filled in.
    :raises ConfigError: listing each problem as ``<file>: <key path>: <what>``.
    """
    path = Path(path)
    problems = Problems(path)
    text = read_text(path, problems)
    if text is None:
        raise problems.error()
    problems.add_secrets(secrets_in_text(text))
    parsed, document = parse_yaml(text, problems)
    if not parsed:
        raise problems.error()
    if document is None:
        problems.add(
            "", "is empty; a config needs at least 'destination' and 'sources'"
        )
        raise problems.error()
    if not isinstance(document, dict):
        problems.add(
            "",
            "the top level must be a mapping of sections (destination, sources, ...),"
            f" got {problems.show(document)}",
        )
        raise problems.error()
    try:
        document = substitute(
            document, os.environ if environ is None else environ, problems
        )
    except TooLarge:
        problems.add(
            "", f"expands to more than {MAX_VALUES} values (through YAML aliases)"
        )
        raise problems.error() from None
    except RecursionError:
        problems.add("", "is nested too deeply")
        raise problems.error() from None
    problems.add_secrets(_secrets_in(document))
    config = check_document(document, path, problems)
    if problems or config is None:
        raise problems.error()
    return config


def _secrets_in(document: dict[object, object]) -> set[str]:
    """Passwords and tokens of every URL value, after substitution."""
    found: set[str] = set()
    pending: list[object] = [document]
    while pending:
        node = pending.pop()
        if isinstance(node, str):
            if "@" in node:
                found.update(url_secrets(node))
        elif isinstance(node, dict):
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found
