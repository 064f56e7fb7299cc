"""``invtable io``: bring-up on the Pi. Shows every input live; pulses one output only
when asked by name, and only with the motor supply relay held open.

What it will not pulse: the brake release (with a person on the table, or even without,
a released brake lets gravity move it) and the supply relay (closing it makes the drive
live). Those are checked by the service's own brake test and by the bring-up steps in
docs/hardware.md, with the table empty and the mechanical stops in place.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from controller.core.clock import RealTimeClock

PULSABLE = {
    "buzzer": "the buzzer",
    "heartbeat": "the dead-man input (the charge pump's LED shows it)",
    "motor_pwm": "the driver's PWM at 20 % (the relay is open: the motor cannot turn)",
    "motor_dir": "the driver's direction line",
}
REFUSED = {
    "brake_release": "releasing the brake lets gravity move the table: not a bring-up pulse",
    "motor_relay": "closing the supply relay makes the drive live: not a bring-up pulse",
}


def describe(hw: Any) -> dict[str, Any]:
    inp = hw.read()
    return {
        "primary_deg": "no reading"
        if inp.angle_primary_deg is None
        else round(inp.angle_primary_deg, 2),
        "secondary_deg": "no reading"
        if inp.angle_secondary_deg is None
        else round(inp.angle_secondary_deg, 2),
        "current_a": round(inp.motor_current_a, 2),
        "estop": "PRESSED/OPEN" if inp.estop_pressed else "closed",
        "estop_channels": "DISAGREE" if inp.estop_discrepancy else "agree",
        "overtravel": "TRIPPED/OPEN" if inp.overtravel_tripped else "closed",
        "ankle_lock": "locked" if inp.ankle_locked else "UNLOCKED/OPEN",
        "ankle_channels": "DISAGREE" if inp.ankle_discrepancy else "agree",
        "upright_switch": "closed" if inp.upright_switch else "open",
        "buttons": ",".join(sorted(inp.buttons)) or "-",
    }


def run_io(hw: Any, *, duration: float, pulse: str | None, out: TextIO = sys.stdout) -> int:
    """Sample at 10 Hz for ``duration`` s (0 = until Ctrl-C), pulsing ``pulse`` at 1 Hz."""
    hw.safe_stop()  # relay open, motor off, brake on: and it stays that way
    device = {
        "buzzer": hw.buzzer,
        "heartbeat": hw.heartbeat,
        "motor_pwm": hw.pwm,
        "motor_dir": hw.direction,
    }.get(pulse or "")
    interactive = out.isatty()
    clock = RealTimeClock()
    k = 0
    try:
        while duration == 0 or clock.now() < duration:
            if device is not None:
                on = (k // 5) % 2 == 0
                device.value = (0.2 if pulse == "motor_pwm" else 1.0) if on else 0.0
                hw.relay.off()  # never closed by this tool
            state = describe(hw)
            line = "  ".join(f"{k_}={v}" for k_, v in state.items())
            if device is not None:
                line += f"  pulse {pulse}={'on' if device.value else 'off'}"
            out.write(("\r" + line + "   ") if interactive else line + "\n")
            out.flush()
            k += 1
            clock.wait_until(k * 0.1)
    except KeyboardInterrupt:
        pass
    finally:
        if device is not None:
            device.value = 0.0
        hw.safe_stop()
    if interactive:
        out.write("\n")
    return 0
