"""Docs that must match the code: the state diagram, config reference, fault list, commands."""

from __future__ import annotations

import re

from controller.app.diagram import markdown
from controller.core.config import NUMERIC_BOUNDS, default_values
from controller.core.machine import STATE_NAMES
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
    hardware_doc = (ROOT / "docs" / "hardware.md").read_text()
    for key, value in default_values().items():
        if key.startswith("hardware.gpio."):  # the pin map lives with the wiring
            assert f"`{key}`" in hardware_doc, key
            continue
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
        assert path.read_text().startswith("#"), (
            f"{path.name} should open with a comment saying what it shows"
        )


def test_every_cli_command_is_in_the_readme() -> None:
    for cmd in (
        "invtable demo",
        "invtable sim",
        "invtable run",
        "invtable config check",
        "invtable diagram",
        "invtable io",
        "invtable install-service",
        "--backend gpio-mock",
        "make install-pi",
        "invtable user add",
        "invtable session start",
        "invtable history",
        "invtable report",
        "invtable program list",
        "invtable bench",
    ):
        assert cmd in README, cmd


def test_readme_command_list_names_every_registered_command() -> None:
    """The README's command table follows the parser the commands register (issue 14)."""
    import argparse

    from controller.app.cli import build_parser

    table = README.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    rows = {
        line.split("`")[1].split()[1]: line
        for line in table.splitlines()
        if line.startswith("| `invtable ")
    }
    top = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(rows) == set(top.choices)
    for name, parser in top.choices.items():
        for sub in parser._actions:
            if isinstance(sub, argparse._SubParsersAction):
                for subname in sub.choices:
                    assert subname in re.findall(r"[\w-]+", rows[name].split("|")[1]), subname


def _test_exists(node_id: str) -> bool:
    """A pytest node id names a real test: the file, the function, and for the fault matrix
    a real fault and phase (other parametrised ids are checked against collection)."""
    import ast

    path, _, rest = node_id.partition("::")
    func, _, param = rest.partition("[")
    file = ROOT / path
    if not file.exists():
        return False
    tree = ast.parse(file.read_text())
    names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    names |= {
        t.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    if func not in names:
        return False
    if param and func == "test_fault_matrix":
        from tests.test_fault_matrix import PHASES

        fault, _, phase = param.rstrip("]").rpartition("-")
        return fault in FAULTS and phase in PHASES
    if param and func == "test_never_faster_than_the_state_speed_limit":
        return (SCENARIOS / f"{param.rstrip(']')}.toml").exists()
    if param and func == "test_broken_wires_read_as_the_unsafe_condition":
        return param.split("-")[0] in FAULTS
    return not param


def test_every_hazard_row_names_tests_that_exist() -> None:
    doc = (ROOT / "docs" / "safety.md").read_text()
    rows = [ln for ln in doc.splitlines() if re.match(r"\| H\d+ \|", ln)]
    assert len(rows) >= 20
    for row in rows:
        ids = re.findall(r"`((?:firmware/)?tests/[^`]+)`", row.rsplit("|", 2)[-2])
        assert ids, f"hazard row names no test: {row[:60]}"
        for node_id in ids:
            assert _test_exists(node_id), f"{row.split('|')[1].strip()}: no such test {node_id}"


def test_the_safety_case_covers_every_fault_and_design_behaviour() -> None:
    doc = (ROOT / "docs" / "safety.md").read_text()
    for fault in FAULTS:
        assert f"`{fault}`" in doc, fault
    for behaviour in (
        "Interlocks before motion",
        "Hold-to-run jog",
        "Program session",
        "Session time limit",
        "Emergency return",
        "E-stop",
        "Faults",
        "Power loss and restart",
        "Ramp limits everywhere",
    ):
        assert behaviour in doc, behaviour


def test_hardware_doc_wiring_is_generated_from_the_pin_map() -> None:
    from hal.gpio.wiring import wiring_markdown

    doc = (ROOT / "docs" / "hardware.md").read_text()
    block = doc.split("<!-- wiring:begin -->\n", 1)[1].split("<!-- wiring:end -->", 1)[0]
    assert block == wiring_markdown(), "stale: regenerate with `python -m hal.gpio.wiring`"


def test_readme_states_the_trace_buffers_the_code_has() -> None:
    """Issue 13: the bounds the README promises are the code's constants, and the old
    'whole trace in memory' limitation is gone from the list of what is not done."""
    from sim.runner import PERIOD_S
    from sim.trace import PLOT_BUCKETS, TAIL_ROWS

    bench = README.split("## Bench testing with scenarios", 1)[1].split("\n### ", 1)[0]
    assert f"at most {PLOT_BUCKETS} buckets" in bench
    assert f"every tick for runs up to {PLOT_BUCKETS * PERIOD_S:.0f} s" in bench
    assert TAIL_ROWS * PERIOD_S == 60.0 and "only the last minute of rows" in bench
    not_yet = README.split("## What this build does not do yet", 1)[1]
    assert "trace is kept in memory" not in not_yet and "issue 13" not in not_yet
