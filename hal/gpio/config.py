"""The GPIO backend's configuration schema: the Raspberry Pi wiring and the sensor
calibration, the ``[hardware.gpio]`` table. It lives with the backend that uses it;
``controller.core.config`` composes it into the whole configuration."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True, slots=True)
class Gpio:
    """``[hardware.gpio]``: the Raspberry Pi wiring (BCM numbers) and sensor calibration.

    The defaults are the wiring in docs/hardware.md. Safety inputs are contacts to ground
    with the Pi's pull-ups (normally closed: an open contact or a cut wire reads high,
    which is the unsafe reading). The ADC sits on SPI0 with chip select CE0, so GPIO 8-11
    are taken by it.
    """

    motor_pwm: int = 12  # driver PWM (hardware PWM0)
    motor_dir: int = 5  # driver direction
    brake_release: int = 6  # brake release coil relay (released = energised)
    motor_relay: int = 13  # motor supply relay
    heartbeat: int = 19  # charge-pump dead-man input
    buzzer: int = 26
    estop_a: int = 17  # dual-channel e-stop, NC
    estop_b: int = 27
    overtravel: int = 22  # over-travel limit, NC
    ankle_a: int = 23  # dual-channel ankle lock, NC (closed = locked)
    ankle_b: int = 24
    upright: int = 25  # home switch, NO (closes at upright; a cut wire reads "not upright")
    button_start: int = 16
    button_stop: int = 20
    button_up: int = 21
    button_down: int = 4
    button_return: int = 18
    dir_high_is_inversion: bool = True  # motor_dir level that drives toward head-down
    brake_release_active_high: bool = True
    motor_relay_active_high: bool = True
    pwm_frequency_hz: float = 1000.0
    adc_chip: str = "MCP3208"  # or "MCP3008"; 12 bits give 0.06 deg steps, 10 bits 0.23
    primary_channel: int = 0  # potentiometer on the pivot
    secondary_channel: int = 1  # inclinometer (an independent absolute source)
    current_channel: int = 2  # motor current sense amplifier
    # Calibration: the angle at 5 % and 95 % of the ADC range; a reading outside 2 .. 98 %
    # is a broken wire or a dead sensor and reads as no reading.
    primary_deg_at_5pct: float = -105.0
    primary_deg_at_95pct: float = 105.0
    secondary_deg_at_5pct: float = -105.0
    secondary_deg_at_95pct: float = 105.0
    current_a_full_scale: float = 40.0


PIN_KEYS = (
    "motor_pwm",
    "motor_dir",
    "brake_release",
    "motor_relay",
    "heartbeat",
    "buzzer",
    "estop_a",
    "estop_b",
    "overtravel",
    "ankle_a",
    "ankle_b",
    "upright",
    "button_start",
    "button_stop",
    "button_up",
    "button_down",
    "button_return",
)
SPI0_PINS = {8: "SPI0 CE0", 9: "SPI0 MISO", 10: "SPI0 MOSI", 11: "SPI0 SCLK"}
RESERVED_PINS = {0: "ID EEPROM", 1: "ID EEPROM", **SPI0_PINS}
ADC_CHIPS = ("MCP3008", "MCP3208")


def check_gpio(values: dict[str, Any], report: Callable[[str, str], None]) -> None:
    """``[hardware.gpio]`` of the merged values (dotted keys); ``report(key, reason)`` for each
    problem. Pins: whole BCM numbers 2..27, none used twice, none of the ADC's SPI pins."""
    used: dict[int, str] = {}
    for name in PIN_KEYS:
        key = f"hardware.gpio.{name}"
        pin = values[key]
        if isinstance(pin, bool) or not isinstance(pin, int):
            report(key, f"must be a whole BCM GPIO number, got {pin!r}")
        elif not 0 <= pin <= 27:
            report(key, f"GPIO{pin} is not a BCM GPIO number on the 40-pin header (0 .. 27)")
        elif pin in RESERVED_PINS:
            report(key, f"GPIO{pin} is reserved ({RESERVED_PINS[pin]})")
        elif pin in used:
            report(key, f"GPIO{pin} is already used by hardware.gpio.{used[pin]}")
        else:
            used[pin] = name
    for name in ("dir_high_is_inversion", "brake_release_active_high", "motor_relay_active_high"):
        key = f"hardware.gpio.{name}"
        if not isinstance(values[key], bool):
            report(key, f"must be true or false, got {values[key]!r}")
    if values["hardware.gpio.adc_chip"] not in ADC_CHIPS:
        report(
            "hardware.gpio.adc_chip",
            f"unknown ADC {values['hardware.gpio.adc_chip']!r} (known: {', '.join(ADC_CHIPS)})",
        )
    channels: dict[int, str] = {}
    for name in ("primary_channel", "secondary_channel", "current_channel"):
        key = f"hardware.gpio.{name}"
        ch = values[key]
        if isinstance(ch, bool) or not isinstance(ch, int) or not 0 <= ch <= 7:
            report(key, f"must be an ADC channel 0 .. 7, got {ch!r}")
        elif ch in channels:
            report(key, f"channel {ch} is already used by hardware.gpio.{channels[ch]}")
        else:
            channels[ch] = name
    for name in (
        "pwm_frequency_hz",
        "primary_deg_at_5pct",
        "primary_deg_at_95pct",
        "secondary_deg_at_5pct",
        "secondary_deg_at_95pct",
        "current_a_full_scale",
    ):
        key = f"hardware.gpio.{name}"
        v = values[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            report(key, f"must be a finite number, got {v!r}")
        elif (
            "_deg_at_" in name and not -360.0 <= v <= 360.0
        ):  # a sane angle, or NaN reaches the pins
            report(key, f"{v:g} is outside -360 .. 360 deg")
        else:
            values[key] = float(v)
    if (
        isinstance(values["hardware.gpio.pwm_frequency_hz"], float)
        and not 100.0 <= values["hardware.gpio.pwm_frequency_hz"] <= 40000.0
    ):
        report(
            "hardware.gpio.pwm_frequency_hz",
            f"{values['hardware.gpio.pwm_frequency_hz']:g} is outside 100 .. 40000",
        )
    if (
        isinstance(values["hardware.gpio.current_a_full_scale"], float)
        and not 1.0 <= values["hardware.gpio.current_a_full_scale"] <= 500.0
    ):
        report("hardware.gpio.current_a_full_scale", "must be 1 .. 500")
    for sensor in ("primary", "secondary"):
        lo, hi = (
            values[f"hardware.gpio.{sensor}_deg_at_5pct"],
            values[f"hardware.gpio.{sensor}_deg_at_95pct"],
        )
        if isinstance(lo, float) and isinstance(hi, float) and abs(hi - lo) < 20.0:
            report(
                f"hardware.gpio.{sensor}_deg_at_95pct",
                f"the calibration must span at least 20 deg (got {lo:g} .. {hi:g})",
            )
