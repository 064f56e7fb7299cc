"""Issue 11, controller core: a way back to upright from every state.

Unit tests drive the controller with synthetic snapshots (tests.test_machine.Driver: the
table follows the setpoint unless a test says otherwise); scenario tests run the real CLI
on all three backends and check the trace. docs/safety.md's "way back" table names these.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from controller.core.config import Config
from controller.core.monitor import SafetyMonitor, Snapshot
from controller.core.recovery import (
    SUPERVISED_SPEED_DPS,
    BackEmfOdometer,
    SupervisedWatch,
    single_out,
)
from tests.conftest import SCENARIOS, Run, run_scenario_cli, write_scenario
from tests.test_machine import UP, Driver, inputs

BACKENDS = ("sim", "gpio-mock", "serial")


def held_on_a_stall(angle: float = 20.0) -> Driver:
    """Boot at ``angle`` (a return starts), the table does not follow: the following error
    latches a held fault (motor off, brake on, supply cut)."""
    d = Driver(angle)
    assert d.ctrl.state == "returning"
    for _ in range(500):
        d.tick(angle)
        if d.ctrl.state == "fault":
            break
    assert d.ctrl.state == "fault" and d.ctrl.fault_holding
    assert d.out.brake and d.out.motor_cmd == 0.0 and not d.out.motor_power
    return d


def notes(d: Driver) -> str:
    return "\n".join(e.message for e in d.ctrl.events)


# ---------------------------------------------------------------- supervised recovery
def test_a_held_fault_is_a_pause_holding_up_moves_slowly_toward_upright_and_release_stops() -> None:
    d = held_on_a_stall(20.0)
    d.tick(20.0, buttons=("up",))
    assert d.ctrl.state == "supervised_return"
    start = d.ctrl.angle
    for _ in range(300):  # 3 s held, the table following the setpoint
        d.tick(buttons=("up",))
        assert not d.out.brake and d.out.motor_power and abs(d.out.motor_cmd) <= 0.9
    moved = start - d.ctrl.angle
    assert 1.5 <= moved <= 3.0 * SUPERVISED_SPEED_DPS + 0.01  # slow, toward upright
    d.tick()  # released
    assert d.ctrl.state == "fault" and d.out.brake and d.out.motor_cmd == 0.0
    # And it goes on when held again.
    d.tick(buttons=("return",))
    assert d.ctrl.state == "supervised_return"


def test_supervised_recovery_ends_in_idle_at_a_verified_upright_with_sessions_refused() -> None:
    d = held_on_a_stall(-70.0)
    d.tick(-70.0, buttons=("up",))
    for _ in range(3000):
        d.tick(buttons=("up",))
        if d.ctrl.state != "supervised_return":
            break
    assert d.ctrl.state == "idle" and d.ctrl.at_upright and d.out.brake
    d.tap("start")
    assert d.ctrl.state == "idle" and "refused start" in notes(d)


def test_supervised_recovery_stops_when_the_table_does_not_follow_and_may_be_tried_again() -> None:
    d = held_on_a_stall(20.0)
    d.tick(20.0, buttons=("up",))
    for _ in range(400):
        d.tick(20.0, buttons=("up",))  # the table does not move
        if d.ctrl.state != "supervised_return":
            break
    assert d.ctrl.state == "fault" and "supervised_no_progress" in d.ctrl.monitor.latched
    assert d.ctrl.now < 4.0 + 5.0  # within the watch's window (plus the boot and the stall)
    d.tick(20.0)
    d.tick(20.0, buttons=("up",))
    assert d.ctrl.state == "supervised_return"  # a motor that did not move may be tried again


def test_supervised_recovery_that_goes_the_wrong_way_stops_and_is_not_offered_again() -> None:
    d = held_on_a_stall(20.0)
    d.tick(20.0, buttons=("up",))
    angle = 20.0
    for _ in range(200):
        angle += 0.02  # toward inversion, 2 deg/s, whatever is commanded
        d.tick(angle, buttons=("up",))
        if d.ctrl.state != "supervised_return":
            break
    assert d.ctrl.state == "fault" and "supervised_wrong_way" in d.ctrl.monitor.latched
    assert angle <= 20.0 + 1.0 + 0.1
    d.tick(angle)
    d.tick(angle, buttons=("up",))
    assert d.ctrl.state == "fault" and "refused supervised recovery" in notes(d)


def test_supervised_recovery_is_refused_while_the_estop_is_pressed() -> None:
    d = held_on_a_stall(20.0)
    d.tick(20.0, buttons=("up",), estop=True)
    assert d.ctrl.state == "fault" and "e-stop pressed" in notes(d)
    assert d.out.motor_cmd == 0.0 and d.out.brake


def test_a_motor_driver_that_ignores_its_command_keeps_its_supply_cut() -> None:
    """The current says the driver is stuck on, off upright: the supply stays cut while nothing
    asks for the way back; UP probes the driver on the brake (supply closed, duty 0), and a
    driver still on has its supply cut again (the CLI cases: tests/test_way_back_campaign.py)."""
    d = Driver()
    d.tap("start")
    for _ in range(1500):
        d.tick()
    assert d.ctrl.state == "ramp"
    angle = d.ctrl.angle
    assert angle > UP + 20.0  # well off upright: UP is not refused as "already upright"

    def stuck_on(buttons: tuple[str, ...] = ()) -> None:
        d.t += 0.01
        d.out = d.ctrl.update(d.t, inputs(angle, buttons=buttons)._replace(motor_current_a=40.0))

    stuck_on()
    assert d.ctrl.state == "fault" and d.ctrl.monitor.driver_disobeys
    for _ in range(50):
        stuck_on()
        assert d.ctrl.state == "fault" and not d.out.motor_power and d.out.brake
    stuck_on(("up",))  # the probe (on the brake, duty 0, the supply closed) sees 40 A at once
    hops = [(r.source, r.dest) for r in d.ctrl.transitions[-2:]]
    assert hops == [("fault", "supervised_return"), ("supervised_return", "fault")]
    assert "probing the motor driver on the brake" in notes(d)
    assert d.ctrl.state == "fault" and not d.out.motor_power and d.out.brake
    assert d.out.motor_cmd == 0.0
    assert "supervised_driver_on" in d.ctrl.monitor.latched and "driver is still on" in notes(d)


# ---------------------------------------------------------------- limits never refuse the way up
def test_a_boot_beyond_max_angle_returns_instead_of_holding() -> None:
    d = Driver(61.0)
    assert d.ctrl.state == "returning"
    for _ in range(300):
        d.tick()
    assert d.ctrl.state == "returning" and d.ctrl.angle < 61.0 - 1.0
    assert "envelope" not in d.ctrl.monitor.latched


def test_the_envelope_check_still_holds_a_table_that_sinks_past_max_angle() -> None:
    cfg = Config()
    mon = SafetyMonitor(cfg)
    inp = inputs(60.0)
    for i in range(20):  # a return toward upright began at 59.9; the table sinks instead
        a = 59.9 + 0.05 * i
        snap = Snapshot(0.01 * i, "returning", True, 59.9, 8.0, -0.9, a, None, True, -80.0)
        det = mon.check(snap, inp._replace(angle_primary_deg=a, angle_secondary_deg=a), 0.01)
        if det is not None:
            break
    assert det is not None and det.code == "envelope" and a <= 60.4 + 0.06


# ---------------------------------------------------------------- idle is a verified upright
def test_idle_needs_the_upright_switch_to_agree_when_one_sensor_is_left() -> None:
    d = Driver(-60.0)
    d.ctrl.monitor.distrusted.add("secondary")  # one sensor left (as after a limp home)
    for _ in range(3000):
        d.tick(upright_switch=False) if d.ctrl.tracking else d.tick(
            d.ctrl.angle, upright_switch=False
        )
        if d.ctrl.state != "returning":
            break
    assert d.ctrl.state == "fault"
    assert "upright_unverified" in d.ctrl.monitor.latched


def test_idle_off_upright_still_answers_return() -> None:
    d = Driver()
    d.tick(-70.0)  # the table has sagged off upright on a slipping brake
    d.tap("return", -70.0)
    assert d.ctrl.state == "emergency_return"


# ---------------------------------------------------------------- buttons, lock, clock
def test_buttons_pressed_together_return_wins() -> None:
    d = Driver()
    d.tick(buttons=("down",))
    for _ in range(200):
        d.tick(buttons=("down",))
    d.tick()
    assert d.ctrl.state == "holding"
    d.tick(buttons=("start", "stop", "up", "down", "return"))
    assert d.ctrl.state == "emergency_return"
    for _ in range(50):  # held on: nothing else counts
        d.tick(buttons=("start", "stop", "up", "down", "return"))
        assert d.ctrl.state == "emergency_return"


def test_no_motor_command_at_boot_without_the_ankle_lock() -> None:
    d = Driver(ankle=False)
    assert d.ctrl.state == "idle"
    outs = [d.tick(ankle=False) for _ in range(100)]
    assert all(o.motor_cmd == 0.0 for o in outs)
    assert "deferred to the pre-session test" in notes(d)
    # With the lock the pre-session brake test pushes as before.
    d.tap("start")
    assert d.ctrl.state == "ramp" and d.out.motor_cmd > 0.0 and d.out.brake


def test_the_brake_test_stops_pushing_when_the_lock_opens() -> None:
    d = Driver()
    d.tap("start")
    assert d.out.motor_cmd > 0.0
    d.tick(ankle=False)
    assert d.out.motor_cmd == 0.0


def test_boot_off_upright_in_the_estop_keeps_the_session_clock_used_up() -> None:
    d = Driver(20.0, estop=True)
    assert d.ctrl.state == "estop"
    assert d.ctrl.session_elapsed_s >= d.ctrl.cfg.session.max_duration_s
    d.tick(20.0)  # released
    d.tap("up", 20.0)
    assert d.ctrl.state == "returning"  # held UP becomes the forced return at once
    d.ctrl.state  # noqa: B018
    d.tap("stop")
    assert d.ctrl.state == "returning"


def test_after_a_forced_return_the_table_rests_upright_for_cooldown_s() -> None:
    cfg = dataclasses.replace(
        Config(), session=dataclasses.replace(Config().session, cooldown_s=10.0)
    )
    d = Driver(-70.0, config=cfg)
    for _ in range(2000):
        d.tick()
        if d.ctrl.state == "idle":
            break
    assert d.ctrl.state == "idle"
    d.tap("start")
    assert d.ctrl.state == "idle" and "rest upright after a forced return" in notes(d)
    d.tap("down")
    assert d.ctrl.state == "idle"
    for _ in range(1000):
        d.tick()
    d.tap("start")
    assert d.ctrl.state == "ramp"


# ---------------------------------------------------------------- the pieces
def test_the_supervised_watch_verdicts() -> None:
    w = SupervisedWatch(0.0, 10.0)
    assert all(
        w.update(0.01 * i, 10.0 - 0.01 * i, -0.3) is None for i in range(1, 500)
    )  # 1 deg/s up
    w = SupervisedWatch(0.0, 10.0)
    verdicts = [w.update(0.01 * i, 10.0, -0.3) for i in range(1, 310)]
    assert verdicts[-1] is not None and verdicts[-1].code == "supervised_no_progress"
    w = SupervisedWatch(0.0, 10.0)
    v = None
    for i in range(1, 200):
        v = w.update(0.01 * i, 10.0 + 0.02 * i, -0.3)
        if v:
            break
    assert v is not None and v.code == "supervised_wrong_way"
    w = SupervisedWatch(0.0, 10.0)
    v = None
    for i in range(1, 100):
        v = w.update(0.01 * i, 10.0 - 0.05 * i, -0.3)  # 5 deg/s
        if v:
            break
    assert v is not None and v.code == "supervised_overspeed"


@pytest.mark.parametrize("load0,slope", [(0.15, -0.004), (-0.1, 0.003), (0.05, -0.003)])
@pytest.mark.parametrize("quantum", [0.0, 20.0 / 4096])
def test_the_back_emf_odometer_follows_a_motor_through_a_load_that_changes_sign(
    load0: float, slope: float, quantum: float
) -> None:
    """A DC motor model (current = I0 + Istall |duty - v/v0|), a load that drifts through zero
    (gravity turning over near horizontal), current quantized like an ADC: the odometer's
    speed toward upright stays within 0.3 deg/s of the truth at 1 deg/s requested."""
    odo = BackEmfOdometer(20.0, 20.0, prior_load=load0)
    true_travel, dt, duty, load = 0.0, 0.01, 0.0, load0
    for i in range(6000):
        load = load0 + slope * i * dt
        v = 20.0 * (duty - load)
        current = 0.6 + 20.0 * abs(duty - v / 20.0)
        if quantum:
            current = round(current / quantum) * quantum
        est = odo.update(duty, current, dt)
        true_travel += v * dt
        if i > 200:
            assert abs(est - v) < 0.3, (i, est, v)
        duty = odo.duty_for(-1.0)
    assert abs(odo.travel - true_travel) < 0.05 * abs(true_travel) + 0.5


def test_a_reading_that_moved_on_the_brake_is_singled_out() -> None:
    assert single_out((10.0, 10.1), (14.0, 10.1)) == "secondary"
    assert single_out((10.0, 10.1), (10.0, 6.0)) == "primary"
    assert single_out((10.0, 10.1), (14.0, 13.0)) is None  # both moved: the brake slipped
    assert single_out((10.0, None), (14.0, 10.1)) is None


def test_frozen_readings_with_a_turning_motor_are_caught_by_the_current() -> None:
    mon = SafetyMonitor(Config())
    det = None
    for i in range(40):
        # The loop commands 0.4 duty; both readings stay at 30.0; the current (2 A) says the
        # motor turns near 0.4 * 20 = 8 deg/s (at rest it would draw 8.6 A).
        snap = Snapshot(0.01 * i, "ramp", True, 30.0, 4.0, 0.4, 30.0, None, True, 40.0)
        det = mon.check(snap, inputs(30.0)._replace(motor_current_a=2.0), 0.01) or det
    assert det is not None and det.code == "sensors_frozen" and mon.position_untrusted
    # A weak motor draws little current too, but its table moves on the sensors: not frozen.
    mon = SafetyMonitor(Config())
    found = []
    for i in range(40):
        a = 30.0 + 0.05 * i
        snap = Snapshot(0.01 * i, "ramp", True, a, 4.0, 0.4, a, None, True, 40.0)
        found.append(mon.check(snap, inputs(a)._replace(motor_current_a=2.0), 0.01))
    assert all(f is None or f.code != "sensors_frozen" for f in found)


def test_config_has_the_cooldown_key_with_its_bounds() -> None:
    from controller.core.config import build_config
    from controller.core.errors import InputError

    assert Config().session.cooldown_s == 120.0 and build_config([]).session.cooldown_s == 120.0
    with pytest.raises(InputError):
        build_config([("c.toml", "", {"session": {"cooldown_s": 1801.0}})])
    assert (
        build_config([("c.toml", "", {"session": {"cooldown_s": 0.0}})]).session.cooldown_s == 0.0
    )


# ---------------------------------------------------------------- through the CLI, every backend
def settled_rows(run: Run, state: str, after_s: float = 1.0) -> list[dict]:
    """Rows in ``state`` more than ``after_s`` after each entry into it (past the brake release)."""
    out, since = [], None
    for r in run.trace:
        if r["state"] != state:
            since = None
            continue
        since = r["t_s"] if since is None else since
        if r["t_s"] - since > after_s:
            out.append(r)
    return out


def states(run: Run) -> list[str]:
    return [r["state"] for r in run.trace]


@pytest.mark.parametrize("backend", BACKENDS)
def test_cli_supervised_recovery_after_a_held_fault(backend: str, tmp_path: Path) -> None:
    run = run_scenario_cli(SCENARIOS / "way_back_supervised.toml", tmp_path, "--backend", backend)
    assert run.code == 0, run.stderr
    sup = settled_rows(run, "supervised_return")
    assert sup and max(abs(r["velocity_dps"]) for r in sup) <= SUPERVISED_SPEED_DPS + 0.1
    # Released = the motor off at once and the brake on (the serial board applies it a tick later).
    rows = run.trace
    for i in range(1, len(rows) - 2):
        if rows[i - 1]["state"] == "supervised_return" and rows[i]["state"] == "fault":
            assert rows[i]["motor_cmd"] == 0.0 and rows[i + 2]["brake"] == 1.0
    assert run.summary["final_state"] == "idle" and run.summary["ended_upright"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_cli_both_sensors_frozen_supervised_recovery_on_the_back_emf(
    backend: str, tmp_path: Path
) -> None:
    run = run_scenario_cli(
        SCENARIOS / "way_back_frozen_sensors.toml", tmp_path, "--backend", backend
    )
    assert run.code == 0, run.stderr
    assert any("sensors_frozen" in e["message"] for e in run.summary["events"])
    sup = [r for r in run.trace if r["state"] == "supervised_return"]
    assert sup and max(abs(r["velocity_dps"]) for r in sup) <= 2.5  # never wound up
    assert run.summary["final_state"] == "idle" and run.summary["ended_upright"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_cli_beyond_max_angle_the_way_back_is_never_refused(backend: str, tmp_path: Path) -> None:
    run = run_scenario_cli(SCENARIOS / "way_back_beyond_max.toml", tmp_path, "--backend", backend)
    assert run.code == 0, run.stderr
    assert (
        "fault" not in states(run) and "jogging" not in states(run) and run.summary["ended_upright"]
    )
    assert any(
        "refused jog down" in e["message"] and "rest upright" in e["message"]
        for e in run.summary["events"]
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_cli_boot_at_61_deg_with_max_60_returns_upright(backend: str, tmp_path: Path) -> None:
    """Issue 11 repro 1 as filed. The start beyond max_angle is the scenario's, not the
    controller's: the checker judges the table against where it began (never deeper), so the
    run passes; the person ends upright."""
    path = write_scenario(
        tmp_path / "b61.toml",
        """
[scenario]
name = "boot at 61"
duration_s = 60.0
start_angle_deg = 61.0
[[events]]
at_s = 0.0
do = "set"
input = "ankle_lock"
value = true
""",
    )
    run = run_scenario_cli(path, tmp_path, "--backend", backend)
    assert run.code == 0, run.summary["violations"]
    assert "fault" not in states(run)
    assert run.summary["final_state"] == "idle" and run.summary["ended_upright"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_cli_heaviest_user_at_the_fastest_emergency_speed_is_slowed_not_held(
    backend: str, tmp_path: Path
) -> None:
    run = run_scenario_cli(SCENARIOS / "way_back_heavy_return.toml", tmp_path, "--backend", backend)
    assert run.code == 0, run.stderr
    assert any("re-planned" in e["message"] for e in run.summary["events"])
    assert run.summary["final_state"] == "idle" and run.summary["ended_upright"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_cli_stuck_upright_switch_plus_drift_never_ends_idle_off_upright(
    backend: str, tmp_path: Path
) -> None:
    run = run_scenario_cli(
        SCENARIOS / "way_back_switch_and_drift.toml", tmp_path, "--backend", backend
    )
    assert run.code == 0, run.stderr
    for r in run.trace:
        if r["state"] == "idle":
            assert r["angle_deg"] <= UP + 1.0 + 0.5 or r["t_s"] < 2.0, r
    assert run.summary["final_state"] == "idle" and run.summary["ended_upright"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_cli_power_cycle_in_the_estop_keeps_the_clock_and_the_rest(
    backend: str, tmp_path: Path
) -> None:
    run = run_scenario_cli(
        SCENARIOS / "way_back_estop_power_cycle.toml", tmp_path, "--backend", backend
    )
    assert run.code == 0, run.stderr
    ev = [e["message"] for e in run.summary["events"]]
    assert any("refused jog down" in m or "refused" in m for m in ev) or "jogging" not in states(
        run
    )
    assert sum("rest upright after a forced return" in m for m in ev) == 1
    ramp_t = [r["t_s"] for r in run.trace if r["state"] == "ramp"]
    assert ramp_t and min(t for t in ramp_t if t > 40.0) >= 80.0  # only after the rest
    assert run.summary["final_state"] == "idle"


@pytest.mark.parametrize("backend", BACKENDS)
def test_cli_no_motor_command_while_the_ankle_lock_is_open(backend: str, tmp_path: Path) -> None:
    run = run_scenario_cli(SCENARIOS / "interlock_refused.toml", tmp_path, "--backend", backend)
    for r in run.trace:
        if r["ankle_locked"] == 0.0 and r["angle_deg"] <= UP + 1.0:
            assert r["motor_cmd"] == 0.0, r
