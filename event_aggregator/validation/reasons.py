"""The reason codes of a rejection, each with a one-line description.

The codes are stable identifiers: they appear in logs, in the label of the
invalid-events metric and in dead-letter envelopes, so a code is never renamed
or reused for another meaning. When an event has several defects, the one
reported is the first found, in this order: policy size, encoding, policy
depth, JSON syntax and duplicates, one object, ``specversion``, attribute
names, the schema (presence, JSON types, emptiness, Integer range, in the
order of the schema file), the content of ``id``, ``type`` and ``subject``,
the grammars of the other attributes, extension values, then ``data``.
"""

from types import MappingProxyType
from typing import Final, Literal

ReasonCode = Literal[
    "too_large",
    "too_deep",
    "unsupported_specversion",
    "not_utf8",
    "bom",
    "not_json",
    "not_object",
    "duplicate_member",
    "missing_specversion",
    "bad_specversion",
    "missing_id",
    "bad_id",
    "missing_source",
    "bad_source",
    "missing_type",
    "bad_type",
    "bad_datacontenttype",
    "bad_dataschema",
    "bad_schemaurl",
    "bad_datacontentencoding",
    "bad_subject",
    "bad_time",
    "bad_extension_name",
    "bad_extension_value",
    "bad_string",
    "bad_integer",
    "data_conflict",
    "bad_data_base64",
    "bad_data",
    "internal_error",
]

#: Reason code to a one-sentence description, in the order of the README.
REASONS: Final[MappingProxyType[str, str]] = MappingProxyType(
    {
        # Local policy, not CloudEvents validity.
        "too_large": (
            "The payload is larger than the configured maximum size; this is a "
            "local policy, since the spec sets no maximum."
        ),
        "too_deep": (
            "The JSON nesting is deeper than the configured maximum depth; this "
            "is a local policy, since the spec sets no maximum."
        ),
        "unsupported_specversion": (
            "The specversion is valid but not among the versions this "
            "aggregator is configured to accept."
        ),
        # The message as a whole.
        "not_utf8": (
            "The payload is not UTF-8 text: it has invalid or overlong byte "
            "sequences, or it is UTF-16 or UTF-32."
        ),
        "bom": (
            "The payload starts with a byte-order mark, which JSON senders "
            "must not add."
        ),
        "not_json": (
            "The payload is not one well-formed JSON text (RFC 8259): empty, "
            "truncated, trailing data, comments, NaN, raw control characters."
        ),
        "not_object": (
            "The JSON text is not one object: an array (a batch), a string, a "
            "number, a boolean or null is not an event."
        ),
        "duplicate_member": "A JSON object in the payload repeats a member name.",
        # Required attributes.
        "missing_specversion": "The required attribute specversion is absent or null.",
        "bad_specversion": 'The specversion is not exactly the string "1.0" or "0.3".',
        "missing_id": "The required attribute id is absent or null.",
        "bad_id": "The id is not a non-empty string.",
        "missing_source": "The required attribute source is absent or null.",
        "bad_source": (
            "The source is not an RFC 3986 URI-reference, or is empty in a v1.0 event."
        ),
        "missing_type": "The required attribute type is absent or null.",
        "bad_type": "The type is not a non-empty string.",
        # Optional attributes.
        "bad_datacontenttype": (
            "The datacontenttype is not an RFC 2046 media type with well-formed "
            "RFC 2045 parameters."
        ),
        "bad_dataschema": "The dataschema (v1.0) is not an absolute URI.",
        "bad_schemaurl": "The schemaurl (v0.3) is not an RFC 3986 URI-reference.",
        "bad_datacontentencoding": (
            'The datacontentencoding (v0.3) is not "base64" in some letter case.'
        ),
        "bad_subject": "The subject is not a non-empty string.",
        "bad_time": (
            "The time is not an RFC 3339 date-time with a real calendar date, "
            "fields in range and an offset."
        ),
        # Extensions and the type system.
        "bad_extension_name": (
            "An attribute name is not lower-case ASCII letters and digits (in "
            "v0.3 starting with a letter), or is data_base64 in a v0.3 event."
        ),
        "bad_extension_value": (
            "An extension value has a JSON type its version cannot carry: an "
            "array or object in v1.0; an array, a boolean, or null in a Map in v0.3."
        ),
        "bad_string": (
            "A String attribute (id, type, subject, an extension) holds a "
            "control character, a Unicode noncharacter or a lone surrogate."
        ),
        "bad_integer": (
            "A number attribute value is not an Integer: only an integer part, "
            "from -2147483648 to 2147483647."
        ),
        # Data.
        "data_conflict": "The event carries both data and data_base64.",
        "bad_data_base64": (
            "The data_base64 member is not a string of padded standard Base64."
        ),
        "bad_data": (
            "The data does not fit its declared form: not a string under a "
            "non-JSON datacontenttype (v1.0), or not Base64 under "
            "datacontentencoding base64 (v0.3)."
        ),
        # The validator itself.
        "internal_error": (
            "The validator failed unexpectedly (a bug, logged with its "
            "traceback); the payload is treated as invalid."
        ),
    }
)
