"""The deployment files: Dockerfile, docker-compose.local.yml, systemd, Grafana.

No Docker engine and no systemd run where the tests run, so these tests read
the files the way those tools would and check what matters: the image runs
the aggregator as a non-root user with only the runtime dependencies, the
compose setup wires stan1/stan2/stan3 and a config that passes ``--check``,
the systemd unit restarts, stops and sandboxes the service as documented,
and every dashboard query names metrics the aggregator really exports.
"""

import importlib.metadata
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from prometheus_client.metrics import MetricWrapperBase

from event_aggregator.config import load_config
from event_aggregator.metrics import Metrics

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
COMPOSE = REPO / "docker-compose.local.yml"
UNIT = REPO / "deploy" / "systemd" / "workflow-event-aggregator.service"
DASHBOARD = REPO / "deploy" / "grafana" / "workflow-event-aggregator.json"

STAN_IMAGE = "nats-streaming:0.25.6"
CLUSTER_ID = "stan"
CONFIG_IN_IMAGE = "/config/config.yml"
SERVICE_USER = "workflow-event-aggregator"


# --- Dockerfile -----------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments out."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, arguments = full.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    assert not pending, "the Dockerfile ends in a continuation line"
    return instructions


def arguments_of(keyword: str) -> list[str]:
    return [args for key, args in dockerfile_instructions() if key == keyword]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for arguments in arguments_of("ENV"):
        for word in shlex.split(arguments):
            name, equals, value = word.partition("=")
            assert equals, f"use ENV NAME=value: {arguments}"
            env[name] = value
    return env


def test_dockerfile_uses_a_pinned_slim_python_311() -> None:
    (base,) = arguments_of("FROM")
    assert base == "python:3.11-slim"


def test_dockerfile_installs_only_requirements_txt_without_cache() -> None:
    pip_runs = [args for args in arguments_of("RUN") if "pip" in args]
    assert len(pip_runs) == 1, pip_runs
    words = shlex.split(pip_runs[0])
    assert words[:3] == ["pip", "install", "--no-cache-dir"], words
    assert words[3:] == ["-r", "requirements.txt"], words
    assert not any("requirements-dev" in args for args in arguments_of("COPY"))


def test_dockerfile_copies_the_code_and_not_the_tests() -> None:
    copied: set[str] = set()
    for arguments in arguments_of("COPY"):
        *sources, _destination = shlex.split(arguments)
        assert not any(s.startswith("--") for s in sources), arguments
        copied.update(source.rstrip("/") for source in sources)
    assert copied == {
        "requirements.txt",
        "aggregator.py",
        "event_aggregator",
        "stan_client",
    }
    assert not arguments_of("ADD")


def test_dockerfile_runs_the_aggregator_as_a_non_root_user() -> None:
    instructions = dockerfile_instructions()
    keywords = [keyword for keyword, _ in instructions]
    users = arguments_of("USER")
    assert users, "no USER: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    # The user is created in the image, and switched to after the installs.
    assert any(
        "useradd" in args and re.search(rf"\b{re.escape(user)}\b", args)
        for args in arguments_of("RUN")
    )
    last_user = len(keywords) - 1 - keywords[::-1].index("USER")
    assert "RUN" not in keywords[last_user:], "commands run after USER as that user"
    (command,) = arguments_of("CMD")
    assert json.loads(command) == ["python", "aggregator.py", CONFIG_IN_IMAGE]


def test_dockerfile_health_check_asks_healthz_with_python() -> None:
    (check,) = arguments_of("HEALTHCHECK")
    options, _, command = check.partition("CMD ")
    assert command, "HEALTHCHECK without CMD"
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"], argv
    assert "urllib.request" in argv[2]
    assert "/healthz" in argv[2]
    assert "HEALTHCHECK_PORT" in argv[2]
    assert "curl" not in check
    assert "wget" not in check
    assert "--timeout=" in options
    assert dockerfile_env()["HEALTHCHECK_PORT"] == "9090"


def test_dockerignore_keeps_local_state_out_of_the_build() -> None:
    patterns = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".local", "tests", ".git"} <= patterns


def _allowed_distributions() -> set[str]:
    """requirements.txt and everything they depend on, as pip would install."""
    wanted = [
        Requirement(line.split("#")[0].strip())
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    allowed: set[str] = set()
    while wanted:
        requirement = wanted.pop()
        name = canonicalize_name(requirement.name)
        if name in allowed:
            continue
        allowed.add(name)
        for text in importlib.metadata.requires(requirement.name) or []:
            dependency = Requirement(text)
            if dependency.marker is None or dependency.marker.evaluate({"extra": ""}):
                wanted.append(dependency)
    return allowed


@pytest.mark.timeout(60)
def test_the_files_the_image_copies_are_enough_to_run(tmp_path: Path) -> None:
    """Lay out /app as the Dockerfile does and run ``--check`` from there.

    The run imports the whole aggregator (the command line imports the
    service); every third-party module it loads must come from
    requirements.txt or its dependencies, so the image's one pip install is
    enough.
    """
    app = tmp_path / "app"
    app.mkdir()
    for arguments in arguments_of("COPY"):
        *sources, _ = shlex.split(arguments)
        for source in sources:
            path = REPO / source
            if path.is_dir():
                shutil.copytree(
                    path, app / path.name, ignore=shutil.ignore_patterns("__pycache__")
                )
            else:
                shutil.copy(path, app / path.name)
    config = app / "config.yml"
    shutil.copy(REPO / "deploy" / "compose" / "config.yml", config)
    probe = (
        "import json, runpy, sys\n"
        "sys.argv = ['aggregator.py', '--check', 'config.yml']\n"
        "try:\n"
        "    runpy.run_path('aggregator.py', run_name='__main__')\n"
        "except SystemExit as stop:\n"
        "    code = stop.code\n"
        "import event_aggregator\n"
        "files = {name: getattr(module, '__file__', None)\n"
        "         for name, module in list(sys.modules.items()) if '.' not in name}\n"
        "print(json.dumps({'code': code, 'files': files,\n"
        "                  'package': event_aggregator.__file__}))\n"
    )
    (app / "probe.py").write_text(probe)
    result = subprocess.run(
        [sys.executable, "-s", "probe.py"],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["code"] == 0, result.stdout
    assert Path(report["package"]).is_relative_to(app), report["package"]

    # Installed packages live in site-packages; the rest is the standard
    # library, built-in modules, or our own code in /app.
    third_party = {
        name
        for name, file in report["files"].items()
        if file and "site-packages" in Path(file).parts
    }
    assert "yaml" in third_party, "the probe saw no installed package"
    owners = importlib.metadata.packages_distributions()
    allowed = _allowed_distributions()
    for module in sorted(third_party):
        distributions = {canonicalize_name(d) for d in owners.get(module, [])}
        assert distributions, f"{module} is imported but belongs to no distribution"
        assert distributions & allowed, (
            f"{module} (from {sorted(distributions)}) is not in requirements.txt "
            "or its dependencies: the image would lack it"
        )


# --- docker-compose.local.yml ---------------------------------------------------


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def published(service: dict[str, Any]) -> dict[int, int]:
    """Container port -> host port, from "host:container" or "ip:host:container"."""
    ports: dict[int, int] = {}
    for entry in service.get("ports", []):
        parts = str(entry).split(":")
        assert len(parts) in (2, 3), entry
        ports[int(parts[-1])] = int(parts[-2])
    return ports


def command_words(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else list(command)


def option(words: list[str], *names: str) -> str:
    for index, word in enumerate(words):
        if word in names:
            return words[index + 1]
    raise AssertionError(f"none of {names} in {words}")


def depends_on(service: dict[str, Any]) -> set[str]:
    dependencies = service.get("depends_on", [])
    return set(dependencies)


def test_compose_has_the_seeds_services() -> None:
    services = compose()["services"]
    assert set(services) == {"stan1", "stan2", "stan3", "aggregator", "stan_sub"}


def test_compose_stan_servers_use_the_official_image_and_file_stores() -> None:
    document = compose()
    services = document["services"]
    volumes_used = []
    for name in ("stan1", "stan2", "stan3"):
        service = services[name]
        assert service["image"] == STAN_IMAGE
        words = command_words(service)
        assert option(words, "--cluster_id", "-cid") == CLUSTER_ID
        assert option(words, "--store", "-st").upper() == "FILE"
        store = option(words, "--dir")
        (volume,) = service["volumes"]
        source, target = volume.split(":")[:2]
        assert target == store, f"{name} stores outside its volume"
        assert source in document["volumes"], f"{source} is not a named volume"
        volumes_used.append(source)
        # Only the client port is published; 4222 inside each container.
        assert set(published(service)) == {4222}, service.get("ports")
    assert len(set(volumes_used)) == 3, "each server needs its own store"
    assert published(services["stan2"])[4222] == 4222
    assert published(services["stan3"])[4222] == 4333
    assert published(services["stan1"])[4222] not in (4222, 4333)


def test_compose_aggregator_is_built_here_and_gets_the_checked_config() -> None:
    services = compose()["services"]
    aggregator = services["aggregator"]
    build = aggregator["build"]
    assert (REPO / build["context"] / build.get("dockerfile", "Dockerfile")).samefile(
        DOCKERFILE
    )
    # The image's own command runs it; nothing overrides it.
    assert "command" not in aggregator
    assert "entrypoint" not in aggregator
    mounts = {}
    for volume in aggregator["volumes"]:
        source, target, *_ = volume.split(":")
        mounts[target] = source
    config = (REPO / mounts[CONFIG_IN_IMAGE]).resolve()
    assert config.is_relative_to(REPO / "deploy")
    assert depends_on(aggregator) == {"stan1", "stan2", "stan3"}
    assert aggregator["restart"] == "on-failure"
    assert published(aggregator) == {9090: 9090}

    loaded = load_config(config)
    assert loaded.destination.url == "nats://stan1:4222"
    assert loaded.destination.cluster_id == CLUSTER_ID
    assert {(s.url, s.cluster_id) for s in loaded.sources} == {
        ("nats://stan2:4222", CLUSTER_ID),
        ("nats://stan3:4222", CLUSTER_ID),
    }
    assert loaded.logging.format == "json"
    # The health check and the published port reach it from outside.
    assert loaded.http.listen == "0.0.0.0:9090"
    assert str(loaded.http.port) == dockerfile_env()["HEALTHCHECK_PORT"]

    # Names resolve only inside compose; --check does not need them to.
    check = subprocess.run(
        [sys.executable, str(REPO / "aggregator.py"), "--check", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert "configuration OK" in check.stdout


def test_compose_stan_sub_prints_what_reaches_stan1() -> None:
    services = compose()["services"]
    subscriber = services["stan_sub"]
    assert subscriber["build"] == services["aggregator"]["build"]
    words = command_words(subscriber)
    assert words[:5] == ["python", "-m", "stan_client", "sub", "-s"], words
    assert option(words, "-s", "--server") == "nats://stan1:4222"
    assert option(words, "-c", "--cluster") == CLUSTER_ID
    assert "--all" in words
    config = load_config(REPO / "deploy" / "compose" / "config.yml")
    channels = {channel for source in config.sources for channel in source.channels}
    assert words[-1] in channels
    assert "stan1" in depends_on(subscriber)


# --- systemd unit ---------------------------------------------------------------


def unit_sections() -> dict[str, dict[str, list[str]]]:
    """Section -> key -> every value the key was given, in order."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        assert not line.endswith("\\"), "keep unit lines unbroken"
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        assert current is not None, f"a key before any section: {line}"
        key, equals, value = line.partition("=")
        assert equals, f"not a key=value line: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|sec|min|m)?", value)
    assert match, f"unexpected duration {value!r}"
    number = float(match.group(1))
    return number * 60 if match.group(2) in ("min", "m") else number


def test_systemd_unit_runs_the_aggregator_as_its_own_user() -> None:
    service = unit_sections()["Service"]
    assert service["User"] == [SERVICE_USER]
    assert service["Group"] == [SERVICE_USER]
    (exec_start,) = service["ExecStart"]
    assert shlex.split(exec_start) == [
        "/opt/workflow-event-aggregator/.venv/bin/python",
        "/opt/workflow-event-aggregator/aggregator.py",
        "/etc/workflow-event-aggregator/config.yml",
    ]
    assert service["WorkingDirectory"] == ["/opt/workflow-event-aggregator"]
    assert service["EnvironmentFile"] == ["-/etc/workflow-event-aggregator/env"]
    assert unit_sections()["Install"]["WantedBy"] == ["multi-user.target"]


def test_systemd_unit_restarts_with_backoff_and_stops_in_bounded_time() -> None:
    service = unit_sections()["Service"]
    assert service["Restart"] == ["on-failure"]
    # A config error (exit 2) is not retried; exit 1 (long outage) is.
    assert service["RestartPreventExitStatus"] == ["2"]
    restart_sec = seconds(service["RestartSec"][0])
    assert restart_sec >= 1
    assert seconds(service["RestartMaxDelaySec"][0]) > restart_sec
    assert int(service["RestartSteps"][0]) >= 1
    assert service["KillSignal"] == ["SIGTERM"]
    # Longer than the default shutdown_timeout plus time to close connections.
    example = yaml.safe_load((REPO / "config.example.yml").read_text())
    shutdown_timeout = float(example["forwarding"]["shutdown_timeout"])
    stop = seconds(service["TimeoutStopSec"][0])
    assert shutdown_timeout + 10 <= stop <= 120
    assert service["StandardOutput"] == ["journal"]
    assert service["StandardError"] == ["journal"]


def test_systemd_unit_is_sandboxed() -> None:
    service = unit_sections()["Service"]
    expected = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "RestrictSUIDSGID": "yes",
        "CapabilityBoundingSet": "",
    }
    for key, value in expected.items():
        assert service.get(key) == [value], key
    families = service["RestrictAddressFamilies"][0].split()
    assert set(families) == {"AF_INET", "AF_INET6", "AF_UNIX"}


def _unit_for_this_machine(tmp_path: Path) -> Path:
    """The unit with its /opt paths pointed at this checkout and virtualenv.

    ``systemd-analyze verify`` checks that ExecStart's program exists;
    everything else is left as shipped.
    """
    text = UNIT.read_text()
    text = text.replace(
        "/opt/workflow-event-aggregator/.venv/bin/python", sys.executable
    )
    text = text.replace("/opt/workflow-event-aggregator/", f"{REPO}/")
    copy = tmp_path / UNIT.name
    copy.write_text(text)
    return copy


# Keys of systemd >= 254; older versions warn about them and go on.
_NEWER_KEYS = ("RestartSteps", "RestartMaxDelaySec")


@pytest.mark.timeout(60)
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed; the unit was parsed only")
    unit = _unit_for_this_machine(tmp_path)
    result = subprocess.run(
        [analyze, "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip()
        and not any(f"Unknown key '{key}'" in line for key in _NEWER_KEYS)
        and not any(f"Unknown key name '{key}'" in line for key in _NEWER_KEYS)
    ]
    assert result.returncode == 0, result.stderr
    assert not problems, problems


@pytest.mark.timeout(60)
def test_systemd_analyze_security_rates_the_unit_ok(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = _unit_for_this_machine(tmp_path)
    result = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if "offline" in result.stderr and result.returncode != 0:
        pytest.skip(f"this systemd-analyze has no --offline: {result.stderr.strip()}")
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout[-2000:] + result.stderr
    # 0 is fully locked down, 10 is unprotected; "OK" is up to 2.9 or so.
    assert float(match.group(1)) <= 2.0, result.stdout[-3000:]


# --- Grafana dashboard ----------------------------------------------------------

# PromQL functions and aggregations the dashboard may use.
_PROMQL_FUNCTIONS = {
    "rate",
    "irate",
    "increase",
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "histogram_quantile",
    "label_values",
    "clamp_min",
}
_PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "and", "or", "unless", "offset"}
# Labels that Prometheus adds to every scraped series.
_TARGET_LABELS = {"instance", "job"}


def exported_series() -> dict[str, set[str]]:
    """Sample names of a real registry, with their label names.

    Labelled metrics have no samples until a label set is used, so each one
    gets a dummy label set first; then ``collect()`` shows every name the
    aggregator can export (``_total``, ``_bucket``, ``_sum``, ``_count``...).
    """
    metrics = Metrics()
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase) and metric._labelnames:
            metric.labels(*["x"] * len(metric._labelnames))
    series: dict[str, set[str]] = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


def exported_families() -> set[str]:
    return {family.name for family in Metrics().registry.collect()}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> list[dict[str, Any]]:
    found = []
    for panel in dashboard()["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def queries() -> list[tuple[str, str, str]]:
    """(panel title, expr, legend format) of every query, variables included."""
    found = [
        (panel["title"], target["expr"], target.get("legendFormat", ""))
        for panel in panels()
        for target in panel.get("targets", [])
    ]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            found.append((f"variable {variable['name']}", text, ""))
    return found


def parse_promql(expr: str) -> tuple[set[str], set[str], set[str]]:
    """(metric names, label names, functions) in a PromQL expression.

    A small reader, enough for dashboard queries: it drops strings and range
    durations, takes the label names from ``{...}`` matchers and
    ``by``/``without`` clauses, and calls every other identifier followed
    by ``(`` a function and the rest metric names.
    """
    label_names: set[str] = set()
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\[[^\]]*\]", "", text)
    for matchers in re.findall(r"\{([^}]*)\}", text):
        label_names.update(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    text = re.sub(r"\{[^}]*\}", " ", text)
    for clause in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", text):
        label_names.update(name.strip() for name in clause.split(",") if name.strip())
    text = re.sub(r"\b(?:by|without)\s*\([^)]*\)", " ", text)
    # label_values(metric, label): the second argument is a label.
    for label in re.findall(r"label_values\([^,]*,\s*(\w+)\s*\)", text):
        label_names.add(label)
        text = text.replace(label, " ")
    metrics: set[str] = set()
    functions: set[str] = set()
    for match in re.finditer(r"\b([A-Za-z_:][\w:]*)\b(\s*\()?", text):
        name = match.group(1)
        if match.group(2):
            functions.add(name)
        elif name not in _PROMQL_KEYWORDS and not re.fullmatch(r"\d\w*", name):
            metrics.add(name)
    return metrics, label_names, functions


def test_parse_promql_reads_names_labels_and_functions() -> None:
    metrics, label_names, functions = parse_promql(
        'histogram_quantile(0.9, sum by (le, source) (rate(a_bucket{instance=~"$i",'
        ' x!="y"}[$__rate_interval]))) / sum(b_total)'
    )
    assert metrics == {"a_bucket", "b_total"}
    assert label_names == {"le", "source", "instance", "x"}
    assert functions == {"histogram_quantile", "sum", "rate"}


def test_dashboard_is_a_grafana_dashboard_with_a_prometheus_datasource() -> None:
    document = dashboard()
    for key in ("title", "uid", "schemaVersion", "panels", "templating"):
        assert key in document, key
    variables = {v["name"]: v for v in document["templating"]["list"]}
    datasource = [v for v in variables.values() if v["type"] == "datasource"]
    assert len(datasource) == 1
    assert datasource[0]["query"] == "prometheus"
    reference = "${" + datasource[0]["name"] + "}"
    ids = [panel["id"] for panel in panels()]
    assert len(ids) == len(set(ids))
    for panel in panels():
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": reference}
        assert panel["targets"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]


def test_dashboard_queries_name_only_exported_metrics_and_labels() -> None:
    series = exported_series()
    for title, expr, legend in queries():
        metrics, label_names, functions = parse_promql(expr)
        assert metrics, f"{title}: no metric in {expr}"
        unknown = metrics - set(series)
        assert not unknown, f"{title}: {sorted(unknown)} are not exported ({expr})"
        assert functions <= _PROMQL_FUNCTIONS, f"{title}: {functions} in {expr}"
        known_labels = set().union(*(series[m] for m in metrics)) | _TARGET_LABELS
        assert label_names <= known_labels, f"{title}: labels {label_names} ({expr})"
        in_legend = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
        assert in_legend <= label_names, f"{title}: legend {legend} ({expr})"


def test_dashboard_shows_every_exported_family() -> None:
    used = set()
    for _, expr, _ in queries():
        used |= parse_promql(expr)[0]
    suffixes = ("_total", "_bucket", "_sum", "_count", "_created")
    used_families = {
        next((name[: -len(s)] for s in suffixes if name.endswith(s)), name)
        for name in used
    }
    missing = exported_families() - used_families
    assert not missing, f"no panel shows {sorted(missing)}"


def test_dashboard_has_the_operators_views() -> None:
    expressions = [expr for _, expr, _ in queries()]

    def some(pattern: str) -> bool:
        return any(re.search(pattern, expr) for expr in expressions)

    assert some(r"sum by \(source\) \(rate\(aggregator_events_forwarded_total")
    assert some(r"by \([^)]*reason[^)]*\) \(rate\(aggregator_events_invalid_total")
    assert some(r"histogram_quantile\(.*aggregator_forward_lag_seconds_bucket")
    assert some(r"histogram_quantile\(.*aggregator_publish_seconds_bucket")
    assert some(r"aggregator_source_connected")
    assert some(r"aggregator_destination_connected")
    assert some(r"aggregator_destination_outage_seconds")


# --- README ---------------------------------------------------------------------


def test_readme_metrics_table_matches_the_registry() -> None:
    readme = (REPO / "README.md").read_text()
    operating = readme.split("\n## Operating\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(
        r"^\| (counter|gauge|histogram) \| `(\w+)` \|([^|]*)\| .+ \|$",
        operating,
        re.MULTILINE,
    )
    table = {
        name: (kind, set(re.findall(r"`(\w+)`", label_cell)))
        for kind, name, label_cell in rows
    }
    series = exported_series()
    expected = {}
    for family in Metrics().registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        sample = name + ("_count" if family.type == "histogram" else "")
        expected[name] = (family.type, series[sample] - {"le"})
    assert table == expected
