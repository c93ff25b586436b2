"""The seam between the validator and a JSON Schema engine.

Everything the validator needs from a schema engine is "the first violation
of this schema by this envelope", so that is the whole interface.

Two engines read the same schema files. ``jsonschema-rs`` (Rust) answers
"valid or not" in about half a microsecond, against some 60 for the
``jsonschema`` package, which profiling showed to be most of the cost of
forwarding an event. Valid events, the common case, only meet the fast
engine. For an invalid one, ``jsonschema`` then names the first violation
in the order of the schema file, so verdicts and reason codes are the same
as with ``jsonschema`` alone (a property test holds the two engines to the
same answer).

The engine sees the envelope, never the payload: :func:`envelope_view`
replaces the value of ``data`` by ``null`` and every array or object value by
an empty one of the same JSON type. The schemas constrain nothing below the
top level, so the verdict is the same, while the cost no longer grows with
``data`` and a deeply nested value cannot make a recursive engine (or its
error messages, which ``repr`` the instance) overflow.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Final, cast

# Typed by types-jsonschema where installed; the ignore keeps mypy clean
# without the stubs too.
import jsonschema.validators  # type: ignore[import-untyped, unused-ignore]
import jsonschema_rs

_SCHEMA_FILES: Final = {
    "1.0": "cloudevents-1.0.schema.json",
    "0.3": "cloudevents-0.3.schema.json",
}


@dataclass(frozen=True, slots=True)
class SchemaViolation:
    """One failed schema keyword.

    :ivar keyword: the failed keyword (``required``, ``type``, ``pattern``...).
    :ivar member: the top-level member concerned: the missing one for
        ``required``, the badly named one for ``propertyNames``, otherwise the
        member whose value failed.
    :ivar value: the (envelope view of the) value that failed, or ``None``.
    :ivar in_property_names: whether the failure is in ``propertyNames``.
    """

    keyword: str
    member: str
    value: object
    in_property_names: bool


def load_schema(specversion: str) -> dict[str, object]:
    """Read the packaged schema for one spec version.

    :raises KeyError: for a version the package has no schema for.
    """
    resource = (
        files(__package__).joinpath("schemas").joinpath(_SCHEMA_FILES[specversion])
    )
    schema: dict[str, object] = json.loads(resource.read_text(encoding="utf-8"))
    return schema


def envelope_view(event: Mapping[str, object]) -> dict[str, object]:
    """Return the shallow copy of ``event`` that the schema engine checks."""
    return {
        name: None
        if name == "data"
        else type(value)()
        if isinstance(value, list | dict)
        else value
        for name, value in event.items()
    }


class SchemaCheck:
    """A compiled schema; answers with the first violation, in schema order.

    ``jsonschema`` evaluates keywords in the order they appear in the schema
    file and ``properties`` in declaration order, so the file decides which
    problem is reported when there are several.
    """

    def __init__(self, schema: dict[str, object]) -> None:
        """Compile ``schema`` once.

        :raises jsonschema.exceptions.SchemaError: if the schema is invalid.
        """
        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(schema)
        self._validator = validator_class(schema)
        self._is_valid = jsonschema_rs.validator_for(schema).is_valid

    def is_valid(self, envelope: Mapping[str, object]) -> bool:
        """Whether the envelope satisfies the schema (the fast engine)."""
        try:
            return bool(self._is_valid(envelope))
        except UnicodeEncodeError:
            # A lone surrogate (which JSON's \u escapes can write) cannot
            # cross into the Rust engine; the Python one judges it.
            return self.first_violation_slowly(envelope) is None

    def first_violation(self, envelope: Mapping[str, object]) -> SchemaViolation | None:
        """Check an envelope view; return its first violation or ``None``.

        :param envelope: the output of :func:`envelope_view`.
        """
        if self.is_valid(envelope):
            return None
        return self.first_violation_slowly(envelope)

    def first_violation_slowly(
        self, envelope: Mapping[str, object]
    ) -> SchemaViolation | None:
        """The first violation as the ``jsonschema`` package finds it."""
        error = next(self._validator.iter_errors(cast(Any, envelope)), None)
        if error is None:
            return None
        keyword = str(error.validator)
        schema_path = list(error.relative_schema_path)
        if keyword == "required":
            required = error.validator_value
            missing = [
                name
                for name in (required if isinstance(required, list) else [])
                if isinstance(name, str) and name not in envelope
            ]
            return SchemaViolation(keyword, missing[0] if missing else "", None, False)
        if schema_path and schema_path[0] == "propertyNames":
            return SchemaViolation(keyword, str(error.instance), None, True)
        member = str(error.path[0]) if error.path else ""
        return SchemaViolation(keyword, member, error.instance, False)
