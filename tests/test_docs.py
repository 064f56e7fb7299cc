"""Docs that must match the code: the state diagram, config reference, fault list, commands."""
from __future__ import annotations

import re

from controller.config import NUMERIC_BOUNDS, default_values
from controller.diagram import markdown
from controller.machine import STATE_NAMES
from sim.faults import FAULTS
from sim.runner import TRACE_COLUMNS
from tests.conftest import ROOT, SCENARIOS

README = (ROOT / "README.md").read_text()


def test_state_machine_doc_is_generated_from_the_code() -> None:
    doc = (ROOT / "docs" / "state-machine.md").read_text()
    assert doc == markdown(), "stale: run `invtable diagram --markdown > docs/state-machine.md`"


def test_readme_quick_start_is_the_two_make_commands() -> None:
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"^make \w+", quick, flags=re.M) == ["make demo", "make test"]


def test_readme_documents_every_config_key_with_its_default() -> None:
    for key, value in default_values().items():
        assert f"`{key}`" in README, key
        if key in NUMERIC_BOUNDS:
            assert re.search(rf"`{re.escape(key)}` \| {value:g} \|", README), key


def test_readme_documents_every_trace_column_state_and_fault() -> None:
    for column in TRACE_COLUMNS:
        assert f"`{column}`" in README, column
    for state in STATE_NAMES + ["power_off"]:
        assert f"`{state}`" in README, state
    for fault in FAULTS:
        assert f"`{fault}`" in README, fault


def test_every_example_scenario_is_listed_in_the_readme() -> None:
    for path in SCENARIOS.glob("*.toml"):
        assert f"sim/scenarios/{path.name}" in README, path.name
        assert path.read_text().startswith("#"), f"{path.name} should open with a comment saying what it shows"


def test_every_cli_command_is_in_the_readme() -> None:
    for cmd in ("invtable demo", "invtable sim", "invtable run", "invtable config check", "invtable diagram"):
        assert cmd in README, cmd
