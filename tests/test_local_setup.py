"""README's first command: the local setup shows an event forwarded, one refused."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.aggregator import REPO
from tests.support.ports import free_ports


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
