"""Read what the official stan-sub prints: gogo protobuf compact text format.

stan-sub logs each message as ``[#N] Received: `` followed by the message's
``String()``, e.g. ``sequence:1 subject:"foo" data:"a\\tb\\001" timestamp:17``.
Strings and bytes are quoted; inside the quotes gogo writes printable ASCII
as is, ``\\n \\r \\t \\" \\\\`` as C escapes and every other byte as a
three-digit octal escape. The parser below also accepts the other C escapes
(``\\' \\a \\x41`` ...) that the protobuf text format allows.
"""

import re
from dataclasses import dataclass

_SIMPLE_ESCAPES = {
    "n": 0x0A,
    "r": 0x0D,
    "t": 0x09,
    '"': 0x22,
    "'": 0x27,
    "\\": 0x5C,
    "a": 0x07,
    "b": 0x08,
    "f": 0x0C,
    "v": 0x0B,
    "?": 0x3F,
}
_OCTAL = "01234567"
_HEX = "0123456789abcdefABCDEF"
_RECEIVED = re.compile(r"^\[#(\d+)\] Received: (.*)$")


class TextFormatError(ValueError):
    """The text is not valid protobuf compact text."""


def escape_bytes(data: bytes) -> str:
    """Quote ``data`` the way gogo protobuf's text writer does.

    Used by tests to prove the parser against every byte value.
    """
    out = ['"']
    for byte in data:
        if byte == 0x0A:
            out.append("\\n")
        elif byte == 0x0D:
            out.append("\\r")
        elif byte == 0x09:
            out.append("\\t")
        elif byte == 0x22:
            out.append('\\"')
        elif byte == 0x5C:
            out.append("\\\\")
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03o}")
    out.append('"')
    return "".join(out)


def _read_quoted(text: str, start: int) -> tuple[bytes, int]:
    """Decode the quoted string whose opening quote is at ``text[start]``.

    :returns: the bytes and the index just past the closing quote.
    :raises TextFormatError: on an unterminated string or a bad escape.
    """
    out = bytearray()
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == '"':
            return bytes(out), i + 1
        if char != "\\":
            out += char.encode()
            i += 1
            continue
        if i + 1 >= len(text):
            break
        code = text[i + 1]
        if code in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[code])
            i += 2
        elif code in _OCTAL:
            j = i + 1
            while j < len(text) and j < i + 4 and text[j] in _OCTAL:
                j += 1
            value = int(text[i + 1 : j], 8)
            if value > 0xFF:
                raise TextFormatError(f"octal escape out of range at {i}: {text[i:j]}")
            out.append(value)
            i = j
        elif code in "xX":
            j = i + 2
            while j < len(text) and j < i + 4 and text[j] in _HEX:
                j += 1
            if j == i + 2:
                raise TextFormatError(f"\\x without hex digits at {i}")
            out.append(int(text[i + 2 : j], 16))
            i = j
        else:
            raise TextFormatError(f"unknown escape \\{code} at {i}")
    raise TextFormatError(f"unterminated string starting at {start}")


def unescape_bytes(quoted: str) -> bytes:
    """Decode one quoted string, quotes included, into bytes.

    :raises TextFormatError: if it is not exactly one quoted string.
    """
    if not quoted.startswith('"'):
        raise TextFormatError(f"not a quoted string: {quoted[:40]!r}")
    data, end = _read_quoted(quoted, 0)
    if end != len(quoted):
        raise TextFormatError(f"text after the closing quote: {quoted[end:][:40]!r}")
    return data


def parse_compact_text(text: str) -> dict[str, str | bytes]:
    """Parse ``name:value name:"quoted" ...`` into a dict.

    Quoted values become bytes; bare values (numbers, booleans) stay strings.
    Nested messages do not occur in what stan-sub prints and are rejected.

    :raises TextFormatError: on anything else.
    """
    fields: dict[str, str | bytes] = {}
    i = 0
    while True:
        while i < len(text) and text[i] == " ":
            i += 1
        if i >= len(text):
            return fields
        colon = text.find(":", i)
        if colon < 0:
            raise TextFormatError(f"field without ':' at {i}: {text[i:][:40]!r}")
        name = text[i:colon]
        if not name.replace("_", "").isalnum():
            raise TextFormatError(f"bad field name {name!r} at {i}")
        i = colon + 1
        if i < len(text) and text[i] == '"':
            fields[name], i = _read_quoted(text, i)
        else:
            end = text.find(" ", i)
            end = len(text) if end < 0 else end
            if end == i or text[i] in "{<":
                raise TextFormatError(f"unsupported value for {name!r} at {i}")
            fields[name] = text[i:end]
            i = end


@dataclass(frozen=True)
class ReceivedMessage:
    """One message as a reference peer received it."""

    sequence: int
    subject: str
    data: bytes
    redelivered: bool = False


def parse_stan_sub_line(line: str) -> ReceivedMessage | None:
    """Parse a ``[#N] Received: ...`` line of stan-sub; None for other lines.

    ``N`` is stan-sub's own counter; the sequence comes from the message.

    :raises TextFormatError: if a Received line cannot be parsed.
    """
    match = _RECEIVED.match(line.rstrip("\r\n"))
    if match is None:
        return None
    fields = parse_compact_text(match.group(2))
    data = fields.get("data", b"")  # proto3 omits empty bytes
    subject = fields.get("subject", b"")
    sequence = fields.get("sequence")
    if not isinstance(data, bytes) or not isinstance(subject, bytes):
        raise TextFormatError(f"data and subject must be quoted: {line!r}")
    if not isinstance(sequence, str) or not sequence.isdigit():
        raise TextFormatError(f"no numeric sequence in {line!r}")
    return ReceivedMessage(
        sequence=int(sequence),
        subject=subject.decode(),
        data=data,
        redelivered=fields.get("redelivered") == "true",
    )
