"""Safety behaviour proven through the real CLI: run a scenario, then check the trace.

Each test names the acceptance criterion of the core issue it proves. The CLI's own
invariant checker must also pass (exit 0); these tests re-check the specific behaviour
from the CSV independently, so a bug in the checker cannot hide a bug in the controller.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from controller.core.profile import trapezoid_time
from tests.conftest import SCENARIOS, Run, run_scenario_cli, write_scenario

TOL = 0.5  # degrees: the acceptance tolerance for overshoot


def rows_in(run: Run, state: str) -> list[dict]:
    return [r for r in run.trace if r["state"] == state]


def first(run: Run, pred: Callable[[dict], bool]) -> dict:
    return next(r for r in run.trace if pred(r))


def session_with_fault(
    path: Path,
    name: str,
    duration_s: float,
    target_deg: float,
    hold_s: float,
    fault: str,
    at_s: float,
) -> Path:
    """A scenario: lock the ankles, START a session, inject ``fault`` at ``at_s``."""
    return write_scenario(
        path,
        f"""
[scenario]
name = "{name}"
duration_s = {duration_s}
[config.session]
target_deg = {target_deg}
hold_s = {hold_s}
[[events]]
at_s = 0.5
do = "set"
input = "ankle_lock"
value = true
[[events]]
at_s = 1.0
do = "tap"
input = "start"
[[events]]
at_s = {at_s}
do = "fault"
fault = "{fault}"
""",
    )


def transition_time(run: Run, to: str, trigger: str | None = None) -> float:
    return next(
        t["t_s"]
        for t in run.summary["transitions"]
        if t["to"] == to and (trigger is None or t["trigger"] == trigger)
    )


@pytest.mark.parametrize("scenario", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_example_scenario_passes_its_own_checks(scenario: Path, tmp_path: Path) -> None:
    run = run_scenario_cli(scenario, tmp_path)
    assert run.code == 0, run.stderr
    assert run.summary["passed"] and run.summary["violations"] == []
    # The contract's trace columns, in order, and one row per 10 ms tick.
    header = list(run.trace[0].keys())
    assert header[:8] == [
        "t_s",
        "state",
        "angle_deg",
        "velocity_dps",
        "sensor_deg",
        "setpoint_deg",
        "motor_cmd",
        "brake",
    ]
    ts = [r["t_s"] for r in run.trace]
    assert all(abs((b - a) - 0.01) < 1e-6 for a, b in zip(ts, ts[1:], strict=False))


@pytest.mark.parametrize(
    "scenario",
    sorted(p for p in SCENARIOS.glob("*.toml") if not p.stem.startswith("fault_")),
    ids=lambda p: p.stem,
)
def test_never_faster_than_the_state_speed_limit(scenario: Path, tmp_path: Path) -> None:
    """Normal operation (after an injected fault the bound is the emergency speed: the checker)."""
    run = run_scenario_cli(scenario, tmp_path)
    for prev, r in zip(run.trace, run.trace[1:], strict=False):
        if r["state"] in ("estop", "fault", "power_off", "hung", "boot"):
            continue
        limit = max(r["speed_limit_dps"], prev["speed_limit_dps"])
        assert abs(r["velocity_dps"]) <= limit + 0.05, r


def test_session_ramp_never_overshoots_its_target(tmp_path: Path) -> None:
    for target in (20.0, 60.0):
        path = write_scenario(
            tmp_path / f"s{target}.toml",
            f"""
[scenario]
name = "overshoot"
duration_s = 80.0
[user]
mass_kg = 136.0
height_cm = 198.0
[config.session]
target_deg = {target}
hold_s = 10.0
[[events]]
at_s = 0.2
do = "set"
input = "ankle_lock"
value = true
[[events]]
at_s = 1.0
do = "tap"
input = "start"
""",
        )
        run = run_scenario_cli(path, tmp_path)
        assert run.code == 0, run.stderr
        assert max(r["angle_deg"] for r in run.trace) <= target + TOL
        assert max(r["angle_deg"] for r in rows_in(run, "hold")) >= target - TOL  # and it got there


def test_nothing_moves_without_the_ankle_lock(tmp_path: Path) -> None:
    run = run_scenario_cli(SCENARIOS / "interlock_refused.toml", tmp_path)
    assert run.code == 0
    locked_at = first(run, lambda r: r["ankle_locked"] == 1)["t_s"]
    before = [r for r in run.trace if r["t_s"] < locked_at]
    # Nothing moves; the motor only pushes (boot brake test) against the engaged brake.
    assert all(abs(r["velocity_dps"]) < 0.01 and r["brake"] == 1 for r in before)
    assert all(r["motor_cmd"] == 0.0 for r in before if r["state"] != "boot")
    assert {r["state"] for r in before} <= {"boot", "idle"}
    messages = [e["message"] for e in run.summary["events"]]
    assert "refused start: ankle lock not confirmed" in messages
    assert any(m.startswith("refused jog down: ankle lock not confirmed") for m in messages)


def test_estop_stops_within_one_tick_and_nothing_moves_until_return(tmp_path: Path) -> None:
    run = run_scenario_cli(SCENARIOS / "estop.toml", tmp_path)
    assert run.code == 0
    pressed = [i for i, r in enumerate(run.trace) if r["estop_in"] == 1]
    i = pressed[0]
    assert run.trace[i - 1]["motor_cmd"] != 0.0  # it was driving
    # Within one tick (here: the very tick that first sees the input).
    assert (
        run.trace[i]["motor_cmd"] == 0.0
        and run.trace[i]["brake"] == 1
        and run.trace[i]["state"] == "estop"
    )
    return_t = transition_time(run, "emergency_return")
    released_t = run.trace[pressed[-1] + 1]["t_s"]
    held = [r for r in run.trace if run.trace[i]["t_s"] + 0.5 <= r["t_s"] < return_t]
    assert all(abs(r["velocity_dps"]) < 0.01 and r["motor_cmd"] == 0.0 for r in held)
    assert any(r["t_s"] > released_t for r in held)  # includes time after the release
    assert all(r["alarm"] == 1 for r in held)  # alarm while inverted in e-stop
    assert run.summary["ended_upright"]


def test_estop_exit_by_holding_up(tmp_path: Path) -> None:
    run = run_scenario_cli(SCENARIOS / "estop_hold_up.toml", tmp_path)
    assert run.code == 0
    assert [t["trigger"] for t in run.summary["transitions"]][3:5] == ["press_up", "jog_end"]


def test_session_returns_by_its_time_limit(tmp_path: Path) -> None:
    run = run_scenario_cli(SCENARIOS / "time_limit.toml", tmp_path)
    assert run.code == 0
    left = first(run, lambda r: r["angle_deg"] > -78.0)["t_s"]
    returning = transition_time(run, "returning", "time_limit")
    assert returning <= left + 45.0  # max_duration_s = 45
    after = [r for r in run.trace if r["t_s"] >= returning]
    # From then on the person is never tilted further (the brake-release settle is ~0.01 deg).
    assert max(r["angle_deg"] for r in after) <= after[0]["angle_deg"] + 0.05
    assert run.summary["ended_upright"]


def test_emergency_return_is_within_5_percent_of_the_ideal_trapezoid(tmp_path: Path) -> None:
    run = run_scenario_cli(SCENARIOS / "emergency_return.toml", tmp_path)
    assert run.code == 0
    start = transition_time(run, "emergency_return")
    start_angle = first(run, lambda r: r["t_s"] >= start)["angle_deg"]
    arrived = first(run, lambda r: r["t_s"] > start and r["angle_deg"] <= -80.0 + TOL)["t_s"]
    ideal = trapezoid_time(start_angle - (-80.0), 8.0, 8.0)
    assert arrived - start <= 1.05 * ideal, (arrived - start, ideal)
    fast = [r for r in rows_in(run, "emergency_return")]
    assert max(abs(r["velocity_dps"]) for r in fast) > 7.0  # it really used the emergency profile
    assert all(r["alarm"] == 1 for r in fast)


def test_ankle_lock_lost_while_inverted_returns_on_the_emergency_profile(tmp_path: Path) -> None:
    run = run_scenario_cli(SCENARIOS / "ankle_lock_lost.toml", tmp_path)
    assert run.code == 0
    lost = first(run, lambda r: r["t_s"] > 1 and r["ankle_locked"] == 0)["t_s"]
    assert transition_time(run, "emergency_return") == pytest.approx(lost, abs=0.011)


def test_power_cut_holds_the_angle_and_restart_brings_the_user_upright(tmp_path: Path) -> None:
    run = run_scenario_cli(SCENARIOS / "power_cut.toml", tmp_path)
    assert run.code == 0
    off = rows_in(run, "power_off")
    assert len(off) >= 1900  # 20 s
    assert max(r["angle_deg"] for r in off) - min(r["angle_deg"] for r in off) < 0.05
    assert off[0]["angle_deg"] > 40.0
    restored = transition_time(run, "boot", "power_restored")
    assert transition_time(run, "returning", "selftest_passed") > restored
    assert run.summary["final_state"] == "idle" and run.summary["ended_upright"]


def test_pause_holds_position_while_the_session_clock_keeps_running(tmp_path: Path) -> None:
    run = run_scenario_cli(SCENARIOS / "pause_resume.toml", tmp_path)
    assert run.code == 0
    paused = rows_in(run, "paused")
    settled = [r for r in paused if r["t_s"] > paused[0]["t_s"] + 1.5]
    assert max(r["angle_deg"] for r in settled) - min(r["angle_deg"] for r in settled) < 0.05
    assert all(r["brake"] == 1 for r in settled)
    assert settled[-1]["session_s"] - settled[0]["session_s"] == pytest.approx(
        settled[-1]["t_s"] - settled[0]["t_s"], abs=0.02
    )


def test_jog_is_hold_to_run_and_capped(tmp_path: Path) -> None:
    run = run_scenario_cli(SCENARIOS / "jog.toml", tmp_path)
    assert run.code == 0
    released = transition_time(run, "holding")
    assert released == pytest.approx(11.0, abs=0.011)
    stop_rows = [r for r in run.trace if released + 1.5 < r["t_s"] < 15.0]
    assert all(abs(r["velocity_dps"]) < 0.01 for r in stop_rows)
    cap = run_scenario_cli(SCENARIOS / "jog_cap.toml", tmp_path)
    assert cap.code == 0
    assert transition_time(cap, "holding") == pytest.approx(1.0 + 5.0, abs=0.02)
    assert cap.summary["final_state"] == "holding"


def test_boot_while_inverted_returns_upright(tmp_path: Path) -> None:
    run = run_scenario_cli(SCENARIOS / "boot_inverted.toml", tmp_path)
    assert run.code == 0
    assert run.trace[0]["angle_deg"] == pytest.approx(35.0)
    assert [t["to"] for t in run.summary["transitions"]] == ["returning", "idle"]


def test_a_violation_exits_1_and_lists_it(tmp_path: Path) -> None:
    """The checker is not a rubber stamp: an unmet expectation fails the run."""
    path = write_scenario(
        tmp_path / "x.toml",
        """
[scenario]
name = "expect too much"
duration_s = 5.0
[expect]
visited = ["ramp"]
max_angle_deg = -85.0
""",
    )
    run = run_scenario_cli(path, tmp_path)
    assert run.code == 1
    assert not run.summary["passed"]
    assert "expect.visited: state 'ramp' never occurred" in run.stderr
    assert "expect.max_angle_deg = -85" in run.stderr


def test_same_seed_same_trace(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = run_scenario_cli(SCENARIOS / "jog.toml", tmp_path / "a")
    b = run_scenario_cli(SCENARIOS / "jog.toml", tmp_path / "b")
    assert a.trace == b.trace


def test_a_hung_controller_stops_the_motor_and_the_restart_brings_the_user_upright(
    tmp_path: Path,
) -> None:
    run = run_scenario_cli(SCENARIOS / "controller_hang.toml", tmp_path)
    assert run.code == 0, run.stderr
    hung = rows_in(run, "hung")
    assert hung[0]["t_s"] == pytest.approx(20.0) and len(hung) == 500  # 5 s
    # The dead-man (100 ms) drops the enable and engages the brake: stopped within 0.5 s.
    assert all(abs(r["velocity_dps"]) < 0.01 for r in hung if r["t_s"] >= 20.5)
    assert (
        max(r["angle_deg"] for r in hung) - hung[0]["angle_deg"] < TOL
    )  # 100 ms at 4 deg/s, then the brake
    assert transition_time(run, "boot", "service_restart") == pytest.approx(25.0)
    assert transition_time(run, "returning", "selftest_passed") == pytest.approx(
        25.3, abs=0.011
    )  # no brake test off upright
    assert run.summary["final_state"] == "idle" and run.summary["ended_upright"]


def test_a_failed_brake_is_caught_and_the_motor_brings_the_user_up_and_holds(
    tmp_path: Path,
) -> None:
    run = run_scenario_cli(SCENARIOS / "fault_brake_failed.toml", tmp_path)
    assert run.code == 0, run.stderr
    detected = next(
        e["t_s"] for e in run.summary["events"] if e["message"].startswith("fault: brake_creep")
    )
    assert detected - 45.0 < 1.0  # within a second of the failure
    assert transition_time(run, "fault") == pytest.approx(
        detected, abs=0.011
    )  # the fault state returns
    assert max(r["angle_deg"] for r in run.trace) <= 45.0 + TOL
    assert all(r["alarm"] == 1 for r in run.trace if r["t_s"] >= detected)  # latched with the alarm
    assert all(
        r["faults"] == "brake_creep" for r in run.trace if r["t_s"] >= detected
    )  # and in the trace
    idle_after = [r for r in run.trace if r["t_s"] > transition_time(run, "idle", "arrived")]
    assert all(
        abs(r["angle_deg"] - (-80.0)) < 1.0 for r in idle_after
    )  # the motor, not the brake, holds
    refusals = [
        e["message"] for e in run.summary["events"] if e["message"].startswith("refused start:")
    ]
    assert refusals and refusals[0].startswith("refused start: latched fault: brake_creep")
    assert "session.cooldown_s" in refusals[0]  # and the upright rest after the forced return


def test_a_stuck_sensor_limps_home_slowly_on_the_good_one(tmp_path: Path) -> None:
    run = run_scenario_cli(SCENARIOS / "fault_sensor_stuck.toml", tmp_path)
    assert run.code == 0, run.stderr
    limp = rows_in(run, "limp_home")
    assert limp and limp[0]["t_s"] - 20.0 < 1.0
    assert max(abs(r["velocity_dps"]) for r in limp if r["t_s"] > limp[0]["t_s"] + 3.0) <= 2.0
    assert all(r["alarm"] == 1 for r in limp)
    assert run.summary["ended_upright"]


def test_runaway_is_caught_by_its_current_and_held_on_the_brake(tmp_path: Path) -> None:
    """A driver stuck on draws far more current than its command can: caught in the next
    sample, supply cut, held on the brake. For an 80 kg user the 10 ms before that sample
    is enough to pass the emergency speed briefly: the checker reports it (exit 1), and the
    safety case records the bound (one sample over, under 0.15 deg of extra travel)."""
    path = session_with_fault(
        tmp_path / "runaway.toml", "runaway", 40.0, 40.0, 60.0, "motor_runaway", 15.0
    )
    run = run_scenario_cli(path, tmp_path)
    assert run.code == 1 and "violation: speed" in run.stderr
    assert [
        line for line in run.stderr.splitlines() if "violation" in line and "speed" not in line
    ] == []
    assert transition_time(run, "fault") == pytest.approx(15.01, abs=0.011)  # the next sample
    fast = [r for r in run.trace if abs(r["velocity_dps"]) > 8.0]
    assert len(fast) == 1 and fast[0]["velocity_dps"] < 8.0 + 1.0
    at_fault = next(r["angle_deg"] for r in run.trace if r["t_s"] >= 15.0)
    assert max(r["angle_deg"] for r in run.trace) - at_fault < 0.15
    held = [r for r in run.trace if r["t_s"] > 16.0]
    assert all(
        r["state"] == "fault" and r["brake"] == 1 and r["motor_cmd"] == 0.0 and r["alarm"] == 1
        for r in held
    )
    assert all(abs(r["velocity_dps"]) < 0.01 for r in held)
    stop_angle = held[0]["angle_deg"]
    at_fault = next(r for r in run.trace if r["t_s"] >= 15.0)["angle_deg"]
    assert stop_angle - at_fault < 2.0  # relay and brake stop it within 2 deg


@pytest.mark.parametrize("backend", ["gpio-mock", "serial"])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_example_scenario_passes_on_the_hardware_backends(
    scenario: Path, backend: str, tmp_path: Path
) -> None:
    """gpio-mock: the real gpio backend on gpiozero's mock pins, the physics behind the pins.
    serial: the real serial backend over a pseudo-terminal to the virtual motion board.
    The same trace checks and expectations as on the sim backend."""
    run = run_scenario_cli(scenario, tmp_path, "--backend", backend)
    assert run.code == 0, run.stderr
    assert run.summary["passed"]


def test_a_cut_estop_channel_stops_at_once_and_latches_a_held_fault(tmp_path: Path) -> None:
    run = run_scenario_cli(SCENARIOS / "fault_estop_wire.toml", tmp_path)
    assert run.code == 0, run.stderr
    after = [r for r in run.trace if r["t_s"] >= 40.0]
    assert after[0]["state"] == "estop" and after[0]["motor_cmd"] == 0.0  # the same tick
    assert transition_time(run, "fault") - 40.0 <= 0.07  # 50 ms of disagreement, then latched
    held = [r for r in after if r["t_s"] >= 40.5]
    assert all(
        r["state"] == "fault"
        and r["brake"] == 1
        and r["alarm"] == 1
        and r["motor_cmd"] == 0.0
        and r["faults"] == "estop_channel_fault"
        for r in held
    )
    assert max(abs(r["velocity_dps"]) for r in held) < 0.01


def test_a_lost_serial_link_is_held_by_the_host_while_the_board_returns_the_user(
    tmp_path: Path,
) -> None:
    path = session_with_fault(
        tmp_path / "link.toml", "link lost at 45 deg", 50.0, 45.0, 60.0, "link_loss", 30.0
    )
    run = run_scenario_cli(path, tmp_path, "--backend", "serial")
    assert run.code == 0, run.stderr
    lost = transition_time(run, "fault")
    assert 30.0 < lost <= 30.0 + 0.31  # no telemetry for 0.3 s (or unanswered pings)
    assert all(r["faults"] == "link_lost" for r in run.trace if r["t_s"] > lost)
    assert run.summary["final_state"] == "fault" and run.summary["ended_upright"]  # the board alone
    assert max(abs(r["velocity_dps"]) for r in run.trace if r["t_s"] >= 30.0) <= 8.0
