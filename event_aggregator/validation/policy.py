"""Local policy: what the aggregator refuses although the spec would not."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

#: The spec versions this package can judge.
SUPPORTED_SPECVERSIONS: Final = frozenset({"1.0", "0.3"})
#: NATS' default max_payload; the spec itself sets no maximum (R35).
DEFAULT_MAX_PAYLOAD_BYTES: Final = 1_048_576
DEFAULT_MAX_NESTING_DEPTH: Final = 10_000


@dataclass(frozen=True, slots=True)
class ValidationPolicy:
    """Limits and narrowing applied before and around the CloudEvents rules.

    Each refusal has its own reason code, so a metric never counts a policy
    refusal as an invalid event.

    :ivar specversions: the versions to accept, a non-empty subset of
        ``{"1.0", "0.3"}``; a valid event of another version gets
        ``unsupported_specversion``.
    :ivar max_payload_bytes: larger payloads get ``too_large``; ``None``
        means no limit. A payload of exactly this size is accepted.
    :ivar max_nesting_depth: payloads with more arrays and objects open at
        once (the event object itself counts as 1) get ``too_deep``; ``None``
        means no limit. Any depth is parsed without recursion problems.
    """

    specversions: frozenset[str] = field(default=SUPPORTED_SPECVERSIONS)
    max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES
    max_nesting_depth: int | None = DEFAULT_MAX_NESTING_DEPTH

    def __post_init__(self) -> None:
        """Check the fields, naming the bad one and its value.

        :raises ValueError: for an empty or unknown set of versions, or a
            limit that is not a positive integer or ``None``.
        """
        versions: Iterable[object] = self.specversions
        if isinstance(versions, str) or not isinstance(versions, Iterable):
            raise ValueError(
                "specversions must be a set of version strings, got "
                f"{self.specversions!r}"
            )
        normalized = frozenset(versions)
        unknown = normalized - SUPPORTED_SPECVERSIONS
        if not normalized or unknown:
            raise ValueError(
                "specversions must be a non-empty subset of "
                f"{sorted(SUPPORTED_SPECVERSIONS)}, got {sorted(map(repr, normalized))}"
            )
        object.__setattr__(self, "specversions", normalized)
        for name in ("max_payload_bytes", "max_nesting_depth"):
            limit = getattr(self, name)
            if limit is not None and (
                isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
            ):
                raise ValueError(
                    f"{name} must be a positive integer or None, got {limit!r}"
                )
