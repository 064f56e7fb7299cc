"""``GpioTable``: the HAL on a Raspberry Pi's GPIO header, through gpiozero.

Wiring (docs/hardware.md) and the pin map (``[hardware.gpio]``) decide everything here;
nothing here decides to move. gpiozero picks its pin factory itself (lgpio on a Pi,
Pi 5 included); tests and ``invtable sim --backend gpio-mock`` pass a MockFactory, so
nothing Pi-specific is imported on other machines.

Threads: gpiozero runs edge callbacks on its own thread on a Pi (lgpio's), and in the
thread that drives the pin under MockFactory. Callbacks therefore only put events on a
queue, which the control thread drains in ``read()`` -- with one exception the design
asks for: an e-stop edge also stops the motor and engages the brake at once
(``safe_stop``), without waiting for the next tick. A lock keeps that and ``write()``
from interleaving, and a latch keeps ``write()`` from driving again until the control
thread has seen the e-stop released.

Fail-safe wiring: every safety contact goes to ground with the Pi's pull-up enabled.
Normally-closed contacts (e-stop, over-travel, ankle lock) read low when closed; an open
contact or a cut wire reads high, which is the unsafe reading. The upright switch is
normally open (closed at upright), so a cut wire reads "not upright". Driver inputs need
hardware pull-downs: gpiozero returns pins to floating inputs when it closes them.
"""

from __future__ import annotations

import math
import queue
import threading
from typing import Any

from hal.gpio.config import Gpio
from hal.interfaces import BUTTONS, Inputs, Outputs

ADC_LOW, ADC_HIGH = 0.05, 0.95  # calibration points (fractions of full scale)
ADC_RAIL = 0.02  # readings within this of a rail: broken wire or dead sensor


def scale_angle(fraction: float, deg_at_5pct: float, deg_at_95pct: float) -> float | None:
    """ADC fraction (0..1) to degrees; None for a reading at a rail (no valid reading)."""
    if fraction < ADC_RAIL or fraction > 1.0 - ADC_RAIL:
        return None
    return deg_at_5pct + (fraction - ADC_LOW) / (ADC_HIGH - ADC_LOW) * (deg_at_95pct - deg_at_5pct)


class GpioTable:
    """``hal.interfaces.TableHardware`` on gpiozero devices."""

    def __init__(self, gpio: Gpio, *, pin_factory: Any = None) -> None:
        from gpiozero import (
            MCP3008,
            MCP3208,
            Button,
            DigitalInputDevice,
            DigitalOutputDevice,
            PWMOutputDevice,
        )

        self.cfg = g = gpio
        # Edges seen by the callbacks, for the control thread to log (bounded: a callback
        # never blocks; past the bound edges are counted, not queued).
        self.events: queue.Queue[tuple[str, str]] = queue.Queue(maxsize=1000)
        self.events_dropped = 0
        self._lock = threading.Lock()
        self._estop_latched = False
        self._closed = False
        self._prev_raw_buttons: frozenset[str] | None = None  # None: no sample yet (first read)
        self._devices: list[Any] = []
        f = pin_factory

        def add(device: Any) -> Any:
            self._devices.append(device)
            return device

        # Outputs first, each created in its safe state (motor off, brake engaged, relay open).
        self.pwm = add(
            PWMOutputDevice(
                g.motor_pwm, initial_value=0.0, frequency=int(g.pwm_frequency_hz), pin_factory=f
            )
        )
        self.direction = add(DigitalOutputDevice(g.motor_dir, initial_value=False, pin_factory=f))
        self.brake_release = add(
            DigitalOutputDevice(
                g.brake_release,
                active_high=g.brake_release_active_high,
                initial_value=False,
                pin_factory=f,
            )
        )
        self.relay = add(
            DigitalOutputDevice(
                g.motor_relay,
                active_high=g.motor_relay_active_high,
                initial_value=False,
                pin_factory=f,
            )
        )
        self.heartbeat = add(DigitalOutputDevice(g.heartbeat, initial_value=False, pin_factory=f))
        self.buzzer = add(DigitalOutputDevice(g.buzzer, initial_value=False, pin_factory=f))

        def contact(pin: int) -> Any:  # to ground, pulled up: closed = low = active
            return add(DigitalInputDevice(pin, pull_up=True, pin_factory=f))

        self.estop = (contact(g.estop_a), contact(g.estop_b))
        self.overtravel = contact(g.overtravel)
        self.ankle = (contact(g.ankle_a), contact(g.ankle_b))
        self.upright = contact(g.upright)
        self.buttons = {
            name: add(Button(getattr(g, f"button_{name}"), pull_up=True, pin_factory=f))
            for name in BUTTONS
        }
        adc = MCP3208 if g.adc_chip == "MCP3208" else MCP3008
        self.adc_primary = add(adc(channel=g.primary_channel, pin_factory=f))
        self.adc_secondary = add(adc(channel=g.secondary_channel, pin_factory=f))
        self.adc_current = add(adc(channel=g.current_channel, pin_factory=f))
        self._adc_full = float(2**self.adc_primary.bits - 1)

        for channel in self.estop:
            channel.when_deactivated = self._on_estop_edge
        for name, button in self.buttons.items():
            button.when_pressed = lambda name=name: self._enqueue("pressed", name)
            button.when_released = lambda name=name: self._enqueue("released", name)

    # ----------------------------------------------------------------- callbacks
    def _enqueue(self, kind: str, detail: str) -> None:
        try:
            self.events.put_nowait((kind, detail))
        except queue.Full:
            self.events_dropped += 1

    def _on_estop_edge(self) -> None:
        """An e-stop channel opened: stop now (this runs on gpiozero's callback thread)."""
        self.safe_stop()
        self._enqueue("estop", "opened")

    def drain_events(self) -> list[tuple[str, str]]:
        """The edges the callbacks queued since the last call (control thread only)."""
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out

    # ----------------------------------------------------------------- the HAL
    def read(self) -> Inputs:
        """Sample every input. Buttons count as held when two samples in a row agree
        (a 10 ms debounce at 100 Hz); safety contacts are never debounced.

        The first read has no earlier sample: it reports the buttons held *now*. A button
        held (or shorted) from power-on must be seen from the very first read, as the sim
        and serial backends see it, so the controller can judge it stuck (issue 11, repro
        7); a bounce at that instant can only make a button look held, the safe side."""
        estop_open = [not ch.is_active for ch in self.estop]
        ankle_closed = [ch.is_active for ch in self.ankle]
        raw = frozenset(name for name, b in self.buttons.items() if b.is_pressed)
        held = raw if self._prev_raw_buttons is None else raw & self._prev_raw_buttons
        self._prev_raw_buttons = raw
        with self._lock:
            if not any(estop_open):
                self._estop_latched = False  # released: the controller decides what happens next
        g = self.cfg
        return Inputs(
            angle_primary_deg=scale_angle(
                self.adc_primary.raw_value / self._adc_full,
                g.primary_deg_at_5pct,
                g.primary_deg_at_95pct,
            ),
            angle_secondary_deg=scale_angle(
                self.adc_secondary.raw_value / self._adc_full,
                g.secondary_deg_at_5pct,
                g.secondary_deg_at_95pct,
            ),
            upright_switch=self.upright.is_active,
            overtravel_tripped=not self.overtravel.is_active,
            estop_pressed=any(estop_open),
            ankle_locked=all(ankle_closed),
            buttons=held,
            motor_current_a=self.adc_current.raw_value / self._adc_full * g.current_a_full_scale,
            estop_discrepancy=estop_open[0] != estop_open[1],
            ankle_discrepancy=ankle_closed[0] != ankle_closed[1],
        )

    def write(self, outputs: Outputs) -> None:
        with self._lock:
            if self._closed:
                return
            cmd, brake, power = outputs.motor_cmd, outputs.brake, outputs.motor_power
            if self._estop_latched or not math.isfinite(cmd):  # NaN never reaches a pin
                cmd, brake = 0.0, True
            if not power:
                cmd = 0.0  # nothing drives through an open relay, and it opens with the motor at 0
                self._drive(0.0)
                self.relay.off()
            else:
                self.relay.on()  # closed before the driver is asked for anything
                self._drive(cmd)
            if brake:
                self.brake_release.off()
            else:
                self.brake_release.on()
            self.heartbeat.value = outputs.heartbeat
            self.buzzer.value = outputs.alarm

    def _drive(self, cmd: float) -> None:
        """Sign-magnitude drive. Reversing is break-before-make: the PWM goes to 0 before
        the direction line changes, and rises only after it has."""
        duty = min(abs(cmd), 1.0)
        if duty == 0.0:
            if self.pwm.value != 0.0:
                self.pwm.value = 0.0
            return
        level = (cmd > 0.0) == self.cfg.dir_high_is_inversion
        if bool(self.direction.value) != level:
            if self.pwm.value != 0.0:
                self.pwm.value = 0.0
            self.direction.value = level
        if self.pwm.value != duty:
            self.pwm.value = duty

    def safe_stop(self) -> None:
        """Motor off, supply relay open, brake engaged, at once. Idempotent, any thread."""
        with self._lock:
            self._estop_latched = True
            if self._closed:
                return
            self.pwm.value = 0.0
            self.relay.off()
            self.brake_release.off()

    def close(self) -> None:
        """Leave the table safe, then release the pins (they float: the hardware pull-downs
        on the driver inputs keep the motor off and the brake engaged)."""
        if self._closed:
            return
        self.safe_stop()
        with self._lock:
            self._closed = True
        for device in reversed(self._devices):
            device.close()

    @property
    def pin_outputs(self) -> Outputs:
        """What the output pins say now (for the io tool, logs and tests)."""
        sign = 1.0 if bool(self.direction.value) == self.cfg.dir_high_is_inversion else -1.0
        return Outputs(
            motor_cmd=sign * float(self.pwm.value) or 0.0,
            brake=not self.brake_release.is_active,
            alarm=bool(self.buzzer.value),
            heartbeat=bool(self.heartbeat.value),
            motor_power=bool(self.relay.is_active),
        )

    def __enter__(self) -> "GpioTable":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
