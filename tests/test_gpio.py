"""The gpio backend on gpiozero's mock pins: full pin histories, never ``assert_states``
(it compares with zip and passes on a history that is too long or too short)."""

from __future__ import annotations

import subprocess
import sys
from typing import Iterator

import pytest
from gpiozero.pins.mock import MockPWMPin

from hal.gpio.backend import GpioTable, scale_angle
from hal.gpio.config import Gpio
from hal.interfaces import Outputs
from sim.gpio_world import SimPinFactory, angle_volts

G = Gpio()
NC_INPUTS = ("estop_a", "estop_b", "overtravel", "ankle_a", "ankle_b")
LOG: list[tuple[int, float]] = []  # every output change on every pin, in order
Hw = tuple[GpioTable, SimPinFactory]  # the hw fixture: the backend and its mock pins


class LoggingPin(MockPWMPin):
    def _change_state(self, value: float) -> bool:
        changed = super()._change_state(value)
        if changed and self._function == "output":
            LOG.append((self.info.name, float(value)))
        return changed


@pytest.fixture
def hw() -> Iterator[Hw]:
    factory = SimPinFactory()
    factory.pin_class = LoggingPin
    table = GpioTable(G, pin_factory=factory)
    for name in NC_INPUTS:  # a healthy, closed safety circuit
        factory.pin(getattr(G, name)).drive_low()
    LOG.clear()
    yield table, factory
    table.close()
    factory.reset()  # MockFactory keeps pins at class level: never leak them into the next test


def pin(factory: SimPinFactory, number: int) -> MockPWMPin:
    return factory.pin(number)


def history(factory: SimPinFactory, number: int) -> list[float]:
    return [float(s.state) for s in factory.pin(number).states]


def out(
    cmd: float = 0.0, brake: bool = True, power: bool = True, hb: bool = False, alarm: bool = False
) -> Outputs:
    return Outputs(motor_cmd=cmd, brake=brake, alarm=alarm, heartbeat=hb, motor_power=power)


def test_outputs_start_safe_and_follow_the_command(hw: Hw) -> None:
    table, factory = hw
    # Created safe: PWM 0, brake release off, relay open -- the whole history, nothing else.
    assert history(factory, G.motor_pwm) == [0.0]
    assert history(factory, G.brake_release) == [0.0]
    assert history(factory, G.motor_relay) == [0.0]
    table.write(out(0.4, brake=False, hb=True))
    assert history(factory, G.motor_pwm) == [0.0, 0.4]
    assert history(factory, G.motor_dir) == [0.0, 1.0]
    assert history(factory, G.brake_release) == [0.0, 1.0]
    assert history(factory, G.motor_relay) == [0.0, 1.0]
    assert history(factory, G.heartbeat) == [0.0, 1.0]
    assert table.pin_outputs == out(0.4, brake=False, hb=True)


def test_reversing_is_break_before_make(hw: Hw) -> None:
    table, factory = hw
    table.write(out(0.5, brake=False))
    LOG.clear()
    table.write(out(-0.3, brake=False))
    drive = [(name, v) for name, v in LOG if name in (f"GPIO{G.motor_pwm}", f"GPIO{G.motor_dir}")]
    assert drive == [
        (f"GPIO{G.motor_pwm}", 0.0),
        (f"GPIO{G.motor_dir}", 0.0),
        (f"GPIO{G.motor_pwm}", 0.3),
    ]
    LOG.clear()
    table.write(out(-0.2, brake=False))  # same direction: no break
    assert [(n, v) for n, v in LOG if n == f"GPIO{G.motor_dir}"] == []
    assert history(factory, G.motor_pwm) == [0.0, 0.5, 0.0, 0.3, 0.2]


def test_power_off_opens_the_relay_with_the_motor_at_zero(hw: Hw) -> None:
    table, factory = hw
    table.write(out(0.5, brake=False))
    LOG.clear()
    table.write(out(0.5, brake=True, power=False))
    assert LOG[:3] == [
        (f"GPIO{G.motor_pwm}", 0.0),
        (f"GPIO{G.motor_relay}", 0.0),
        (f"GPIO{G.brake_release}", 0.0),
    ]
    assert table.pin_outputs == out(0.0, brake=True, power=False)


@pytest.mark.parametrize("name", NC_INPUTS)
def test_a_cut_wire_on_any_nc_input_reads_as_tripped(hw: Hw, name: str) -> None:
    table, factory = hw
    before = table.read()
    assert not before.estop_pressed and not before.overtravel_tripped and before.ankle_locked
    pin(factory, getattr(G, name)).drive_high()  # the pull-up wins: open circuit
    after = table.read()
    if name.startswith("estop"):
        assert after.estop_pressed and after.estop_discrepancy
    elif name == "overtravel":
        assert after.overtravel_tripped
    else:
        assert not after.ankle_locked and after.ankle_discrepancy


def test_unconnected_safety_inputs_read_as_tripped() -> None:
    """Nothing wired at all (every pin floating on its pull-up): e-stop pressed, over-travel
    tripped, ankle unlocked, no angle (the ADC reads its rail)."""
    factory = SimPinFactory()
    try:
        with GpioTable(G, pin_factory=factory) as table:
            inp = table.read()
            assert inp.estop_pressed and inp.overtravel_tripped and not inp.ankle_locked
            assert not inp.upright_switch
            assert inp.angle_primary_deg is None and inp.angle_secondary_deg is None
    finally:
        factory.reset()


def test_an_estop_edge_zeroes_the_motor_before_the_next_tick(hw: Hw) -> None:
    table, factory = hw
    table.write(out(0.7, brake=False))
    LOG.clear()
    pin(factory, G.estop_b).drive_high()  # the callback runs now, not at the next read()
    assert LOG[:3] == [
        (f"GPIO{G.motor_pwm}", 0.0),
        (f"GPIO{G.motor_relay}", 0.0),
        (f"GPIO{G.brake_release}", 0.0),
    ]
    # A write from a tick that has not seen the e-stop yet cannot drive again...
    table.write(out(0.7, brake=False))
    assert factory.pin(G.motor_pwm).state == 0.0 and factory.pin(G.brake_release).state == 0.0
    # ... until the control thread has read it released.
    pin(factory, G.estop_b).drive_low()
    assert not table.read().estop_pressed
    table.write(out(0.2, brake=False))
    assert factory.pin(G.motor_pwm).state == 0.2
    assert history(factory, G.motor_pwm) == [0.0, 0.7, 0.0, 0.2]


def test_buttons_are_debounced_over_two_samples(hw: Hw) -> None:
    table, factory = hw
    start = pin(factory, G.button_start)
    assert table.read().buttons == frozenset()  # the first read: nothing held
    start.drive_low()
    assert table.read().buttons == frozenset()  # one sample: could be bounce
    assert table.read().buttons == {"start"}  # two agree: held
    start.drive_high()
    assert table.read().buttons == frozenset()  # released at once
    start.drive_low()
    table.read()
    start.drive_high()
    assert table.read().buttons == frozenset()  # a one-sample blip never counts


@pytest.mark.parametrize(
    "held", [("down",), ("up",), ("start", "down"), ("start", "stop", "up", "down", "return")]
)
def test_a_button_held_at_power_on_is_reported_by_the_first_read(held: tuple[str, ...]) -> None:
    """Issue 11, repro 7: a pendant held (or shorted) before the process starts is reported
    by the very first read, as sim and serial do, so the controller can judge it stuck; the
    two-sample debounce reported nothing then, and the held button went unjudged."""
    factory = SimPinFactory()
    try:
        for name in NC_INPUTS:
            factory.pin(getattr(G, name)).drive_low()
        with GpioTable(G, pin_factory=factory) as table:
            # Held before the first read (MockPin resets its state when gpiozero sets the
            # pull-up, so "before the backend exists" is modelled as before its first read).
            for name in held:
                factory.pin(getattr(G, f"button_{name}")).drive_low()
            assert table.read().buttons == frozenset(held)
            assert table.read().buttons == frozenset(held)  # and it stays held
            for name in held:
                factory.pin(getattr(G, f"button_{name}")).drive_high()
            assert table.read().buttons == frozenset()  # released at once
            factory.pin(G.button_down).drive_low()
            assert table.read().buttons == frozenset()  # later presses: debounced again
            assert table.read().buttons == {"down"}
    finally:
        factory.reset()


def test_nothing_held_at_power_on_reads_as_nothing_held() -> None:
    factory = SimPinFactory()
    try:
        with GpioTable(G, pin_factory=factory) as table:
            assert table.read().buttons == frozenset()
    finally:
        factory.reset()


def test_adc_calibration_and_rails() -> None:
    assert scale_angle(0.05, -105.0, 105.0) == pytest.approx(-105.0)
    assert scale_angle(0.95, -105.0, 105.0) == pytest.approx(105.0)
    assert scale_angle(0.5, -105.0, 105.0) == pytest.approx(0.0)
    assert scale_angle(0.01, -105.0, 105.0) is None and scale_angle(0.99, -105.0, 105.0) is None


def test_angles_and_current_come_through_the_adc(hw: Hw) -> None:
    table, factory = hw
    factory.adc_volts[G.primary_channel] = angle_volts(
        30.0, G.primary_deg_at_5pct, G.primary_deg_at_95pct
    )
    factory.adc_volts[G.secondary_channel] = angle_volts(
        -80.0, G.secondary_deg_at_5pct, G.secondary_deg_at_95pct
    )
    factory.adc_volts[G.current_channel] = 3.3 * 10.0 / G.current_a_full_scale
    inp = table.read()
    step = 210.0 / 0.9 / 4095  # one 12-bit step in degrees
    assert inp.angle_primary_deg == pytest.approx(30.0, abs=step)
    assert inp.angle_secondary_deg == pytest.approx(-80.0, abs=step)
    assert inp.motor_current_a == pytest.approx(10.0, abs=0.02)


def test_close_is_idempotent_and_leaves_everything_safe(hw: Hw) -> None:
    table, factory = hw
    table.write(out(0.6, brake=False, alarm=True))
    table.close()
    table.close()
    assert history(factory, G.motor_pwm)[-1] == 0.0
    assert history(factory, G.brake_release)[-1] == 0.0
    assert history(factory, G.motor_relay)[-1] == 0.0
    table.write(out(0.6, brake=False))  # after close: ignored, never raises


def test_nothing_pi_specific_is_imported_off_a_pi() -> None:
    code = (
        "from hal.gpio.config import Gpio; from hal.gpio.backend import GpioTable; "
        "from sim.gpio_world import SimPinFactory; import sys; "
        "t = GpioTable(Gpio(), pin_factory=SimPinFactory()); t.read(); t.close(); "
        "print(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('lgpio', 'RPi', 'pigpio', 'spidev')))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_the_installed_default_config_uses_the_documented_pin_map() -> None:
    """install-service writes controller/app/default_config.toml; docs/hardware.md documents
    the Gpio defaults: the two must be the same wiring."""
    from pathlib import Path

    from controller.core.config import load_config

    path = Path(__file__).resolve().parent.parent / "controller" / "app" / "default_config.toml"
    cfg = load_config(path)
    assert cfg.hardware.backend == "gpio" and cfg.hardware.gpio == G


def test_callbacks_only_queue_edges_for_the_control_thread(hw: Hw) -> None:
    table, factory = hw
    pin(factory, G.button_up).drive_low()
    pin(factory, G.button_up).drive_high()
    pin(factory, G.estop_a).drive_high()
    assert table.drain_events() == [("pressed", "up"), ("released", "up"), ("estop", "opened")]
    assert table.drain_events() == []
