"""HTTP JSON calls to the servers' monitoring endpoints."""

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

#: Seconds one monitoring call may take: a frozen server must fail fast.
HTTP_TIMEOUT = 1.0


class MonitoringError(RuntimeError):
    """A monitoring endpoint did not answer with JSON.

    :ivar url: the URL that was requested.
    :ivar status: the HTTP status, or None when no HTTP answer came at all.
    """

    def __init__(self, message: str, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


def get_json(
    port: int,
    path: str,
    params: dict[str, str] | None = None,
    timeout: float = HTTP_TIMEOUT,
) -> Any:
    """GET ``http://127.0.0.1:PORT/PATH?PARAMS`` and parse the JSON body.

    :param port: the monitoring port.
    :param path: e.g. ``/varz`` or ``/streaming/serverz``.
    :param params: query parameters.
    :param timeout: seconds for connecting and for each read.
    :raises MonitoringError: on a timeout, a refused connection, a non-2xx
        status (``status`` set) or a body that is not JSON.
    """
    url = f"http://127.0.0.1:{port}{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as err:
        detail = err.read().decode(errors="replace").strip()
        raise MonitoringError(
            f"GET {url} answered {err.code}: {detail}", url, err.code
        ) from err
    except (urllib.error.URLError, OSError) as err:
        reason = err.reason if isinstance(err, urllib.error.URLError) else err
        if isinstance(reason, TimeoutError):
            raise MonitoringError(
                f"GET {url} got no answer within {timeout} s (frozen server?)", url
            ) from err
        raise MonitoringError(f"GET {url} failed: {reason}", url) from err
    try:
        return json.loads(body)
    except ValueError as err:
        raise MonitoringError(
            f"GET {url} returned no JSON: {body[:200]!r}", url
        ) from err
