"""Properties of the validator, checked on generated inputs with hypothesis.

No input makes it raise or fail internally; events generated from the rules
are always accepted, with their attributes intact; mutations of valid events
get a verdict (an exact one where the mutation decides it); the same input
always gets the same verdict; the iterative JSON parser agrees with the
standard one; and the ``cloudevents`` SDK, as a second opinion, reads every
event we accept (where its known differences do not apply).
"""

import base64
import json
import string
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from cloudevents.core.formats.json import JSONFormat
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from event_aggregator.validation import (
    EventValidator,
    Rejection,
    ValidationPolicy,
    ValidEvent,
)
from event_aggregator.validation.jsontext import (
    DuplicateMemberError,
    JSONTextError,
    parse_iterative,
    parse_recursive,
)
from event_aggregator.validation.schema import SchemaCheck, envelope_view, load_schema

pytestmark = pytest.mark.timeout(120)

VALIDATOR = EventValidator()
FRESH = EventValidator(ValidationPolicy())
PROPERTY = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FEW = settings(PROPERTY, max_examples=80)

CORE_V1 = (
    "specversion",
    "id",
    "source",
    "type",
    "datacontenttype",
    "dataschema",
    "subject",
    "time",
    "data",
    "data_base64",
)
CORE_V03 = (
    "specversion",
    "id",
    "source",
    "type",
    "datacontenttype",
    "datacontentencoding",
    "schemaurl",
    "subject",
    "time",
    "data",
)


def judge(payload: bytes) -> ValidEvent | Rejection:
    """Validate twice, with two validators: the verdict must not vary."""
    verdict = VALIDATOR.validate(payload)
    assert isinstance(verdict, ValidEvent | Rejection)
    assert verdict == VALIDATOR.validate(payload)
    assert verdict == FRESH.validate(payload)
    if isinstance(verdict, Rejection):
        assert verdict.reason != "internal_error", verdict.message
    return verdict


# --- Generators written from the rules ---------------------------------------

NONCHARACTERS = [chr(c) for c in range(0xFDD0, 0xFDF0)] + [
    chr(plane << 16 | low) for plane in range(17) for low in (0xFFFE, 0xFFFF)
]
string_chars = st.characters(
    exclude_categories=("Cc", "Cs"), exclude_characters=NONCHARACTERS
)
strings = st.text(string_chars, max_size=24)
non_empty_strings = st.text(string_chars, min_size=1, max_size=24)
integers = st.integers(min_value=-(2**31), max_value=2**31 - 1)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

UNRESERVED = string.ascii_letters + string.digits + "-._~"
SUB_DELIMS = "!$&'()*+,;="
hex_pairs = st.text("0123456789abcdefABCDEF", min_size=2, max_size=2)
pct_encoded = hex_pairs.map(lambda h: "%" + h)


def _chars(extra: str) -> st.SearchStrategy[str]:
    return st.sampled_from(UNRESERVED + SUB_DELIMS + extra) | pct_encoded


def _joined(parts: st.SearchStrategy[str], min_size: int = 0) -> st.SearchStrategy[str]:
    return st.lists(parts, min_size=min_size, max_size=8).map("".join)


segment = _joined(_chars(":@"))
segment_nz = _joined(_chars(":@"), min_size=1)
segment_nz_nc = _joined(_chars("@"), min_size=1)
path_abempty = st.lists(segment, max_size=4).map(lambda s: "".join("/" + p for p in s))
path_absolute = st.one_of(
    st.just("/"),
    st.tuples(segment_nz, path_abempty).map(lambda t: "/" + t[0] + t[1]),
)
path_rootless = st.tuples(segment_nz, path_abempty).map("".join)
path_noscheme = st.tuples(segment_nz_nc, path_abempty).map("".join)
query = _joined(_chars(":@/?"))
scheme = st.from_regex(r"[A-Za-z][A-Za-z0-9+.\-]{0,8}", fullmatch=True)
HEX = "0123456789abcdefABCDEF"


@st.composite
def ipv6(draw: st.DrawFn) -> str:
    """An IPv6 literal of any RFC 3986 form: any run of groups compressed to
    '::' (or none), with or without a trailing dotted IPv4 address."""
    units = draw(st.lists(st.text(HEX, min_size=1, max_size=4), min_size=8, max_size=8))
    if draw(st.booleans()):
        units = [*units[:6], str(draw(st.ip_addresses(v=4)))]
    if draw(st.booleans()):
        return ":".join(units)
    start = draw(st.integers(0, len(units) - 1))
    end = draw(st.integers(start + 1, len(units)))
    return ":".join(units[:start]) + "::" + ":".join(units[end:])


ip_future = st.tuples(
    st.text(HEX, min_size=1, max_size=3),
    st.text(UNRESERVED + SUB_DELIMS + ":", min_size=1, max_size=8),
).map(lambda t: f"v{t[0]}.{t[1]}")
host = st.one_of(
    _joined(_chars("")),
    st.ip_addresses(v=4).map(str),
    ipv6().map(lambda a: f"[{a}]"),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
    ip_future.map(lambda a: f"[{a}]"),
)
authority = st.tuples(
    st.one_of(st.just(""), _joined(_chars(":")).map(lambda u: u + "@")),
    host,
    st.one_of(st.just(""), st.integers(0, 99999).map(lambda p: f":{p}"), st.just(":")),
).map("".join)
tail = st.tuples(
    st.one_of(st.just(""), query.map(lambda q: "?" + q)),
    st.one_of(st.just(""), query.map(lambda f: "#" + f)),
).map("".join)
hier_part = st.one_of(
    st.tuples(authority, path_abempty).map(lambda t: "//" + t[0] + t[1]),
    path_absolute,
    path_rootless,
    st.just(""),
)
relative_part = st.one_of(
    st.tuples(authority, path_abempty).map(lambda t: "//" + t[0] + t[1]),
    path_absolute,
    path_noscheme,
    st.just(""),
)
absolute_uris = st.tuples(scheme, hier_part, tail).map(lambda t: f"{t[0]}:{t[1]}{t[2]}")
uri_references = st.one_of(absolute_uris, st.tuples(relative_part, tail).map("".join))

TOKEN_CHARS = string.ascii_letters + string.digits + "!#$%&'*+-.^_`{|}~"
token = st.text(TOKEN_CHARS, min_size=1, max_size=10)
quoted = st.lists(
    st.sampled_from([chr(c) for c in range(0x20, 0x7F) if chr(c) not in '"\\'])
    | st.sampled_from([chr(c) for c in range(0x20, 0x7F)]).map(lambda c: "\\" + c),
    max_size=8,
).map(lambda parts: '"' + "".join(parts) + '"')
parameter = st.tuples(
    st.sampled_from(["", " ", "  "]),
    st.sampled_from(["", " "]),
    token,
    token | quoted,
).map(lambda t: f"{t[0]};{t[1]}{t[2]}={t[3]}")
media_types = st.tuples(token, token, st.lists(parameter, max_size=3)).map(
    lambda t: f"{t[0]}/{t[1]}{''.join(t[2])}"
)
json_media_types = st.tuples(
    token,
    st.sampled_from(["json", "JSON", "x+json", "vnd.a.b+json"]),
    st.lists(parameter, max_size=2),
).map(lambda t: f"{t[0]}/{t[1]}{''.join(t[2])}")
text_media_types = media_types.filter(
    lambda m: not m.split(";")[0].split("/")[1].lower().endswith("json")
)


@st.composite
def timestamps(draw: st.DrawFn, strict: bool = False) -> tuple[str, datetime | None]:
    """An RFC 3339 date-time and the datetime the validator should return.

    ``strict`` keeps to what the SDK's parser also takes: upper case, no leap
    second, no year 0000.
    """
    day = draw(st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)))
    hour, minute = draw(st.integers(0, 23)), draw(st.integers(0, 59))
    second = draw(st.integers(0, 59 if strict else 60))
    digits = draw(st.text("0123456789", max_size=9))
    separator = "T" if strict else draw(st.sampled_from("Tt"))
    if draw(st.booleans()):
        zone, tz = ("Z" if strict else draw(st.sampled_from("Zz"))), UTC
    else:
        sign = draw(st.sampled_from("+-"))
        offset_hour, offset_minute = draw(st.integers(0, 23)), draw(st.integers(0, 59))
        zone = f"{sign}{offset_hour:02d}:{offset_minute:02d}"
        offset = timedelta(hours=offset_hour, minutes=offset_minute)
        tz = timezone(-offset if sign == "-" else offset)
    fraction = f".{digits}" if digits else ""
    text = (
        f"{day.isoformat()}{separator}{hour:02d}:{minute:02d}:{second:02d}"
        f"{fraction}{zone}"
    )
    micro = int(digits[:6].ljust(6, "0")) if digits else 0
    if second == 60:
        second, micro = 59, 999_999
    return text, datetime(
        day.year, day.month, day.day, hour, minute, second, micro, tzinfo=tz
    )


extension_names_v1 = st.from_regex(r"[a-z0-9]{1,25}", fullmatch=True).filter(
    lambda n: n not in CORE_V1
)
extension_names_v03 = st.from_regex(r"[a-z][a-z0-9]{0,20}", fullmatch=True).filter(
    lambda n: n not in CORE_V03
)
maps = st.recursive(
    non_empty_strings | integers,
    lambda inner: st.dictionaries(strings, inner, max_size=3),
    max_leaves=8,
).filter(lambda m: isinstance(m, dict))


@st.composite
def valid_v1_events(draw: st.DrawFn, strict: bool = False) -> dict[str, Any]:
    """A v1.0 event that every rule accepts (``strict``: SDK-compatible too)."""
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": draw(non_empty_strings),
        "source": draw(uri_references.filter(bool)),
        "type": draw(non_empty_strings),
    }
    optional = {
        "subject": non_empty_strings,
        "time": timestamps(strict).map(lambda t: t[0]),
        "dataschema": absolute_uris,
    }
    for name, values in optional.items():
        if draw(st.booleans()):
            event[name] = draw(values if strict else st.none() | values)
    for name in draw(st.lists(extension_names_v1, max_size=4, unique=True)):
        typed = non_empty_strings | integers | st.booleans()
        event[name] = draw(typed if strict else typed | st.none())
    shape = draw(st.sampled_from(["none", "json", "text", "binary"]))
    if shape == "json":
        if draw(st.booleans()):
            event["datacontenttype"] = draw(json_media_types)
        event["data"] = draw(json_values)
    elif shape == "text":
        event["datacontenttype"] = draw(text_media_types)
        event["data"] = draw(strings)
    elif shape == "binary":
        if draw(st.booleans()):
            event["datacontenttype"] = draw(media_types)
        event["data_base64"] = base64.b64encode(draw(st.binary(max_size=40))).decode()
    elif draw(st.booleans()):
        event["datacontenttype"] = draw(media_types)
    return event


@st.composite
def valid_v03_events(draw: st.DrawFn) -> dict[str, Any]:
    """A v0.3 event that every rule accepts."""
    event: dict[str, Any] = {
        "specversion": "0.3",
        "id": draw(non_empty_strings),
        "source": draw(uri_references),
        "type": draw(non_empty_strings),
    }
    optional = {
        "subject": non_empty_strings,
        "time": timestamps().map(lambda t: t[0]),
        "schemaurl": uri_references,
        "datacontenttype": media_types,
    }
    for name, values in optional.items():
        if draw(st.booleans()):
            event[name] = draw(st.none() | values)
    for name in draw(st.lists(extension_names_v03, max_size=4, unique=True)):
        event[name] = draw(non_empty_strings | integers | maps | st.none())
    if draw(st.booleans()):
        casing = draw(st.sampled_from(["base64", "Base64", "BASE64", "bAsE64"]))
        event["datacontentencoding"] = casing
        event["data"] = base64.b64encode(draw(st.binary(max_size=40))).decode()
    elif draw(st.booleans()):
        event["data"] = draw(json_values)
    return event


valid_events = valid_v1_events() | valid_v03_events()


def serialize(event: dict[str, Any], ascii_only: bool) -> bytes:
    return json.dumps(event, ensure_ascii=ascii_only).encode()


# --- No input breaks it -----------------------------------------------------


@PROPERTY
@given(st.binary(max_size=2000))
def test_any_byte_string_gets_a_verdict(payload: bytes) -> None:
    judge(payload)


@PROPERTY
@given(json_values, st.booleans())
def test_any_json_value_gets_a_verdict(value: object, ascii_only: bool) -> None:
    verdict = judge(json.dumps(value, ensure_ascii=ascii_only).encode())
    if not isinstance(value, dict):
        assert isinstance(verdict, Rejection)
        assert verdict.reason == "not_object"


@PROPERTY
@given(
    st.dictionaries(
        st.sampled_from(CORE_V1 + CORE_V03) | st.text(max_size=6),
        json_values,
        max_size=10,
    ),
    st.sampled_from(["1.0", "0.3", None]),
)
def test_any_object_with_attribute_names_gets_a_verdict(
    event: dict[str, object], specversion: str | None
) -> None:
    if specversion is not None:
        event["specversion"] = specversion
    judge(json.dumps(event).encode())


# --- Valid events are accepted ------------------------------------------------


@PROPERTY
@given(valid_events, st.booleans())
def test_an_event_generated_from_the_rules_is_accepted(
    event: dict[str, Any], ascii_only: bool
) -> None:
    verdict = judge(serialize(event, ascii_only))
    assert isinstance(verdict, ValidEvent), verdict
    assert verdict.specversion == event["specversion"]
    assert (verdict.id, verdict.source, verdict.type) == (
        event["id"],
        event["source"],
        event["type"],
    )
    assert dict(verdict.attributes) == {
        name: value
        for name, value in event.items()
        if value is not None and name not in ("data", "data_base64")
    }


@PROPERTY
@given(timestamps())
def test_a_generated_timestamp_is_accepted_and_converted_exactly(
    stamp: tuple[str, datetime | None],
) -> None:
    text, expected = stamp
    verdict = judge(json.dumps({**BASE, "time": text}).encode())
    assert isinstance(verdict, ValidEvent), verdict
    assert verdict.time == expected
    assert verdict.time is not None
    assert expected is not None
    assert verdict.time.utcoffset() == expected.utcoffset()


@FEW
@given(valid_v1_events(strict=True))
def test_the_sdk_reads_every_event_the_validator_accepts(event: dict[str, Any]) -> None:
    """The SDK as a second opinion, on events outside its known differences."""
    payload = serialize(event, ascii_only=False)
    assert isinstance(judge(payload), ValidEvent)
    read = JSONFormat().read(None, payload)
    assert read.get_id() == event["id"]


# --- Mutations of valid events ----------------------------------------------

BASE = {"specversion": "1.0", "id": "x", "source": "/s", "type": "t"}


@PROPERTY
@given(valid_events, st.data())
def test_dropping_a_member_gets_a_verdict_and_a_required_one_its_own(
    event: dict[str, Any], data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(sorted(event)))
    del event[name]
    verdict = judge(serialize(event, ascii_only=True))
    if name in ("specversion", "id", "source", "type"):
        assert isinstance(verdict, Rejection)
        assert verdict.reason == f"missing_{name}"


@PROPERTY
@given(valid_events, st.data())
def test_retyping_a_member_gets_a_verdict(
    event: dict[str, Any], data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(sorted(event)))
    event[name] = data.draw(json_values)
    verdict = judge(serialize(event, ascii_only=data.draw(st.booleans())))
    if name == "id" and not isinstance(event["id"], str) and event["id"] is not None:
        assert isinstance(verdict, Rejection)
        assert verdict.reason == "bad_id"


@PROPERTY
@given(valid_events, st.data())
def test_renaming_a_member_gets_a_verdict(
    event: dict[str, Any], data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(sorted(event)))
    new_name = data.draw(st.text(max_size=8) | st.sampled_from(CORE_V1 + CORE_V03))
    assume(new_name not in event)
    event[new_name] = event.pop(name)
    judge(serialize(event, ascii_only=True))


@PROPERTY
@given(valid_events, st.data())
def test_duplicating_a_member_is_rejected_as_a_duplicate(
    event: dict[str, Any], data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(sorted(event)))
    copy = json.dumps({name: data.draw(json_values)})[1:-1]
    text = serialize(event, ascii_only=True).decode()
    payload = (text[:-1] + ", " + copy + "}").encode()
    verdict = judge(payload)
    assert isinstance(verdict, Rejection)
    assert verdict.reason == "duplicate_member"


def _perturb(text: str, data: st.DataObject) -> str:
    """Insert, delete or replace one character somewhere in ``text``."""
    position = data.draw(st.integers(0, len(text)))
    char = data.draw(st.characters() | st.sampled_from(":/?#[]@%-+.Tt Zz\n"))
    edit = data.draw(st.sampled_from(["insert", "delete", "replace"]))
    if edit == "insert" or not text:
        return text[:position] + char + text[position:]
    position = min(position, len(text) - 1)
    rest = text[position + 1 :]
    return text[:position] + ("" if edit == "delete" else char) + rest


@PROPERTY
@given(timestamps(), st.data())
def test_a_perturbed_timestamp_is_either_still_valid_or_bad_time(
    stamp: tuple[str, datetime | None], data: st.DataObject
) -> None:
    text = _perturb(stamp[0], data)
    verdict = judge(json.dumps({**BASE, "time": text}).encode())
    if isinstance(verdict, Rejection):
        assert verdict.reason == "bad_time", verdict
    else:
        # Whatever passed still reads as a real instant.
        assert verdict.time is None or verdict.time.tzinfo is not None


@PROPERTY
@given(uri_references.filter(bool), st.data())
def test_a_perturbed_source_is_either_still_valid_or_bad_source(
    uri: str, data: st.DataObject
) -> None:
    text = _perturb(uri, data)
    verdict = judge(json.dumps({**BASE, "source": text}).encode())
    if isinstance(verdict, Rejection):
        assert verdict.reason == "bad_source", verdict


@PROPERTY
@given(absolute_uris, st.data())
def test_a_perturbed_dataschema_is_either_still_valid_or_bad_dataschema(
    uri: str, data: st.DataObject
) -> None:
    text = _perturb(uri, data)
    verdict = judge(json.dumps({**BASE, "dataschema": text}).encode())
    if isinstance(verdict, Rejection):
        assert verdict.reason == "bad_dataschema", verdict
    else:
        assert ":" in text


@FEW
@given(valid_events, st.data())
def test_a_perturbed_payload_gets_a_verdict(
    event: dict[str, Any], data: st.DataObject
) -> None:
    payload = bytearray(serialize(event, ascii_only=data.draw(st.booleans())))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(payload) - 1))
        payload[position] = data.draw(st.integers(0, 255))
    judge(bytes(payload))


# --- The iterative parser agrees with the standard one ------------------------


def _outcome(parse: Any, text: str) -> object:
    try:
        return ("value", parse(text))
    except JSONTextError:
        return ("not_json",)
    except DuplicateMemberError as err:
        return ("duplicate", err.name)


@PROPERTY
@given(json_values, st.sampled_from([None, 0, 2]), st.booleans())
def test_the_iterative_parser_reads_json_exactly_like_the_standard_one(
    value: object, indent: int | None, ascii_only: bool
) -> None:
    text = json.dumps(value, indent=indent, ensure_ascii=ascii_only)
    assert parse_iterative(text) == json.loads(text) == parse_recursive(text)


@PROPERTY
@given(st.text(alphabet=' \t\n\r[]{}:,"\\/01-9.eE+-truefalsnNaI', max_size=30))
def test_the_iterative_parser_accepts_and_rejects_like_the_standard_one(
    text: str,
) -> None:
    assert _outcome(parse_iterative, text) == _outcome(parse_recursive, text)


SCHEMA_CHECKS = {
    version: SchemaCheck(load_schema(version)) for version in ("1.0", "0.3")
}


@PROPERTY
@given(
    st.sampled_from(sorted(SCHEMA_CHECKS)),
    valid_events,
    st.data(),
)
def test_both_schema_engines_give_the_same_answer(
    version: str, event: dict[str, Any], data: st.DataObject
) -> None:
    """jsonschema-rs (the hot path) and jsonschema agree on every envelope.

    The envelope is a generated event with one member retyped, renamed or
    dropped, so that both valid and invalid envelopes are covered.
    """
    name = data.draw(st.sampled_from(sorted(event)))
    change = data.draw(st.sampled_from(["retype", "rename", "drop", "keep"]))
    if change == "retype":
        event[name] = data.draw(json_values)
    elif change == "rename":
        event[data.draw(st.text(max_size=8))] = event.pop(name)
    elif change == "drop":
        del event[name]
    envelope = envelope_view(event)
    check = SCHEMA_CHECKS[version]
    assert check.is_valid(envelope) == (check.first_violation_slowly(envelope) is None)
