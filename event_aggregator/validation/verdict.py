"""The two possible verdicts of :meth:`EventValidator.validate`."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from event_aggregator.validation.reasons import ReasonCode


@dataclass(frozen=True, slots=True)
class ValidEvent:
    """A payload that is one valid CloudEvent.

    :ivar specversion: ``"1.0"`` or ``"0.3"``.
    :ivar id: the event's id.
    :ivar source: the event's source, as written.
    :ivar type: the event's type.
    :ivar time: ``time`` as an aware ``datetime``; ``None`` when absent, and
        for the valid but unrepresentable year 0000 (``attributes["time"]``
        keeps the string). A leap second maps to the end of second 59.
    :ivar attributes: every context attribute that is not null, with its JSON
        value as parsed (``time`` as the original string); ``data`` and
        ``data_base64`` are not attributes and are left out. Read-only.
    """

    specversion: str
    id: str
    source: str
    type: str
    time: datetime | None
    attributes: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Rejection:
    """A payload that is not a valid CloudEvent, or that policy refuses.

    :ivar reason: a code from :data:`REASONS`, for logs and metric labels.
    :ivar message: one short sentence for a human, naming the attribute and a
        truncated rendering of the offending value.
    """

    reason: str
    message: str


class InvalidEvent(Exception):
    """Raised inside the package to stop at the first defect found.

    :meth:`EventValidator.validate` turns it into a :class:`Rejection`; it
    never leaves the package.
    """

    def __init__(self, reason: ReasonCode, message: str) -> None:
        super().__init__(reason, message)
        self.reason: ReasonCode = reason
        self.message = message

    def rejection(self) -> Rejection:
        """Return the verdict this exception stands for."""
        return Rejection(self.reason, self.message)


def show(value: object, limit: int = 40) -> str:
    """Render a JSON value for a message: short, and never huge or deep."""
    if isinstance(value, str):
        text = repr(value[:limit])
        return text if len(value) <= limit else text + "..."
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and abs(value) >= 2**64:
        # Huge literals are parsed as a stand-in of this size (jsontext).
        return "an integer of 20 digits or more"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
