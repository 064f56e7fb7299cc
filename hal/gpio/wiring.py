"""The wiring table of docs/hardware.md, generated from the pin map so the two cannot
drift apart (a test compares them). Regenerate: ``python -m hal.gpio.wiring``."""

from __future__ import annotations

from dataclasses import fields

from hal.gpio.config import PIN_KEYS, RESERVED_PINS, Gpio

# BCM GPIO number -> physical pin on the 40-pin header.
HEADER = {
    2: 3,
    3: 5,
    4: 7,
    17: 11,
    27: 13,
    22: 15,
    10: 19,
    9: 21,
    11: 23,
    0: 27,
    5: 29,
    6: 31,
    13: 33,
    19: 35,
    26: 37,
    14: 8,
    15: 10,
    18: 12,
    23: 16,
    24: 18,
    25: 22,
    8: 24,
    7: 26,
    1: 28,
    12: 32,
    16: 36,
    20: 38,
    21: 40,
}

WHAT = {
    "motor_pwm": (
        "out",
        "motor driver PWM input",
        "10 k pull-down on the driver side: a floating pin is motor off",
    ),
    "motor_dir": ("out", "motor driver DIR input", "10 k pull-down"),
    "brake_release": (
        "out",
        "brake release relay (energised = released)",
        "pull-down: unpowered = brake engaged",
    ),
    "motor_relay": (
        "out",
        "motor supply relay, in series after the e-stop safety relay",
        "pull-down: open",
    ),
    "heartbeat": (
        "out",
        "charge-pump dead-man: drops driver enable and brake release 100 ms after toggling stops",
        "a stuck high or low level is no heartbeat",
    ),
    "buzzer": ("out", "alarm buzzer", "-"),
    "estop_a": ("in", "e-stop channel A, NC to GND", "open or cut reads pressed"),
    "estop_b": ("in", "e-stop channel B, NC to GND", "open or cut reads pressed"),
    "overtravel": ("in", "over-travel limit switch, NC to GND", "open or cut reads tripped"),
    "ankle_a": (
        "in",
        "ankle lock channel A, NC (closed = locked) to GND",
        "open or cut reads unlocked",
    ),
    "ankle_b": (
        "in",
        "ankle lock channel B, NC (closed = locked) to GND",
        "open or cut reads unlocked",
    ),
    "upright": (
        "in",
        "upright (home) switch, NO to GND, closes within 1.5 deg of upright",
        "cut reads not upright (sessions refused)",
    ),
    "button_start": ("in", "pendant START, NO to GND", "-"),
    "button_stop": ("in", "pendant STOP, NO to GND", "-"),
    "button_up": ("in", "pendant UP, NO to GND", "-"),
    "button_down": ("in", "pendant DOWN, NO to GND", "-"),
    "button_return": ("in", "pendant RETURN, NO to GND", "-"),
}


def wiring_markdown(gpio: Gpio | None = None) -> str:
    g = gpio or Gpio()
    lines = [
        "| key | BCM | header pin | dir | connects to | fail-safe |",
        "|---|---|---|---|---|---|",
    ]
    for key in PIN_KEYS:
        bcm = getattr(g, key)
        direction, what, safe = WHAT[key]
        lines.append(
            f"| `hardware.gpio.{key}` | GPIO{bcm} | {HEADER[bcm]} | {direction} | {what} | {safe} |"
        )
    for bcm, what in sorted(RESERVED_PINS.items()):
        if bcm in (8, 9, 10, 11):
            lines.append(f"| (ADC) | GPIO{bcm} | {HEADER[bcm]} | spi | {g.adc_chip} {what} | - |")
    lines.append("")
    lines.append("| key | default |")
    lines.append("|---|---|")
    for f in fields(Gpio):
        if f.name not in PIN_KEYS:
            value = getattr(g, f.name)
            shown = (
                f'"{value}"'
                if isinstance(value, str)
                else str(value).lower()
                if isinstance(value, bool)
                else f"{value:g}"
            )
            lines.append(f"| `hardware.gpio.{f.name}` | {shown} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(wiring_markdown(), end="")
