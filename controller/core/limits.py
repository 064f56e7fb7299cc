"""Pure limit functions (ros2_control style): no state, no I/O, easy to prove.

The controller calls these every tick; tests call them with edge values.
"""

from __future__ import annotations

import math

# Hysteresis for "upright": the table counts as upright within UPRIGHT_TOL of the
# configured upright angle and as having left it beyond LEAVE_TOL, so sensor noise
# at the boundary cannot restart the session clock.
UPRIGHT_TOL_DEG = 1.0
LEAVE_TOL_DEG = 2.0


def clamp(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value


class NonFiniteCommand(ValueError):
    """A NaN or infinite motor command: a bug or a corrupt input upstream. Raised, never
    clamped (``clamp`` would pass NaN through), so ``Controller.update`` latches a fault
    with the motor at 0."""


def clamp_motor(cmd: float) -> float:
    """Motor commands are a duty fraction in -1..1 (positive = toward inversion)."""
    if not math.isfinite(cmd):
        raise NonFiniteCommand(f"motor command {cmd!r} is not a finite number")
    return clamp(cmd, -1.0, 1.0)


def clamp_target(target: float, upright_deg: float, max_angle_deg: float) -> float:
    """A position target can never lie outside the configured envelope."""
    return clamp(target, upright_deg, max_angle_deg)


def is_upright(angle_deg: float, upright_deg: float) -> bool:
    return angle_deg <= upright_deg + UPRIGHT_TOL_DEG


def has_left_upright(angle_deg: float, upright_deg: float) -> bool:
    return angle_deg > upright_deg + LEAVE_TOL_DEG


def sensors_agree(a: float | None, b: float | None, tolerance_deg: float) -> bool:
    return a is not None and b is not None and abs(a - b) <= tolerance_deg


def stopping_distance(speed_dps: float, accel_dps2: float) -> float:
    return speed_dps * speed_dps / (2.0 * accel_dps2)
