"""Rigid-body physics of the table plus user about the pivot, with motor and brake.

Angle convention (DESIGN section 2): degrees, 0 = horizontal, +90 = head straight down.
The model integrates at a fixed step (1 kHz by default, semi-implicit Euler), so a
given input sequence always gives the same trajectory.

Model:
- Inertia: table frame + user (a uniform rod of the user's height about its centre,
  moved to the pivot by the parallel-axis term) + the gearmotor's reflected inertia.
- Gravity: the user's centre of mass lies ``com_offset`` along the table toward the
  head from the pivot (it grows with height: the pivot is set for an average user)
  and ``com_height`` above the table axis. With the head-down direction as positive,
  the torque is ``m g (r cos(theta) + e sin(theta))``.
- DC gearmotor at the output shaft: linear speed/torque curve
  ``tau = stall * (cmd - omega / no_load)``; current proportional to torque plus the
  no-load current. When the drive is not enabled (e-stop, dead-man, power cut, supply
  relay open) a normally-closed contact shorts the windings: no drive torque, but the
  back-EMF still brakes any motion (``tau = -stall * omega / no_load``), so even with a
  failed brake the table can only slide slowly.
- Brake: spring-applied, so engaged whenever it is commanded *or* unpowered; holds up
  to ``brake_torque`` statically and decelerates with it when slipping.
- Friction: viscous plus Coulomb, with stiction at rest.
- Hard mechanical stops at ``stop_low`` and ``stop_high`` (inelastic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

G = 9.81
RAD = math.pi / 180.0
DEG = 180.0 / math.pi


@dataclass(frozen=True, slots=True)
class TableParams:
    frame_inertia: float = 8.0  # kg m^2, table frame about the pivot
    reflected_inertia: float = 20.0  # kg m^2, gearmotor rotor seen through the gearbox
    pivot_from_feet_m: float = 0.95  # pivot position along the user from the ankles
    com_fraction: float = 0.55  # user's centre of mass, fraction of height from the feet
    com_height_m: float = 0.12  # centre of mass above the table axis
    stall_torque: float = 700.0  # N m at the output, cmd = 1, stalled
    no_load_speed_dps: float = 20.0  # deg/s at the output, cmd = 1, unloaded
    stall_current_a: float = 20.0
    no_load_current_a: float = 0.6
    brake_torque: float = 900.0  # N m holding torque
    viscous: float = 40.0  # N m per rad/s
    coulomb: float = 12.0  # N m
    stop_low_deg: float = -90.0  # hard mechanical stops
    stop_high_deg: float = 95.0


class TablePhysics:
    """State (angle, velocity) and one fixed-step integrator. Pure: no randomness, no I/O."""

    __slots__ = (
        "p",
        "mass",
        "height",
        "angle",
        "vel",
        "current",
        "_inertia",
        "_r",
        "_e",
        "torque_scale",
        "brake_scale",
        "jammed",
    )

    def __init__(
        self, params: TableParams, mass_kg: float, height_cm: float, angle_deg: float
    ) -> None:
        self.p = params
        self.mass = mass_kg
        self.height = height_cm / 100.0
        self.angle = angle_deg  # deg
        self.vel = 0.0  # deg/s
        self.current = 0.0  # A
        # Fault hooks (sim.faults): motor_weak, brake_slip / brake_failed, motor_stall.
        self.torque_scale = 1.0
        self.brake_scale = 1.0
        self.jammed = False
        self._r = params.com_fraction * self.height - params.pivot_from_feet_m
        self._e = params.com_height_m
        rod = mass_kg * self.height**2 / 12.0
        self._inertia = (
            params.frame_inertia
            + params.reflected_inertia
            + rod
            + mass_kg * (self._r**2 + self._e**2)
        )

    def gravity_torque(self, angle_deg: float) -> float:
        th = angle_deg * RAD
        return self.mass * G * (self._r * math.cos(th) + self._e * math.sin(th))

    def advance(
        self, duration: float, dt: float, cmd: float, motor_enabled: bool, brake_engaged: bool
    ) -> None:
        """Integrate ``duration`` seconds in steps of ``dt`` with constant inputs."""
        p = self.p
        n = max(1, round(duration / dt))
        angle, vel = self.angle, self.vel
        if cmd > 1.0:
            cmd = 1.0
        elif cmd < -1.0:
            cmd = -1.0
        if not motor_enabled:
            cmd = 0.0
        stall, w0 = p.stall_torque * self.torque_scale, p.no_load_speed_dps
        if self.jammed:  # the drive is locked: no motion, stall current
            self.vel = 0.0
            self.current = (
                p.no_load_current_a + p.stall_current_a * abs(cmd) * self.torque_scale
                if motor_enabled and cmd != 0.0
                else 0.0
            )
            return
        inv_i = DEG / self._inertia
        m_g = self.mass * G
        r, e = self._r, self._e
        visc = p.viscous * RAD
        coul, brake_t = p.coulomb, p.brake_torque * self.brake_scale
        lo, hi = p.stop_low_deg, p.stop_high_deg
        tau_m = 0.0
        if vel == 0.0:
            # At rest: if stiction and the brake hold now they hold for the whole call (the
            # angle, hence gravity, cannot change while at rest): exactly what the loop below
            # would compute step by step, at a fraction of the cost (long holds on the brake).
            th = angle * RAD
            drive = (stall * cmd if motor_enabled else 0.0) + m_g * (
                r * math.cos(th) + e * math.sin(th)
            )
            # (at rest the shorted windings give no torque: the same either way)
            if abs(drive) <= coul + (brake_t if brake_engaged else 0.0):
                self.current = (
                    p.no_load_current_a + p.stall_current_a * abs(cmd) * self.torque_scale
                    if motor_enabled and cmd != 0.0
                    else 0.0
                )
                return
        # Loop invariants bound to locals (the same operations in the same order: the same
        # floats, only fewer look-ups per 1 ms step).
        hold = coul + (brake_t if brake_engaged else 0.0)
        cos, sin, copysign, rad = math.cos, math.sin, math.copysign, RAD
        for _ in range(n):
            th = angle * rad
            tau_g = m_g * (r * cos(th) + e * sin(th))
            tau_m = stall * (cmd - vel / w0)  # cmd is 0 when not enabled: shorted windings brake
            drive = tau_m + tau_g
            if vel == 0.0:
                # At rest: stiction and the brake hold while they can.
                if abs(drive) <= hold:
                    continue
                acc = (drive - copysign(hold, drive)) * inv_i
            else:
                acc = (drive - (visc * vel + copysign(hold, vel))) * inv_i
            new_vel = vel + acc * dt
            if vel != 0.0 and (new_vel > 0.0) != (vel > 0.0) and abs(drive) <= hold:
                new_vel = 0.0  # friction/brake stop the table; they cannot reverse it
            vel = new_vel
            angle += vel * dt
            if angle < lo:
                angle, vel = lo, 0.0
            elif angle > hi:
                angle, vel = hi, 0.0
        self.angle, self.vel = angle, vel
        if motor_enabled and cmd != 0.0:
            self.current = p.no_load_current_a + p.stall_current_a * abs(tau_m) / p.stall_torque
        else:
            self.current = 0.0
