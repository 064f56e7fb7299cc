"""The simulator's fault catalogue: names usable in scenario ``do = "fault"`` events.

Each name is part of the scenario contract. ``sim.table.SimTable`` models the sensor,
actuator and wiring faults; the scenario runner models ``controller_hang`` and
``link_loss`` (which concerns the serial backend only and is reported as not applicable
on the others).
"""

from __future__ import annotations

FAULTS: dict[str, str] = {
    "angle_sensor_stuck": "primary angle sensor freezes at its current reading",
    "angle_sensor_drift": "primary angle sensor gains a bias growing at 0.5 deg/s",
    "angle_sensor_noise": "primary angle sensor noise rises to 3 deg (standard deviation)",
    "angle_sensor_dropout": "primary angle sensor gives no reading",
    "secondary_sensor_stuck": "secondary angle sensor freezes at its current reading",
    "motor_stall": "the drive jams: no motion, the current rises with the command",
    "motor_weak": "the motor gives 35 % of its torque",
    "motor_runaway": "the motor driver sticks on at full duty (in the direction it last drove, "
    "toward inversion if idle), ignoring the command; its supply relay and "
    "enable still cut it",
    "brake_failed": "the brake never engages, not even unpowered",
    "brake_slip": "the brake holds only 10 % of its rated torque",
    "upright_switch_stuck": "the upright (home) switch reads closed wherever the table is",
    "overtravel_switch_open": "the over-travel switch wire is cut (reads as tripped)",
    "estop_wire_break": "one channel of the dual-channel e-stop circuit is cut (reads as pressed, "
    "the channels disagree; the hardwired safety relay cuts the motor)",
    "ankle_sensor_wire_break": "one channel of the dual-channel ankle-lock sensor is cut (reads as "
    "unlocked, the channels disagree)",
    "button_stuck": "the pendant's DOWN button reads held (shorted contact)",
    "controller_hang": "the control loop stops ticking for 5 s (or until cleared), then the "
    "service restarts as after a crash",
    "link_loss": "the serial link to the motion board is cut (serial backend only)",
}
HANG_S = 5.0  # controller_hang lasts this long unless cleared first
DRIFT_DPS = 0.5  # angle_sensor_drift bias rate
NOISY_DEG = 3.0  # angle_sensor_noise standard deviation
WEAK_FRACTION = 0.35  # motor_weak torque fraction
SLIP_FRACTION = 0.1  # brake_slip holding fraction
