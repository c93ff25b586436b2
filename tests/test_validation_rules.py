"""Every rule and decision of shared/cloudevents-rules.md, as a table of examples.

Each rule (R01-R28, R35, R36: the file has no R29-R34) and each decision has
at least three valid and three invalid examples written from the rules file,
including the edge cases it names; each invalid example names the exact reason
code expected. Payloads are built from a small valid event by changing
members, or written out as raw bytes where the bytes themselves matter.
"""

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import get_args

import pytest
from cloudevents.core.formats.json import JSONFormat

from event_aggregator.validation import (
    REASONS,
    EventValidator,
    ReasonCode,
    Rejection,
    ValidationPolicy,
    ValidEvent,
)

pytestmark = pytest.mark.timeout(60)

DROP = object()
"""Marks a member to remove from the base event."""

BASE_V1: dict[str, object] = {
    "specversion": "1.0",
    "id": "A234-1234-1234",
    "source": "/sensors/tn-1234567/alerts",
    "type": "com.example.someevent",
}
BASE_V03: dict[str, object] = {**BASE_V1, "specversion": "0.3"}


def _build(base: dict[str, object], changes: dict[str, object]) -> bytes:
    event = dict(base)
    for name, value in changes.items():
        if value is DROP:
            event.pop(name, None)
        else:
            event[name] = value
    # ensure_ascii keeps lone surrogates representable as \u escapes.
    return json.dumps(event).encode()


def v1(**changes: object) -> bytes:
    """A v1.0 event: the base event with members changed, added or dropped."""
    return _build(BASE_V1, changes)


def v03(**changes: object) -> bytes:
    """A v0.3 event: the base event with members changed, added or dropped."""
    return _build(BASE_V03, changes)


def v1_raw(members: str) -> bytes:
    """A v1.0 event written as text, with ``members`` appended verbatim."""
    return (
        '{"specversion":"1.0","id":"x","source":"/s","type":"t"' + members + "}"
    ).encode()


def v1_data(data: str, **changes: object) -> bytes:
    """A v1.0 event whose ``data`` member is the raw JSON text ``data``."""
    head = v1(**changes)[:-1]
    return head + b', "data": ' + data.encode() + b"}"


def nested(depth: int) -> str:
    """JSON text of ``depth`` arrays nested in one another."""
    return "[" * depth + "]" * depth


@dataclass(frozen=True)
class Case:
    """One example: a payload and the reason expected (None: valid)."""

    title: str
    payload: bytes
    reason: ReasonCode | None = None
    policy: ValidationPolicy = field(default_factory=ValidationPolicy)


@dataclass(frozen=True)
class Rule:
    """A rule or decision of the rules file with its examples."""

    key: str
    title: str
    valid: list[Case]
    invalid: list[Case]


def ok(title: str, payload: bytes, policy: ValidationPolicy | None = None) -> Case:
    return Case(title, payload, None, policy or ValidationPolicy())


def bad(
    title: str,
    payload: bytes,
    reason: ReasonCode,
    policy: ValidationPolicy | None = None,
) -> Case:
    return Case(title, payload, reason, policy or ValidationPolicy())


ONLY_V1 = ValidationPolicy(specversions=frozenset({"1.0"}))
ONLY_V03 = ValidationPolicy(specversions=frozenset({"0.3"}))
MIB = 1_048_576


def sized_event(size: int) -> bytes:
    """A valid v1.0 event of exactly ``size`` bytes (a long data string)."""
    head = v1()[:-1] + b', "data": "'
    filler = size - len(head) - 2
    return head + b"x" * filler + b'"}'


RULES: list[Rule] = [
    Rule(
        "R01",
        "the body must be well-formed JSON",
        valid=[
            ok("a compact event", v1_raw("")),
            ok(
                "an event with insignificant whitespace everywhere",
                b' \r\n\t{ "specversion" : "1.0" ,\n "id":"x", "source":"/s",'
                b' "type" : "t" }\n ',
            ),
            ok(
                "escaped characters in strings", v1_raw(r',"subject":"caf\u00e9 \"q\""')
            ),
            ok("nested data", v1_data('{"a": [1, 2.5, -3e2, true, null, {}]}')),
        ],
        invalid=[
            bad("trailing garbage", v1_raw("") + b" x", "not_json"),
            bad("a trailing comma", v1_raw(","), "not_json"),
            bad("a comment", b"// event\n" + v1_raw(""), "not_json"),
            bad("single quotes", v1_raw(",'subject':'s'"), "not_json"),
            bad("a truncated body", v1_raw("")[:-5], "not_json"),
            bad("an empty body", b"", "not_json"),
            bad("only whitespace", b" \n ", "not_json"),
            bad("a raw tab inside a string", v1_raw(',"subject":"a\tb"'), "not_json"),
            bad(
                "a raw newline inside a string", v1_raw(',"subject":"a\nb"'), "not_json"
            ),
            bad("NaN in data", v1_data("NaN"), "not_json"),
            bad("Infinity in data", v1_data("[-Infinity]"), "not_json"),
            bad("a number with a leading zero", v1_data("012"), "not_json"),
            bad("two JSON texts", v1_raw("") + v1_raw(""), "not_json"),
        ],
    ),
    Rule(
        "R02",
        "a structured body holds exactly one JSON object",
        valid=[
            ok("a minimal event object", v1()),
            ok("an event object with data", v1(data={"a": 1})),
            ok("an event object with extensions", v1(ext1="x", ext2=2)),
        ],
        invalid=[
            bad("an array holding one event", b"[" + v1() + b"]", "not_object"),
            bad("an empty array", b"[]", "not_object"),
            bad("a string", b'"event"', "not_object"),
            bad("a number", b"1", "not_object"),
            bad("null", b"null", "not_object"),
            bad("a boolean", b"true", "not_object"),
        ],
    ),
    Rule(
        "R03",
        "the payload is UTF-8",
        valid=[
            ok("raw two-byte UTF-8", v1_raw(',"subject":"café"')),
            ok("raw four-byte UTF-8", v1_raw(',"subject":"\U0001f600"')),
            ok("raw three-byte UTF-8", v1_raw(',"ext":"数据"')),
        ],
        invalid=[
            bad("a stray byte", v1_raw(',"subject":"a') + b'\xff"}', "not_utf8"),
            bad(
                "an overlong form of '/'",
                v1_raw("")[:-1] + b',"subject":"\xc0\xaf"}',
                "not_utf8",
            ),
            bad(
                "an encoded surrogate (CESU-8)",
                v1_raw("")[:-1] + b',"subject":"\xed\xa0\x80"}',
                "not_utf8",
            ),
            bad("UTF-16 little-endian", v1().decode().encode("utf-16-le"), "not_utf8"),
            bad("UTF-16 big-endian", v1().decode().encode("utf-16-be"), "not_utf8"),
            bad("UTF-16 with its BOM", v1().decode().encode("utf-16"), "not_utf8"),
            bad("UTF-32", v1().decode().encode("utf-32-le"), "not_utf8"),
            bad(
                "a truncated sequence",
                v1_raw("")[:-1] + b',"s":"\xe6\x95"}',
                "not_utf8",
            ),
        ],
    ),
    Rule(
        "R04",
        "each attribute appears at most once",
        valid=[
            ok("the same name in data and in the envelope", v1(data={"id": 1})),
            ok("the same name at two levels of data", v1(data={"x": {"x": 1}})),
            ok("the same name in sibling objects", v1(data=[{"a": 1}, {"a": 2}])),
        ],
        invalid=[
            bad("id twice", v1_raw(',"id":"y"'), "duplicate_member"),
            bad("an extension twice", v1_raw(',"e":1,"e":1'), "duplicate_member"),
            bad(
                "id twice, once escaped",
                v1_raw(',"\\u0069d":"y"'),
                "duplicate_member",
            ),
            bad(
                "specversion twice", v1_raw(',"specversion":"1.0"'), "duplicate_member"
            ),
            bad(
                "a repeated name inside data",
                v1_data('{"a": {"b": 1, "b": 2}}'),
                "duplicate_member",
            ),
        ],
    ),
    Rule(
        "R05",
        "specversion is REQUIRED and exactly 1.0 (or 0.3)",
        valid=[
            ok("1.0", v1()),
            ok("0.3", v03()),
            ok(
                "1.0 with optional attributes",
                v1(subject="s", time="2020-01-01T00:00:00Z"),
            ),
        ],
        invalid=[
            bad("a patch version", v1(specversion="1.0.2"), "bad_specversion"),
            bad("a major version only", v1(specversion="1"), "bad_specversion"),
            bad("three parts", v1(specversion="1.0.0"), "bad_specversion"),
            bad("a release candidate", v1(specversion="1.0-rc1"), "bad_specversion"),
            bad("an older version", v1(specversion="0.2"), "bad_specversion"),
            bad(
                "the JSON number 1.0",
                v1_raw("").replace(b'"1.0"', b"1.0"),
                "bad_specversion",
            ),
            bad("a leading space", v1(specversion=" 1.0"), "bad_specversion"),
            bad("a trailing space", v1(specversion="1.0 "), "bad_specversion"),
            bad("empty", v1(specversion=""), "bad_specversion"),
            bad("absent", v1(specversion=DROP), "missing_specversion"),
            bad("null", v1(specversion=None), "missing_specversion"),
        ],
    ),
    Rule(
        "R06",
        "id is a REQUIRED non-empty String",
        valid=[
            ok("a short id", v1(id="1")),
            ok("a UUID", v1(id="6e8bc430-9c3a-11d9-9669-0800200c9a66")),
            ok("non-ASCII", v1(id="événement-1")),
            ok("a very long id", v1(id="x" * 10_000)),
        ],
        invalid=[
            bad("absent", v1(id=DROP), "missing_id"),
            bad("null", v1(id=None), "missing_id"),
            bad("empty", v1(id=""), "bad_id"),
            bad("a number", v1(id=123), "bad_id"),
            bad("a boolean", v1(id=True), "bad_id"),
            bad("an array", v1(id=["a"]), "bad_id"),
            bad("an object", v1(id={"a": 1}), "bad_id"),
        ],
    ),
    Rule(
        "R07",
        "source is a REQUIRED non-empty URI-reference",
        valid=[
            ok("a relative path", v1(source="/sensors/tn-1234567/alerts")),
            ok("a bare string", v1(source="1-555-123-4567")),
            ok("a URN", v1(source="urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66")),
            ok("mailto", v1(source="mailto:cncf-wg-serverless@lists.cncf.io")),
            ok("a network-path reference", v1(source="//host/p")),
            ok("a fragment only", v1(source="#frag")),
            ok("an absolute URL", v1(source="https://github.com/cloudevents")),
            ok("an IPv6 literal and a port", v1(source="http://[::1]:8080/x?q=1#f")),
            ok("an IPv4-mapped IPv6 literal", v1(source="http://[::ffff:10.0.0.1]/")),
            ok("an IPvFuture literal", v1(source="http://[v7.a:b]/")),
            ok("percent-encoding", v1(source="/a%20b/%C3%A9")),
            ok("a colon after the first segment", v1(source="./a:b")),
            ok("a query only", v1(source="?q=a/b?c")),
        ],
        invalid=[
            bad("absent", v1(source=DROP), "missing_source"),
            bad("null", v1(source=None), "missing_source"),
            bad("empty", v1(source=""), "bad_source"),
            bad("a raw space", v1(source="/a b"), "bad_source"),
            bad("raw non-ASCII", v1(source="/café"), "bad_source"),
            bad("a bad percent escape", v1(source="/a%zz"), "bad_source"),
            bad("a truncated percent escape", v1(source="/a%4"), "bad_source"),
            bad(
                "a colon in the first relative segment",
                v1(source="1a:b/c"),
                "bad_source",
            ),
            bad("an unclosed IPv6 literal", v1(source="http://[::1/x"), "bad_source"),
            bad(
                "nine IPv6 groups",
                v1(source="http://[1:2:3:4:5:6:7:8:9]/"),
                "bad_source",
            ),
            bad(
                "a bad embedded IPv4",
                v1(source="http://[::ffff:1.2.3.256]/"),
                "bad_source",
            ),
            bad("a bracket in a path", v1(source="/a[1]"), "bad_source"),
            bad("a number", v1(source=5), "bad_source"),
            bad("a trailing newline", v1(source="/s\n"), "bad_source"),
        ],
    ),
    Rule(
        "R08",
        "type is a REQUIRED non-empty String",
        valid=[
            ok("reverse DNS", v1(type="com.example.object.deleted.v2")),
            ok("one letter", v1(type="t")),
            ok("no reverse-DNS prefix (only a SHOULD)", v1(type="order created")),
            ok("non-ASCII", v1(type="注文.作成")),
        ],
        invalid=[
            bad("absent", v1(type=DROP), "missing_type"),
            bad("null", v1(type=None), "missing_type"),
            bad("empty", v1(type=""), "bad_type"),
            bad("a number", v1(type=7), "bad_type"),
            bad("a boolean", v1(type=False), "bad_type"),
        ],
    ),
    Rule(
        "R09",
        "datacontenttype is an RFC 2046 media type",
        valid=[
            ok("application/json", v1(datacontenttype="application/json", data={})),
            ok("a charset parameter", v1(datacontenttype="text/plain; charset=utf-8")),
            ok("a structured suffix", v1(datacontenttype="application/vnd.api+json")),
            ok("a quoted value", v1(datacontenttype='text/plain;charset="utf-8"')),
            ok(
                "a quoted value with specials",
                v1(datacontenttype='multipart/mixed; boundary="a b;c\\"d"'),
            ),
            ok("upper case", v1(datacontenttype="APPLICATION/JSON")),
            ok(
                "present without data (CORE-WIP)", v1(datacontenttype="application/xml")
            ),
            ok("two parameters", v1(datacontenttype="text/plain; a=1;b=2")),
            ok("null, meaning absent", v1(datacontenttype=None, data={"a": 1})),
        ],
        invalid=[
            bad("empty", v1(datacontenttype=""), "bad_datacontenttype"),
            bad("no subtype", v1(datacontenttype="application"), "bad_datacontenttype"),
            bad("an empty subtype", v1(datacontenttype="text/"), "bad_datacontenttype"),
            bad(
                "a parameter without value",
                v1(datacontenttype="text/plain; charset"),
                "bad_datacontenttype",
            ),
            bad(
                "a trailing semicolon",
                v1(datacontenttype="text/plain;"),
                "bad_datacontenttype",
            ),
            bad(
                "a space around the slash",
                v1(datacontenttype="text /plain"),
                "bad_datacontenttype",
            ),
            bad(
                "a space in a token value",
                v1(datacontenttype="text/plain; a=b c"),
                "bad_datacontenttype",
            ),
            bad(
                "an unterminated quoted value",
                v1(datacontenttype='text/plain; a="b'),
                "bad_datacontenttype",
            ),
            bad(
                "a parameter without name",
                v1(datacontenttype="text/plain; =x"),
                "bad_datacontenttype",
            ),
            bad(
                "a trailing newline",
                v1(datacontenttype="text/plain\n"),
                "bad_datacontenttype",
            ),
            bad("a number", v1(datacontenttype=5), "bad_datacontenttype"),
        ],
    ),
    Rule(
        "R10",
        "dataschema is a non-empty absolute URI",
        valid=[
            ok("an https URL", v1(dataschema="https://example.com/schema.json")),
            ok("a URN", v1(dataschema="urn:example:schema:v1")),
            ok("with a fragment (decision)", v1(dataschema="http://x/s.json#/defs/a")),
            ok("null, meaning absent", v1(dataschema=None)),
        ],
        invalid=[
            bad("empty", v1(dataschema=""), "bad_dataschema"),
            bad("a fragment only", v1(dataschema="#"), "bad_dataschema"),
            bad("a relative path", v1(dataschema="/schemas/a.json"), "bad_dataschema"),
            bad("a bare file name", v1(dataschema="schema.json"), "bad_dataschema"),
            bad("a raw space", v1(dataschema="http://exa mple.com/"), "bad_dataschema"),
            bad("a number", v1(dataschema=5), "bad_dataschema"),
        ],
    ),
    Rule(
        "R11",
        "subject is a non-empty String",
        valid=[
            ok("a file name", v1(subject="mynewfile.jpg")),
            ok("a single space", v1(subject=" ")),
            ok("non-ASCII", v1(subject="日本")),
            ok("null, meaning absent", v1(subject=None)),
        ],
        invalid=[
            bad("empty", v1(subject=""), "bad_subject"),
            bad("a number", v1(subject=1), "bad_subject"),
            bad("a boolean", v1(subject=True), "bad_subject"),
            bad("an array", v1(subject=["a"]), "bad_subject"),
        ],
    ),
    Rule(
        "R12",
        "time follows RFC 3339",
        valid=[
            ok("UTC", v1(time="2018-04-05T17:31:00Z")),
            ok("an offset", v1(time="1996-12-19T16:39:57-08:00")),
            ok("null, meaning absent", v1(time=None)),
        ],
        invalid=[
            bad("empty", v1(time=""), "bad_time"),
            bad("a Unix time number", v1(time=1522949460), "bad_time"),
            bad("prose", v1(time="yesterday"), "bad_time"),
            bad("a date only", v1(time="2018-04-05"), "bad_time"),
        ],
    ),
    Rule(
        "R13",
        "attribute names are lower-case ASCII letters and digits",
        valid=[
            ok("letters and digits", v1(comexampleextension1="x")),
            ok("a digit first (only a SHOULD in 1.0)", v1(**{"1abc": "x"})),
            ok("longer than 20 characters", v1(averyveryverylongextensionname="x")),
            ok("a single letter", v1(a="x")),
        ],
        invalid=[
            bad("a hyphen", v1(**{"com-example": "x"}), "bad_extension_name"),
            bad("an underscore", v1(**{"com_example": "x"}), "bad_extension_name"),
            bad("upper case", v1(Comexample="x"), "bad_extension_name"),
            bad("a non-ASCII letter", v1(**{"ümlaut": "x"}), "bad_extension_name"),
            bad("the empty name", v1(**{"": "x"}), "bad_extension_name"),
            bad("a trailing newline", v1(**{"abc\n": "x"}), "bad_extension_name"),
            bad("a space", v1(**{"a b": "x"}), "bad_extension_name"),
            bad(
                "a bad name with a null value",
                v1(**{"Bad": None}),
                "bad_extension_name",
            ),
        ],
    ),
    Rule(
        "R14",
        "extensions follow the naming rules and type system, at the top level",
        valid=[
            ok("a String extension", v1(comexampleextension1="value")),
            ok("an Integer extension", v1(comexampleothervalue=5)),
            ok("a Boolean extension", v1(sampled=True)),
            ok("data_base64 is not an attribute name", v1(data_base64="AAAA")),
            ok("a null extension, meaning absent", v1(ext=None)),
        ],
        invalid=[
            bad("an object extension", v1(ext={"a": 1}), "bad_extension_value"),
            bad("an empty object extension", v1(ext={}), "bad_extension_value"),
            bad("an array extension", v1(ext=[1, 2]), "bad_extension_value"),
            bad("a badly named extension", v1(Ext="x"), "bad_extension_name"),
        ],
    ),
    Rule(
        "R15",
        "Boolean is JSON true or false",
        valid=[
            ok("true", v1(flag=True)),
            ok("false", v1(flag=False)),
            ok("two Booleans", v1(a=True, b=False)),
        ],
        invalid=[
            bad("a Boolean where id is a String", v1(id=False), "bad_id"),
            bad("a Boolean where subject is a String", v1(subject=True), "bad_subject"),
            bad("a Boolean where time is a Timestamp", v1(time=True), "bad_time"),
            bad(
                "a Boolean extension in v0.3 (no Boolean type)",
                v03(flag=True),
                "bad_extension_value",
            ),
        ],
    ),
    Rule(
        "R16",
        "Integer is a 32-bit whole number written with only an integer part",
        valid=[
            ok("zero", v1(n=0)),
            ok("the minimum", v1(n=-2147483648)),
            ok("the maximum", v1(n=2147483647)),
            ok("minus zero", v1_raw(',"n":-0')),
        ],
        invalid=[
            bad("a fraction", v1(n=1.5), "bad_integer"),
            bad("1.0", v1_raw(',"n":1.0'), "bad_integer"),
            bad("1e3", v1_raw(',"n":1e3'), "bad_integer"),
            bad("1E+2", v1_raw(',"n":1E+2'), "bad_integer"),
            bad("-0.0", v1_raw(',"n":-0.0'), "bad_integer"),
            bad("one above the maximum", v1(n=2147483648), "bad_integer"),
            bad("one below the minimum", v1(n=-2147483649), "bad_integer"),
            bad("a 5000-digit number", v1_raw(',"n":' + "9" * 5000), "bad_integer"),
            bad("a huge float", v1_raw(',"n":1e400'), "bad_integer"),
        ],
    ),
    Rule(
        "R17",
        "String excludes controls, noncharacters and lone surrogates",
        valid=[
            ok("a surrogate pair escape", v1_raw(r',"subject":"\uD800\uDEAD"')),
            ok("non-ASCII letters", v1(subject="éàü")),
            ok("a no-break space", v1(subject="a\u00a0b")),
            ok("a zero-width space", v1(subject="a\u200bb")),
            ok("private use", v1(subject="\ue000")),
            ok("the replacement character", v1(subject="\ufffd")),
            ok("an emoji", v1(ext="\U0001f600")),
            ok("U+FEFF inside a value", v1(subject="a\ufeffb")),
        ],
        invalid=[
            bad("NUL in id", v1(id="a\u0000b"), "bad_string"),
            bad("U+001F in type", v1(type="a\u001f"), "bad_string"),
            bad("DEL in subject", v1(subject="a\u007f"), "bad_string"),
            bad("a C1 control in an extension", v1(ext="a\u0085"), "bad_string"),
            bad("U+009F", v1(ext="\u009f"), "bad_string"),
            bad("an escaped tab", v1(id="a\tb"), "bad_string"),
            bad("U+FFFE", v1(subject="\ufffe"), "bad_string"),
            bad("U+FFFF", v1(subject="\uffff"), "bad_string"),
            bad("U+FDD0", v1(subject="\ufdd0"), "bad_string"),
            bad(
                "U+1FFFE as a pair", v1_raw(r',"subject":"\uD83F\uDFFE"'), "bad_string"
            ),
            bad("U+10FFFF", v1(subject="\U0010ffff"), "bad_string"),
            bad("a lone low surrogate", v1_raw(r',"subject":"\uDEAD"'), "bad_string"),
            bad("a lone high surrogate", v1_raw(r',"ext":"a\uD800"'), "bad_string"),
            bad("reversed surrogates", v1_raw(r',"ext":"\uDEAD\uD800"'), "bad_string"),
            # Attributes with a pattern go through the schema engines first;
            # the Rust one cannot take a lone surrogate, the Python one can.
            bad("a lone surrogate as time", v1_raw(r',"time":"\uDEAD"'), "bad_time"),
            bad(
                "a lone surrogate as datacontenttype",
                v1_raw(r',"datacontenttype":"\uD800"'),
                "bad_datacontenttype",
            ),
            bad(
                "a lone surrogate in dataschema",
                v1_raw(r',"dataschema":"https://e.org/\uDEAD"'),
                "bad_dataschema",
            ),
        ],
    ),
    Rule(
        "R18",
        "Binary is padded standard Base64",
        valid=[
            ok("empty", v1(data_base64="")),
            ok("no padding needed", v1(data_base64="AAAA")),
            ok("one pad", v1(data_base64="aGVsbG8=")),
            ok("two pads", v1(data_base64="aA==")),
            ok("the + and / characters", v1(data_base64="+/+/")),
        ],
        invalid=[
            bad("missing padding", v1(data_base64="aGVsbG8"), "bad_data_base64"),
            bad("missing both pads", v1(data_base64="aA"), "bad_data_base64"),
            bad("the URL-safe alphabet", v1(data_base64="-_-_"), "bad_data_base64"),
            bad(
                "an embedded line break",
                v1(data_base64="aGVs\nbG8="),
                "bad_data_base64",
            ),
            bad(
                "a trailing line break", v1(data_base64="aGVsbG8=\n"), "bad_data_base64"
            ),
            bad("three pads", v1(data_base64="a==="), "bad_data_base64"),
            bad("padding only", v1(data_base64="===="), "bad_data_base64"),
            bad("padding in the middle", v1(data_base64="aA==aA=="), "bad_data_base64"),
        ],
    ),
    Rule(
        "R19",
        "URI is absolute (has a scheme)",
        valid=[
            ok("http", v1(dataschema="http://example.com")),
            ok("a URN", v1(dataschema="urn:isbn:0451450523")),
            ok("mailto", v1(dataschema="mailto:a@example.com")),
            ok("a tag URI", v1(dataschema="tag:example.com,2024:schemas/a")),
            ok("a fragment (decision)", v1(dataschema="http://x/#frag")),
        ],
        invalid=[
            bad(
                "a network-path reference",
                v1(dataschema="//example.com/x"),
                "bad_dataschema",
            ),
            bad(
                "a scheme starting with a digit",
                v1(dataschema="1http://x"),
                "bad_dataschema",
            ),
            bad("a space in the scheme", v1(dataschema="ht tp://x"), "bad_dataschema"),
            bad("a bad escape", v1(dataschema="http://x/%zz"), "bad_dataschema"),
        ],
    ),
    Rule(
        "R20",
        "URI-reference covers absolute and relative references",
        valid=[
            ok("v0.3 schemaurl, relative", v03(schemaurl="../schemas/a.json")),
            ok("v0.3 schemaurl, a fragment", v03(schemaurl="#/defs/a")),
            ok("v0.3 schemaurl, empty", v03(schemaurl="")),
            ok("v0.3 schemaurl, absolute", v03(schemaurl="https://x/s.json")),
            ok("source, a path with sub-delims", v1(source="/a;b=c/d,e!$&'()*+")),
        ],
        invalid=[
            bad("v0.3 schemaurl, a space", v03(schemaurl="a b"), "bad_schemaurl"),
            bad("v0.3 schemaurl, a bare IPv6", v03(schemaurl="[::1]"), "bad_schemaurl"),
            bad(
                "v0.3 schemaurl, first-segment colon",
                v03(schemaurl="1a:b"),
                "bad_schemaurl",
            ),
            bad("source, a backslash", v1(source="a\\b"), "bad_source"),
            bad("source, a caret", v1(source="/a^b"), "bad_source"),
        ],
    ),
    Rule(
        "R21",
        "Timestamp is an RFC 3339 date-time",
        valid=[
            ok("fractional seconds", v1(time="1985-04-12T23:20:50.52Z")),
            ok("a negative offset", v1(time="1996-12-19T16:39:57-08:00")),
            ok("a leap second", v1(time="1990-12-31T23:59:60Z")),
            ok("a leap second with an offset", v1(time="1990-12-31T15:59:60-08:00")),
            ok("lower-case t and z", v1(time="2020-02-29t00:00:00z")),
            ok(
                "a leap day in a year divisible by 400", v1(time="2000-02-29T12:00:00Z")
            ),
            ok("nanoseconds", v1(time="2024-01-01T00:00:00.123456789Z")),
            ok("the unknown offset -00:00", v1(time="2024-01-01T00:00:00-00:00")),
            ok("year 0000", v1(time="0000-01-01T00:00:00Z")),
            ok("offset +23:59", v1(time="2024-01-01T00:00:00+23:59")),
        ],
        invalid=[
            bad("a space instead of T", v1(time="2018-04-05 17:31:00Z"), "bad_time"),
            bad("no offset", v1(time="2018-04-05T17:31:00"), "bad_time"),
            bad("a comma fraction", v1(time="2018-04-05T17:31:00,5Z"), "bad_time"),
            bad(
                "an offset without colon",
                v1(time="2018-04-05T17:31:00+0100"),
                "bad_time",
            ),
            bad("February 29 in 2019", v1(time="2019-02-29T00:00:00Z"), "bad_time"),
            bad("February 29 in 1900", v1(time="1900-02-29T00:00:00Z"), "bad_time"),
            bad("February 30", v1(time="2020-02-30T00:00:00Z"), "bad_time"),
            bad("month 13", v1(time="2018-13-01T00:00:00Z"), "bad_time"),
            bad("month 00", v1(time="2018-00-01T00:00:00Z"), "bad_time"),
            bad("April 31", v1(time="2018-04-31T00:00:00Z"), "bad_time"),
            bad("day 00", v1(time="2018-04-00T00:00:00Z"), "bad_time"),
            bad("hour 24", v1(time="2018-04-05T24:00:00Z"), "bad_time"),
            bad("minute 60", v1(time="2018-04-05T17:60:00Z"), "bad_time"),
            bad("second 61", v1(time="2018-04-05T17:31:61Z"), "bad_time"),
            bad("a one-digit month", v1(time="2018-4-05T17:31:00Z"), "bad_time"),
            bad("a two-digit year", v1(time="18-04-05T17:31:00Z"), "bad_time"),
            bad("a dot without digits", v1(time="2018-04-05T17:31:00.Z"), "bad_time"),
            bad("offset hour 24", v1(time="2018-04-05T17:31:00+24:00"), "bad_time"),
            bad("offset minute 60", v1(time="2018-04-05T17:31:00+01:60"), "bad_time"),
            bad("a trailing newline", v1(time="2018-04-05T17:31:00Z\n"), "bad_time"),
            bad(
                "full-width digits",
                v1(time="\uff12\uff10\uff11\uff18-04-05T17:31:00Z"),
                "bad_time",
            ),
            bad("no seconds", v1(time="2018-04-05T17:31Z"), "bad_time"),
            bad("a time zone name", v1(time="2018-04-05T17:31:00 UTC"), "bad_time"),
        ],
    ),
    Rule(
        "R22",
        "attribute values have the JSON type of their CloudEvents type",
        valid=[
            ok("a String that reads true", v1(subject="true")),
            ok("an id of digits as a string", v1(id="123")),
            ok("an Integer and a Boolean extension", v1(n=5, b=True)),
        ],
        invalid=[
            bad("id as a number", v1(id=123), "bad_id"),
            bad(
                "specversion as a number",
                v1_raw("").replace(b'"1.0"', b"1.0"),
                "bad_specversion",
            ),
            bad("time as a number", v1(time=1522949460), "bad_time"),
            bad("subject as a boolean", v1(subject=True), "bad_subject"),
            bad("an object extension", v1(ext={"a": 1}), "bad_extension_value"),
            bad("an array extension", v1(ext=[1]), "bad_extension_value"),
            bad(
                "datacontenttype as an array",
                v1(datacontenttype=["a"]),
                "bad_datacontenttype",
            ),
            bad("source as an object", v1(source={}), "bad_source"),
        ],
    ),
    Rule(
        "R23",
        "null means the attribute is absent",
        valid=[
            ok("subject null", v1(subject=None)),
            ok("time null", v1(time=None)),
            ok(
                "datacontenttype null with object data",
                v1(datacontenttype=None, data={}),
            ),
            ok("dataschema null", v1(dataschema=None)),
            ok("an extension null", v1(ext=None)),
        ],
        invalid=[
            bad("id null", v1(id=None), "missing_id"),
            bad("source null", v1(source=None), "missing_source"),
            bad("type null", v1(type=None), "missing_type"),
            bad("specversion null", v1(specversion=None), "missing_specversion"),
        ],
    ),
    Rule(
        "R24",
        "data and data_base64 are mutually exclusive",
        valid=[
            ok("data only", v1(data={"a": 1})),
            ok("data_base64 only", v1(data_base64="AAAA")),
            ok("data with data_base64 null", v1(data={"a": 1}, data_base64=None)),
            ok("neither", v1()),
        ],
        invalid=[
            bad("both", v1(data={"a": 1}, data_base64="AAAA"), "data_conflict"),
            bad(
                "both, data a string", v1(data="x", data_base64="AAAA"), "data_conflict"
            ),
            bad("both, data null", v1(data=None, data_base64="AAAA"), "data_conflict"),
        ],
    ),
    Rule(
        "R25",
        "data_base64 is a Base64 JSON string",
        valid=[
            ok("without datacontenttype", v1(data_base64="AAEC")),
            ok(
                "with a binary type",
                v1(datacontenttype="image/png", data_base64="AAEC"),
            ),
            ok(
                "with a JSON type",
                v1(datacontenttype="application/json", data_base64="e30="),
            ),
            ok("empty", v1(data_base64="")),
        ],
        invalid=[
            bad("a number", v1(data_base64=5), "bad_data_base64"),
            bad("an object", v1(data_base64={"a": 1}), "bad_data_base64"),
            bad("a boolean", v1(data_base64=True), "bad_data_base64"),
            bad("not Base64", v1(data_base64="not base64!"), "bad_data_base64"),
        ],
    ),
    Rule(
        "R26",
        "data under a JSON content type is any JSON value",
        valid=[
            ok("an object, no datacontenttype", v1(data={"a": 1})),
            ok("an array", v1(data=[1, "a"])),
            ok("a string, not re-parsed", v1(data='{"a": 1, "a": 2')),
            ok("a number", v1(data=2.5)),
            ok("a boolean", v1(data=False)),
            ok("an explicit null", v1(data=None)),
            ok("text/json", v1(datacontenttype="text/json", data=5)),
            ok(
                "a +json suffix with a parameter",
                v1(datacontenttype="application/vnd.foo+json; charset=utf-8", data={}),
            ),
            ok("upper-case JSON", v1(datacontenttype="APPLICATION/JSON", data=[])),
            ok(
                "application/cloudevents+json",
                v1(datacontenttype="application/cloudevents+json", data={}),
            ),
        ],
        invalid=[
            bad(
                "a subtype that only starts with json",
                v1(datacontenttype="application/jsonx", data={}),
                "bad_data",
            ),
            bad(
                "json-seq is not json",
                v1(datacontenttype="application/json-seq", data=[]),
                "bad_data",
            ),
            bad(
                "a +json infix",
                v1(datacontenttype="application/a+jsonx", data={}),
                "bad_data",
            ),
            bad(
                "json as a parameter",
                v1(datacontenttype="text/plain; x=json", data={}),
                "bad_data",
            ),
        ],
    ),
    Rule(
        "R27",
        "data under a non-JSON content type is a string",
        valid=[
            ok(
                "text/plain and a string",
                v1(datacontenttype="text/plain", data="hello"),
            ),
            ok("XML as a string", v1(datacontenttype="application/xml", data="<a/>")),
            ok("text/plain without data", v1(datacontenttype="text/plain")),
            ok(
                "a binary type with data_base64",
                v1(datacontenttype="application/octet-stream", data_base64="AAEC"),
            ),
        ],
        invalid=[
            bad(
                "an object", v1(datacontenttype="text/plain", data={"a": 1}), "bad_data"
            ),
            bad("an array", v1(datacontenttype="text/plain", data=[1]), "bad_data"),
            bad("a number", v1(datacontenttype="text/csv", data=5), "bad_data"),
            bad("a boolean", v1(datacontenttype="text/plain", data=True), "bad_data"),
            bad("null", v1(datacontenttype="text/plain", data=None), "bad_data"),
        ],
    ),
    Rule(
        "R28",
        "data is optional, even with datacontenttype",
        valid=[
            ok("no data and no datacontenttype", v1()),
            ok("datacontenttype without data", v1(datacontenttype="application/json")),
            ok("dataschema without data", v1(dataschema="urn:s")),
        ],
        invalid=[
            bad(
                "without data, datacontenttype must still be valid",
                v1(datacontenttype="application"),
                "bad_datacontenttype",
            ),
            bad(
                "without data, dataschema must still be valid",
                v1(dataschema="schema.json"),
                "bad_dataschema",
            ),
            bad(
                "without data, data_base64 must still be Base64",
                v1(data_base64="abc"),
                "bad_data_base64",
            ),
        ],
    ),
    Rule(
        "R35",
        "the spec sets no maximum size; a cap is a local policy",
        valid=[
            ok("a 64 KiB event", sized_event(64 * 1024)),
            ok("exactly 1 MiB with the defaults", sized_event(MIB)),
            ok(
                "exactly a small cap",
                sized_event(300),
                ValidationPolicy(max_payload_bytes=300),
            ),
            ok(
                "2 MiB without a cap",
                sized_event(2 * MIB),
                ValidationPolicy(max_payload_bytes=None),
            ),
        ],
        invalid=[
            bad(
                "one byte over 1 MiB with the defaults",
                sized_event(MIB + 1),
                "too_large",
            ),
            bad(
                "one byte over a small cap",
                sized_event(301),
                "too_large",
                ValidationPolicy(max_payload_bytes=300),
            ),
            bad(
                "a 64 KiB event under a 1 KiB cap",
                sized_event(64 * 1024),
                "too_large",
                ValidationPolicy(max_payload_bytes=1024),
            ),
            bad(
                "an invalid body over the cap is still too_large",
                b"x" * 301,
                "too_large",
                ValidationPolicy(max_payload_bytes=300),
            ),
        ],
    ),
    Rule(
        "R36",
        "v0.3 events follow the v0.3 rules",
        valid=[
            ok("a minimal v0.3 event", v03()),
            ok("the spec's Map extension", v03(comexampleextension2={"othervalue": 5})),
            ok("a nested Map", v03(ext={"a": {"b": {"c": "d"}}, "e": 1})),
            ok("an empty source", v03(source="")),
            ok(
                "datacontentencoding Base64 with Base64 data",
                v03(datacontentencoding="Base64", data="aGVsbG8="),
            ),
            ok("a relative schemaurl", v03(schemaurl="../s.json")),
            ok("dataschema is just an extension in 0.3", v03(dataschema="not a uri")),
            ok(
                "object data with a JSON type",
                v03(datacontenttype="application/json", data={"a": 1}),
            ),
            ok(
                "object data under a non-JSON type",
                v03(datacontenttype="text/plain", data={"a": 1}),
            ),
        ],
        invalid=[
            bad(
                "a name starting with a digit",
                v03(**{"1abc": "x"}),
                "bad_extension_name",
            ),
            bad("a data_base64 member", v03(data_base64="AAAA"), "bad_extension_name"),
            bad(
                "an undefined encoding",
                v03(datacontentencoding="7bit"),
                "bad_datacontentencoding",
            ),
            bad(
                "non-Base64 data under base64",
                v03(datacontentencoding="base64", data="not base64"),
                "bad_data",
            ),
            bad(
                "object data under base64",
                v03(datacontentencoding="base64", data={"a": 1}),
                "bad_data",
            ),
            bad("a Boolean extension", v03(flag=False), "bad_extension_value"),
            bad("an array in a Map", v03(ext={"a": [1]}), "bad_extension_value"),
            bad(
                "a Boolean in a Map", v03(ext={"a": {"b": True}}), "bad_extension_value"
            ),
            bad("null in a Map", v03(ext={"a": None}), "bad_extension_value"),
            bad("a float in a Map", v03(ext={"a": 1.5}), "bad_integer"),
            bad(
                "an out-of-range Integer in a Map", v03(ext={"a": 2**31}), "bad_integer"
            ),
            bad(
                "a control character in a Map key",
                v03(ext={"a\u0001": 1}),
                "bad_string",
            ),
            bad(
                "a lone surrogate in a Map value",
                v03(ext={"a": "\udead"}),
                "bad_string",
            ),
            bad("an empty id", v03(id=""), "bad_id"),
            bad("an empty subject", v03(subject=""), "bad_subject"),
            bad("a bad time", v03(time="2019-02-29T00:00:00Z"), "bad_time"),
            bad("a bad schemaurl", v03(schemaurl="a b"), "bad_schemaurl"),
            bad("an array extension", v03(ext=[1]), "bad_extension_value"),
        ],
    ),
    Rule(
        "D-versions",
        "accept 1.0 and 0.3, each by its own rules; a policy may narrow to 1.0",
        valid=[
            ok("1.0 by default", v1()),
            ok("0.3 by default", v03()),
            ok("1.0 when narrowed to 1.0", v1(), ONLY_V1),
            ok("0.3 when narrowed to 0.3", v03(ext={"a": 1}), ONLY_V03),
        ],
        invalid=[
            bad("0.3 when narrowed to 1.0", v03(), "unsupported_specversion", ONLY_V1),
            bad(
                "a 0.3 Map event when narrowed to 1.0",
                v03(ext={"a": 1}),
                "unsupported_specversion",
                ONLY_V1,
            ),
            bad("1.0 when narrowed to 0.3", v1(), "unsupported_specversion", ONLY_V03),
            bad(
                "an unknown version stays bad when narrowed",
                v1(specversion="1.0.2"),
                "bad_specversion",
                ONLY_V1,
            ),
            bad(
                "a Map extension is judged by 1.0 rules",
                v1(ext={"a": 1}),
                "bad_extension_value",
            ),
            bad("an empty source is judged by 1.0 rules", v1(source=""), "bad_source"),
        ],
    ),
    Rule(
        "D-bom",
        "a body that starts with a UTF-8 byte-order mark is rejected",
        valid=[
            ok("no BOM", v1()),
            ok("U+FEFF inside a value", v1_raw(',"subject":"a\ufeffb"')),
            ok("an escaped U+FEFF at the start of a value", v1(subject="\ufeff")),
        ],
        invalid=[
            bad("a BOM before the event", b"\xef\xbb\xbf" + v1(), "bom"),
            bad("a BOM before whitespace", b"\xef\xbb\xbf \n" + v1(), "bom"),
            bad("a BOM alone", b"\xef\xbb\xbf", "bom"),
            bad("a BOM before a v0.3 event", b"\xef\xbb\xbf" + v03(), "bom"),
        ],
    ),
    Rule(
        "D-duplicates",
        "an object that repeats a member name is rejected, wherever it is",
        valid=[
            ok("distinct names", v1(a=1, b=2)),
            ok("names differing in case inside data", v1(data={"a": 1, "A": 2})),
            ok("the same name at different levels", v1(data={"a": {"a": {"a": 1}}})),
        ],
        invalid=[
            bad(
                "in a v0.3 Map extension",
                v03()[:-1] + b', "m": {"k": 1, "k": 1}}',
                "duplicate_member",
            ),
            bad(
                "deep in data",
                v1_data('[[[{"x": 1, "y": [{"z": 0, "z": 0}]}]]]'),
                "duplicate_member",
            ),
            bad("with different values", v1_raw(',"type":"other"'), "duplicate_member"),
            bad("data twice", v1_raw(',"data":1,"data":2'), "duplicate_member"),
        ],
    ),
    Rule(
        "D-integer",
        "Integer values written 1.0 or 1e3 are rejected",
        valid=[
            ok("1000", v1_raw(',"n":1000')),
            ok("-1", v1_raw(',"n":-1')),
            ok("0", v1_raw(',"n":0')),
        ],
        invalid=[
            bad("1.0", v1_raw(',"n":1.0'), "bad_integer"),
            bad("1e3", v1_raw(',"n":1e3'), "bad_integer"),
            bad("1E3", v1_raw(',"n":1E3'), "bad_integer"),
            bad("1.5e3", v1_raw(',"n":1.5e3'), "bad_integer"),
            bad("10e-1", v1_raw(',"n":10e-1'), "bad_integer"),
        ],
    ),
    Rule(
        "D-timestamps",
        "lower-case t and z and a leap second :60 are accepted",
        valid=[
            ok("lower-case t", v1(time="2024-05-17t09:41:27Z")),
            ok("lower-case z", v1(time="2024-05-17T09:41:27.318z")),
            ok("a leap second", v1(time="2016-12-31T23:59:60Z")),
            ok("all three", v1(time="2016-12-31t23:59:60.5z")),
        ],
        invalid=[
            bad("a space separator", v1(time="2024-05-17 09:41:27Z"), "bad_time"),
            bad("second 61", v1(time="2016-12-31T23:59:61Z"), "bad_time"),
            bad(
                "a lower-case offset letter other than z",
                v1(time="2024-05-17T09:41:27u"),
                "bad_time",
            ),
            bad("ISO week date", v1(time="2024-W20-5T09:41:27Z"), "bad_time"),
        ],
    ),
    Rule(
        "D-dataschema-fragment",
        "a dataschema with a #fragment is accepted (absolute means has a scheme)",
        valid=[
            ok("an http URL with a fragment", v1(dataschema="http://x/s#frag")),
            ok("a URN with a fragment", v1(dataschema="urn:x:y#z")),
            ok("a JSON pointer fragment", v1(dataschema="https://x/s.json#/defs/a")),
        ],
        invalid=[
            bad("a fragment alone", v1(dataschema="#frag"), "bad_dataschema"),
            bad("a path with a fragment", v1(dataschema="/s#frag"), "bad_dataschema"),
            bad(
                "a file name with a fragment",
                v1(dataschema="s.json#frag"),
                "bad_dataschema",
            ),
        ],
    ),
    Rule(
        "D-id-whitespace",
        "an id that is only whitespace is accepted (non-empty per the letter)",
        valid=[
            ok("one space", v1(id=" ")),
            ok("several spaces", v1(id="   ")),
            ok("an ideographic space", v1(id="\u3000")),
        ],
        invalid=[
            bad("empty", v1(id=""), "bad_id"),
            bad("a tab (a control character)", v1(id="\t"), "bad_string"),
            bad("a newline (a control character)", v1(id="\n"), "bad_string"),
        ],
    ),
    Rule(
        "D-v03",
        "v0.3: object extensions, an empty source, datacontentencoding in any case",
        valid=[
            ok("an object extension", v03(ext={"k": "v"})),
            ok("an empty source", v03(source="")),
            ok("Base64", v03(datacontentencoding="Base64", data="AAAA")),
            ok("BASE64", v03(datacontentencoding="BASE64", data="AAAA")),
            ok("base64 without data", v03(datacontentencoding="base64")),
        ],
        invalid=[
            bad(
                "base-64", v03(datacontentencoding="base-64"), "bad_datacontentencoding"
            ),
            bad("b64", v03(datacontentencoding="b64"), "bad_datacontentencoding"),
            bad("empty", v03(datacontentencoding=""), "bad_datacontentencoding"),
            bad(
                "quoted-printable",
                v03(datacontentencoding="quoted-printable"),
                "bad_datacontentencoding",
            ),
            bad(
                "a trailing newline",
                v03(datacontentencoding="base64\n"),
                "bad_datacontentencoding",
            ),
        ],
    ),
    Rule(
        "D-size",
        "a size cap is a configured policy with its own reason",
        valid=[
            ok("a 500 KiB event", sized_event(500 * 1024)),
            ok(
                "under a custom cap",
                sized_event(1000),
                ValidationPolicy(max_payload_bytes=4096),
            ),
            ok(
                "no cap", sized_event(MIB + 1), ValidationPolicy(max_payload_bytes=None)
            ),
        ],
        invalid=[
            bad("over the default cap", sized_event(MIB + 100), "too_large"),
            bad(
                "over a custom cap",
                sized_event(5000),
                "too_large",
                ValidationPolicy(max_payload_bytes=4096),
            ),
            bad(
                "a cap of one byte",
                v1(),
                "too_large",
                ValidationPolicy(max_payload_bytes=1),
            ),
        ],
    ),
    Rule(
        "D-batches",
        "JSON batches are rejected as not one event",
        valid=[
            ok("a single event", v1()),
            ok("a single v0.3 event", v03()),
            ok("an event whose data is an array of events", v1(data=[BASE_V1])),
        ],
        invalid=[
            bad("an empty batch", b"[]", "not_object"),
            bad("a batch of one", b"[" + v1() + b"]", "not_object"),
            bad("a batch of two", b"[" + v1() + b"," + v03() + b"]", "not_object"),
        ],
    ),
    Rule(
        "D-binary-mode",
        "only structured mode exists on NATS Streaming: a bare data body is no event",
        valid=[
            ok("structured 1.0", v1(data="hello")),
            ok("structured 0.3", v03(data="hello")),
            ok("structured with data_base64", v1(data_base64="aGVsbG8=")),
        ],
        invalid=[
            bad("a text body", b"hello", "not_json"),
            bad("a JSON data body", b'{"temperature": 21}', "missing_specversion"),
            bad("a binary body", b"\x89PNG\r\n\x1a\n", "not_utf8"),
        ],
    ),
    Rule(
        "D-depth",
        "nesting up to the configured depth parses at any depth; deeper is too_deep",
        valid=[
            ok("depth 10,000 with the defaults", v1_data(nested(9_999))),
            ok(
                "depth 50,000 without a limit",
                v1_data(nested(49_999)),
                ValidationPolicy(max_nesting_depth=None),
            ),
            ok("depth 1,500, past the recursive parser", v1_data(nested(1_499))),
            ok("brackets inside strings do not count", v1(data="[" * 20_000)),
        ],
        invalid=[
            bad("depth 10,001 with the defaults", v1_data(nested(10_000)), "too_deep"),
            bad("depth 100,000", v1_data(nested(99_999)), "too_deep"),
            bad(
                "depth 6 under a limit of 5",
                v1_data(nested(5)),
                "too_deep",
                ValidationPolicy(max_nesting_depth=5),
            ),
            bad(
                "deep objects",
                v1_data('{"a":' * 10_000 + "1" + "}" * 10_000),
                "too_deep",
            ),
        ],
    ),
]

_CASES = [(rule, case) for rule in RULES for case in rule.valid + rule.invalid]


def _case_id(rule: Rule, case: Case) -> str:
    return f"{rule.key} {rule.title} | {case.title}"


_VALIDATORS: dict[ValidationPolicy, EventValidator] = {}


def judge(payload: bytes, policy: ValidationPolicy) -> ValidEvent | Rejection:
    validator = _VALIDATORS.get(policy)
    if validator is None:
        validator = _VALIDATORS[policy] = EventValidator(policy)
    return validator.validate(payload)


@pytest.mark.parametrize(
    "case",
    [case for rule in RULES for case in rule.valid],
    ids=[_case_id(rule, case) for rule in RULES for case in rule.valid],
)
def test_a_valid_example_is_accepted(case: Case) -> None:
    verdict = judge(case.payload, case.policy)
    assert isinstance(verdict, ValidEvent), verdict


@pytest.mark.parametrize(
    "case",
    [case for rule in RULES for case in rule.invalid],
    ids=[_case_id(rule, case) for rule in RULES for case in rule.invalid],
)
def test_an_invalid_example_is_rejected_with_its_reason(case: Case) -> None:
    verdict = judge(case.payload, case.policy)
    assert isinstance(verdict, Rejection), verdict
    assert verdict.reason == case.reason, verdict.message
    assert verdict.message.endswith(".")
    assert len(verdict.message) < 240


def test_every_rule_and_decision_has_three_valid_and_three_invalid_examples() -> None:
    expected = [f"R{n:02d}" for n in (*range(1, 29), 35, 36)]
    assert [rule.key for rule in RULES if rule.key.startswith("R")] == expected
    # The eleven decisions of the rules file, and the depth policy of the brief.
    assert [rule.key for rule in RULES if rule.key.startswith("D-")] == [
        "D-versions",
        "D-bom",
        "D-duplicates",
        "D-integer",
        "D-timestamps",
        "D-dataschema-fragment",
        "D-id-whitespace",
        "D-v03",
        "D-size",
        "D-batches",
        "D-binary-mode",
        "D-depth",
    ]
    for rule in RULES:
        assert len(rule.valid) >= 3, rule.key
        assert len(rule.invalid) >= 3, rule.key


def test_the_reason_codes_are_documented_and_each_one_is_exercised() -> None:
    assert set(get_args(ReasonCode)) == set(REASONS)
    exercised = {case.reason for rule in RULES for case in rule.invalid}
    assert exercised <= set(REASONS)
    assert set(REASONS) - exercised == {"internal_error"}


def test_each_reason_description_is_one_clean_sentence() -> None:
    for code, description in REASONS.items():
        assert code.islower()
        assert " " not in code
        assert description[0].isupper(), code
        assert description.endswith("."), code
        assert "\n" not in description, code
        assert len(description) <= 160, code


def test_a_valid_event_carries_its_attributes_without_data_or_nulls() -> None:
    verdict = judge(
        v1(subject=None, ext=5, flag=False, data={"a": 1}, datacontenttype="a/b+json"),
        ValidationPolicy(),
    )
    assert isinstance(verdict, ValidEvent)
    assert (verdict.specversion, verdict.id, verdict.type) == (
        "1.0",
        "A234-1234-1234",
        "com.example.someevent",
    )
    assert verdict.source == "/sensors/tn-1234567/alerts"
    assert dict(verdict.attributes) == {
        **BASE_V1,
        "ext": 5,
        "flag": False,
        "datacontenttype": "a/b+json",
    }
    with pytest.raises(TypeError):
        verdict.attributes["id"] = "changed"  # type: ignore[index]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2018-04-05T17:31:00Z", datetime(2018, 4, 5, 17, 31, tzinfo=UTC)),
        (
            "1996-12-19t16:39:57.5-08:00",
            datetime(1996, 12, 19, 16, 39, 57, 500_000, timezone(timedelta(hours=-8))),
        ),
        ("1990-12-31T23:59:60z", datetime(1990, 12, 31, 23, 59, 59, 999_999, UTC)),
        (
            "2024-01-01T00:00:00.1234567+05:30",
            datetime(
                2024, 1, 1, 0, 0, 0, 123_456, timezone(timedelta(hours=5, minutes=30))
            ),
        ),
        ("0000-01-01T00:00:00Z", None),
    ],
)
def test_the_time_of_a_valid_event_is_an_aware_datetime(
    text: str, expected: datetime | None
) -> None:
    verdict = judge(v1(time=text), ValidationPolicy())
    assert isinstance(verdict, ValidEvent)
    assert verdict.time == expected
    if expected is not None:
        assert verdict.time is not None
        assert verdict.time.utcoffset() == expected.utcoffset()
    assert verdict.attributes["time"] == text


def test_a_v03_event_keeps_its_map_extension_and_encoding() -> None:
    verdict = judge(
        v03(
            comexampleextension2={"othervalue": 5},
            datacontentencoding="Base64",
            data="AAAA",
        ),
        ValidationPolicy(),
    )
    assert isinstance(verdict, ValidEvent)
    assert verdict.specversion == "0.3"
    assert verdict.attributes["comexampleextension2"] == {"othervalue": 5}
    assert verdict.attributes["datacontentencoding"] == "Base64"
    assert "data" not in verdict.attributes


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"specversions": frozenset()}, "specversions"),
        ({"specversions": frozenset({"2.0"})}, "specversions"),
        ({"specversions": "1.0"}, "specversions"),
        ({"max_payload_bytes": 0}, "max_payload_bytes"),
        ({"max_payload_bytes": True}, "max_payload_bytes"),
        ({"max_nesting_depth": -1}, "max_nesting_depth"),
        ({"max_nesting_depth": 2.5}, "max_nesting_depth"),
    ],
)
def test_a_policy_with_a_bad_field_is_refused_naming_the_field(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ValidationPolicy(**changes)  # type: ignore[arg-type]


def test_a_policy_accepts_any_iterable_of_versions() -> None:
    policy = ValidationPolicy(specversions=["1.0"])  # type: ignore[arg-type]
    assert policy.specversions == frozenset({"1.0"})


@pytest.mark.timeout(20)
def test_a_hundred_thousand_levels_are_handled_quickly_without_touching_recursion() -> (
    None
):
    limit = sys.getrecursionlimit()
    deep = v1_data(nested(99_999))
    objects = v1_data('{"a":' * 99_999 + "0" + "}" * 99_999)
    unlimited = ValidationPolicy(max_nesting_depth=None)
    started = time.monotonic()
    assert judge(deep, ValidationPolicy()) == judge(deep, ValidationPolicy())
    verdict = judge(deep, ValidationPolicy())
    assert isinstance(verdict, Rejection)
    assert verdict.reason == "too_deep"
    assert isinstance(judge(deep, unlimited), ValidEvent)
    assert isinstance(judge(objects, unlimited), ValidEvent)
    malformed = judge(deep[:-2], unlimited)
    assert isinstance(malformed, Rejection)
    assert malformed.reason == "not_json"
    assert time.monotonic() - started < 10
    assert sys.getrecursionlimit() == limit


def test_a_deep_v03_map_extension_is_checked_without_recursion() -> None:
    deep_map = '{"a":' * 20_000 + '"x"' + "}" * 20_000
    payload = v03()[:-1] + b', "m": ' + deep_map.encode() + b"}"
    verdict = judge(payload, ValidationPolicy(max_nesting_depth=None))
    assert isinstance(verdict, ValidEvent)
    bad_leaf = payload.replace(b'"x"', b"true")
    rejection = judge(bad_leaf, ValidationPolicy(max_nesting_depth=None))
    assert isinstance(rejection, Rejection)
    assert rejection.reason == "bad_extension_value"


def test_a_huge_bad_value_gives_a_short_message() -> None:
    verdict = judge(v1(id=["x" * 500_000]), ValidationPolicy())
    assert isinstance(verdict, Rejection)
    assert verdict.reason == "bad_id"
    assert len(verdict.message) < 120
    verdict = judge(v1(source="a b" * 100_000), ValidationPolicy())
    assert isinstance(verdict, Rejection)
    assert verdict.reason == "bad_source"
    assert len(verdict.message) < 120


def test_bytes_like_payloads_are_accepted_and_other_types_refused() -> None:
    validator = EventValidator()
    assert isinstance(validator.validate(bytearray(v1())), ValidEvent)
    assert isinstance(validator.validate(memoryview(v1())), ValidEvent)
    with pytest.raises(TypeError, match="bytes"):
        validator.validate(v1().decode())  # type: ignore[arg-type]


def test_an_unexpected_failure_becomes_an_internal_error_and_is_logged(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    validator = EventValidator()

    def broken(event: dict[str, object]) -> ValidEvent:
        raise KeyError("a bug")

    monkeypatch.setattr(validator._rules["1.0"], "check", broken)
    with caplog.at_level(logging.ERROR, logger="event_aggregator.validation"):
        verdict = validator.validate(v1())
    assert verdict == Rejection(
        "internal_error", "The validator failed unexpectedly; see the log."
    )
    assert any(record.exc_info for record in caplog.records)


def test_the_sdk_accepts_an_event_without_id_which_the_validator_rejects() -> None:
    """The measured SDK behaviour the rules file warns about still holds."""
    payload = v1(id=DROP)
    assert JSONFormat().read(None, payload).get_id()
    verdict = judge(payload, ValidationPolicy())
    assert isinstance(verdict, Rejection)
    assert verdict.reason == "missing_id"


def test_the_sdk_fails_on_a_batch_which_the_validator_rejects_cleanly() -> None:
    payload = b"[" + v1() + b"]"
    with pytest.raises(AttributeError):
        JSONFormat().read(None, payload)
    verdict = judge(payload, ValidationPolicy())
    assert isinstance(verdict, Rejection)
    assert verdict.reason == "not_object"
