"""Checks for single values: each returns the parsed value or :data:`INVALID`.

A check has the signature ``check(value, key_path, problems)``. On a bad value
it records one problem that says what is expected and echoes what it got
(redacted), then returns :data:`INVALID`, so that the caller can go on and find
the other problems of the file in the same run.
"""

from __future__ import annotations

import datetime
import difflib
import enum
import math
import os
import re
import ssl
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from event_aggregator.config.errors import Problems, child_path, index_path

__all__ = [
    "INVALID",
    "MAX_SECONDS",
    "REQUIRED",
    "UNRESOLVED",
    "Check",
    "Marker",
    "boolean",
    "channel",
    "choice",
    "client_id",
    "cluster_id",
    "duration",
    "endpoint",
    "file_path",
    "integer",
    "list_of",
    "listen_address",
    "name",
    "nats_url",
    "nullable",
    "number",
    "rfc3339",
    "run",
    "token",
]


class Marker(enum.Enum):
    """Values that stand for "no usable value here"."""

    #: The value was wrong; a problem has been recorded for it.
    INVALID = "invalid"
    #: A ``${VAR}`` in the value could not be substituted (already reported).
    UNRESOLVED = "unresolved"
    #: A key has no default: the file must give it.
    REQUIRED = "required"


INVALID: Final = Marker.INVALID
UNRESOLVED: Final = Marker.UNRESOLVED
REQUIRED: Final = Marker.REQUIRED

#: A check: ``(value, key path, problems) -> parsed value or INVALID``.
Check = Callable[[Any, str, Problems], Any]

#: Longest duration accepted: a year. Longer waits overflow some timers
#: (``threading.Event.wait`` rejects values past ``threading.TIMEOUT_MAX``) and
#: are surely a mistake in the units.
MAX_SECONDS: Final = 365 * 24 * 3600

DEFAULT_NATS_PORT: Final = 4222

_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]+")
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})"
)
_RFC3339_EXAMPLE = "2024-05-01T12:00:00Z"


def run(check: Check, value: Any, key_path: str, problems: Problems) -> Any:
    """Apply *check*, unless the value was already reported as unresolved."""
    if value is UNRESOLVED:
        return INVALID
    return check(value, key_path, problems)


class FromEnvironment(str):
    """A whole value that came from one ``${VAR}``, e.g. ``max_outage: ${T}``.

    It is a string, since that is all an environment variable holds; keys
    that want a number or a boolean read it as YAML would have read it
    written in place (``30``, ``2.5``, ``true``).
    """


def _from_environment(value: Any) -> Any:
    """The number or boolean a :class:`FromEnvironment` string spells, if any."""
    if not isinstance(value, FromEnvironment):
        return value
    text = value.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            continue
    return value


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def duration(*, allow_zero: bool = False) -> Check:
    """A number of seconds, int or float, > 0 (or >= 0), at most a year."""
    what = (
        "a number of seconds, 0 or more"
        if allow_zero
        else "a number of seconds greater than 0"
    )

    def check(value: Any, key_path: str, problems: Problems) -> Any:
        value = _from_environment(value)
        if not _is_number(value) or value < 0 or (value == 0 and not allow_zero):
            problems.add(key_path, f"must be {what}, got {problems.show(value)}")
            return INVALID
        if value > MAX_SECONDS:
            problems.add(
                key_path,
                f"must be at most {MAX_SECONDS} seconds (a year),"
                f" got {problems.show(value)}",
            )
            return INVALID
        return float(value)

    return check


def integer(low: int, high: int | None = None, *, unit: str = "") -> Check:
    """A whole number from *low* to *high* (no upper bound when ``None``)."""
    kind = f"a whole number of {unit}" if unit else "an integer"
    if high is None:
        what = f"{kind} of at least {low}"
    else:
        what = f"{kind} from {low} to {high}"

    def check(value: Any, key_path: str, problems: Problems) -> Any:
        value = _from_environment(value)
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < low
            or (high is not None and value > high)
        ):
            problems.add(key_path, f"must be {what}, got {problems.show(value)}")
            return INVALID
        return value

    return check


def number(low: float, high: float | None = None) -> Check:
    """A number (int or float) from *low* to *high*, both included."""
    if high is None:
        what = f"a number of at least {low:g}"
    else:
        what = f"a number from {low:g} to {high:g}"

    def check(value: Any, key_path: str, problems: Problems) -> Any:
        value = _from_environment(value)
        if not _is_number(value) or value < low or (high is not None and value > high):
            problems.add(key_path, f"must be {what}, got {problems.show(value)}")
            return INVALID
        return float(value)

    return check


def boolean(value: Any, key_path: str, problems: Problems) -> Any:
    """``true`` or ``false``; a quoted ``"true"`` is a mistake worth reporting."""
    value = _from_environment(value)
    if not isinstance(value, bool):
        problems.add(key_path, f"must be true or false, got {problems.show(value)}")
        return INVALID
    return value


def _text(pattern: re.Pattern[str], what: str) -> Check:
    def check(value: Any, key_path: str, problems: Problems) -> Any:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            problems.add(key_path, f"must be {what}, got {problems.show(value)}")
            return INVALID
        return value

    return check


#: Names used in logs and metric labels.
name = _text(_NAME, "a name of letters, digits, '_', '.' and '-'")

#: A NATS Streaming client ID: the server accepts only these characters.
client_id = _text(_CLIENT_ID, "a client ID of letters, digits, '_' and '-'")

#: Durable names and queue groups: the server splits ``durable:group`` on ':'.
token = _text(re.compile(r"[^\s:]+"), "a non-empty string without ':' or spaces")


def is_channel(value: str) -> bool:
    """Whether *value* is a NATS Streaming channel name a client may use.

    The server refuses an empty name, an empty token (leading, trailing or
    doubled '.'), '/', and the wildcards '*' and '>' anywhere; a NATS subject
    cannot hold white space or control characters either.
    """
    if not value or value.startswith(".") or value.endswith(".") or ".." in value:
        return False
    return not any(c in "*>/" or c.isspace() or not c.isprintable() for c in value)


def _subject(what: str) -> Check:
    def check(value: Any, key_path: str, problems: Problems) -> Any:
        if not isinstance(value, str) or not is_channel(value):
            problems.add(
                key_path,
                f"must be {what}: non-empty tokens separated by '.',"
                " without '*', '>', '/' or spaces,"
                f" got {problems.show(value)}",
            )
            return INVALID
        return value

    return check


#: A channel name (a NATS subject without wildcards).
channel = _subject("a channel name")

#: A cluster ID: it becomes part of the discovery subject, so the same rules.
cluster_id = _subject("a cluster ID")


def choice(
    options: Iterable[str],
    *,
    ignore_case: bool = False,
    convert: Callable[[str], Any] = str,
) -> Check:
    """One of *options*; the result is ``convert(option)``."""
    allowed = tuple(options)
    listed = ", ".join(f"'{option}'" for option in allowed)

    def check(value: Any, key_path: str, problems: Problems) -> Any:
        if isinstance(value, str):
            wanted = value.lower() if ignore_case else value
            for option in allowed:
                if wanted == (option.lower() if ignore_case else option):
                    return convert(option)
        message = f"must be one of {listed}, got {problems.show(value)}"
        if isinstance(value, str):
            close = difflib.get_close_matches(value, allowed, n=1)
            if close:
                message += f" (did you mean '{close[0]}'?)"
        elif isinstance(value, int | float) and str(value) in allowed:
            message += f" (write it as a quoted string: '{value}')"
        problems.add(key_path, message)
        return INVALID

    return check


def nullable(check: Check) -> Check:
    """``null`` (kept as ``None``) or whatever *check* accepts."""

    def nullable_check(value: Any, key_path: str, problems: Problems) -> Any:
        return None if value is None else check(value, key_path, problems)

    return nullable_check


def list_of(
    item: Check, *, what: str, unique: bool = True, allow_empty: bool = False
) -> Check:
    """A list whose items pass *item*; returned as a tuple.

    :param what: the items, in plural, for messages ("channel names").
    :param unique: report an item equal to an earlier one.
    """

    def check(value: Any, key_path: str, problems: Problems) -> Any:
        if not isinstance(value, list) or (not value and not allow_empty):
            hint = (
                " (write one item in brackets: [...])"
                if value and not isinstance(value, dict | list)
                else ""
            )
            problems.add(
                key_path,
                f"must be a non-empty list of {what}, got {problems.show(value)}{hint}",
            )
            return INVALID
        result: list[Any] = []
        first_seen: dict[Any, int] = {}
        for index, raw in enumerate(value):
            item_path = index_path(key_path, index)
            parsed = run(item, raw, item_path, problems)
            result.append(parsed)
            if parsed is INVALID or not unique:
                continue
            if parsed in first_seen:
                earlier = index_path(key_path, first_seen[parsed])
                problems.add(
                    item_path,
                    f"{problems.show(raw)} is listed twice (also at {earlier})",
                )
                result[-1] = INVALID
            else:
                first_seen[parsed] = index
        if INVALID in result:
            return INVALID
        return tuple(result)

    return check


def endpoint(url: str) -> tuple[str, int]:
    """Return the host and port of a ``nats://`` or ``tls://`` URL.

    :raises ValueError: with a short reason when the URL is not usable.
    """
    if any(c.isspace() for c in url):
        raise ValueError("must not contain spaces")
    if "," in url:
        raise ValueError("must be a single URL, not a list")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise ValueError(_url_reason(url, "has an invalid host or port")) from err
    if parts.scheme not in ("nats", "tls") or not url.lower().startswith(
        parts.scheme + "://"
    ):
        raise ValueError("must start with nats:// or tls://")
    if not parts.hostname:
        raise ValueError(_url_reason(url, "has no host"))
    if ":" in parts.hostname:
        raise ValueError(
            "has an IPv6 address: the NATS connection (pynats2) is IPv4 only;"
            " use an IPv4 address or a host name"
        )
    if port == 0:
        raise ValueError("has an invalid port: must be from 1 to 65535")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(_url_reason(url, "must not have a path, query or fragment"))
    return parts.hostname, port if port is not None else DEFAULT_NATS_PORT


def _url_reason(url: str, reason: str) -> str:
    if "@" in url:
        return (
            f"{reason} (percent-encode '/', '?', '#' and '@' in a user name or"
            " password, e.g. '%40' for '@')"
        )
    return reason


def nats_url(value: Any, key_path: str, problems: Problems) -> Any:
    """A ``nats://`` or ``tls://`` URL with a host; port and credentials optional."""
    if not isinstance(value, str):
        problems.add(
            key_path,
            "must be a nats:// or tls:// URL such as nats://127.0.0.1:4222,"
            f" got {problems.show(value)}",
        )
        return INVALID
    try:
        endpoint(value)
    except ValueError as err:
        problems.add(key_path, f"{err}, got {problems.show(value)}")
        return INVALID
    return value


def listen_address(value: Any, key_path: str, problems: Problems) -> Any:
    """``"host:port"`` (``[v6]:port``; empty host: all interfaces) as a tuple."""
    what = "an address 'host:port' such as '127.0.0.1:9090'"
    if not isinstance(value, str):
        problems.add(key_path, f"must be {what}, got {problems.show(value)}")
        return INVALID
    host, colon, port_text = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        host = "\0"  # an IPv6 address must be in brackets
    port = int(port_text) if port_text.isascii() and port_text.isdigit() else -1
    if not colon or not 0 <= port <= 65535 or any(c in host for c in "\0[] /"):
        problems.add(key_path, f"must be {what}, got {problems.show(value)}")
        return INVALID
    return (value, host, port)


def check_tls_files(fields: dict[str, Any], key_path: str, problems: Problems) -> None:
    """Load the certificates as the connection will, so a wrong file is a
    config error rather than a handshake that fails forever.

    Marks the failing key INVALID in *fields*.
    """
    context = ssl.create_default_context()
    ca_file = fields.get("ca_file")
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (ssl.SSLError, OSError) as err:
            problems.add(
                child_path(key_path, "ca_file"),
                f"is not a PEM file of CA certificates: {err}",
            )
            fields["ca_file"] = INVALID
    cert_file, key_file = fields.get("cert_file"), fields.get("key_file")
    if cert_file is not None and key_file is not None:
        try:
            context.load_cert_chain(str(cert_file), str(key_file))
        except (ssl.SSLError, OSError) as err:
            problems.add(
                child_path(key_path, "cert_file"),
                f"and key_file are not a matching PEM certificate and key: {err}",
            )
            fields["cert_file"] = INVALID


def file_path(base: Path) -> Check:
    """A readable regular file; a relative path is taken from *base*.

    Checking at load time turns a typo in a certificate path into a config
    error (exit status 2) instead of a failure deep inside a reconnect loop.
    """

    def check(value: Any, key_path: str, problems: Problems) -> Any:
        if not isinstance(value, str) or not value.strip():
            problems.add(
                key_path, f"must be the path of a file, got {problems.show(value)}"
            )
            return INVALID
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = base / path
        if not path.exists():
            problems.add(key_path, f"file not found: '{path}'")
            return INVALID
        if not path.is_file():
            problems.add(key_path, f"not a regular file: '{path}'")
            return INVALID
        if not os.access(path, os.R_OK):
            problems.add(key_path, f"file not readable: '{path}'")
            return INVALID
        return path

    return check


def rfc3339(value: Any, key_path: str, problems: Problems) -> Any:
    """An RFC 3339 date and time with an offset, as an aware datetime.

    YAML turns an unquoted timestamp into a datetime before we see it; that is
    accepted when it carries an offset.
    """
    what = f"an RFC 3339 date and time with an offset, such as {_RFC3339_EXAMPLE}"
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            return value
    elif isinstance(value, str) and _RFC3339.fullmatch(value):
        text = value.replace("t", "T").replace("z", "+00:00").replace("Z", "+00:00")
        try:
            return datetime.datetime.fromisoformat(text)
        except ValueError:
            problems.add(
                key_path, f"is not a valid date and time, got {problems.show(value)}"
            )
            return INVALID
    problems.add(key_path, f"must be {what}, got {problems.show(value)}")
    return INVALID
