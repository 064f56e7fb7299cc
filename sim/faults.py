"""The simulator's fault catalogue: names usable in scenario ``do = "fault"`` events.

Each name is part of the scenario contract once listed here. This first set covers the
wiring and sensor faults that the core controller already guards against (sensor
cross-check, fail-safe normally-closed inputs); the fault-detection issue extends it.
"""
from __future__ import annotations

FAULTS: dict[str, str] = {
    "angle_sensor_stuck": "primary angle sensor freezes at its current reading",
    "angle_sensor_dropout": "primary angle sensor gives no reading",
    "secondary_sensor_stuck": "secondary angle sensor freezes at its current reading",
    "estop_wire_break": "e-stop circuit wire cut (reads as pressed; hardwired motor cut)",
    "ankle_sensor_wire_break": "ankle-lock sensor wire cut (reads as unlocked)",
}
