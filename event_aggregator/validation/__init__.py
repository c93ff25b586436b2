"""CloudEvents validation of NATS Streaming payloads (structured JSON mode).

One entry point, :meth:`EventValidator.validate`: bytes in, a
:class:`ValidEvent` or a :class:`Rejection` with a code from :data:`REASONS`
out. The rules are those of ``shared/cloudevents-rules.md`` for v1.0 and v0.3.

>>> validator = EventValidator(ValidationPolicy(specversions=frozenset({"1.0"})))
>>> validator.validate(b'{"specversion":"1.0","id":"1","source":"/s","type":"t"}').id
'1'
>>> validator.validate(b'{"specversion":"1.0","source":"/s","type":"t"}').reason
'missing_id'
"""

from event_aggregator.validation.policy import SUPPORTED_SPECVERSIONS, ValidationPolicy
from event_aggregator.validation.reasons import REASONS, ReasonCode
from event_aggregator.validation.validator import EventValidator
from event_aggregator.validation.verdict import Rejection, ValidEvent

__all__ = [
    "REASONS",
    "SUPPORTED_SPECVERSIONS",
    "EventValidator",
    "ReasonCode",
    "Rejection",
    "ValidEvent",
    "ValidationPolicy",
]
