"""README's first command: the local setup shows an event forwarded, one refused."""

import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.support.aggregator import REPO
from tests.support.ports import accepts_connections, free_ports
from tests.support.waiting import wait_until


@pytest.mark.timeout(120)
def test_local_setup_forwards_the_example_and_refuses_the_invalid_one(
    tmp_path: Path,
) -> None:
    central_port, edge_port_1, edge_port_2 = free_ports(3)
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "local_setup.py"),
            "--central-port",
            str(central_port),
            "--edge-ports",
            str(edge_port_1),
            str(edge_port_2),
            "--workdir",
            str(tmp_path / "demo"),
            "--exit-after-demo",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=100,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    received = [
        line for line in output.splitlines() if line.startswith("[stan1 received] [#")
    ]
    assert len(received) == 1, output
    assert "org.cyverse.analysis.status.changed" in received[0]
    assert "missing_id" in output
    assert "the example event reached stan1" in output


@pytest.mark.timeout(120)
def test_closing_the_terminal_stops_every_process_the_local_setup_started(
    tmp_path: Path,
) -> None:
    """SIGHUP, as a closed terminal sends, must not leave the servers behind.

    The children run in sessions of their own, so the terminal's hang-up
    reaches only the script, which must stop them itself.
    """
    ports = free_ports(3)
    workdir = tmp_path / "demo"
    log_path = tmp_path / "local-setup.log"
    with log_path.open("wb") as log:
        setup = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "scripts" / "local_setup.py"),
                "--central-port",
                str(ports[0]),
                "--edge-ports",
                str(ports[1]),
                str(ports[2]),
                "--workdir",
                str(workdir),
            ],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: "press Ctrl-C" in log_path.read_text(errors="replace"),
            90,
            message="the local setup is up",
        )
        setup.send_signal(signal.SIGHUP)
        setup.wait(timeout=30)
        wait_until(
            lambda: not any(accepts_connections(port) for port in ports),
            15,
            message="every server stopped",
        )
    finally:
        if setup.poll() is None:
            setup.kill()
        for process in psutil.process_iter(["cmdline"]):
            if str(workdir) in " ".join(process.info["cmdline"] or []):
                process.kill()
