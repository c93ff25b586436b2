"""Checking NATS URLs and keeping passwords out of logs."""

from __future__ import annotations

from urllib.parse import urlsplit

DEFAULT_PORT = 4222
_SCHEMES = ("nats", "tls")


def redact_url(url: str) -> str:
    """The URL with its password (or token) replaced by ``***``.

    It never raises: a URL it cannot parse loses everything up to the last
    ``@`` instead, so a secret cannot leak through a malformed value.
    """
    try:
        parts = urlsplit(url)
        userinfo, at, hostport = parts.netloc.rpartition("@")
    except ValueError:
        return "***@" + url.rpartition("@")[2] if "@" in url else url
    if not at:
        # urlsplit found no userinfo, yet an "@" may still hide one.
        return "***@" + url.rpartition("@")[2] if "@" in url else url
    user, colon, _password = userinfo.partition(":")
    safe_userinfo = f"{user}:***" if colon else "***"
    return parts._replace(netloc=f"{safe_userinfo}@{hostport}").geturl()


def normalize_url(url: str) -> str:
    """Check a ``nats://`` or ``tls://`` URL and add the default port.

    :raises ValueError: the scheme, host or port is missing or wrong; the
        message shows the URL redacted.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise ValueError(f"invalid NATS URL {redact_url(url)}: {err}") from err
    if parts.scheme not in _SCHEMES:
        raise ValueError(
            f"invalid NATS URL {redact_url(url)}: the scheme must be nats:// or tls://"
        )
    if not parts.hostname:
        raise ValueError(f"invalid NATS URL {redact_url(url)}: no host")
    if port is None:
        return parts._replace(netloc=f"{parts.netloc}:{DEFAULT_PORT}").geturl()
    return url
