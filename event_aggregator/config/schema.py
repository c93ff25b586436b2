"""What a config file may contain: every key, its check and its default.

The tables here are the single description of the format. Validation walks
them, :func:`iter_keys` lists them (a test compares that list with
``config.example.yml`` so that the documentation cannot drift from the code),
and each section's builder turns checked values into the frozen objects of
:mod:`event_aggregator.config.model`, after the rules that involve more than
one key.

Defaults are written as raw YAML values and go through the same checks as the
file's values, so a default can never be something the file could not say.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from event_aggregator.config import values as v
from event_aggregator.config.errors import Problems, child_path, index_path
from event_aggregator.config.model import (
    BackoffConfig,
    Config,
    DestinationConfig,
    ForwardingConfig,
    HttpConfig,
    LoggingConfig,
    SourceConfig,
    StartPosition,
    TlsConfig,
    ValidationConfig,
)
from event_aggregator.config.rules import check_connections, check_dead_letters

__all__ = ["REQUIRED", "KeyInfo", "check_document", "iter_keys"]

#: Marks a key that has no default.
REQUIRED: Final = v.REQUIRED

#: Default client ID and durable name.
DEFAULT_CLIENT_ID: Final = "workflow-event-aggregator"

#: ``build(values, key path, problems)``: checked values (some may be INVALID)
#: to a model object, or INVALID.
Builder = Callable[[dict[str, Any], str, Problems], Any]


@dataclass(frozen=True, slots=True)
class Key:
    """One key of a section.

    :param section: for a key whose value is a mapping (or a list of them,
        when *many*), its own table; used to list the nested keys.
    """

    name: str
    check: v.Check
    default: Any = REQUIRED
    section: Section | None = None
    many: bool = False


@dataclass(frozen=True, slots=True)
class Section:
    """A mapping with fixed keys, and how to build its model object."""

    what: str
    keys: tuple[Key, ...]
    build: Builder

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(key.name for key in self.keys)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key as listed by :func:`iter_keys`.

    :param path: such as ``destination.tls.ca_file`` or ``sources[].name``.
    :param default: the raw YAML default, or :data:`REQUIRED`.
    :param nested: the value is a mapping (or list of mappings) of more keys.
    """

    path: str
    default: Any
    nested: bool


# --------------------------------------------------------------------------
# Walking a section


def check_fields(
    raw: Any,
    section: Section,
    key_path: str,
    problems: Problems,
    elsewhere: Mapping[str, tuple[str, ...]],
) -> dict[str, Any] | v.Marker:
    """Check a mapping against *section*: unknown keys, missing keys, values.

    :returns: each key's parsed value (INVALID where wrong), or INVALID when
        *raw* is not a mapping at all.
    """
    if not isinstance(raw, dict):
        problems.add(
            key_path, f"must be a mapping of {section.what}, got {problems.show(raw)}"
        )
        return v.INVALID
    for key in raw:
        if not isinstance(key, str):
            problems.add(
                key_path, f"key {problems.show(key)} must be a string (a key name)"
            )
        elif key not in section.names:
            hint = _unknown_key_hint(key, section.names, elsewhere.get(key, ()))
            problems.add(child_path(key_path, key), "unknown key" + hint)
    fields: dict[str, Any] = {}
    for key in section.keys:
        path = child_path(key_path, key.name)
        if key.name in raw:
            fields[key.name] = v.run(key.check, raw[key.name], path, problems)
        elif key.default is REQUIRED:
            problems.add(path, "required key is missing")
            fields[key.name] = v.INVALID
        else:
            fields[key.name] = key.check(key.default, path, problems)
    return fields


def _unknown_key_hint(
    key: str, allowed: tuple[str, ...], places: tuple[str, ...]
) -> str:
    """Suggest the key meant: one spelled alike here, or the section it is from."""
    normal = key.strip().lower().replace("-", "_").replace(" ", "_")
    close = difflib.get_close_matches(normal, allowed, n=1, cutoff=0.6)
    hints = []
    if places:
        hints.append("it belongs in " + " or ".join(f"'{p}'" for p in places))
    if close:
        hints.append(f"did you mean '{close[0]}'?")
    if hints:
        return f" ({'; '.join(hints)})"
    return f"; allowed here: {', '.join(allowed)}"


def _section_check(
    section: Section,
    elsewhere: Mapping[str, tuple[str, ...]],
    *,
    null_is_default: bool = False,
) -> v.Check:
    def check(raw: Any, key_path: str, problems: Problems) -> Any:
        if raw is None and null_is_default:
            raw = {}
        fields = check_fields(raw, section, key_path, problems, elsewhere)
        if not isinstance(fields, dict):
            return v.INVALID
        return section.build(fields, key_path, problems)

    return check


def _valid(fields: Mapping[str, Any], *names: str) -> bool:
    return all(fields[name] is not v.INVALID for name in names)


def _complete(fields: Mapping[str, Any]) -> bool:
    return v.INVALID not in fields.values()


# --------------------------------------------------------------------------
# Builders: rules across keys, then the model objects


def _build_tls(fields: dict[str, Any], key_path: str, problems: Problems) -> Any:
    if _valid(fields, "cert_file", "key_file"):
        for have, need in (("cert_file", "key_file"), ("key_file", "cert_file")):
            if fields[have] is not None and fields[need] is None:
                problems.add(
                    child_path(key_path, need), f"is required when {have} is set"
                )
                fields[need] = v.INVALID
    if _complete(fields):
        v.check_tls_files(fields, key_path, problems)
    return TlsConfig(**fields) if _complete(fields) else v.INVALID


def _build_backoff(fields: dict[str, Any], key_path: str, problems: Problems) -> Any:
    if (
        _valid(fields, "initial_delay", "max_delay")
        and fields["max_delay"] < fields["initial_delay"]
    ):
        problems.add(
            child_path(key_path, "max_delay"),
            f"must be at least initial_delay ({fields['initial_delay']:g}),"
            f" got {fields['max_delay']:g}",
        )
        fields["max_delay"] = v.INVALID
    return BackoffConfig(**fields) if _complete(fields) else v.INVALID


def _build_destination(
    fields: dict[str, Any], key_path: str, problems: Problems
) -> Any:
    if _valid(fields, "max_outage", "ping_interval", "ping_max_out"):
        # The outage is only noticed after the unanswered pings; a shorter
        # max_outage would end the process at the first loss, every time.
        noticed = fields["ping_interval"] * (fields["ping_max_out"] + 1)
        if fields["max_outage"] <= noticed:
            problems.add(
                child_path(key_path, "max_outage"),
                f"must be longer than the time a lost destination takes to be"
                f" noticed, ping_interval x (ping_max_out + 1) = {noticed:g} s;"
                f" got {fields['max_outage']:g}",
            )
            fields["max_outage"] = v.INVALID
    return DestinationConfig(**fields) if _complete(fields) else v.INVALID


def _build_source(fields: dict[str, Any], key_path: str, problems: Problems) -> Any:
    if _valid(fields, "start_position"):
        position = fields["start_position"]
        for key, needed_by in (
            ("start_sequence", StartPosition.SEQUENCE),
            ("start_time", StartPosition.TIME),
        ):
            if not _valid(fields, key):
                continue
            path = child_path(key_path, key)
            if position is needed_by and fields[key] is None:
                problems.add(
                    path, f"is required when start_position is '{needed_by.value}'"
                )
                fields[key] = v.INVALID
            elif position is not needed_by and fields[key] is not None:
                problems.add(
                    path,
                    f"is only used when start_position is '{needed_by.value}'"
                    f" (start_position is '{position.value}')",
                )
                fields[key] = v.INVALID
    return SourceConfig(**fields) if _complete(fields) else v.INVALID


def _build_forwarding(fields: dict[str, Any], key_path: str, problems: Problems) -> Any:
    return ForwardingConfig(**fields) if _complete(fields) else v.INVALID


def _build_logging(fields: dict[str, Any], key_path: str, problems: Problems) -> Any:
    return LoggingConfig(**fields) if _complete(fields) else v.INVALID


def _build_http(fields: dict[str, Any], key_path: str, problems: Problems) -> Any:
    listen = fields["listen"]
    if listen is v.INVALID:
        return v.INVALID
    if listen is None:
        return HttpConfig(listen=None, host=None, port=None)
    text, host, port = listen
    return HttpConfig(listen=text, host=host, port=port)


def _build_validation(fields: dict[str, Any], key_path: str, problems: Problems) -> Any:
    if not _complete(fields):
        return v.INVALID
    fields["specversions"] = frozenset(fields["specversions"])
    return ValidationConfig(**fields)


def _build_root(path: Path) -> Builder:
    def build(fields: dict[str, Any], key_path: str, problems: Problems) -> Any:
        sources = fields["sources"]
        if isinstance(sources, _SomeSources):
            indexed = sources.valid
            fields["sources"] = v.INVALID
        elif sources is v.INVALID:
            indexed = ()
        else:
            indexed = tuple(enumerate(sources))
        if _valid(fields, "destination"):
            check_connections(fields["destination"], indexed, problems)
        if _valid(fields, "destination", "validation"):
            check_dead_letters(
                fields["destination"], indexed, fields["validation"], problems
            )
        if not _complete(fields):
            return v.INVALID
        return Config(path=path, **fields)

    return build


@dataclass(frozen=True, slots=True)
class _SomeSources:
    """The valid sources of a list where others are invalid, by list index.

    Checks across sections still run on these, so that one run reports a
    forwarding loop in ``sources[0]`` even when ``sources[1]`` has a typo.
    """

    valid: tuple[tuple[int, SourceConfig], ...]


def _sources_check(source: v.Check) -> v.Check:
    """The ``sources`` list: each a source, names unique."""

    def check(raw: Any, key_path: str, problems: Problems) -> Any:
        if not isinstance(raw, list) or not raw:
            hint = " (start each source with '- ')" if isinstance(raw, dict) else ""
            problems.add(
                key_path,
                f"must be a non-empty list of sources, got {problems.show(raw)}{hint}",
            )
            return v.INVALID
        built = [
            v.run(source, item, index_path(key_path, index), problems)
            for index, item in enumerate(raw)
        ]
        valid = tuple(
            (index, item) for index, item in enumerate(built) if item is not v.INVALID
        )
        result: Any = (
            tuple(item for _index, item in valid)
            if len(valid) == len(built)
            else _SomeSources(valid)
        )
        # Names are compared on the raw items, so that a duplicate is found
        # even when one of the two sources is invalid for another reason.
        first_seen: dict[str, int] = {}
        for index, item in enumerate(raw):
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(name, str):
                continue
            if name in first_seen:
                problems.add(
                    child_path(index_path(key_path, index), "name"),
                    f"{problems.show(name)} is already the name of"
                    f" {index_path(key_path, first_seen[name])}",
                )
                result = _SomeSources(valid)
            else:
                first_seen[name] = index
        return result

    return check


# --------------------------------------------------------------------------
# The tables


def _tables(path: Path, elsewhere: Mapping[str, tuple[str, ...]]) -> Section:
    """Build the root section; *path* is the config file (for relative files)."""
    base = path.absolute().parent
    seconds = v.duration()

    def section(table: Section, *, null_is_default: bool = False) -> v.Check:
        return _section_check(table, elsewhere, null_is_default=null_is_default)

    def tls_file() -> v.Check:
        return v.nullable(v.file_path(base))

    tls = Section(
        "TLS settings",
        (
            Key("ca_file", tls_file(), None),
            Key("cert_file", tls_file(), None),
            Key("key_file", tls_file(), None),
            Key("insecure_skip_verify", v.boolean, False),
        ),
        _build_tls,
    )
    tls_key = Key("tls", v.nullable(section(tls)), None, section=tls)
    reconnect = Section(
        "backoff settings",
        (
            Key("initial_delay", seconds, 1),
            Key("max_delay", seconds, 30),
            Key("multiplier", v.number(1, 100), 2),
            Key("jitter", v.number(0, 1), 0.2),
        ),
        _build_backoff,
    )
    destination = Section(
        "destination settings",
        (
            Key("name", v.name, "central"),
            Key("url", v.nats_url),
            Key("cluster_id", v.cluster_id),
            Key("client_id", v.client_id, DEFAULT_CLIENT_ID),
            Key("channel", v.nullable(v.channel), None),
            Key("max_outage", seconds, 300),
            Key("connect_timeout", seconds, 5),
            Key("ping_interval", seconds, 5),
            Key("ping_max_out", v.integer(1, 1000), 3),
            Key("publish_ack_wait", seconds, 30),
            Key("max_pending_publishes", v.integer(1, 65535), 256),
            tls_key,
        ),
        _build_destination,
    )
    positions = v.choice(
        (position.value for position in StartPosition), convert=StartPosition
    )
    source = Section(
        "source settings",
        (
            Key("name", v.name),
            Key("url", v.nats_url),
            Key("cluster_id", v.cluster_id),
            Key("client_id", v.client_id, DEFAULT_CLIENT_ID),
            Key("channels", v.list_of(v.channel, what="channel names"), REQUIRED),
            Key("durable_name", v.token, DEFAULT_CLIENT_ID),
            Key("queue_group", v.nullable(v.token), None),
            Key("start_position", positions, "first"),
            Key("start_sequence", v.nullable(v.integer(1, 2**64 - 1)), None),
            Key("start_time", v.nullable(v.rfc3339), None),
            Key("max_in_flight", v.integer(1, 65535), 1024),
            Key("ack_wait", v.integer(1, v.MAX_SECONDS, unit="seconds"), 60),
            Key("connect_timeout", seconds, 5),
            Key("ping_interval", seconds, 5),
            Key("ping_max_out", v.integer(1, 1000), 3),
            tls_key,
            Key(
                "reconnect",
                section(reconnect, null_is_default=True),
                {},
                section=reconnect,
            ),
        ),
        _build_source,
    )
    forwarding = Section(
        "forwarding settings",
        (
            Key("queue_size", v.integer(1, 1_000_000), 1000),
            Key("shutdown_timeout", v.duration(allow_zero=True), 10),
        ),
        _build_forwarding,
    )
    logging = Section(
        "logging settings",
        (
            Key(
                "level",
                v.choice(("DEBUG", "INFO", "WARNING", "ERROR"), ignore_case=True),
                "INFO",
            ),
            Key("format", v.choice(("json", "text")), "json"),
        ),
        _build_logging,
    )
    http = Section(
        "HTTP settings",
        (Key("listen", v.nullable(v.listen_address), None),),
        _build_http,
    )
    validation = Section(
        "validation settings",
        (
            Key(
                "specversions",
                v.list_of(v.choice(("1.0", "0.3")), what="CloudEvents spec versions"),
                ["1.0", "0.3"],
            ),
            Key("dead_letter_channel", v.nullable(v.channel), None),
            Key("max_payload_bytes", v.integer(1, 64 * 1024 * 1024), 1024 * 1024),
            Key("max_nesting_depth", v.integer(10, 1_000_000), 10_000),
        ),
        _build_validation,
    )
    return Section(
        "sections (destination, sources, ...)",
        (
            Key("destination", section(destination), section=destination),
            Key(
                "sources",
                _sources_check(section(source)),
                section=source,
                many=True,
            ),
            Key(
                "forwarding",
                section(forwarding, null_is_default=True),
                {},
                section=forwarding,
            ),
            Key(
                "logging",
                section(logging, null_is_default=True),
                {},
                section=logging,
            ),
            Key("http", section(http, null_is_default=True), {}, section=http),
            Key(
                "validation",
                section(validation, null_is_default=True),
                {},
                section=validation,
            ),
        ),
        _build_root(path),
    )


def iter_keys() -> Iterator[KeyInfo]:
    """Every key the format knows, depth first, in the documented order."""
    yield from _iter_section(_tables(Path("config.yml"), {}), "")


def _iter_section(section: Section, prefix: str) -> Iterator[KeyInfo]:
    for key in section.keys:
        path = f"{prefix}.{key.name}" if prefix else key.name
        yield KeyInfo(path, key.default, key.section is not None)
        if key.section is not None:
            yield from _iter_section(key.section, path + ("[]" if key.many else ""))


def _places() -> dict[str, tuple[str, ...]]:
    """For each key name, the sections it belongs to (for unknown-key hints)."""
    places: dict[str, list[str]] = {}
    for info in iter_keys():
        parent, _dot, name = info.path.rpartition(".")
        places.setdefault(name, []).append(parent or "the top level")
    return {name: tuple(parents) for name, parents in places.items()}


def check_document(document: Any, path: Path, problems: Problems) -> Config | None:
    """Validate a parsed (and substituted) document; ``None`` if it has problems.

    :param path: the config file; relative TLS files are taken from its folder.
    """
    places = _places()
    result = _section_check(_tables(path, places), places)(document, "", problems)
    return result if isinstance(result, Config) else None
