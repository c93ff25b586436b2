"""Polling with a deadline: the only way tests wait for something to happen."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_NOT_CALLED = object()


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float,
    interval: float = 0.02,
    message: str = "condition not met",
) -> T:
    """Call ``predicate`` until it returns a truthy value, and return that value.

    An exception raised by the predicate counts as "not yet": servers refuse
    connections while they start, and that is exactly what we wait through.
    The last value and the last exception go into the failure message, so a
    timeout says what was seen, not only that nothing happened.

    :param predicate: called with no arguments until it returns something truthy.
    :param timeout: seconds before giving up.
    :param interval: seconds between two calls.
    :param message: what was awaited, for the failure message.
    :raises AssertionError: when the deadline passes first; chained from the
        last exception the predicate raised, if any.
    """
    deadline = time.monotonic() + timeout
    last_value: object = _NOT_CALLED
    last_error: Exception | None = None
    while True:
        try:
            value = predicate()
        except Exception as err:
            last_error = err
        else:
            if value:
                return value
            last_value = value
            last_error = None
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    seen = "never returned" if last_value is _NOT_CALLED else f"{last_value!r}"
    detail = f"{message} within {timeout:.1f} s; last value: {seen}"
    if last_error is not None:
        detail += f"; last error: {last_error!r}"
    raise AssertionError(detail) from last_error


def assert_stays(
    predicate: Callable[[], object],
    duration: float,
    interval: float = 0.02,
    message: str = "condition changed",
) -> None:
    """Check that ``predicate`` stays truthy for ``duration`` seconds.

    Proving that something does *not* happen needs a window of observation;
    this one fails the moment the predicate turns false instead of sleeping
    blindly through it.

    :param predicate: called repeatedly; an exception counts as a failure.
    :param duration: seconds to keep watching.
    :param interval: seconds between two calls.
    :param message: what must hold, for the failure message.
    :raises AssertionError: as soon as the predicate is falsy or raises.
    """
    deadline = time.monotonic() + duration
    while True:
        try:
            value = predicate()
        except Exception as err:
            raise AssertionError(f"{message}: predicate raised {err!r}") from err
        if not value:
            raise AssertionError(f"{message}: became {value!r}")
        if time.monotonic() >= deadline:
            return
        time.sleep(interval)
