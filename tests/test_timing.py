"""Real time is not lockstep (issue 12): late ticks, jitter and measurement lag through the
real CLI, and the detectors that must not mistake them for faults, nor miss a real one.

Before this issue a 20 or 50 ms stall mid-ramp latched a false ``runaway`` (the speed was
10 samples of angle over 10 x the catch-up tick's tiny dt) and a current sensor lagging by
3 ticks latched ``runaway`` at every boot (the brake test's push read after it ended).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from controller.core.config import Config
from controller.core.monitor import CURRENT_LAG_S, SafetyMonitor, Snapshot
from hal.interfaces import Inputs
from sim.jitter_campaign import MATRIX_PHASES, first_detection, matrix_cell
from tests.conftest import Run, run_cli, run_scenario_cli, write_scenario
from tests.test_fault_matrix import check_cell

SESSION = """
[scenario]
name = "{name}"
duration_s = {duration}
seed = {seed}
[user]
mass_kg = {mass}
height_cm = 198.0
[config.session]
target_deg = 30.0
hold_s = 10.0
rest_s = 3.0
{timing}
[[events]]
at_s = 0.5
do = "set"
input = "ankle_lock"
value = true
[[events]]
at_s = 1.0
do = "tap"
input = "start"
{events}
"""


def session(
    path: Path,
    *,
    name: str = "timed",
    timing: str = "",
    events: str = "",
    duration: float = 100.0,
    seed: int = 1,
    mass: float = 136.0,
) -> Path:
    """A short session (target 30, hold 10 s) of the heaviest user, with ``[timing]`` and events."""
    return write_scenario(
        path,
        SESSION.format(
            name=name, duration=duration, seed=seed, mass=mass, timing=timing, events=events
        ),
    )


def stall(at_s: float, duration_s: float) -> str:
    return f'[[events]]\nat_s = {at_s}\ndo = "stall"\nduration_s = {duration_s}\n'


def fault(at_s: float, name: str) -> str:
    return f'[[events]]\nat_s = {at_s}\ndo = "fault"\nfault = "{name}"\n'


def faults_latched(run: Run) -> list[str]:
    return [e["message"] for e in run.summary["events"] if e["message"].startswith("fault:")]


def assert_completed_clean(run: Run) -> None:
    """No fault latched, no invariant violated, the session ran to its end upright."""
    assert run.code == 0, run.stderr
    assert faults_latched(run) == []
    assert all(r["faults"] == "" for r in run.trace)
    assert run.summary["final_state"] == "idle" and run.summary["ended_upright"]
    assert "returning" in {t["to"] for t in run.summary["transitions"]}  # the program ran through


# ----------------------------------------------------------------------------- stalls
@pytest.mark.parametrize("backend", ["sim", "gpio-mock"])
@pytest.mark.parametrize("stall_s", [0.02, 0.05])
def test_a_stall_mid_ramp_is_logged_not_a_fault(
    stall_s: float, backend: str, tmp_path: Path
) -> None:
    run = run_scenario_cli(
        session(tmp_path / "s.toml", events=stall(10.0, stall_s)), tmp_path, "--backend", backend
    )
    assert_completed_clean(run)
    late = next(r for r in run.trace if r["late_ms"] > 0.0)
    assert late["state"] == "ramp" and late["late_ms"] == pytest.approx(stall_s * 1000.0)
    assert run.summary["max_late_ms"] == pytest.approx(stall_s * 1000.0)
    assert run.summary["late_ticks"] >= 1
    assert any(e["message"].startswith("late tick: started") for e in run.summary["events"])
    # The catch-up ticks come back to back; every tick is in the trace, in time order.
    times = [r["t_s"] for r in run.trace]
    assert times == sorted(times) and len(times) == 10001


@pytest.mark.parametrize("stall_s", [0.15, 1.0])
def test_a_stall_past_the_dead_man_brakes_and_the_session_goes_on(
    stall_s: float, tmp_path: Path
) -> None:
    """Past 100 ms without a heartbeat the wiring cuts the drive and applies the brake (as for
    a hang); the controller then plans the rest of the motion from where the table stands:
    no fault (nothing is wrong with the table), no speed or acceleration violation."""
    run = run_scenario_cli(session(tmp_path / "s.toml", events=stall(10.0, stall_s)), tmp_path)
    assert_completed_clean(run)
    assert any(e["message"].startswith("dead-man: no heartbeat") for e in run.summary["events"])
    late = next(r for r in run.trace if r["late_ms"] > 0.0)
    assert abs(late["velocity_dps"]) < 0.05  # the brake had stopped the table meanwhile
    assert run.summary["max_speed_dps"] <= 4.0 + 0.05


@pytest.mark.parametrize("stall_s", [0.15, 0.25])
def test_a_late_host_on_serial_stops_on_the_board_loop_and_the_session_goes_on(
    stall_s: float, tmp_path: Path
) -> None:
    """Serial, the board on its own clock: the host's last command lapses 100 ms into the
    stall. The board does not start its latched return for that (the host is late, not lost,
    until 300 ms): it slows the table on its own loop, the host's next command takes over, and
    the session runs to its end with no fault and no speed violation."""
    timing = '[timing]\nboard_clock = "own"\n'
    run = run_scenario_cli(
        session(tmp_path / "s.toml", timing=timing, events=stall(10.0, stall_s)),
        tmp_path,
        "--backend",
        "serial",
    )
    assert_completed_clean(run)
    late = next(r for r in run.trace if r["late_ms"] > 0.0)
    assert late["state"] == "ramp" and late["late_ms"] == pytest.approx(stall_s * 1000.0, abs=1.0)
    before = next(r for r in reversed(run.trace) if r["t_s"] < 10.0)
    # Stopping on the emergency deceleration (8 deg/s^2) from 100 ms into the stall: slower,
    # not braked to 0. The board plans that stop from its own speed estimate (0.1 s of
    # samples, about 1 deg/s of noise: 4.3 deg/s against the table's 3.7 in the 0.25 s case
    # since its loop steps on the host's answer as it arrives, 3.2 before), hence 1 deg/s.
    slowed = before["velocity_dps"] - 8.0 * (stall_s - 0.1)
    assert late["velocity_dps"] == pytest.approx(max(slowed, 0.0), abs=1.0)
    assert run.summary["max_speed_dps"] <= 4.0 + 0.05


# ----------------------------------------------------------------------------- jitter and lag
@pytest.mark.parametrize("backend", ["sim", "gpio-mock"])
def test_jitter_and_current_lag_through_a_whole_session(backend: str, tmp_path: Path) -> None:
    timing = "[timing]\ntick_jitter_ms = 5.0\ncurrent_lag_ticks = 3\n"
    run = run_scenario_cli(
        session(tmp_path / "s.toml", timing=timing), tmp_path, "--backend", backend
    )
    assert_completed_clean(run)
    lates = [r["late_ms"] for r in run.trace]
    assert 0.0 <= min(lates) and max(lates) <= 5.0 and max(lates) > 4.0
    assert run.summary["late_ticks"] == 0  # jitter within the slot is not a missed tick


def test_a_timed_scenario_gives_the_same_trace_every_time(tmp_path: Path) -> None:
    timing = "[timing]\ntick_jitter_ms = 4.0\ncurrent_lag_ticks = 2\n"
    path = session(
        tmp_path / "s.toml",
        timing=timing,
        events=stall(12.0, 0.08) + stall(30.0, 0.3),
        duration=60.0,
    )
    digests = []
    for i in range(2):
        trace = tmp_path / f"t{i}.csv"
        assert run_cli("sim", path, "--trace", trace).code == 0
        digests.append(hashlib.sha256(trace.read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    # ... and the seed is what makes it so: another seed, other jitter.
    other = session(
        tmp_path / "o.toml", timing=timing, events=stall(12.0, 0.08), duration=60.0, seed=2
    )
    assert run_cli("sim", other, "--trace", tmp_path / "o.csv").code == 0
    assert hashlib.sha256((tmp_path / "o.csv").read_bytes()).hexdigest() != digests[0]


# ----------------------------------------------------------------------------- real faults
@pytest.mark.parametrize("backend", ["sim", "gpio-mock"])
def test_brake_failed_under_jitter_and_lag_is_still_caught(backend: str, tmp_path: Path) -> None:
    """brake_failed in the hold: caught as creep when the brake should hold, returned upright."""
    timing = "[timing]\ntick_jitter_ms = 5.0\ncurrent_lag_ticks = 3\n"
    run = run_scenario_cli(
        session(
            tmp_path / "s.toml",
            timing=timing,
            events=fault(30.0, "brake_failed") + stall(30.5, 0.05),
        ),
        tmp_path,
        "--backend",
        backend,
    )
    assert run.code == 0, (
        run.stderr
    )  # no invariant violated: the emergency speed held after the fault
    detected = [
        (e["t_s"], e["message"]) for e in run.summary["events"] if e["message"].startswith("fault:")
    ]
    assert detected and detected[0][1].startswith("fault: brake_creep"), detected
    assert 30.0 <= detected[0][0] <= 33.0, detected
    assert run.summary["final_state"] == "idle" and run.summary["ended_upright"]


@pytest.mark.parametrize("backend", ["sim", "gpio-mock"])
def test_a_runaway_under_current_lag_is_caught_once_the_reading_shows_it(
    backend: str, tmp_path: Path
) -> None:
    """motor_runaway mid-ramp with the current reading 3 ticks late: caught by the current
    check as soon as the lagging reading shows the stuck driver (3-4 ticks, not 1 as with no
    lag). In those extra 20-30 ms the heaviest user's table reaches about 12.5 deg/s (8 is the
    emergency speed) and moves 0.35 deg: the invariant checker reports the overshoot (exit 1).
    That is the cost of the sensor's lag, not of the detector (no other signal shows a
    runaway sooner: 0.1 deg of extra travel is within the sensors' noise); the one-sample
    bound of docs/safety.md H14 needs a current path that lags at most one tick
    (docs/performance.md). This test bounds what the lag costs."""
    timing = "[timing]\ntick_jitter_ms = 5.0\ncurrent_lag_ticks = 3\n"
    at = 10.0
    run = run_scenario_cli(
        session(tmp_path / "s.toml", timing=timing, events=fault(at, "motor_runaway")),
        tmp_path,
        "--backend",
        backend,
    )
    detected = [
        (e["t_s"], e["message"]) for e in run.summary["events"] if e["message"].startswith("fault:")
    ]
    assert detected and detected[0][1].startswith("fault: runaway"), detected
    assert at <= detected[0][0] <= at + 0.05, detected
    assert all(v.startswith("speed:") for v in run.summary["violations"]), run.summary["violations"]
    after = [r for r in run.trace if r["t_s"] >= at]
    assert max(abs(r["velocity_dps"]) for r in after) < 13.0
    assert max(abs(r["angle_deg"] - after[0]["angle_deg"]) for r in after) < 0.5
    assert (
        run.summary["final_state"] == "fault"
        and after[-1]["brake"] == 1
        and after[-1]["motor_cmd"] == 0.0
    )


# Cells of the fault matrix under the realistic timing of sim/jitter_campaign.py (jitter
# 3 ms, current lag 3 ticks, stalls of 20-150 ms, one 50 ms before the return injection);
# docs/performance.md has all of them with their detection times. Bounds: the ideal
# detection time plus the timing's lag, rounded up.
TIMED_CELLS = [
    ("motor_runaway", "hold", 0.05),
    ("motor_runaway", "return", 0.05),
    ("brake_failed", "hold", 3.0),
    ("angle_sensor_stuck", "ramp", 1.0),
    ("estop_wire_break", "return", 0.2),
    ("motor_stall", "ramp", 2.0),
]


@pytest.mark.parametrize("name,phase,bound_s", TIMED_CELLS)
def test_fault_matrix_cell_under_realistic_timing(name: str, phase: str, bound_s: float) -> None:
    result = matrix_cell(name, phase, timed=True)
    check_cell(result, name, phase)
    det = first_detection(result, MATRIX_PHASES[phase])
    assert det is not None and det[0] - MATRIX_PHASES[phase] <= bound_s, det


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "text,key",
    [
        ("[timing]\ntick_jitter = 3.0\n", "timing.tick_jitter"),
        ("[timing]\ntick_jitter_ms = 25.0\n", "timing.tick_jitter_ms"),
        ("[timing]\ntick_jitter_ms = nan\n", "timing.tick_jitter_ms"),
        ("[timing]\ncurrent_lag_ticks = 2.5\n", "timing.current_lag_ticks"),
        ("[timing]\ncurrent_lag_ticks = true\n", "timing.current_lag_ticks"),
        ("[timing]\ncurrent_lag_ticks = 6\n", "timing.current_lag_ticks"),
        ("[timing]\nlink_latency_ms = -1\n", "timing.link_latency_ms"),
        ('[timing]\nboard_clock = "fast"\n', "timing.board_clock"),
        ("timing = 3\n", "timing"),
        (stall(5.0, 0.0), "events[2].duration_s"),
        (stall(5.0, 6.0), "events[2].duration_s"),
        ('[[events]]\nat_s = 5.0\ndo = "stall"\n', "events[2].duration_s"),
        (
            '[[events]]\nat_s = 5.0\ndo = "stall"\nduration_s = 0.1\ninput = "up"\n',
            "events[2].input",
        ),
    ],
)
def test_bad_timing_input_exits_2_naming_file_and_key(text: str, key: str, tmp_path: Path) -> None:
    if text.startswith("timing ="):  # a top-level key, before any table
        path = write_scenario(
            tmp_path / "bad.toml",
            text
            + SESSION.format(name="bad", duration=20.0, seed=1, mass=80.0, timing="", events=""),
        )
    elif text.startswith("[[events]]"):
        path = session(tmp_path / "bad.toml", events=text, duration=20.0)
    else:
        path = session(tmp_path / "bad.toml", timing=text, duration=20.0)
    res = run_cli("sim", path)
    assert res.code == 2, res.stderr
    assert f"{path}: {key}:" in res.stderr and "Traceback" not in res.stderr


# ----------------------------------------------------------------------------- the monitor alone
def _snapshot(now: float, angle: float, cmd: float = 0.3, speed_limit: float = 4.0) -> Snapshot:
    return Snapshot(now, "ramp", True, angle, speed_limit, cmd, angle, None)


def _inputs(angle: float, current: float = 2.0) -> Inputs:
    return Inputs(
        angle_primary_deg=angle,
        angle_secondary_deg=angle,
        upright_switch=False,
        overtravel_tripped=False,
        estop_pressed=False,
        ankle_locked=True,
        buttons=frozenset(),
        motor_current_a=current,
    )


@pytest.mark.parametrize("stall_s", [0.009, 0.012, 0.05, 0.2])
def test_speed_is_measured_over_real_time_through_a_late_tick_and_its_catch_up(
    stall_s: float,
) -> None:
    """The service's deadline loop after a stall: one late tick, then the missed slots run
    back to back 0.5 ms apart. At a true 4 deg/s the measured speed stays 4 deg/s (the old
    10-samples-over-10-dt read 37.6 deg/s for a 9 ms stall and 188-539 for 12-200 ms)."""
    monitor = SafetyMonitor(Config())
    times = [k * 0.01 for k in range(100)]
    late = times[-1] + 0.01 + stall_s
    times.append(late)
    k = 101
    while k * 0.01 < late:
        times.append(max(k * 0.01, times[-1] + 0.0005))
        k += 1
    times += [k2 * 0.01 for k2 in range(k, k + 30)]
    speeds = []
    for t in times:
        angle = -40.0 + 4.0 * t
        assert monitor.check(_snapshot(t, angle), _inputs(angle), 0.0) is None, t
        speeds.append(monitor.measured_speed())
    assert all(v == pytest.approx(4.0) for v in speeds[10:])


def test_current_check_allows_for_a_lagging_reading_and_still_catches_a_runaway() -> None:
    """The brake test's 7 A push read 3 ticks after the command dropped to 0 is what that
    command drew, not a runaway; a 20 A reading with nothing commanding it for longer than
    the lag window is."""
    monitor = SafetyMonitor(Config())
    t, currents = 0.0, []
    for k in range(20):  # a brake-test push at duty 0.35, then nothing, the reading 3 ticks late
        cmd = 0.35 if k < 10 else 0.0
        currents.append(1.0 + 20.0 * cmd)
        t = k * 0.01
        snap = Snapshot(t, "holding", False, -80.0, 0.0, cmd, -80.0, -80.0)
        reading = currents[max(0, k - 3)]
        assert monitor.check(snap, _inputs(-80.0, reading), 0.01) is None, (k, reading)
    for k in range(20, 20 + int(CURRENT_LAG_S / 0.01) + 2):  # the driver sticks on: 20 A, duty 0
        snap = Snapshot(k * 0.01, "holding", False, -80.0, 0.0, 0.0, -80.0, -80.0)
        det = monitor.check(snap, _inputs(-80.0, 20.0), 0.01)
        if det is not None:
            assert det.code == "runaway"
            assert (k - 20) * 0.01 <= CURRENT_LAG_S + 0.011
            return
    pytest.fail("a 20 A reading at duty 0 was never caught")
