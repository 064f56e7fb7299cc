"""Can the configured gearmotor do what the configured limits ask, for every allowed user?

A configuration within every DESIGN section 2 bound can still be impossible: an emergency
return of 15 deg/s asks the default gearmotor for more torque than it has when a 136 kg,
198 cm user lies near 41 deg (issue 11, reproduction 4: the drive saturated and the table
held at 48.8 deg). Validation must say so, with the numbers, before anyone lies on the table.

The torque model is the simulator's (``sim/physics.py``, ``TableParams``), written out here as
documented assumptions so ``controller/`` does not import the simulator (a test keeps the two
equal):

- gravity: ``m g (r cos(theta) + e sin(theta))``, ``r = com_fraction * height - pivot_from_feet``
  (the user's centre of mass along the table from the pivot), ``e = com_height`` above the
  table axis; positive pulls toward inversion;
- the gearmotor's linear speed/torque curve ``tau = stall_torque * (duty - speed / no_load_speed)``
  (``hardware.motor_stall_torque_nm``, ``hardware.motor_no_load_speed_dps``);
- friction: viscous plus Coulomb; inertia: frame, reflected rotor, and the user as a rod.

Worst case, conservatively: the heaviest allowed user (136 kg), both extreme heights (gravity
is linear in the height, so the extremes bound it), every angle of the envelope, the profile's
full speed *and* its full acceleration at once, and only ``DUTY_HEADROOM`` of the duty (the
position loop needs the rest to correct errors; the monitor calls 0.99 saturated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

G = 9.81
RAD = math.pi / 180.0
HEAVIEST_KG = 136.0  # DESIGN section 2 user limits
HEIGHTS_CM = (147.0, 198.0)
DUTY_HEADROOM = 0.9  # duty the plan may use; the loop keeps 10 % for corrections
ANGLE_STEP_DEG = 0.5  # envelope sampling (the analytic maximum is added too)


@dataclass(frozen=True, slots=True)
class TableModel:
    """The table's mechanics (the simulator's ``TableParams``; measure a real table's)."""

    pivot_from_feet_m: float = 0.95
    com_fraction: float = 0.55
    com_height_m: float = 0.12
    frame_inertia: float = 8.0  # kg m^2
    reflected_inertia: float = 20.0  # kg m^2, the rotor seen through the gearbox
    viscous: float = 40.0  # N m per rad/s
    coulomb: float = 12.0  # N m


@dataclass(frozen=True, slots=True)
class Shortfall:
    """One motion the motor cannot make: where, and by how much."""

    direction: str  # "toward upright" or "toward inversion"
    speed_dps: float
    accel_dps2: float
    mass_kg: float
    height_cm: float
    angle_deg: float
    needed_nm: float  # gravity + friction + acceleration at that angle
    available_nm: float  # stall_torque * (DUTY_HEADROOM - speed / no_load_speed)
    achievable_dps: float  # the fastest speed the motor can hold there (0: not even that)

    def describe(self, stall_nm: float, no_load_dps: float) -> str:
        return (
            f"{self.speed_dps:g} deg/s {self.direction} (at {self.accel_dps2:g} deg/s^2) needs "
            f"{self.needed_nm:.0f} N m for a {self.mass_kg:g} kg, {self.height_cm:g} cm user at "
            f"{self.angle_deg:.1f} deg, but the gearmotor gives {self.available_nm:.0f} N m "
            f"at that speed (hardware.motor_stall_torque_nm {stall_nm:g} x "
            f"({DUTY_HEADROOM:g} duty - {self.speed_dps:g} / "
            f"hardware.motor_no_load_speed_dps {no_load_dps:g})); "
            "the most it can hold there (steady, within the headroom) is "
            f"{self.achievable_dps:.1f} deg/s"
        )


def gravity_torque(
    mass_kg: float, height_cm: float, angle_deg: float, model: TableModel = TableModel()
) -> float:
    """Gravity's torque about the pivot, N m; positive pulls toward inversion."""
    r = model.com_fraction * height_cm / 100.0 - model.pivot_from_feet_m
    th = angle_deg * RAD
    return mass_kg * G * (r * math.cos(th) + model.com_height_m * math.sin(th))


def inertia(mass_kg: float, height_cm: float, model: TableModel = TableModel()) -> float:
    """Moment of inertia about the pivot, kg m^2 (the simulator's formula)."""
    h = height_cm / 100.0
    r = model.com_fraction * h - model.pivot_from_feet_m
    return (
        model.frame_inertia
        + model.reflected_inertia
        + mass_kg * h * h / 12.0
        + mass_kg * (r * r + model.com_height_m**2)
    )


def _angles(low: float, high: float) -> list[float]:
    n = max(1, math.ceil((high - low) / ANGLE_STEP_DEG))
    out = [low + (high - low) * i / n for i in range(n + 1)]
    for h in HEIGHTS_CM:  # where gravity's pull peaks (r cos + e sin is a sinusoid)
        r = TableModel().com_fraction * h / 100.0 - TableModel().pivot_from_feet_m
        for peak in (
            math.atan2(TableModel().com_height_m, r) / RAD,
            math.atan2(-TableModel().com_height_m, -r) / RAD,
        ):
            if low <= peak <= high:
                out.append(peak)
    return out


def worst_shortfall(
    speed_dps: float,
    accel_dps2: float,
    toward_upright: bool,
    upright_deg: float,
    max_angle_deg: float,
    stall_nm: float,
    no_load_dps: float,
    model: TableModel = TableModel(),
) -> Shortfall | None:
    """The worst place in the envelope where a motion at ``speed_dps`` (while accelerating at
    ``accel_dps2``) needs more torque than the motor gives, or None if there is none."""
    available = stall_nm * (DUTY_HEADROOM - speed_dps / no_load_dps)
    friction = model.viscous * speed_dps * RAD + model.coulomb
    sign = -1.0 if toward_upright else 1.0  # gravity opposes motion toward upright when positive
    worst: Shortfall | None = None
    for height in HEIGHTS_CM:
        accel_nm = inertia(HEAVIEST_KG, height, model) * accel_dps2 * RAD
        for angle in _angles(upright_deg, max_angle_deg):
            against = -sign * gravity_torque(HEAVIEST_KG, height, angle, model)
            needed = max(0.0, against) + friction + accel_nm
            if needed > available and (
                worst is None or needed - available > worst.needed_nm - worst.available_nm
            ):
                # Fastest steady speed v there: stall (H - v / w0) = against + coulomb + viscous v.
                k = stall_nm / no_load_dps + model.viscous * RAD
                achievable = max(
                    0.0, (stall_nm * DUTY_HEADROOM - max(0.0, against) - model.coulomb) / k
                )
                worst = Shortfall(
                    "toward upright" if toward_upright else "toward inversion",
                    speed_dps,
                    accel_dps2,
                    HEAVIEST_KG,
                    height,
                    angle,
                    needed,
                    available,
                    achievable,
                )
    return worst


def capability_problems(
    upright_deg: float,
    max_angle_deg: float,
    max_speed_dps: float,
    max_accel_dps2: float,
    emergency_speed_dps: float,
    emergency_accel_dps2: float,
    stall_nm: float,
    no_load_dps: float,
    model: TableModel = TableModel(),
) -> list[tuple[str, str]]:
    """``(key, reason)`` for every configured motion the motor cannot make for every allowed user.

    The emergency profile only ever moves toward upright; the normal profile both ways."""
    out: list[tuple[str, str]] = []
    checks = (
        ("motion.emergency_speed_dps", emergency_speed_dps, emergency_accel_dps2, True),
        ("motion.max_speed_dps", max_speed_dps, max_accel_dps2, True),
        ("motion.max_speed_dps", max_speed_dps, max_accel_dps2, False),
    )
    seen: set[str] = set()
    for key, speed, accel, up in checks:
        if key in seen:
            continue
        short = worst_shortfall(
            speed, accel, up, upright_deg, max_angle_deg, stall_nm, no_load_dps, model
        )
        if short is not None:
            seen.add(key)
            out.append(
                (
                    key,
                    f"{speed:g} is more than the configured gearmotor can do: "
                    + short.describe(stall_nm, no_load_dps),
                )
            )
    return out
