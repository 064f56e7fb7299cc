"""``--backend gpio-mock``: the real gpio backend on gpiozero's MockFactory, with the
simulator's physics behind the pins.

Each tick the world side drives the input pins (contacts, buttons, the ADC's channel
voltages) from the simulated table, the controller reads and writes through
``hal.gpio.backend.GpioTable`` exactly as on a Pi, and the world reads the output pins
(PWM duty and direction, brake release, supply relay, heartbeat, buzzer) back into the
simulated wiring. A fresh ``GpioTable`` is built at every boot, as a restarted process
would.

The ADC answers at the SPI transfer level (``SimSPI``), as the Pi's hardware SPI does,
rather than by bit-banging mock pins: gpiozero's own MCP3008/MCP3208 classes build and
decode the frames.
"""

from __future__ import annotations

from typing import Any

from gpiozero import SPI
from gpiozero.mixins import SharedMixin
from gpiozero.pins.mock import MockFactory, MockPWMPin

from hal.gpio.backend import ADC_HIGH, ADC_LOW, GpioTable
from hal.gpio.config import Gpio
from hal.interfaces import Inputs, Outputs
from sim.table import SimTable

VREF = 3.3


class SimSPI(SPI):
    """An MCP3x08 on SPI0 CE0, answering whole transfers from the factory's voltages."""

    def __init__(
        self, clock_pin: Any, mosi_pin: Any, miso_pin: Any, select_pin: Any, pin_factory: Any
    ) -> None:
        self._open = True
        super().__init__(pin_factory=pin_factory)
        self.pin_factory.reserve_pins(self, clock_pin, mosi_pin, miso_pin, select_pin)

    def transfer(self, data: list[int]) -> list[int]:
        return self.pin_factory.adc_transfer(data)

    def _get_clock_mode(self) -> int:
        return 0

    def _set_clock_mode(self, value: int) -> None:
        pass

    def close(self) -> None:
        if self._open:
            self._open = False
            self.pin_factory.release_all(self)
        super().close()

    @property
    def closed(self) -> bool:
        return not self._open


class SimSPIShared(SharedMixin, SimSPI):
    @classmethod
    def _shared_key(
        cls, clock_pin: Any, mosi_pin: Any, miso_pin: Any, select_pin: Any, pin_factory: Any
    ) -> Any:
        return (clock_pin, select_pin)


class SimPinFactory(MockFactory):
    """MockFactory with PWM-capable pins and an ADC whose channel voltages the world sets."""

    def __init__(self, adc_bits: int = 12) -> None:
        super().__init__(pin_class=MockPWMPin)
        self.adc_bits = adc_bits
        self.adc_volts = [0.0] * 8

    def _get_spi_class(self, shared: bool, hardware: bool) -> type:
        return SimSPIShared if shared else SimSPI

    def adc_transfer(self, data: list[int]) -> list[int]:
        """MCP3008 (10 bit) / MCP3208 (12 bit) single-ended read: start bit, SGL, 3 channel
        bits, then the result in the low bits of the last two bytes."""
        frame = int.from_bytes(bytes(data), "big")
        command = frame >> (self.adc_bits + 2)
        if not command & 0b10000 or not command & 0b01000:  # no start bit, or differential
            return [0] * len(data)
        full = 2**self.adc_bits - 1
        raw = max(0, min(full, round(self.adc_volts[command & 0b111] / VREF * full)))
        return list(raw.to_bytes(len(data), "big"))


def angle_volts(angle: float | None, deg_at_5pct: float, deg_at_95pct: float) -> float:
    """The sensor's output for an angle (no reading: the wiper's open circuit, 0 V)."""
    if angle is None:
        return 0.0
    fraction = ADC_LOW + (angle - deg_at_5pct) / (deg_at_95pct - deg_at_5pct) * (ADC_HIGH - ADC_LOW)
    return max(0.0, min(1.0, fraction)) * VREF


class GpioMockHal:
    """The HAL the controller sees (a real ``GpioTable``) with ``SimTable`` behind its pins."""

    def __init__(self, table: SimTable, gpio: Gpio) -> None:
        self.table = table
        self.g = gpio
        self.factory = SimPinFactory(12 if gpio.adc_chip == "MCP3208" else 10)
        self.hal = GpioTable(gpio, pin_factory=self.factory)
        self._pins = {
            name: self.factory.pin(getattr(gpio, name))
            for name in ("estop_a", "estop_b", "overtravel", "ankle_a", "ankle_b", "upright")
        }
        self._button_pins = {
            name: self.factory.pin(getattr(gpio, f"button_{name}")) for name in self.hal.buttons
        }
        self._ticks = 0

    def _contact(self, name: str, closed: bool) -> None:
        pin = self._pins[name]
        if pin.state != (not closed):  # closed pulls the pin to ground
            if closed:
                pin.drive_low()
            else:
                pin.drive_high()

    def push_world(self) -> Inputs:
        """Set every input pin and ADC voltage from the simulated world."""
        world = self.table.read()
        g = self.g
        estop_a_open = world.estop_pressed
        estop_b_open = world.estop_pressed and not world.estop_discrepancy
        ankle_a_closed = world.ankle_locked and not world.ankle_discrepancy
        ankle_b_closed = world.ankle_locked or world.ankle_discrepancy
        self._contact("estop_a", not estop_a_open)
        self._contact("estop_b", not estop_b_open)
        self._contact("overtravel", not world.overtravel_tripped)
        self._contact("ankle_a", ankle_a_closed)
        self._contact("ankle_b", ankle_b_closed)
        self._contact("upright", world.upright_switch)
        for name, pin in self._button_pins.items():
            held = name in world.buttons
            if pin.state != (not held):
                if held:
                    pin.drive_low()
                else:
                    pin.drive_high()
        volts = self.factory.adc_volts
        volts[g.primary_channel] = angle_volts(
            world.angle_primary_deg, g.primary_deg_at_5pct, g.primary_deg_at_95pct
        )
        volts[g.secondary_channel] = angle_volts(
            world.angle_secondary_deg, g.secondary_deg_at_5pct, g.secondary_deg_at_95pct
        )
        volts[g.current_channel] = min(1.0, world.motor_current_a / g.current_a_full_scale) * VREF
        return world

    # The HAL side, as the controller sees it.
    def read(self) -> Inputs:
        self.push_world()
        self.hal.drain_events()  # the service logs them; here nobody needs them
        return self.hal.read()

    def write(self, outputs: Outputs) -> None:
        self.hal.write(outputs)
        self.table.write(self.hal.pin_outputs)  # the wiring sees the pins, not the intent
        self._ticks += 1
        if self._ticks % 1000 == 0:  # mock pins record every change: keep memory flat
            for pin in self.factory.pins.values():
                pin.clear_states()

    def safe_stop(self) -> None:
        self.hal.safe_stop()
        self.table.write(self.hal.pin_outputs)

    def close(self) -> None:
        self.hal.close()
        self.factory.reset()
