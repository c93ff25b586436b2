"""The one entry point: bytes in, a :class:`ValidEvent` or a :class:`Rejection` out.

The ``cloudevents`` SDK is deliberately not consulted here: every check it
makes is a subset of ours, it disagrees with the project's decisions (it
refuses a v0.3 empty ``source`` and a leap second, and accepts an event with
no ``id``), so it could only add cost (a second parse, about as much as our
whole check). The property tests use it as a second opinion instead.
"""

import logging
from typing import Final

from event_aggregator.validation import jsontext
from event_aggregator.validation.attributes import (
    Version03Rules,
    Version10Rules,
    VersionRules,
)
from event_aggregator.validation.policy import SUPPORTED_SPECVERSIONS, ValidationPolicy
from event_aggregator.validation.schema import SchemaCheck, load_schema
from event_aggregator.validation.verdict import (
    InvalidEvent,
    Rejection,
    ValidEvent,
    show,
)

logger = logging.getLogger(__name__)

_UTF8_BOM: Final = b"\xef\xbb\xbf"


class EventValidator:
    """Judges NATS Streaming payloads as structured-mode JSON CloudEvents.

    Construction compiles the schemas and expressions once; :meth:`validate`
    then keeps no state, so one validator may serve several threads.
    """

    def __init__(self, policy: ValidationPolicy | None = None) -> None:
        """:param policy: limits and accepted versions; the defaults when omitted."""
        self._policy = policy if policy is not None else ValidationPolicy()
        self._rules: dict[str, VersionRules] = {
            "1.0": Version10Rules(SchemaCheck(load_schema("1.0"))),
            "0.3": Version03Rules(SchemaCheck(load_schema("0.3"))),
        }

    @property
    def policy(self) -> ValidationPolicy:
        """The policy this validator applies."""
        return self._policy

    def validate(
        self, payload: bytes | bytearray | memoryview
    ) -> ValidEvent | Rejection:
        """Judge one message body.

        No input makes this raise: every defect becomes a :class:`Rejection`
        with a code from :data:`REASONS`. An unexpected exception, which would
        be a bug here, is logged with its traceback and also becomes a
        rejection (``internal_error``), so one bad message can never stop a
        source.

        :param payload: the message body, as received.
        :returns: the event's attributes, or why it is refused.
        :raises TypeError: if ``payload`` is not a bytes-like object (a
            programming error, not an input).
        """
        if not isinstance(payload, bytes):
            if not isinstance(payload, bytearray | memoryview):
                raise TypeError(f"payload must be bytes, got {type(payload).__name__}")
            payload = bytes(payload)
        try:
            return self._validate(payload)
        except InvalidEvent as invalid:
            return invalid.rejection()
        except Exception:  # a bug must not stop the pipeline; see the docstring
            logger.exception(
                "Validator failed on a payload of %d bytes",
                len(payload),
                extra={"payload_size": len(payload)},
            )
            return Rejection(
                "internal_error", "The validator failed unexpectedly; see the log."
            )

    def _validate(self, payload: bytes) -> ValidEvent:
        policy = self._policy
        size = len(payload)
        if policy.max_payload_bytes is not None and size > policy.max_payload_bytes:
            raise InvalidEvent(
                "too_large",
                f"The payload has {size} bytes, more than the configured "
                f"maximum of {policy.max_payload_bytes}.",
            )
        text = _decode(payload)
        max_depth = policy.max_nesting_depth
        if (
            max_depth is not None
            and size > 2 * max_depth
            and jsontext.nesting_bound(payload) > max_depth
        ):
            depth = jsontext.nesting_depth(payload)
            if depth > max_depth:
                raise InvalidEvent(
                    "too_deep",
                    f"The JSON nests {depth} levels deep, more than the "
                    f"configured maximum of {max_depth}.",
                )
        try:
            event = jsontext.parse(text, payload)
        except jsontext.JSONTextError as err:
            raise InvalidEvent("not_json", f"The payload is not JSON: {err}.") from err
        except jsontext.DuplicateMemberError as err:
            raise InvalidEvent(
                "duplicate_member",
                f"A JSON object repeats the member name {show(err.name)}.",
            ) from err
        if not isinstance(event, dict):
            kind = "an array (a batch)" if isinstance(event, list) else show(event)
            raise InvalidEvent(
                "not_object", f"The JSON text is {kind}, not one event object."
            )
        return self._rules[self._specversion(event)].check(event)

    def _specversion(self, event: dict[str, object]) -> str:
        specversion = event.get("specversion")
        if specversion is None:
            raise InvalidEvent(
                "missing_specversion",
                "The required attribute 'specversion' is absent or null.",
            )
        if not isinstance(specversion, str):
            raise InvalidEvent(
                "bad_specversion",
                f"Attribute 'specversion' is the JSON value {show(specversion)}, "
                'not a string; it must be "1.0" or "0.3".',
            )
        if specversion not in SUPPORTED_SPECVERSIONS:
            raise InvalidEvent(
                "bad_specversion",
                f"Attribute 'specversion' is {show(specversion)}; only "
                '"1.0" and "0.3" exist.',
            )
        if specversion not in self._policy.specversions:
            raise InvalidEvent(
                "unsupported_specversion",
                f"Spec version {specversion} is valid but not accepted here "
                f"(configured: {', '.join(sorted(self._policy.specversions))}).",
            )
        return specversion


def _decode(payload: bytes) -> str:
    """Decode strict UTF-8, telling a BOM and UTF-16/32 apart from garbage."""
    if payload.startswith(_UTF8_BOM):
        raise InvalidEvent("bom", "The payload starts with a UTF-8 byte-order mark.")
    # JSON text starts with ASCII, so a zero byte among the first two means
    # UTF-16 or UTF-32 (the detection of RFC 4627 section 3).
    if len(payload) >= 2 and 0 in payload[:2]:
        raise InvalidEvent(
            "not_utf8", "The payload looks like UTF-16 or UTF-32, not UTF-8."
        )
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InvalidEvent(
            "not_utf8",
            f"The payload is not UTF-8: {err.reason} at byte {err.start}.",
        ) from err
