"""Keep credentials out of logs, error messages and metrics.

NATS URLs carry credentials in their userinfo: ``nats://user:password@host``
for user and password, or ``nats://token@host`` for a token. Whatever the
aggregator shows a human goes through these functions first. They work on
plain string operations, never parse strictly and never raise: a malformed URL
is exactly the one a user is most likely to see echoed in an error, so when in
doubt the whole userinfo is hidden rather than risk showing part of a secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote

__all__ = ["MASK", "redact_text", "redact_url", "url_secrets"]

MASK = "***"

# A scheme as RFC 3986 defines it, followed by "://".
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")

# A URL inside free text: a scheme and everything up to the next whitespace.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")

# One plainly well-formed URL of a server list: a userinfo without surprises, a
# host, an optional port. Only lists made of these are redacted item by item;
# anything else (a password holding ",nats://", say) is treated as one URL.
_LIST_ITEM = re.compile(
    r"\s*[A-Za-z][A-Za-z0-9+.-]*://(?:[^\s@/?#,]*@)?"
    r"(?:\[[0-9A-Fa-f:.]+\]|[^\s@/?#,:\[\]]+)(?::\d+)?/?\s*"
)

# Characters that cannot be part of a user name we are willing to show.
_NOT_IN_USER = frozenset("/?#@[] \t\r\n")


def redact_url(url: str) -> str:
    """Return *url* with the password (or token) in its userinfo replaced by ``***``.

    ``nats://alice:s3cret@host:4222`` becomes ``nats://alice:***@host:4222``. A
    userinfo without a ``:`` is a NATS auth token, so it is hidden whole:
    ``nats://t0ken@host`` becomes ``nats://***@host``. A comma-separated list of
    URLs is redacted item by item. The userinfo is taken to end at the *last*
    ``@``, so a password holding an unescaped ``@``, ``/`` or ``#`` is still
    hidden; the price is that an ``@`` in a path or query hides the text before
    it, which errs on the safe side.

    :param url: any string; it need not be a valid URL.
    :returns: the string with credentials masked; unchanged when it has none.
    """
    if not isinstance(url, str):  # defensive: callers may pass what YAML gave
        return MASK
    parts = url.split(",")
    if len(parts) > 1 and all(_LIST_ITEM.fullmatch(part) for part in parts):
        return ",".join(_redact_single(part) for part in parts)
    return _redact_single(url)


def _redact_single(url: str) -> str:
    stripped = url.lstrip()
    lead = url[: len(url) - len(stripped)]
    scheme = _SCHEME.match(stripped)
    start = scheme.end() if scheme else 0
    rest = stripped[start:]
    at = rest.rfind("@")
    if at <= 0:
        return url
    user, colon, _password = rest[:at].partition(":")
    if colon and user and not _NOT_IN_USER.intersection(user):
        shown = f"{user}:{MASK}"
    else:
        shown = MASK
    return lead + stripped[:start] + shown + rest[at:]


def url_secrets(url: str) -> list[str]:
    """Return the secret parts of the userinfo of *url* (and of each URL in a list).

    These are the strings :func:`redact_text` should hide wherever they show up,
    for instance in a library's exception text that quotes them without the URL
    around them. Both the written and the percent-decoded form are returned.

    :param url: any string; it need not be a valid URL.
    :returns: the password or token, possibly empty when there is none.
    """
    secrets: list[str] = []
    for part in url.split(","):
        stripped = part.strip()
        scheme = _SCHEME.match(stripped)
        if scheme is None:
            continue
        rest = stripped[scheme.end() :]
        at = rest.rfind("@")
        if at <= 0:
            continue
        user, colon, password = rest[:at].partition(":")
        secret = password if colon else user
        if secret:
            secrets.append(secret)
            decoded = unquote(secret)
            if decoded != secret:
                secrets.append(decoded)
    return secrets


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Return *text* with every known secret and every URL userinfo masked.

    Each non-empty string of *secrets* is replaced by ``***`` (longest first, so
    a secret that contains another is hidden whole). Then each URL found in the
    text goes through :func:`redact_url`, which catches credentials nobody told
    us about.

    :param text: a log message, an error text, anything shown to a human.
    :param secrets: strings that must never be shown, such as passwords.
    :returns: the redacted text.
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)
