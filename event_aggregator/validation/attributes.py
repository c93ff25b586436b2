"""The attribute rules of each spec version, for a parsed event object.

The schema (see :mod:`.schema`) settles presence, JSON types, emptiness and
Integer range; the code here settles what a JSON Schema cannot say exactly:
the RFC grammars, the content of Strings, the JSON form of Integers, the
entries of v0.3 Map extensions and the ``data`` rules. Nothing below ``data``
is looked at: the rules only concern its presence and JSON type.
"""

import re
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Final

from event_aggregator.validation import grammar
from event_aggregator.validation.reasons import ReasonCode
from event_aggregator.validation.schema import (
    SchemaCheck,
    SchemaViolation,
    envelope_view,
)
from event_aggregator.validation.verdict import InvalidEvent, ValidEvent, show

_INTEGER_MIN: Final = -(2**31)
_INTEGER_MAX: Final = 2**31 - 1
_DATA_MEMBERS: Final = frozenset({"data", "data_base64"})


def _missing(name: str) -> ReasonCode:
    codes: dict[str, ReasonCode] = {
        "specversion": "missing_specversion",
        "id": "missing_id",
        "source": "missing_source",
        "type": "missing_type",
    }
    return codes[name]


class VersionRules:
    """The rules of one spec version; subclasses fill in the differences.

    :cvar core_codes: the reason code for a bad value of each attribute (and
        format member) the version defines; every other member is an
        extension.
    """

    specversion: str
    name_pattern: re.Pattern[str]
    name_rule: str
    core_codes: Mapping[str, ReasonCode]
    required: frozenset[str] = frozenset({"specversion", "id", "source", "type"})

    def __init__(self, schema: SchemaCheck) -> None:
        """:param schema: the compiled schema of this version."""
        self._schema = schema

    def check(self, event: dict[str, object]) -> ValidEvent:
        """Judge an event object whose ``specversion`` is this version.

        :raises InvalidEvent: at the first defect found.
        """
        self._check_names(event)
        violation = self._schema.first_violation(envelope_view(event))
        if violation is not None:
            raise self._explain(violation)
        for name in ("id", "type", "subject"):
            _check_string(f"Attribute '{name}'", event.get(name))
        time = self._check_attributes(event)
        for name, value in event.items():
            if name not in self.core_codes and name != "data":
                self._check_extension(name, value)
        self._check_data(event)
        attributes = {
            name: value
            for name, value in event.items()
            if value is not None and name not in _DATA_MEMBERS
        }
        return ValidEvent(
            specversion=self.specversion,
            id=str(event["id"]),
            source=str(event["source"]),
            type=str(event["type"]),
            time=time,
            attributes=MappingProxyType(attributes),
        )

    def _check_names(self, event: dict[str, object]) -> None:
        fullmatch = self.name_pattern.fullmatch
        for name in event:
            if fullmatch(name) is None and name not in self.core_codes:
                raise InvalidEvent(
                    "bad_extension_name",
                    f"Attribute name {show(name)} is not {self.name_rule}.",
                )

    def _explain(self, violation: SchemaViolation) -> InvalidEvent:
        member, value = violation.member, violation.value
        if violation.in_property_names:
            return InvalidEvent(
                "bad_extension_name",
                f"Attribute name {show(member)} is not {self.name_rule}.",
            )
        if violation.keyword == "required" or (
            value is None and member in self.required
        ):
            return InvalidEvent(
                _missing(member),
                f"The required attribute '{member}' is absent or null.",
            )
        code = self.core_codes.get(member)
        if code is not None:
            if violation.keyword == "type":
                problem = f"must be a JSON string, not {show(value)}"
            elif violation.keyword == "minLength":
                problem = "must not be empty"
            else:
                problem = f"has the malformed value {show(value)}"
            return InvalidEvent(code, f"Attribute '{member}' {problem}.")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return InvalidEvent(
                "bad_integer",
                f"Extension '{member}' is {show(value)}, not a 32-bit Integer.",
            )
        return InvalidEvent(
            "bad_extension_value",
            f"Extension '{member}' is {show(value)}, which no "
            f"v{self.specversion} attribute type maps to.",
        )

    def _check_attributes(self, event: dict[str, object]) -> datetime | None:
        """Check the version's attributes with a grammar; return ``time``."""
        source = event["source"]
        if (
            not isinstance(source, str)
            or grammar.URI_REFERENCE.fullmatch(source) is None
        ):
            raise InvalidEvent(
                "bad_source",
                f"Attribute 'source' {show(source)} is not a URI-reference.",
            )
        content_type = event.get("datacontenttype")
        if (
            isinstance(content_type, str)
            and grammar.MEDIA_TYPE.fullmatch(content_type) is None
        ):
            raise InvalidEvent(
                "bad_datacontenttype",
                f"Attribute 'datacontenttype' {show(content_type)} is not a "
                "media type.",
            )
        time = event.get("time")
        if not isinstance(time, str):
            return None
        try:
            return grammar.parse_timestamp(time)
        except grammar.TimestampError as err:
            raise InvalidEvent(
                "bad_time", f"Attribute 'time' {show(time)} {err}."
            ) from err

    def _check_extension(self, name: str, value: object) -> None:
        if isinstance(value, str):
            _check_string(f"Extension '{name}'", value)
        elif isinstance(value, float):
            raise InvalidEvent(
                "bad_integer",
                f"Extension '{name}' is {show(value)}; an Integer is written "
                "with only an integer part.",
            )

    def _check_data(self, event: dict[str, object]) -> None:
        raise NotImplementedError


class Version10Rules(VersionRules):
    """CloudEvents 1.0.2, JSON format (R01-R28, R35)."""

    specversion = "1.0"
    name_pattern = grammar.NAME_V1
    name_rule = "lower-case ASCII letters and digits"
    core_codes = MappingProxyType(
        {
            "specversion": "bad_specversion",
            "id": "bad_id",
            "source": "bad_source",
            "type": "bad_type",
            "datacontenttype": "bad_datacontenttype",
            "dataschema": "bad_dataschema",
            "subject": "bad_subject",
            "time": "bad_time",
            "data_base64": "bad_data_base64",
        }
    )

    def _check_attributes(self, event: dict[str, object]) -> datetime | None:
        time = super()._check_attributes(event)
        schema = event.get("dataschema")
        if isinstance(schema, str) and grammar.URI.fullmatch(schema) is None:
            raise InvalidEvent(
                "bad_dataschema",
                f"Attribute 'dataschema' {show(schema)} is not an absolute URI.",
            )
        return time

    def _check_data(self, event: dict[str, object]) -> None:
        encoded = event.get("data_base64")
        if encoded is not None:
            if "data" in event:
                raise InvalidEvent(
                    "data_conflict", "The event carries both data and data_base64."
                )
            if not isinstance(encoded, str) or not grammar.is_base64(encoded):
                raise InvalidEvent(
                    "bad_data_base64",
                    f"Member 'data_base64' {show(encoded)} is not padded "
                    "standard Base64.",
                )
        content_type = event.get("datacontenttype")
        if (
            "data" in event
            and isinstance(content_type, str)
            and not grammar.media_type_is_json(content_type)
            and not isinstance(event["data"], str)
        ):
            raise InvalidEvent(
                "bad_data",
                f"Member 'data' is {show(event['data'])}, but under the non-JSON "
                f"datacontenttype {show(content_type)} it must be a string.",
            )


class Version03Rules(VersionRules):
    """CloudEvents 0.3, JSON format (R36 and the envelope rules)."""

    specversion = "0.3"
    name_pattern = grammar.NAME_V03
    name_rule = "lower-case ASCII letters and digits starting with a letter"
    core_codes = MappingProxyType(
        {
            "specversion": "bad_specversion",
            "id": "bad_id",
            "source": "bad_source",
            "type": "bad_type",
            "datacontenttype": "bad_datacontenttype",
            "datacontentencoding": "bad_datacontentencoding",
            "schemaurl": "bad_schemaurl",
            "subject": "bad_subject",
            "time": "bad_time",
        }
    )

    def _check_names(self, event: dict[str, object]) -> None:
        if "data_base64" in event:
            raise InvalidEvent(
                "bad_extension_name",
                "Member 'data_base64' does not exist in v0.3, and its name is "
                "not a valid attribute name.",
            )
        super()._check_names(event)

    def _check_attributes(self, event: dict[str, object]) -> datetime | None:
        time = super()._check_attributes(event)
        encoding = event.get("datacontentencoding")
        if isinstance(encoding, str) and encoding.lower() != "base64":
            raise InvalidEvent(
                "bad_datacontentencoding",
                f"Attribute 'datacontentencoding' is {show(encoding)}; only "
                "base64 is defined.",
            )
        schema_url = event.get("schemaurl")
        if (
            isinstance(schema_url, str)
            and grammar.URI_REFERENCE.fullmatch(schema_url) is None
        ):
            raise InvalidEvent(
                "bad_schemaurl",
                f"Attribute 'schemaurl' {show(schema_url)} is not a URI-reference.",
            )
        return time

    def _check_extension(self, name: str, value: object) -> None:
        if isinstance(value, dict):
            _check_map(name, value)
        else:
            super()._check_extension(name, value)

    def _check_data(self, event: dict[str, object]) -> None:
        data = event.get("data")
        if data is None or event.get("datacontentencoding") is None:
            return
        if not isinstance(data, str) or not grammar.is_base64(data):
            raise InvalidEvent(
                "bad_data",
                f"Member 'data' is {show(data)}, but datacontentencoding base64 "
                "requires a padded standard Base64 string.",
            )


def _check_string(what: str, value: object) -> None:
    """Reject a String value holding a character R17 forbids.

    :param what: names the value in the message ("Attribute 'id'").
    """
    if isinstance(value, str):
        char = grammar.forbidden_character(value)
        if char is not None:
            raise InvalidEvent(
                "bad_string", f"{what} holds the forbidden character U+{ord(char):04X}."
            )


def _check_map(name: str, value: dict[str, object]) -> None:
    """Check a v0.3 Map extension, whose entries are String, Integer or Map.

    An explicit stack, because a Map may nest as deep as the payload does.
    """
    pending: list[dict[str, object]] = [value]
    while pending:
        for key, entry in pending.pop().items():
            _check_string(f"A key of Map extension '{name}'", key)
            if isinstance(entry, dict):
                pending.append(entry)
            elif isinstance(entry, str):
                _check_string(f"Map extension '{name}' at key {show(key)}", entry)
            elif isinstance(entry, bool) or entry is None or isinstance(entry, list):
                raise InvalidEvent(
                    "bad_extension_value",
                    f"Map extension '{name}' holds {show(entry)} under key "
                    f"{show(key)}; Map entries are String, Integer or Map.",
                )
            elif isinstance(entry, float) or not (
                isinstance(entry, int) and _INTEGER_MIN <= entry <= _INTEGER_MAX
            ):
                raise InvalidEvent(
                    "bad_integer",
                    f"Map extension '{name}' holds {show(entry)} under key "
                    f"{show(key)}, not a 32-bit Integer.",
                )
