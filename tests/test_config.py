"""Tests of the configuration loader, its error messages and URL redaction.

No servers are needed: everything here reads files written to ``tmp_path``.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from event_aggregator.config import (
    BackoffConfig,
    Config,
    ConfigError,
    DestinationConfig,
    ForwardingConfig,
    LoggingConfig,
    SourceConfig,
    StartPosition,
    TlsConfig,
    ValidationConfig,
    iter_keys,
    load_config,
)
from event_aggregator.config.schema import REQUIRED
from event_aggregator.redact import redact_text, redact_url, url_secrets
from tests.support.pki import make_certificates

pytestmark = pytest.mark.timeout(30)

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config.example.yml"

# The smallest valid config: two sources so that paths like sources[1] exist.
MINIMAL: dict[str, Any] = {
    "destination": {"url": "nats://127.0.0.1:4222", "cluster_id": "stan"},
    "sources": [
        {
            "name": "edge-1",
            "url": "nats://127.0.0.1:4223",
            "cluster_id": "stan",
            "channels": ["cyverse.events"],
        },
        {
            "name": "edge-2",
            "url": "nats://127.0.0.1:4333",
            "cluster_id": "stan",
            "channels": ["cyverse.events"],
        },
    ],
}


def write(tmp_path: Path, text: str, name: str = "config.yml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def write_doc(tmp_path: Path, document: Any) -> Path:
    return write(tmp_path, yaml.safe_dump(document, sort_keys=False))


def edited(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    document = copy.deepcopy(MINIMAL)
    change(document)
    return document


def problems_of(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, {} if environ is None else environ)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return list(caught.value.problems)


# --------------------------------------------------------------------------
# The example and the defaults


def test_the_example_loads_and_uses_the_defaults() -> None:
    config = load_config(EXAMPLE, {})
    assert config.path == EXAMPLE
    assert config.destination.url == "nats://127.0.0.1:4222"
    assert [s.name for s in config.sources] == ["edge-1"]
    assert config.sources[0].channels == ("cyverse.events",)


def _resolve(document: Any, path: str) -> tuple[bool, Any]:
    """Follow ``a.b[].c`` into *document*; (False, None) where a null stops it."""
    node = document
    for part in path.split("."):
        many = part.endswith("[]")
        name = part.removesuffix("[]")
        if node is None:
            return False, None
        assert isinstance(node, dict), path
        assert name in node, f"{path}: '{name}' is not in the example"
        node = node[name]
        if many:
            assert isinstance(node, list), path
            assert node, path
            node = node[0]
    return True, node


def _commented_value(text: str, name: str) -> Any:
    """The value of ``# name: value`` in a comment of the example."""
    match = re.search(rf"^\s*#\s*({re.escape(name)}:[^#\n]*)", text, re.MULTILINE)
    assert match, f"'{name}' is documented nowhere in the example"
    return yaml.safe_load(match.group(1))[name]


def test_the_example_documents_every_key_with_its_default() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    keys = list(iter_keys())
    assert len(keys) > 40
    for key in keys:
        found, value = _resolve(document, key.path)
        leaf = key.path.rpartition(".")[2]
        if not found:
            # Under "tls: null": documented in a commented-out block.
            value = _commented_value(text, leaf)
        if key.default is REQUIRED or key.nested:
            continue
        assert value == key.default, f"{key.path}: example {value!r}"
    # And every line of the example is commented (one-line docs per key).
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith(("#", "- name")):
            assert "#" in line or line.rstrip().endswith(":"), line


# The configuration example of the product design (shared/DESIGN.md), the
# contract users were given, copied here so that CI has it too.
DESIGN_EXAMPLE = """\
destination:
  name: central                 # used in logs and metrics
  url: nats://127.0.0.1:4222     # nats:// or tls://, user:password@ allowed
  cluster_id: stan
  client_id: workflow-event-aggregator
  channel: null                 # null: the channel the event arrived on
  max_outage: 300               # seconds unreachable before exiting with 1
sources:
  - name: edge-1
    url: nats://127.0.0.1:4223
    cluster_id: stan
    client_id: workflow-event-aggregator
    channels: [cyverse.events]
    durable_name: workflow-event-aggregator
logging:
  level: INFO
  format: json                  # json or text
http:
  listen: 127.0.0.1:9090        # /metrics, /healthz, /readyz; absent: off
validation:
  specversions: ["1.0", "0.3"]
  dead_letter_channel: null     # a channel on the destination, or null
"""


def test_the_design_contract_example_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, DESIGN_EXAMPLE), {})
    assert config.http.listen == "127.0.0.1:9090"
    assert config.sources[0].channels == ("cyverse.events",)
    assert config.destination.max_outage == 300


def test_every_model_field_is_a_documented_key() -> None:
    paths = {key.path for key in iter_keys()}
    models: dict[str, Any] = {
        "destination": DestinationConfig,
        "destination.tls": TlsConfig,
        "sources[]": SourceConfig,
        "sources[].reconnect": BackoffConfig,
        "forwarding": ForwardingConfig,
        "logging": LoggingConfig,
        "validation": ValidationConfig,
    }
    for prefix, model in models.items():
        for field in dataclasses.fields(model):
            assert f"{prefix}.{field.name}" in paths, (model, field.name)


def test_defaults_are_applied(tmp_path: Path) -> None:
    config = load_config(write_doc(tmp_path, MINIMAL), {})
    dest = config.destination
    assert (dest.name, dest.client_id, dest.channel) == (
        "central",
        "workflow-event-aggregator",
        None,
    )
    assert (dest.max_outage, dest.connect_timeout, dest.ping_interval) == (300, 5, 5)
    assert (dest.ping_max_out, dest.publish_ack_wait) == (3, 30)
    assert (dest.max_pending_publishes, dest.tls) == (256, None)
    source = config.sources[1]
    assert source.client_id == "workflow-event-aggregator"
    assert source.durable_name == "workflow-event-aggregator"
    assert source.queue_group is None
    assert source.start_position is StartPosition.FIRST
    assert (source.start_sequence, source.start_time) == (None, None)
    assert (source.max_in_flight, source.ack_wait) == (1024, 60)
    assert (source.connect_timeout, source.ping_interval, source.ping_max_out) == (
        5,
        5,
        3,
    )
    assert source.tls is None
    backoff = source.reconnect
    assert (backoff.initial_delay, backoff.max_delay) == (1, 30)
    assert (backoff.multiplier, backoff.jitter) == (2, 0.2)
    assert (config.forwarding.queue_size, config.forwarding.shutdown_timeout) == (
        1000,
        10,
    )
    assert (config.logging.level, config.logging.format) == ("INFO", "json")
    assert (config.http.listen, config.http.host, config.http.port) == (
        None,
        None,
        None,
    )
    valid = config.validation
    assert valid.specversions == frozenset({"1.0", "0.3"})
    assert valid.dead_letter_channel is None
    assert (valid.max_payload_bytes, valid.max_nesting_depth) == (1048576, 10000)
    assert isinstance(dest.max_outage, float)


def test_values_are_parsed(tmp_path: Path) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["destination"]["channel"] = "central.events"
        doc["sources"][0].update(
            start_position="time",
            start_time="2024-05-01T12:00:00.5+02:00",
            queue_group="aggregators",
            reconnect={"initial_delay": 0.5},
        )
        doc["sources"][1].update(start_position="sequence", start_sequence=42)
        doc["logging"] = {"level": "debug", "format": "text"}
        doc["http"] = {"listen": "[::1]:9090"}
        doc["validation"] = {"specversions": ["1.0"], "dead_letter_channel": "dead"}

    config = load_config(write_doc(tmp_path, edited(change)), {})
    first, second = config.sources
    assert first.start_time == datetime.datetime(
        2024, 5, 1, 10, 0, 0, 500000, tzinfo=datetime.UTC
    )
    assert first.queue_group == "aggregators"
    assert first.reconnect.initial_delay == 0.5
    assert first.reconnect.max_delay == 30
    assert second.start_position is StartPosition.SEQUENCE
    assert second.start_sequence == 42
    assert config.logging.level == "DEBUG"
    assert (config.http.host, config.http.port) == ("::1", 9090)
    assert config.validation.specversions == frozenset({"1.0"})


def test_an_unquoted_yaml_timestamp_is_accepted_with_an_offset(tmp_path: Path) -> None:
    text = yaml.safe_dump(MINIMAL, sort_keys=False).replace(
        "  channels:\n  - cyverse.events\n",
        "  channels:\n  - cyverse.events\n  start_position: time\n"
        "  start_time: 2024-05-01T12:00:00Z\n",
        1,
    )
    config = load_config(write(tmp_path, text), {})
    assert config.sources[0].start_time == datetime.datetime(
        2024, 5, 1, 12, tzinfo=datetime.UTC
    )


def test_null_sections_take_their_defaults(tmp_path: Path) -> None:
    text = yaml.safe_dump(MINIMAL) + "logging:\nforwarding:\nhttp:\nvalidation:\n"
    config = load_config(write(tmp_path, text), {})
    assert config.logging.level == "INFO"


def test_config_objects_are_frozen(tmp_path: Path) -> None:
    config = load_config(write_doc(tmp_path, MINIMAL), {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.destination.url = "nats://elsewhere:4222"  # type: ignore[misc]


# --------------------------------------------------------------------------
# One problem, with its exact key path and file name

CASES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    (
        "missing required key",
        lambda d: d["sources"][1].pop("cluster_id"),
        "sources[1].cluster_id: required key is missing",
    ),
    (
        "missing required section",
        lambda d: d.pop("destination"),
        "destination: required key is missing",
    ),
    (
        "wrong type",
        lambda d: d["destination"].update(max_outage="abc"),
        "destination.max_outage: must be a number of seconds greater than 0, got 'abc'",
    ),
    (
        "boolean is not a number",
        lambda d: d["destination"].update(connect_timeout=True),
        "destination.connect_timeout: must be a number of seconds greater than 0,"
        " got true",
    ),
    (
        "zero duration",
        lambda d: d["destination"].update(max_outage=0),
        "destination.max_outage: must be a number of seconds greater than 0, got 0",
    ),
    (
        "out of range",
        lambda d: d["sources"][0].update(max_in_flight=70000),
        "sources[0].max_in_flight: must be an integer from 1 to 65535, got 70000",
    ),
    (
        "float where whole seconds are needed",
        lambda d: d["sources"][0].update(ack_wait=1.5),
        "sources[0].ack_wait: must be a whole number of seconds from 1 to 31536000,"
        " got 1.5",
    ),
    (
        "unknown key with a hint",
        lambda d: d["sources"][0].update(clusterid="stan"),
        "sources[0].clusterid: unknown key (did you mean 'cluster_id'?)",
    ),
    (
        "unknown key that belongs elsewhere",
        lambda d: d["destination"].update(channels=["a"]),
        "destination.channels: unknown key (it belongs in 'sources[]';"
        " did you mean 'channel'?)",
    ),
    (
        "unknown top-level key",
        lambda d: d.update(source=[]),
        "source: unknown key (did you mean 'sources'?)",
    ),
    (
        "bad URL scheme",
        lambda d: d["destination"].update(url="http://127.0.0.1:4222"),
        "destination.url: must start with nats:// or tls://,"
        " got 'http://127.0.0.1:4222'",
    ),
    (
        "URL without host",
        lambda d: d["destination"].update(url="nats://:4222"),
        "destination.url: has no host, got 'nats://:4222'",
    ),
    (
        "URL with a bad port",
        lambda d: d["sources"][0].update(url="nats://h:99999"),
        "sources[0].url: has an invalid host or port, got 'nats://h:99999'",
    ),
    (
        "duplicate source names",
        lambda d: d["sources"][1].update(name="edge-1"),
        "sources[1].name: 'edge-1' is already the name of sources[0]",
    ),
    (
        "duplicate channels",
        lambda d: d["sources"][0].update(channels=["a", "b", "a"]),
        "sources[0].channels[2]: 'a' is listed twice (also at sources[0].channels[0])",
    ),
    (
        "empty channel list",
        lambda d: d["sources"][0].update(channels=[]),
        "sources[0].channels: must be a non-empty list of channel names,"
        " got an empty list",
    ),
    (
        "wildcard channel",
        lambda d: d["sources"][1].update(channels=["cyverse.>"]),
        "sources[1].channels[0]: must be a channel name: non-empty tokens separated"
        " by '.', without '*', '>', '/' or spaces, got 'cyverse.>'",
    ),
    (
        "empty sources",
        lambda d: d.update(sources=[]),
        "sources: must be a non-empty list of sources, got an empty list",
    ),
    (
        "one source without a list",
        lambda d: d.update(sources=d["sources"][0]),
        "sources: must be a non-empty list of sources, got a mapping"
        " (start each source with '- ')",
    ),
    (
        "a channel instead of a list",
        lambda d: d["sources"][0].update(channels="cyverse.events"),
        "sources[0].channels: must be a non-empty list of channel names,"
        " got 'cyverse.events' (write one item in brackets: [...])",
    ),
    (
        "source is not a mapping",
        lambda d: d["sources"].append("edge-3"),
        "sources[2]: must be a mapping of source settings, got 'edge-3'",
    ),
    (
        "sequence without start_sequence",
        lambda d: d["sources"][1].update(start_position="sequence"),
        "sources[1].start_sequence: is required when start_position is 'sequence'",
    ),
    (
        "start_time without position time",
        lambda d: d["sources"][1].update(start_time="2024-05-01T12:00:00Z"),
        "sources[1].start_time: is only used when start_position is 'time'"
        " (start_position is 'first')",
    ),
    (
        "bad start position with a hint",
        lambda d: d["sources"][0].update(start_position="frist"),
        "sources[0].start_position: must be one of 'first', 'new_only',"
        " 'last_received', 'sequence', 'time', got 'frist' (did you mean 'first'?)",
    ),
    (
        "bad RFC 3339 start_time",
        lambda d: d["sources"][0].update(
            start_position="time", start_time="2024-05-01 noon"
        ),
        "sources[0].start_time: must be an RFC 3339 date and time with an offset,"
        " such as 2024-05-01T12:00:00Z, got '2024-05-01 noon'",
    ),
    (
        "start_time without offset",
        lambda d: d["sources"][0].update(
            start_position="time", start_time="2024-05-01T12:00:00"
        ),
        "sources[0].start_time: must be an RFC 3339 date and time with an offset,"
        " such as 2024-05-01T12:00:00Z, got '2024-05-01T12:00:00'",
    ),
    (
        "impossible start_time",
        lambda d: d["sources"][0].update(
            start_position="time", start_time="2024-02-30T12:00:00Z"
        ),
        "sources[0].start_time: is not a valid date and time,"
        " got '2024-02-30T12:00:00Z'",
    ),
    (
        "durable name with a colon",
        lambda d: d["sources"][0].update(durable_name="a:b"),
        "sources[0].durable_name: must be a non-empty string without ':' or spaces,"
        " got 'a:b'",
    ),
    (
        "client ID with a dot",
        lambda d: d["destination"].update(client_id="agg.1"),
        "destination.client_id: must be a client ID of letters, digits, '_' and '-',"
        " got 'agg.1'",
    ),
    (
        "backoff max below initial",
        lambda d: d["sources"][0].update(
            reconnect={"initial_delay": 5, "max_delay": 2}
        ),
        "sources[0].reconnect.max_delay: must be at least initial_delay (5), got 2",
    ),
    (
        "jitter above 1",
        lambda d: d["sources"][0].update(reconnect={"jitter": 1.5}),
        "sources[0].reconnect.jitter: must be a number from 0 to 1, got 1.5",
    ),
    (
        "log level",
        lambda d: d.update(logging={"level": "verbose"}),
        "logging.level: must be one of 'DEBUG', 'INFO', 'WARNING', 'ERROR',"
        " got 'verbose'",
    ),
    (
        "listen without port",
        lambda d: d.update(http={"listen": "localhost"}),
        "http.listen: must be an address 'host:port' such as '127.0.0.1:9090',"
        " got 'localhost'",
    ),
    (
        "spec version written as a number",
        lambda d: d.update(validation={"specversions": [1.0]}),
        "validation.specversions[0]: must be one of '1.0', '0.3', got 1.0"
        " (write it as a quoted string: '1.0')",
    ),
    (
        "nesting depth too small",
        lambda d: d.update(validation={"max_nesting_depth": 3}),
        "validation.max_nesting_depth: must be an integer from 10 to 1000000, got 3",
    ),
    (
        "section of the wrong type",
        lambda d: d.update(forwarding=[1]),
        "forwarding: must be a mapping of forwarding settings, got a list",
    ),
    (
        "client ID used twice on one cluster",
        lambda d: d["sources"][1].update(url="nats://127.0.0.1:4223"),
        "sources[1].client_id: 'workflow-event-aggregator' is also the client ID of"
        " sources[0] on the same cluster; NATS Streaming allows one connection per"
        " client ID",
    ),
    (
        "forwarding loop",
        lambda d: d["sources"][0].update(url="nats://localhost", client_id="reader"),
        "sources[0].channels[0]: 'cyverse.events' is read from the destination's own"
        " cluster and forwarded back into it: events would loop forever",
    ),
    (
        "dead letters on a forwarded channel",
        lambda d: d.update(validation={"dead_letter_channel": "cyverse.events"}),
        "validation.dead_letter_channel: 'cyverse.events' is also where valid events"
        " are forwarded; invalid ones must go to another channel",
    ),
]


@pytest.mark.parametrize(
    ("change", "expected"),
    [pytest.param(change, expected, id=name) for name, change, expected in CASES],
)
def test_each_problem_names_the_file_and_key_path(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    path = write_doc(tmp_path, edited(change))
    assert problems_of(path) == [f"{path}: {expected}"]


def test_tls_files_must_exist_and_come_in_pairs(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x")
    (tmp_path / "cert.pem").write_text("x")

    def change(doc: dict[str, Any]) -> None:
        doc["destination"]["tls"] = {"ca_file": "missing.pem"}
        doc["sources"][0]["tls"] = {"ca_file": "ca.pem", "cert_file": "cert.pem"}
        doc["sources"][1]["tls"] = {"ca_file": str(tmp_path)}

    path = write_doc(tmp_path, edited(change))
    assert problems_of(path) == [
        f"{path}: destination.tls.ca_file: file not found: '{tmp_path}/missing.pem'",
        f"{path}: sources[0].tls.key_file: is required when cert_file is set",
        f"{path}: sources[1].tls.ca_file: not a regular file: '{tmp_path}'",
    ]


def test_relative_tls_files_are_taken_from_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_certificates(tmp_path / "conf")
    doc = edited(
        lambda d: d["destination"].update(
            tls={
                "ca_file": "ca.pem",
                "cert_file": "server.pem",
                "key_file": "server.key",
            }
        )
    )
    path = write_doc(tmp_path / "conf", doc)
    monkeypatch.chdir(tmp_path)
    tls = load_config(Path("conf/config.yml"), {}).destination.tls
    assert tls is not None
    assert tls.ca_file == tmp_path / "conf" / "ca.pem"
    assert tls.key_file == tmp_path / "conf" / "server.key"
    assert tls.insecure_skip_verify is False
    assert path.exists()


# --------------------------------------------------------------------------
# Problems of the file as a whole


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "destination:\n  url: nats://127.0.0.1:4222\n"
        "  cluster_id: [stan\nsources: []\n",
    )
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}: line 4, column 8: YAML syntax error: ")


def test_a_key_written_twice_is_an_error(tmp_path: Path) -> None:
    text = yaml.safe_dump(MINIMAL, sort_keys=False) + "sources: []\n"
    path = write(tmp_path, text)
    assert problems_of(path) == [
        f"{path}: line 15, column 1: key 'sources' appears twice in the same mapping"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "",
            "is empty; a config needs at least 'destination' and 'sources'",
            id="empty",
        ),
        pytest.param(
            "# nothing yet\n",
            "is empty; a config needs at least 'destination' and 'sources'",
            id="only-comments",
        ),
        pytest.param(
            "- destination\n- sources\n",
            "the top level must be a mapping of sections (destination, sources, ...),"
            " got a list",
            id="top-level-list",
        ),
        pytest.param(
            "destination\n",
            "the top level must be a mapping of sections (destination, sources, ...),"
            " got 'destination'",
            id="top-level-string",
        ),
    ],
)
def test_a_file_without_sections(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    assert problems_of(path) == [f"{path}: {expected}"]


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yml"
    assert problems_of(missing) == [f"{missing}: file not found"]
    assert problems_of(tmp_path) == [f"{tmp_path}: is a directory, not a config file"]
    binary = tmp_path / "binary.yml"
    binary.write_bytes(b"destination: \xff\n")
    assert problems_of(binary) == [
        f"{binary}: is not UTF-8 text (byte 0xff at offset 13)"
    ]


def test_an_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        below = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{below}]")
    path = write(tmp_path, "\n".join(lines) + "\n")
    assert problems_of(path) == [
        f"{path}: expands to more than 100000 values (through YAML aliases)"
    ]


def test_several_problems_are_reported_at_once(tmp_path: Path) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["destination"]["url"] = "nats:/missing-slash"
        doc["destination"]["max_outage"] = -1
        doc["sources"][0].pop("name")
        doc["sources"][1]["channels"] = ["a", "a"]
        doc["sources"][1]["colour"] = "blue"
        doc["logging"] = {"format": "xml"}

    path = write_doc(tmp_path, edited(change))
    problems = problems_of(path)
    assert [p.split(": ")[1] for p in problems] == [
        "destination.url",
        "destination.max_outage",
        "sources[0].name",
        "sources[1].colour",
        "sources[1].channels[1]",
        "logging.format",
    ]
    assert all(p.startswith(f"{path}: ") for p in problems)


# --------------------------------------------------------------------------
# ${VAR} substitution


def test_variables_are_substituted_in_values(tmp_path: Path) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["destination"]["url"] = "nats://agg:${CENTER_PASSWORD}@${CENTER}:4222"
        doc["sources"][0]["channels"] = ["${CHANNEL}", "literal.$${NOT_A_VAR}"]

    path = write_doc(tmp_path, edited(change))
    environ = {"CENTER_PASSWORD": "p4ss", "CENTER": "center.example", "CHANNEL": "c"}
    config = load_config(path, environ)
    assert config.destination.url == "nats://agg:p4ss@center.example:4222"
    assert config.sources[0].channels == ("c", "literal.${NOT_A_VAR}")
    assert config.secrets() == frozenset({"p4ss"})
    assert "p4ss" not in config.summary()
    assert "nats://agg:***@center.example:4222" in config.summary()


def test_os_environ_is_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGG_TEST_CLUSTER", "from-env")
    doc = edited(lambda d: d["destination"].update(cluster_id="${AGG_TEST_CLUSTER}"))
    config = load_config(write_doc(tmp_path, doc))
    assert config.destination.cluster_id == "from-env"


def test_a_missing_variable_names_it_and_the_key_path(tmp_path: Path) -> None:
    doc = edited(
        lambda d: d["sources"][1].update(url="nats://agg:${EDGE_PASSWORD}@edge:4333")
    )
    path = write_doc(tmp_path, doc)
    assert problems_of(path) == [
        f"{path}: sources[1].url: environment variable 'EDGE_PASSWORD' is not set"
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${OPEN", "has a '${' without a closing '}' (write '$${' for '${')"),
        (
            "${not-a-name}",
            "'${not-a-name}' is not a variable reference: a name is letters, digits"
            " and '_' (write '$${' for a literal '${')",
        ),
    ],
)
def test_malformed_references(tmp_path: Path, value: str, expected: str) -> None:
    path = write_doc(tmp_path, edited(lambda d: d["destination"].update(name=value)))
    assert problems_of(path) == [f"{path}: destination.name: {expected}"]


def test_keys_are_never_substituted(tmp_path: Path) -> None:
    doc = edited(lambda d: d["destination"].update({"${KEY}": 1}))
    path = write_doc(tmp_path, doc)
    assert problems_of(path, {"KEY": "name"}) == [
        f"{path}: destination['${{KEY}}']: unknown key; allowed here: name, url,"
        " cluster_id, client_id, channel, max_outage, connect_timeout,"
        " ping_interval, ping_max_out, publish_ack_wait, max_pending_publishes, tls"
    ]


def test_a_whole_value_variable_is_read_as_the_number_a_key_wants(
    tmp_path: Path,
) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["destination"].update(max_outage="${OUTAGE}", ping_max_out="${PINGS}")
        doc["sources"][0].update(cluster_id="${CLUSTER}")

    doc = edited(change)
    path = write_doc(tmp_path, doc)
    config = load_config(path, {"OUTAGE": "60", "PINGS": "4", "CLUSTER": "123"})
    assert config.destination.max_outage == 60.0
    assert config.destination.ping_max_out == 4
    # A string key keeps the text, digits or not.
    assert config.sources[0].cluster_id == "123"


def test_a_variable_that_is_not_a_number_is_reported_for_a_numeric_key(
    tmp_path: Path,
) -> None:
    doc = edited(lambda d: d["destination"].update(max_outage="${OUTAGE}"))
    path = write_doc(tmp_path, doc)
    assert problems_of(path, {"OUTAGE": "soon"}) == [
        f"{path}: destination.max_outage: must be a number of seconds greater"
        " than 0, got 'soon'"
    ]


def test_a_variable_inside_a_longer_value_stays_text(tmp_path: Path) -> None:
    doc = edited(lambda d: d["destination"].update(max_outage="1${ZERO}"))
    path = write_doc(tmp_path, doc)
    assert problems_of(path, {"ZERO": "0"}) == [
        f"{path}: destination.max_outage: must be a number of seconds greater"
        " than 0, got '10'"
    ]


# --------------------------------------------------------------------------
# Passwords never appear in errors


SECRET = "Hunter2-secret"


def test_a_password_is_not_echoed_in_a_url_error(tmp_path: Path) -> None:
    doc = edited(
        lambda d: d["destination"].update(url=f"http://agg:{SECRET}@center:4222")
    )
    path = write_doc(tmp_path, doc)
    assert problems_of(path) == [
        f"{path}: destination.url: must start with nats:// or tls://,"
        " got 'http://agg:***@center:4222'"
    ]


def test_a_password_is_not_echoed_anywhere(tmp_path: Path) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["destination"]["url"] = f"nats://agg:{SECRET}@center:bad"
        doc["sources"][0]["url"] = f"agg:{SECRET}@edge:4222"
        doc["sources"][1]["url"] = f"nats://{SECRET}@edge:0"  # a token
        doc["sources"][1]["cluster_id"] = f"nats://agg:{SECRET}@x"
        doc["sources"][1]["name"] = f"x {SECRET}"  # copied into a wrong key

    path = write_doc(tmp_path, edited(change))
    text = "\n".join(problems_of(path))
    assert SECRET not in text
    assert text.count("***") == 5


def test_a_password_is_not_echoed_in_a_yaml_error(tmp_path: Path) -> None:
    path = write(tmp_path, f"destination:\n  url: 'nats://a:{SECRET}@c\n")
    text = "\n".join(problems_of(path))
    assert "YAML syntax error" in text
    assert SECRET not in text


def test_a_substituted_password_is_not_echoed(tmp_path: Path) -> None:
    doc = edited(lambda d: d["sources"][0].update(url="tls://a:${PW}@edge:0"))
    path = write_doc(tmp_path, doc)
    (problem,) = problems_of(path, {"PW": SECRET})
    assert problem == (
        f"{path}: sources[0].url: has an invalid port: must be from 1 to 65535,"
        " got 'tls://a:***@edge:0'"
    )


# --------------------------------------------------------------------------
# The summary


def test_summary_lists_destination_sources_and_settings(tmp_path: Path) -> None:
    doc = edited(
        lambda d: d["destination"].update(url=f"nats://agg:{SECRET}@center:4222")
    )
    doc["http"] = {"listen": "127.0.0.1:9090"}
    summary = load_config(write_doc(tmp_path, doc), {}).summary()
    assert SECRET not in summary
    for expected in (
        "destination central: nats://agg:***@center:4222",
        "source edge-1: nats://127.0.0.1:4223",
        "source edge-2: nats://127.0.0.1:4333",
        "channels: cyverse.events",
        "queue size 1000",
        "http: listening on 127.0.0.1:9090",
        "specversions 1.0, 0.3",
    ):
        assert expected in summary


def test_load_config_returns_a_config(tmp_path: Path) -> None:
    assert isinstance(load_config(str(write_doc(tmp_path, MINIMAL)), {}), Config)


# --------------------------------------------------------------------------
# redact


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
        ("nats://alice:s3cret@host:4222", "nats://alice:***@host:4222"),
        ("tls://alice:@host", "tls://alice:***@host"),
        ("nats://t0ken@host:4222", "nats://***@host:4222"),
        ("nats://a:p@ss@host", "nats://a:***@host"),
        ("nats://a:pa/ss@host", "nats://a:***@host"),
        ("nats://a:b@h1,nats://c:d@h2", "nats://a:***@h1,nats://c:***@h2"),
        ("nats://h1:4222, nats://t@[::1]", "nats://h1:4222, nats://***@[::1]"),
        ("nats://a:x,nats://@host", "nats://a:***@host"),
        ("a:b@host:4222", "a:***@host:4222"),
        ("nats://@host", "nats://@host"),
        ("nats://us/er:pw@host", "nats://***@host"),
        ("", ""),
        ("@", "@"),
        ("://:@", "***@"),
        ("not a url", "not a url"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


_USER = st.text(
    alphabet=st.characters(blacklist_characters=":/?#@[] \t\r\n"), min_size=1
)


@given(user=_USER, password=st.text(min_size=1))
def test_redact_url_hides_any_password(user: str, password: str) -> None:
    redacted = redact_url(f"nats://{user}:{password}@host:4222")
    assert redacted == f"nats://{user}:***@host:4222"


@given(text=st.text())
def test_redact_url_never_raises(text: str) -> None:
    assert isinstance(redact_url(text), str)
    assert isinstance(redact_text(text, [text[:3]]), str)


def test_redact_text() -> None:
    text = "connect to nats://a:pw1@h failed: bad password 'long-secret'"
    assert redact_text(text, ["long-secret", "", "long"]) == (
        "connect to nats://a:***@h failed: bad password '***'"
    )


def test_url_secrets() -> None:
    assert url_secrets("nats://a:p%40ss@h") == ["p%40ss", "p@ss"]
    assert url_secrets("nats://tok@h,nats://h2") == ["tok"]
    assert url_secrets("nats://h") == []


def test_tls_files_are_loaded_as_the_connection_will(tmp_path: Path) -> None:
    pki = make_certificates(tmp_path / "pki")

    def change(doc: dict[str, Any]) -> None:
        # A key where the CA certificates belong; a certificate with the
        # wrong key.
        doc["destination"]["tls"] = {"ca_file": str(pki / "ca.key")}
        doc["sources"][0]["tls"] = {
            "cert_file": str(pki / "server.pem"),
            "key_file": str(pki / "ca.key"),
        }

    path = write_doc(tmp_path, edited(change))
    problems = problems_of(path)
    assert len(problems) == 2
    assert problems[0].startswith(
        f"{path}: destination.tls.ca_file: is not a PEM file of CA certificates"
    )
    assert problems[1].startswith(
        f"{path}: sources[0].tls.cert_file: and key_file are not a matching"
    )


def test_an_ipv6_url_is_refused_since_the_connection_is_ipv4_only(
    tmp_path: Path,
) -> None:
    doc = edited(lambda d: d["destination"].update(url="nats://[::1]:4222"))
    path = write_doc(tmp_path, doc)
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: destination.url: has an IPv6 address")


def test_max_outage_must_outlast_the_detection_of_a_loss(tmp_path: Path) -> None:
    doc = edited(
        lambda d: d["destination"].update(
            max_outage=10, ping_interval=5, ping_max_out=3
        )
    )
    path = write_doc(tmp_path, doc)
    assert problems_of(path) == [
        f"{path}: destination.max_outage: must be longer than the time a lost"
        " destination takes to be noticed, ping_interval x (ping_max_out + 1)"
        " = 20 s; got 10"
    ]
