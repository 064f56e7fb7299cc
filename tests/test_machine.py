"""Controller unit tests: synthetic HAL snapshots, time passed in by hand (no physics)."""

from __future__ import annotations

import dataclasses

import pytest

from controller.core.config import Config, build_config
from controller.core.duty import DutyBudget
from controller.core.machine import SELFTEST_S, STATE_NAMES, Controller
from hal.interfaces import Inputs, Outputs

UP = -80.0


def inputs(
    angle: float = UP,
    *,
    buttons: tuple[str, ...] = (),
    estop: bool = False,
    ankle: bool = True,
    secondary: float | None = None,
    upright_switch: bool | None = None,
) -> Inputs:
    return Inputs(
        angle_primary_deg=angle,
        angle_secondary_deg=angle if secondary is None else secondary,
        upright_switch=(angle <= UP + 1.5) if upright_switch is None else upright_switch,
        overtravel_tripped=False,
        estop_pressed=estop,
        ankle_locked=ankle,
        buttons=frozenset(buttons),
        motor_current_a=0.0,
    )


class Driver:
    """Ticks a controller at 100 Hz with whatever inputs the test gives."""

    def __init__(self, angle: float = UP, config: Config | None = None, **kw: object) -> None:
        self.t = 0.0
        self.ctrl = Controller(config or Config(), 0.0)
        self.out = self.tick(angle, **kw)
        while self.ctrl.state == "boot" and self.t < 2.0:
            self.out = self.tick(angle, **kw)

    def tick(self, angle: float | None = None, **kw: object) -> Outputs:
        """One tick. Without an angle the table follows the controller's setpoint exactly."""
        self.t += 0.01
        if angle is None:
            angle = (
                self.ctrl.setpoint
                if self.ctrl.tracking
                else self.ctrl.angle
                if self.ctrl.inputs
                else UP
            )
            kw.setdefault("upright_switch", angle <= UP + 1.5)
        self.out = self.ctrl.update(self.t, inputs(angle, **kw))
        return self.out

    def tap(self, button: str, angle: float | None = None, **kw: object) -> None:
        self.tick(angle, buttons=(button,), **kw)
        self.tick(angle, **kw)


def test_machine_follows_transitions_guidance() -> None:
    ctrl = Controller(Config(), 0.0)
    assert not any(hasattr(ctrl, f"to_{s}") for s in STATE_NAMES)  # auto_transitions=False
    assert ctrl.machine.has_queue  # queued=True
    assert ctrl.state == "boot"


def test_boot_upright_goes_idle_after_selftest_and_brake_test() -> None:
    d = Driver()
    assert d.ctrl.state == "idle" and d.ctrl.selftest_ok and d.ctrl.brake_ok
    assert d.out.motor_cmd == 0.0 and d.out.brake
    assert any(e.message.startswith("brake test passed") for e in d.ctrl.events)


def test_boot_brake_test_pushes_toward_inversion_against_the_brake() -> None:
    ctrl = Controller(Config(), 0.0)
    seen = []
    t = 0.0
    while ctrl.state == "boot":
        t += 0.01
        out = ctrl.update(t, inputs())
        seen.append((round(out.motor_cmd, 3), out.brake, out.motor_power))
    pushes = [x for x in seen if x[0] != 0.0]
    assert {x[0] for x in pushes} == {0.35} and len(
        pushes
    ) == 30  # 0.3 s, against gravity at upright
    assert all(brake and power for _, brake, power in pushes)  # always against the engaged brake


def test_a_brake_that_slips_in_the_boot_test_refuses_sessions() -> None:
    ctrl = Controller(Config(), 0.0)
    t = 0.0
    while ctrl.state == "boot" and t < 2.0:
        t += 0.01
        slip = UP + (0.5 if t > SELFTEST_S + 0.1 else 0.0)  # the table moves under the push
        ctrl.update(t, inputs(slip))
    assert not ctrl.brake_ok and "brake_test_failed" in ctrl.monitor.latched
    assert ctrl.state == "fault"  # the motor brings the table back the 0.5 deg and holds it
    while ctrl.state == "fault" and t < 4.0:
        t += 0.01
        ctrl.update(t, inputs(ctrl.setpoint))
    assert ctrl.state == "idle" and ctrl.tracking  # the motor holds instead of the brake
    t += 0.01
    ctrl.update(t, inputs(UP, buttons=("start",)))
    assert ctrl.state != "ramp"
    assert any("latched fault: brake_test_failed" in e.message for e in ctrl.events)


@pytest.mark.parametrize(
    "kw,reason",
    [
        ({"secondary": UP + 5.0}, "angle sensors disagree"),
        ({"upright_switch": False}, "upright switch open"),
    ],
)
def test_boot_selftest_failure_latches_a_fault_and_refuses_sessions(kw: dict, reason: str) -> None:
    d = Driver(**kw)
    assert "fault" in [t.dest for t in d.ctrl.transitions]
    assert "selftest_failed" in d.ctrl.monitor.latched
    assert any(reason in e.message for e in d.ctrl.events)
    for _ in range(100):
        d.tick(UP, **kw)
        assert d.out.alarm
    d.tap("start", UP, **kw)
    assert d.ctrl.state not in ("ramp", "jogging")
    assert any(
        "refused start" in e.message and "self-test not passed" in e.message for e in d.ctrl.events
    )


def test_a_failed_selftest_off_upright_still_returns_the_user() -> None:
    """A failed self-test refuses sessions but never a return to upright."""
    d = Driver(30.0, upright_switch=True)  # the upright switch lies at boot
    assert d.ctrl.state == "fault" and d.ctrl.tracking and d.out.motor_power
    assert d.ctrl.profile.goal == UP and d.ctrl.speed_limit == Config().motion.emergency_speed_dps


def test_an_unbelievable_angle_at_boot_holds_on_the_brake() -> None:
    d = Driver(120.0, upright_switch=False)
    assert d.ctrl.state == "fault" and not d.ctrl.tracking
    assert d.out.motor_cmd == 0.0 and d.out.brake and d.out.alarm and not d.out.motor_power


def test_boot_with_estop_pressed_goes_to_estop() -> None:
    assert Driver(estop=True).ctrl.state == "estop"


def test_boot_off_upright_returns_and_stop_cannot_pause_it() -> None:
    d = Driver(30.0, upright_switch=False)
    assert d.ctrl.state == "returning"
    d.tap("stop", 30.0, upright_switch=False)
    assert d.ctrl.state == "returning"


def test_start_is_refused_with_the_reason_without_ankle_lock() -> None:
    d = Driver(ankle=False)
    d.tap("start", ankle=False)
    assert d.ctrl.state == "idle"
    assert any(e.message == "refused start: ankle lock not confirmed" for e in d.ctrl.events)
    d.tap("down", ankle=False)
    assert d.ctrl.state == "idle"
    assert any(
        e.message.startswith("refused jog down: ankle lock not confirmed") for e in d.ctrl.events
    )


def test_start_tests_the_brake_then_runs_the_program_with_brake_released() -> None:
    d = Driver()
    d.tap("start")
    assert d.ctrl.state == "ramp"
    out = d.tick()
    assert out.brake and out.motor_cmd == 0.35  # the pre-session brake test pushes first
    for _ in range(40):
        out = d.tick()
    assert not out.brake and out.motor_cmd > 0.0  # then the ramp, toward inversion
    assert (
        sum(e.message.startswith("brake test passed") for e in d.ctrl.events) == 2
    )  # boot + session


@pytest.mark.parametrize("setup", ["ramp", "jogging", "paused", "emergency_return"])
def test_estop_zeroes_motor_and_brakes_in_the_same_tick(setup: str) -> None:
    d = Driver()
    if setup == "jogging":
        d.tick(buttons=("down",))
    else:
        d.tap("start")
        for _ in range(200):
            d.tick()  # 2 s of ramp: off upright
        if setup == "paused":
            d.tap("stop")
        elif setup == "emergency_return":
            d.tap("return")
    assert d.ctrl.state == setup
    out = d.tick(estop=True, buttons=("down",) if setup == "jogging" else ())
    assert d.ctrl.state == "estop"
    assert out.motor_cmd == 0.0 and out.brake


def test_estop_release_moves_nothing_and_return_leaves() -> None:
    d = Driver()
    d.tap("start")
    d.tick(10.0, estop=True, upright_switch=False)
    for _ in range(100):
        out = d.tick(10.0, upright_switch=False)  # released
        assert d.ctrl.state == "estop" and out.motor_cmd == 0.0 and out.brake and out.alarm
    d.tap("start", 10.0, upright_switch=False)
    assert d.ctrl.state == "estop"
    d.tap("return", 10.0, upright_switch=False)
    assert d.ctrl.state == "emergency_return"


def test_return_while_estop_still_pressed_is_refused() -> None:
    d = Driver()
    d.tap("start")
    d.tap("return", 10.0, estop=True, upright_switch=False)
    assert d.ctrl.state == "estop"


def test_ankle_lock_lost_during_session_triggers_emergency_return() -> None:
    d = Driver()
    d.tap("start")
    for _ in range(100):
        d.tick()
    d.tick(ankle=False)
    assert d.ctrl.state == "emergency_return"


def test_time_limit_forces_a_return_that_stop_cannot_pause() -> None:
    cfg = dataclasses.replace(
        Config(), session=dataclasses.replace(Config().session, max_duration_s=10.0, hold_s=5.0)
    )
    d = Driver(config=cfg)
    d.tap("start")
    start_t = d.t
    for _ in range(100):
        d.tick()  # brake test, then off upright
    d.tap("stop")
    assert d.ctrl.state == "paused"
    while d.t < 12.0 and d.ctrl.state == "paused":
        d.tick()
    assert d.ctrl.state == "returning"
    assert d.t <= start_t + 10.0 + 0.011  # the clock started at START; limit 10 s
    d.tap("stop")
    assert d.ctrl.state == "returning"


def test_an_exception_in_the_tick_latches_fault_with_safe_outputs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    d = Driver()
    d.tap("start")

    def boom(*_a: object) -> None:
        raise ZeroDivisionError("injected")

    # (Through the handlers' table, a plain dict: a compiled controller takes no patch.)
    monkeypatch.setitem(d.ctrl._during, d.ctrl.state, boom)
    out = d.tick()
    assert d.ctrl.state == "fault"
    assert out.motor_cmd == 0.0 and out.brake and out.alarm
    assert any("internal_error: ZeroDivisionError: injected" in e.message for e in d.ctrl.events)
    hb = out.heartbeat
    out = d.tick()  # the loop keeps running: heartbeat alive, still safe
    assert out.heartbeat != hb and out.motor_cmd == 0.0 and out.brake


def test_following_error_latches_fault_and_opens_the_relay() -> None:
    d = Driver()
    d.tap("start")
    for _ in range(100):
        d.tick()
    out = d.tick(d.ctrl.setpoint + 3.5)  # the table runs away from the setpoint
    assert d.ctrl.state == "fault"
    assert out.motor_cmd == 0.0 and out.brake and not out.motor_power
    assert any(e.message.startswith("fault: runaway:") for e in d.ctrl.events)


def test_a_return_that_stops_off_upright_is_a_fault_not_idle() -> None:
    d = Driver(-40.0, upright_switch=False)  # boots off upright: returning
    assert d.ctrl.state == "returning"
    # The table follows the setpoint, then sticks 2.5 deg short: inside the following-error
    # band, outside "upright" (1 deg).
    for _ in range(2000):
        d.tick(max(d.ctrl.setpoint, -77.5) if d.ctrl.tracking else -77.5, upright_switch=False)
        if d.ctrl.state != "returning":
            break
    assert d.ctrl.state == "fault"
    assert any("return_incomplete" in e.message for e in d.ctrl.events)


def test_a_button_held_at_power_on_is_forgotten_once_released() -> None:
    d = Driver(buttons=("up",))  # UP held through boot: not a press, and reported as stuck ...
    d.tick(buttons=("up",))
    assert "button_stuck_up" in d.ctrl.monitor.latched
    d2 = Driver(buttons=("down",))
    d2.tick()  # ... but once released it is a normal button again: pressing it later is no fault
    d2.tick(buttons=("start",))
    assert not any(code.startswith("button_stuck") for code in d2.ctrl.monitor.latched)
    d2.tick(buttons=("down",))
    assert not any(code.startswith("button_stuck") for code in d2.ctrl.monitor.latched)


def test_limp_home_on_the_upright_switch_times_out_into_a_hold() -> None:
    """Neither sensor can be singled out and the upright switch never closes: the limp home
    must give up (hold, alarm) rather than wait for ever."""
    d = Driver()
    d.tap("start")
    for _ in range(300):
        d.tick()
    sp = d.ctrl.setpoint
    for _ in range(40):  # both sensors move with the table but sit 0.6 deg either side of it
        sp = d.ctrl.setpoint
        d.tick(sp + 0.6, secondary=sp - 0.6, upright_switch=False)
        if d.ctrl.state == "limp_home":
            break
    assert d.ctrl.state == "limp_home" and d.ctrl.monitor.position_untrusted
    for _ in range(20000):  # the table follows, but the switch never closes
        d.tick(d.ctrl.setpoint, upright_switch=False)
        if d.ctrl.state != "limp_home":
            break
    assert d.ctrl.state == "fault"
    assert "limp_timeout" in d.ctrl.monitor.latched
    assert d.out.motor_cmd == 0.0 and d.out.brake and d.out.alarm


def test_the_supply_relay_stays_closed_while_holding() -> None:
    d = Driver()
    assert d.out.brake and d.out.motor_power  # idle: braked, relay closed (dynamic braking)


def test_sensor_disagreement_limps_home_on_the_sensor_that_follows() -> None:
    d = Driver()
    d.tap("start")
    for _ in range(300):
        d.tick()
    good = d.ctrl.setpoint
    d.tick(good, secondary=good + 5.0)  # the secondary jumps away from the motion
    assert d.ctrl.state == "limp_home"
    assert d.ctrl.monitor.distrusted == {"secondary"}
    assert d.out.alarm and any(
        e.message.startswith("fault: sensor_disagree:") for e in d.ctrl.events
    )
    for _ in range(5000):
        d.tick(d.ctrl.setpoint, secondary=0.0)  # the bad one is ignored from now on
        if d.ctrl.state != "limp_home":
            break
    assert d.ctrl.state == "idle" and d.ctrl.profile.vmax <= 2.0
    d.tap("start", secondary=0.0)
    assert d.ctrl.state == "idle"  # latched: no new session
    assert any("latched fault: sensor_disagree" in e.message for e in d.ctrl.events)


def test_the_duty_budget_refuses_jogs_and_sessions_but_never_a_return() -> None:
    cfg = build_config([("c", "", {"motion": {"duty_on_s": 10.0, "duty_window_s": 60.0}})])
    d = Driver(config=cfg)
    for _ in range(1200):  # 12 s of DOWN: a jog toward inversion spends the budget
        d.tick(buttons=("down",))
    for _ in range(300):  # released: it stops and holds on the brake
        d.tick()
    assert d.ctrl.state == "holding" and d.ctrl.duty.used_s(d.t) >= 10.0
    d.tap("down")
    assert d.ctrl.state == "holding"
    assert any("duty budget" in e.message and "wait" in e.message for e in d.ctrl.events)
    d.tick(buttons=("up",))  # toward upright: never refused
    assert d.ctrl.state == "jogging"


def test_duty_budget_expires_with_its_window() -> None:
    b = DutyBudget(on_s=5.0, window_s=10.0)
    for k in range(600):
        b.record(k * 0.01, 0.01, True)
    assert b.used_s(6.0) == pytest.approx(6.0) and b.wait_s(6.0) > 0
    assert b.wait_s(17.5) == 0.0 and b.used_s(17.5) < 5.0


# ----------------------------------------------------------------- sessions the application refuses

STORE_GONE = (
    "history store unavailable: /data/invtable.db: database or disk is full; "
    "sessions need their record"
)


def test_a_refused_session_is_refused_at_start_with_the_reason_and_noted_once() -> None:
    """Issue 13: the application (its history store failed) refuses new sessions through the
    controller's hook; START then says why, like every other interlock."""
    d = Driver()
    d.ctrl.refuse_sessions("history", STORE_GONE)
    d.ctrl.refuse_sessions("history", STORE_GONE)  # every tick may say it again: noted once
    assert [e.message for e in d.ctrl.events].count(f"sessions refused: {STORE_GONE}") == 1
    d.tap("start")
    assert d.ctrl.state == "idle" and d.out.motor_cmd == 0.0 and d.out.brake
    assert any(e.message == f"refused start: {STORE_GONE}" for e in d.ctrl.events)
    d.tick(buttons=("down",))  # a jog needs no record: only sessions are refused
    assert d.ctrl.state == "jogging"


@pytest.mark.parametrize(
    "way_back", ["return", "up", "time_limit", "estop_then_return", "stop_start_then_return"]
)
def test_the_refusal_hook_never_blocks_the_session_under_way_nor_the_way_back(
    way_back: str,
) -> None:
    """The store fails mid-session: the session goes on (a pause resumes), and RETURN, UP, the
    time limit and the e-stop's way out all bring the person upright; only a new START is
    refused."""
    cfg = dataclasses.replace(
        Config(),
        session=dataclasses.replace(
            Config().session, max_duration_s=10.0, hold_s=60.0, target_deg=20.0
        ),
    )
    d = Driver(config=cfg)
    d.tap("start")
    for _ in range(200):
        d.tick()  # brake test, then 2 s of ramp: off upright
    assert d.ctrl.state == "ramp" and d.ctrl.angle > UP + 3.0
    d.ctrl.refuse_sessions("history", STORE_GONE)
    d.tick()
    assert d.ctrl.state == "ramp"  # the session under way goes on
    if way_back == "return":
        d.tap("return")
        assert d.ctrl.state == "emergency_return"
    elif way_back == "up":
        d.tap("up")
        assert d.ctrl.state == "returning"
    elif way_back == "estop_then_return":
        d.tick(estop=True)
        assert d.ctrl.state == "estop"
        d.tick()
        d.tap("return")
        assert d.ctrl.state == "emergency_return"
    elif way_back == "stop_start_then_return":
        d.tap("stop")
        assert d.ctrl.state == "paused"
        d.tap("start")  # resuming the session under way is no new session
        assert d.ctrl.state == "ramp"
        d.tap("return")
        assert d.ctrl.state == "emergency_return"
    while d.ctrl.state != "idle" and d.t < 60.0:
        d.tick()
    assert d.ctrl.state == "idle" and abs(d.ctrl.angle - UP) < 0.5
    if way_back == "time_limit":
        assert any(tr.trigger == "time_limit" for tr in d.ctrl.transitions)
    refusals = [e.message for e in d.ctrl.events if e.message.startswith("refused")]
    assert refusals == []  # nothing on the way back asked
    d.tap("start")  # (after a forced return the cooldown refuses it too: both reasons are given)
    assert d.ctrl.state == "idle"
    assert any(
        e.message.startswith("refused start: ") and STORE_GONE in e.message for e in d.ctrl.events
    )
