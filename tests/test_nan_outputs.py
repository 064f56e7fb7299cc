"""NaN never reaches an output: the HAL writers turn a non-finite motor command into
motor 0 with the brake on (the controller has already latched a fault upstream)."""

from __future__ import annotations

import math

from hal.interfaces import Outputs
from tests.test_gpio import Hw, hw, out  # noqa: F401 - the fixture
from tests.test_serial import Rig, rig  # noqa: F401 - the fixture


def test_the_gpio_writer_drives_nothing_for_a_non_finite_command(hw: Hw) -> None:  # noqa: F811
    table, _factory = hw
    for bad in (math.nan, math.inf, -math.inf):
        table.write(out(cmd=0.5, brake=False))
        assert table.pin_outputs.motor_cmd > 0 and not table.pin_outputs.brake
        table.write(out(cmd=bad, brake=False))
        pins = table.pin_outputs
        assert pins.motor_cmd == 0.0 and pins.brake


def test_the_serial_writer_sends_duty_0_with_the_brake_for_a_non_finite_command(rig: Rig) -> None:  # noqa: F811
    rig.table.ankle_lock_closed = True
    for _ in range(5):
        rig.tick()
    for bad in (math.nan, math.inf):
        rig.tick(Outputs(motor_cmd=bad, brake=False, alarm=False, heartbeat=True, motor_power=True))
        rig.tick(
            Outputs(motor_cmd=bad, brake=False, alarm=False, heartbeat=False, motor_power=True)
        )
        assert rig.table.applied_cmd == 0.0 and rig.table.brake_engaged
