"""Read the config file and parse its YAML, turning every failure into problems.

Parsing uses PyYAML's safe loader (no Python objects can be built from the
file) with one addition: a key written twice in the same mapping is reported.
Plain ``yaml.safe_load`` silently keeps the last one, so a second ``sources:``
further down a long file would drop the first list without a word.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from event_aggregator.config.errors import Problems
from event_aggregator.redact import url_secrets

__all__ = ["parse_yaml", "read_text", "secrets_in_text"]

_MERGE_TAG = "tag:yaml.org,2002:merge"

# A URL with a userinfo, as written anywhere in the raw file.
_URL_WITH_USERINFO = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*@")


def read_text(path: Path, problems: Problems) -> str | None:
    """Return the file's text, or ``None`` after recording why it cannot be read."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        problems.add("", "file not found")
        return None
    except IsADirectoryError:
        problems.add("", "is a directory, not a config file")
        return None
    except PermissionError:
        problems.add("", "cannot be read: permission denied")
        return None
    except OSError as err:
        problems.add("", f"cannot be read: {err.strerror or err}")
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        problems.add(
            "",
            f"is not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})",
        )
        return None


def secrets_in_text(text: str) -> list[str]:
    """Passwords and tokens of the URLs written in *text*, even if YAML is broken."""
    secrets: list[str] = []
    for match in _URL_WITH_USERINFO.finditer(text):
        secrets.extend(url_secrets(match.group(0) + "host"))
    return secrets


class _StrictLoader(yaml.SafeLoader):
    """The safe loader, recording keys that appear twice in one mapping."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[object, yaml.Mark]] = []

    def construct_mapping(
        self, node: yaml.MappingNode, deep: bool = False
    ) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _value_node in node.value:
            # Merge keys ("<<: *defaults") may be repeated and are overridden by
            # explicit keys on purpose; only plain scalar keys are compared.
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self.construct_object(key_node)
            if key in seen:
                self.duplicates.append((key, key_node.start_mark))
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, problems: Problems) -> tuple[bool, Any]:
    """Parse *text*; return ``(True, document)``, or ``(False, None)`` on errors.

    A syntax error is reported with its line and column (from 1) and without the
    quoted line PyYAML would print, since that line may hold a password.
    """
    loader = _StrictLoader(text)
    try:
        document = loader.get_single_data()
    except yaml.MarkedYAMLError as err:
        problems.add("", _describe_yaml_error(err))
        return False, None
    except yaml.YAMLError as err:
        problems.add("", f"is not valid YAML: {err}")
        return False, None
    except RecursionError:
        problems.add("", "is not usable YAML: it is nested too deeply")
        return False, None
    finally:
        loader.dispose()
    for key, mark in loader.duplicates:
        problems.add(
            "",
            f"line {mark.line + 1}, column {mark.column + 1}:"
            f" key {problems.show(key)} appears twice in the same mapping",
        )
    return not loader.duplicates, document


def _describe_yaml_error(err: yaml.MarkedYAMLError) -> str:
    mark = err.problem_mark or err.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    what = err.problem or err.context or "invalid YAML"
    if err.context and err.problem and err.context_mark is not None:
        what += f" ({err.context} at line {err.context_mark.line + 1})"
    return f"{where}YAML syntax error: {what}"
