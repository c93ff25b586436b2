"""Bytes to a JSON value, exactly per RFC 8259, at any nesting depth.

``json.loads`` is fast but recursive: around depth 1000 it raises
``RecursionError`` (and with a raised recursion limit it could exhaust the C
stack). The spec puts no bound on the depth of ``data``, so a document whose
depth is above what the recursive parser can safely take goes to
:func:`parse_iterative`, a parser with an explicit stack. Both parsers reject
what RFC 8259 rejects but Python accepts (``NaN``, ``Infinity``), reject
repeated member names, and keep the difference between ``1`` (``int``) and
``1.0`` (``float``) that the Integer rule needs.

Measuring the depth costs about as much as parsing (string contents must be
skipped), so it is done only when the number of ``[`` and ``{`` bytes, a
cheap upper bound, could exceed a limit. Otherwise ``json.loads`` runs and a
``RecursionError`` sends the text to the iterative parser; that is trusted
only while the interpreter's recursion limit is low enough that the C stack
cannot overflow first (measured: a raised limit lets ``json.loads`` crash the
process between depth 60,000 and 100,000 on an 8 MiB stack).
"""

import json
import re
import sys
from collections.abc import Callable
from itertools import accumulate
from typing import Final, cast

#: Documents at most this deep go to ``json.loads``. It leaves ample room
#: below the default recursion limit of 1000 for the caller's own frames.
RECURSIVE_PARSER_MAX_DEPTH: Final = 400
# Up to this recursion limit, json.loads raises RecursionError long before the
# C stack (about 100 bytes per level) could run out.
_TRUSTED_RECURSION_LIMIT: Final = 10_000

# Integers longer than this are beyond any Integer range, and converting them
# would hit Python's limit on int-from-string digits (a ValueError), which is
# not a property of the JSON text.
_MAX_INT_DIGITS: Final = 4000
_OUT_OF_RANGE: Final = 1 << 64


class JSONTextError(ValueError):
    """The text is not one RFC 8259 JSON value."""


class DuplicateMemberError(Exception):
    """An object repeats a member name; ``name`` is the repeated name."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _object_from_pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise DuplicateMemberError(name)
            seen.add(name)
    return result


def _reason(err: json.JSONDecodeError) -> str:
    # Some of json's messages already end in "at" ("Invalid control
    # character at"); the position is added here once.
    return err.msg.removesuffix(" at")


def _reject_constant(name: str) -> object:
    raise JSONTextError(f"{name} is not a JSON value")


def _parse_int_guarded(text: str) -> int:
    digits = len(text) - (text[0] == "-")
    if digits > _MAX_INT_DIGITS:
        return -_OUT_OF_RANGE if text[0] == "-" else _OUT_OF_RANGE
    return int(text)


_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_object_from_pairs, parse_constant=_reject_constant
)
_DECODER_BIG_INTS: Final = json.JSONDecoder(
    object_pairs_hook=_object_from_pairs,
    parse_constant=_reject_constant,
    parse_int=_parse_int_guarded,
)

# A JSON string, or an unterminated one up to the end of the text, so that
# the scan is linear on any input (every quote starts exactly one match).
_STRING_OR_REST: Final = re.compile(rb'"(?:[^"\\]++|\\[\s\S]?)*+(?:"|\Z)')
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")
_BRACKET_STEP: Final = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


_NOT_OPENERS: Final = bytes(b for b in range(256) if b not in b"[{")


def nesting_bound(payload: bytes) -> int:
    """Return a cheap upper bound of the nesting depth.

    Depth ``d`` needs ``d`` openers and ``d`` closers, so half the length
    bounds it for free; otherwise the openers are counted (one C pass, about
    40 microseconds per 100 KiB).
    """
    if len(payload) <= 2 * RECURSIVE_PARSER_MAX_DEPTH:
        return len(payload) // 2
    return len(payload.translate(None, _NOT_OPENERS))


def nesting_depth(payload: bytes) -> int:
    """Measure the maximum number of arrays and objects open at once.

    String contents are skipped, so brackets inside strings do not count. The
    top-level object counts as depth 1. On malformed text the figure is only
    an estimate, which is fine: the parser rejects such text anyway.

    :param payload: UTF-8 JSON text.
    """
    brackets = _STRING_OR_REST.sub(b"", payload).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    return max(0, max(accumulate(map(_BRACKET_STEP.__getitem__, brackets))))


def parse(text: str, payload: bytes) -> object:
    """Parse one JSON value with the fastest parser that is safe for its depth.

    :param text: the decoded payload.
    :param payload: the same payload as bytes, for the cheap depth bound.
    :raises JSONTextError: if ``text`` is not one JSON value.
    :raises DuplicateMemberError: if an object repeats a member name.
    """
    if (
        sys.getrecursionlimit() > _TRUSTED_RECURSION_LIMIT
        and nesting_bound(payload) > RECURSIVE_PARSER_MAX_DEPTH
        and nesting_depth(payload) > RECURSIVE_PARSER_MAX_DEPTH
    ):
        return parse_iterative(text)
    try:
        return parse_recursive(text)
    except RecursionError:
        return parse_iterative(text)


def parse_recursive(text: str) -> object:
    """Parse with the C decoder; only for documents of small depth.

    :raises JSONTextError: if ``text`` is not one JSON value.
    :raises DuplicateMemberError: if an object repeats a member name.
    :raises RecursionError: if the document is deeper than the interpreter
        allows at this point; the caller falls back to :func:`parse_iterative`.
    """
    try:
        return _DECODER.decode(text)
    except JSONTextError:
        raise
    except json.JSONDecodeError as err:
        raise JSONTextError(f"{_reason(err)} at character {err.pos}") from err
    except ValueError:
        # Only int() complains outside JSONDecodeError: too many digits.
        pass
    try:
        return _DECODER_BIG_INTS.decode(text)
    except json.JSONDecodeError as err:
        raise JSONTextError(f"{_reason(err)} at character {err.pos}") from err


# The decoder's own string scanner (C), so both parsers decode strings alike;
# typeshed does not declare it.
_scanstring: Final[Callable[[str, int, bool], tuple[str, int]]] = (
    json.decoder.scanstring  # type: ignore[attr-defined]
)
_WHITESPACE: Final = re.compile(r"[ \t\n\r]*+")
_NUMBER: Final = re.compile(r"-?(?:0|[1-9][0-9]*+)(\.[0-9]++)?([eE][-+]?[0-9]++)?")
_LITERALS: Final[dict[str, tuple[str, object]]] = {
    "t": ("true", True),
    "f": ("false", False),
    "n": ("null", None),
}


def parse_iterative(text: str) -> object:
    """Parse JSON text of any depth with an explicit stack.

    It accepts and returns exactly what :func:`parse_recursive` does (the
    property tests compare them), at a few times its cost, so it is used only
    for deep documents.

    :raises JSONTextError: if ``text`` is not one JSON value.
    :raises DuplicateMemberError: if an object repeats a member name.
    """
    try:
        return _parse_iterative(text)
    except IndexError as err:
        raise JSONTextError("unexpected end of text") from err
    except json.JSONDecodeError as err:
        raise JSONTextError(f"{_reason(err)} at character {err.pos}") from err


def _parse_iterative(text: str) -> object:
    skip: Callable[[str, int], re.Match[str] | None] = _WHITESPACE.match
    number = _NUMBER.match
    # Each frame is [container, pending member name]; the name is None in
    # arrays.
    stack: list[list[object]] = []
    end = len(text)
    pos = 0
    while True:
        # Read one value, or open a container and read its first value next.
        pos = skip(text, pos).end()  # type: ignore[union-attr]
        char = text[pos]
        value: object
        if char == "{":
            pos = skip(text, pos + 1).end()  # type: ignore[union-attr]
            if text[pos] == "}":
                value, pos = {}, pos + 1
            else:
                name, pos = _member_name(text, pos)
                stack.append([{}, name])
                continue
        elif char == "[":
            pos = skip(text, pos + 1).end()  # type: ignore[union-attr]
            if text[pos] == "]":
                value, pos = [], pos + 1
            else:
                stack.append([[], None])
                continue
        elif char == '"':
            value, pos = _scanstring(text, pos + 1, True)
        elif char in _LITERALS:
            word, value = _LITERALS[char]
            if not text.startswith(word, pos):
                raise JSONTextError(f"invalid literal at character {pos}")
            pos += len(word)
        else:
            match = number(text, pos)
            if match is None:
                raise JSONTextError(f"expecting a value at character {pos}")
            literal = match.group()
            if match.group(1) is None and match.group(2) is None:
                value = _parse_int_guarded(literal)
            else:
                value = float(literal)
            pos = match.end()
        # Store the value in its container; close every container that ends
        # here, storing each in its own parent.
        while True:
            if not stack:
                pos = skip(text, pos).end()  # type: ignore[union-attr]
                if pos != end:
                    raise JSONTextError(f"extra data at character {pos}")
                return value
            frame = stack[-1]
            container = frame[0]
            pos = skip(text, pos).end()  # type: ignore[union-attr]
            char = text[pos]
            if isinstance(container, list):
                container.append(value)
                closer = "]"
            else:
                members = cast(dict[str, object], container)
                name = cast(str, frame[1])
                if name in members:
                    raise DuplicateMemberError(name)
                members[name] = value
                closer = "}"
            if char == ",":
                pos += 1
                if closer == "}":
                    pos = skip(text, pos).end()  # type: ignore[union-attr]
                    frame[1], pos = _member_name(text, pos)
                break
            if char != closer:
                raise JSONTextError(f"expecting ',' or '{closer}' at character {pos}")
            pos += 1
            stack.pop()
            value = container


def _member_name(text: str, pos: int) -> tuple[str, int]:
    """Read ``"name" :`` at ``pos``; return the name and the position after."""
    if text[pos] != '"':
        raise JSONTextError(f"expecting a member name at character {pos}")
    name, pos = _scanstring(text, pos + 1, True)
    pos = _WHITESPACE.match(text, pos).end()  # type: ignore[union-attr]
    if text[pos] != ":":
        raise JSONTextError(f"expecting ':' at character {pos}")
    return name, pos + 1
