"""The simulator's physics and hardwired behaviour: it must be a faithful adversary."""
from __future__ import annotations

import pytest

from hal.interfaces import Outputs, TableHardware
from sim.table import DEADMAN_S, SimTable

UP = -80.0


def table(angle: float = UP, **kw: object) -> SimTable:
    return SimTable(angle_deg=angle, upright_deg=UP, **kw)


def drive(t: SimTable, cmd: float, seconds: float, brake: bool = False, heartbeat: bool = True) -> None:
    hb = False
    for _ in range(int(round(seconds / 0.01))):
        hb = not hb if heartbeat else hb
        t.write(Outputs(motor_cmd=cmd, brake=brake, alarm=False, heartbeat=hb))
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
    t.write(Outputs(motor_cmd=1.0, brake=False, alarm=False, heartbeat=True))  # a dead controller writes nothing
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


def test_deadman_drops_motor_enable_when_the_heartbeat_stops() -> None:
    t = table(0.0)
    drive(t, 0.3, 0.5)
    assert t.motor_enabled
    drive(t, 0.3, DEADMAN_S + 0.02, heartbeat=False)
    assert not t.motor_enabled


@pytest.mark.parametrize("fault,check", [
    ("estop_wire_break", lambda i: i.estop_pressed),
    ("ankle_sensor_wire_break", lambda i: not i.ankle_locked),
    ("angle_sensor_dropout", lambda i: i.angle_primary_deg is None),
])
def test_broken_wires_read_as_the_unsafe_condition(fault: str, check) -> None:  # noqa: ANN001
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
    assert abs(i.angle_primary_deg - 0.0) < 0.3 and abs(i.angle_secondary_deg - t.physics.angle) < 0.1


def test_hard_stops_bound_the_travel() -> None:
    t = table(88.0, mass_kg=136.0, height_cm=198.0)
    drive(t, 1.0, 5.0)
    assert t.physics.angle == pytest.approx(t.params.stop_high_deg) and t.read().overtravel_tripped


def test_same_seed_same_readings_different_seed_different() -> None:
    a, b, c = table(seed=3), table(seed=3), table(seed=4)
    ra = [a.read().angle_primary_deg for _ in range(50)]
    assert ra == [b.read().angle_primary_deg for _ in range(50)]
    assert ra != [c.read().angle_primary_deg for _ in range(50)]
