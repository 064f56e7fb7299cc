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
        # Fastest velocity that can still stop at the goal (discrete-time correction so the
        # one-step lag does not overshoot): solves v*dt/2 + v^2/(2a) = |d|.
        half = 0.5 * amax * dt
        v_stop = math.sqrt(half * half + 2.0 * amax * abs(dist)) - half
        v_des = min(self.vmax, v_stop)
        if dist < 0.0:
            v_des = -v_des
        dv = v_des - vel
        lim = amax * dt
        if dv > lim:
            dv = lim
        elif dv < -lim:
            dv = -lim
        new_vel = vel + dv
        new_pos = pos + (vel + new_vel) * 0.5 * dt
        # Arrival: close enough to stop within one step, or crossed the goal while slow.
        if abs(new_vel) <= lim and (abs(goal - new_pos) <= lim * dt or (goal - new_pos) * dist < 0.0):
            self.acc = -vel / dt if dt > 0 else 0.0
            if abs(self.acc) > amax:
                self.acc = math.copysign(amax, self.acc)
            self.pos = goal
            self.vel = 0.0
            return
        self.acc = dv / dt
        self.pos = new_pos
        self.vel = new_vel


def trapezoid_time(distance: float, vmax: float, amax: float) -> float:
    """Ideal time to travel ``distance`` from rest to rest (the 'ideal trapezoid')."""
    d = abs(distance)
    if d * amax >= vmax * vmax:  # reaches cruise speed
        return d / vmax + vmax / amax
    return 2.0 * math.sqrt(d / amax)  # triangular
