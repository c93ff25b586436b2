"""The README's promises that code can check: commands, reason codes."""

import re

import pytest

from event_aggregator.validation import REASONS
from tests.support.aggregator import REPO

README = (REPO / "README.md").read_text()


@pytest.mark.timeout(10)
def test_readme_lists_every_reason_code_with_its_description() -> None:
    table = dict(re.findall(r"^\| `([a-z_0-9]+)` \| (.+) \|$", README, re.MULTILINE))
    assert table == dict(REASONS)


@pytest.mark.timeout(10)
def test_readme_states_the_two_commands_and_ci_runs_the_test_one() -> None:
    assert "scripts/local-setup" in README
    assert "scripts/test" in README
    ci = (REPO / ".ci" / "run").read_text()
    assert "scripts/test" in ci
