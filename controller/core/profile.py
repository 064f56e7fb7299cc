"""Online trapezoidal motion profile: bounded speed and acceleration, no overshoot.

Each step moves the setpoint velocity toward the fastest velocity from which the
profile can still stop exactly at the goal (``sqrt(2 a d)``), changing it by at most
``amax * dt``. That is the time-optimal trapezoid when starting from rest, and it
re-plans smoothly when the goal changes mid-motion (e.g. an emergency return while
ramping down: it first decelerates, then reverses), which a pre-computed trapezoid
cannot. The acceleration bound holds by construction; the speed bound holds too,
except that a profile entered faster than a newly lowered ``vmax`` decelerates to it
at ``amax``.
"""

from __future__ import annotations

import math

# Near cruise speed the acceleration fades out exponentially (rate CRUISE_BLEND per second)
# instead of stopping abruptly: the drive's load estimate contains the inertial torque of
# the acceleration, and an abrupt end of acceleration makes the true speed overshoot
# cruise by about no_load * J * a / stall_torque (0.3 deg/s at 8 deg/s^2 for a heavy user).
# The cost is at most 1/CRUISE_BLEND seconds per move (about 0.01 s at default limits).
CRUISE_BLEND = 10.0


class TrapezoidProfile:
    """Position/velocity setpoint generator in degrees and degrees per second."""

    __slots__ = ("pos", "vel", "acc", "goal", "vmax", "amax")

    def __init__(self, pos: float = 0.0) -> None:
        self.pos = pos
        self.vel = 0.0
        self.acc = 0.0
        self.goal = pos
        self.vmax = 1.0
        self.amax = 1.0

    def reset(self, pos: float) -> None:
        """Start at rest at ``pos`` (e.g. the measured angle when the brake releases)."""
        self.pos = pos
        self.vel = 0.0
        self.acc = 0.0
        self.goal = pos

    def set_goal(self, goal: float, vmax: float, amax: float) -> None:
        self.goal = goal
        self.vmax = vmax
        self.amax = amax

    def stop(self, amax: float | None = None) -> None:
        """Aim at the nearest point where the profile can come to rest (a controlled stop)."""
        if amax is not None:
            self.amax = amax
        v = self.vel
        self.goal = self.pos + v * abs(v) / (2.0 * self.amax)

    @property
    def done(self) -> bool:
        return self.vel == 0.0 and self.pos == self.goal

    def step(self, dt: float) -> None:
        pos, vel, goal, amax = self.pos, self.vel, self.goal, self.amax
        dist = goal - pos
        if dist == 0.0 and vel == 0.0:
            self.acc = 0.0
            return
        lim = amax * dt
        direction = 1.0 if dist > 0.0 else -1.0
        # Work along the direction of the goal: d >= 0, v = velocity toward it.
        d = abs(dist)
        v = vel * direction
        # Fastest velocity w for this step such that, after moving (v + w)/2*dt, the rest can
        # still be stopped within with steps of -amax*dt. The discrete stopping distance
        # from w is w^2/(2a) + w*dt/2, so: w^2/(2a) + w*dt <= d - v*dt/2.
        room = d - 0.5 * v * dt
        if room > 0.0:
            w = amax * (math.sqrt(dt * dt + 2.0 * room / amax) - dt)
        else:
            w = 0.0
        w = min(w, self.vmax)
        # Acceleration bound, with the smooth blend into cruise.
        if w > v:
            w = min(w, v + lim, v + max(self.vmax - v, 0.0) * CRUISE_BLEND * dt)
        elif w < v - lim:
            w = v - lim
        new_v = w
        moved = 0.5 * (v + new_v) * dt
        if abs(vel) <= lim and (d - moved <= 1e-9 or d - moved <= lim * dt):
            # Arrival: the goal is (about to be) reached at a speed that one step of at most
            # amax can take to zero. The braking rule above brings every approach here.
            self.acc = -vel / dt
            self.pos = goal
            self.vel = 0.0
            return
        self.acc = (new_v * direction - vel) / dt
        self.pos = pos + moved * direction
        self.vel = new_v * direction


def trapezoid_time(distance: float, vmax: float, amax: float) -> float:
    """Ideal time to travel ``distance`` from rest to rest (the 'ideal trapezoid')."""
    d = abs(distance)
    if d * amax >= vmax * vmax:  # reaches cruise speed
        return d / vmax + vmax / amax
    return 2.0 * math.sqrt(d / amax)  # triangular
