"""The simulator's physics and hardwired behaviour: it must be a faithful adversary."""

from __future__ import annotations

import random
from typing import Callable

import pytest

from hal.interfaces import Inputs, Outputs, TableHardware
from sim.table import DEADMAN_S, SimTable

UP = -80.0


def table(angle: float = UP, **kw: object) -> SimTable:
    return SimTable(angle_deg=angle, upright_deg=UP, **kw)


def drive(
    t: SimTable,
    cmd: float,
    seconds: float,
    brake: bool = False,
    heartbeat: bool = True,
    relay: bool | None = None,
) -> None:
    hb = t.outputs.heartbeat
    for _ in range(int(round(seconds / 0.01))):
        hb = not hb if heartbeat else hb
        t.write(
            Outputs(
                motor_cmd=cmd,
                brake=brake,
                alarm=False,
                heartbeat=hb,
                motor_power=(not brake) if relay is None else relay,
            )
        )
        t.advance(0.01)


def test_sim_table_implements_the_hal_protocol() -> None:
    assert isinstance(table(), TableHardware)


@pytest.mark.parametrize("angle", [-80.0, -30.0, 0.0, 45.0, 90.0])
@pytest.mark.parametrize("mass,height", [(136.0, 198.0), (136.0, 147.0), (40.0, 147.0)])
def test_brake_holds_every_user_at_every_angle(angle: float, mass: float, height: float) -> None:
    t = table(angle, mass_kg=mass, height_cm=height)
    drive(t, 0.0, 2.0, brake=True)
    assert t.physics.angle == pytest.approx(angle, abs=1e-9)


def test_gravity_moves_an_unbraked_unpowered_table() -> None:
    """Otherwise the brake test above would prove nothing."""
    t = table(45.0, mass_kg=136.0, height_cm=198.0)
    t.estop_button = False
    drive(t, 0.0, 2.0, brake=False)
    assert abs(t.physics.angle - 45.0) > 1.0


def test_motor_speed_follows_duty_with_a_load_droop() -> None:
    t = table(-40.0)
    drive(t, 0.2, 3.0)
    assert 2.0 < t.physics.vel < 6.0 and t.physics.current > 0.6


def test_power_cut_engages_the_brake_and_removes_motor_power() -> None:
    t = table(30.0)
    drive(t, 0.5, 1.0)
    t.set_power(False)
    assert t.brake_engaged and not t.motor_enabled
    t.write(
        Outputs(motor_cmd=1.0, brake=False, alarm=False, heartbeat=True)
    )  # a dead controller writes nothing
    angle = t.physics.angle
    t.advance(0.5)
    t.advance(2.0)
    assert abs(t.physics.angle - angle) < 0.1


def test_estop_is_hardwired_motor_cut_and_brake() -> None:
    t = table(0.0)
    drive(t, 0.5, 1.0)
    t.estop_button = True
    assert not t.motor_enabled and t.brake_engaged and t.read().estop_pressed
    drive(t, 1.0, 1.0, brake=False)  # software still asks to move: the wiring wins
    v_before = t.physics.angle
    drive(t, 1.0, 1.0, brake=False)
    assert t.physics.angle == pytest.approx(v_before, abs=1e-6)


def test_deadman_drops_motor_enable_and_engages_the_brake_when_the_heartbeat_stops() -> None:
    t = table(0.0)
    drive(t, 0.3, 0.5)
    assert t.motor_enabled and not t.brake_engaged
    drive(t, 0.3, DEADMAN_S + 0.02, heartbeat=False)
    assert not t.motor_enabled and t.brake_engaged
    angle = t.physics.angle
    drive(t, 0.3, 1.0, heartbeat=False)
    assert abs(t.physics.angle - angle) < 0.2  # stopped by the brake within its stopping distance


def test_motor_needs_the_supply_relay() -> None:
    """With the relay open the command has no effect: the table moves as an unpowered one."""
    commanded, idle = table(0.0), table(0.0)
    drive(commanded, 0.8, 1.0, relay=False)
    drive(idle, 0.0, 1.0, relay=False)
    assert commanded.physics.angle == idle.physics.angle and commanded.physics.current == 0.0


def test_runaway_driver_ignores_the_command_but_not_the_relay() -> None:
    t = table(0.0)
    t.inject("motor_runaway")  # idle: stuck toward inversion
    drive(t, -0.5, 1.0)  # asks to go up ...
    assert t.physics.vel > 10.0  # ... the driver drives down at full duty
    drive(t, 0.0, 1.0, brake=True)  # relay open and brake on
    angle = t.physics.angle
    drive(t, 0.0, 1.0, brake=True)
    assert t.physics.angle == pytest.approx(angle, abs=1e-9)


@pytest.mark.parametrize("fault", ["brake_failed", "brake_slip"])
def test_brake_faults_let_gravity_move_a_heavy_user(fault: str) -> None:
    t = table(45.0, mass_kg=136.0, height_cm=198.0)
    t.inject(fault)
    drive(t, 0.0, 2.0, brake=True)
    assert t.physics.angle > 46.0


def test_stall_jams_the_drive_and_raises_the_current() -> None:
    t = table(0.0)
    drive(t, 0.3, 0.5)
    free_current = t.physics.current
    t.inject("motor_stall")
    drive(t, 0.6, 0.5)
    assert t.physics.vel == 0.0 and t.physics.current > free_current * 2


def test_weak_motor_is_slower_under_load() -> None:
    fast, weak = (
        table(-40.0, mass_kg=136.0, height_cm=198.0),
        table(-40.0, mass_kg=136.0, height_cm=198.0),
    )
    weak.inject("motor_weak")
    drive(fast, -0.2, 2.0)
    drive(weak, -0.2, 2.0)
    assert abs(weak.physics.vel) < abs(fast.physics.vel) - 0.5


def test_sensor_drift_and_noise() -> None:
    t = table(0.0, seed=5)
    t.inject("angle_sensor_drift")
    drive(t, 0.0, 4.0, brake=True)
    assert t.read().angle_primary_deg == pytest.approx(2.0, abs=0.3)
    t.clear("angle_sensor_drift")
    t.inject("angle_sensor_noise")
    spread = [t.read().angle_primary_deg for _ in range(200)]
    assert max(spread) - min(spread) > 5.0


@pytest.mark.parametrize(
    "fault,check",
    [
        ("upright_switch_stuck", lambda i: i.upright_switch),
        ("overtravel_switch_open", lambda i: i.overtravel_tripped),
        ("button_stuck", lambda i: "down" in i.buttons),
    ],
)
def test_switch_and_button_faults(fault: str, check: Callable[[Inputs], bool]) -> None:
    t = table(20.0)
    assert not check(t.read())
    t.inject(fault)
    assert check(t.read())


@pytest.mark.parametrize(
    "fault,check",
    [
        ("estop_wire_break", lambda i: i.estop_pressed),
        ("ankle_sensor_wire_break", lambda i: not i.ankle_locked),
        ("angle_sensor_dropout", lambda i: i.angle_primary_deg is None),
    ],
)
def test_broken_wires_read_as_the_unsafe_condition(
    fault: str, check: Callable[[Inputs], bool]
) -> None:
    t = table()
    t.ankle_lock_closed = True
    assert not check(t.read())
    t.inject(fault)
    assert check(t.read())
    t.clear(fault)
    assert not check(t.read())


def test_stuck_sensor_stops_following_the_table() -> None:
    t = table(0.0)
    t.inject("angle_sensor_stuck")
    drive(t, 0.5, 1.0)
    i = t.read()
    assert (
        abs(i.angle_primary_deg - 0.0) < 0.3 and abs(i.angle_secondary_deg - t.physics.angle) < 0.1
    )


def test_hard_stops_bound_the_travel() -> None:
    t = table(88.0, mass_kg=136.0, height_cm=198.0)
    drive(t, 1.0, 5.0)
    assert t.physics.angle == pytest.approx(t.params.stop_high_deg) and t.read().overtravel_tripped


def test_same_seed_same_readings_different_seed_different() -> None:
    a, b, c = table(seed=3), table(seed=3), table(seed=4)
    ra = [a.read().angle_primary_deg for _ in range(50)]
    assert ra == [b.read().angle_primary_deg for _ in range(50)]
    assert ra != [c.read().angle_primary_deg for _ in range(50)]


def test_a_run_stopped_before_its_first_tick_still_summarizes() -> None:
    """SIGTERM can arrive while `invtable run` starts: no rows, and no crash for it."""
    from sim.runner import RunResult, summarize
    from sim.scenario import scenario_from_dict

    result = RunResult(scenario_from_dict({"scenario": {"name": "x", "duration_s": 1.0}}, "x"))
    s = summarize(result)
    assert s["final_state"] == "boot" and s["ended_upright"] and s["max_speed_dps"] == 0.0


def test_the_tables_gaussian_noise_is_the_librarys_sequence() -> None:
    """SimTable._gauss (the sensor noise, copied so it runs compiled) draws exactly the numbers
    random.Random.gauss draws from the same seed, pairs and all: the traces did not change."""
    table = SimTable(angle_deg=0.0, upright_deg=-80.0, seed=42)
    library = random.Random(42)
    for sigma in [0.05, 0.05, 0.5, 0.05, 1.0, 2.0, 0.05] * 50:
        assert table._gauss(sigma) == library.gauss(0.0, sigma)


def test_the_hot_namedtuples_are_built_whole() -> None:
    """Inputs, Outputs and the monitor's Snapshot are built by tuple.__new__ every tick, which
    knows no defaults: each has all its fields (a field added later must be added there)."""
    from controller.core.machine import _outputs
    from controller.core.monitor import Snapshot, make_snapshot
    from controller.core.states import State

    inputs = SimTable(angle_deg=-80.0, upright_deg=-80.0).read()
    assert len(inputs) == len(Inputs._fields) and inputs == Inputs(*inputs)
    assert inputs.fresh and inputs.link_ok and not inputs.board_returning
    outputs = _outputs(0.25, False, True, True, True)
    assert outputs == Outputs(
        motor_cmd=0.25, brake=False, alarm=True, heartbeat=True, motor_power=True
    )
    assert len(outputs) == len(Outputs._fields)
    values = (1.0, State.RAMP, True, 2.0, 3.0, 0.5, 1.5, None, False, 60.0, 0.25)
    snapshot = make_snapshot(*values)
    assert len(snapshot) == len(Snapshot._fields) and snapshot == Snapshot(*values)
    assert snapshot.load_denied_s == 0.25 and not snapshot.motor_power
