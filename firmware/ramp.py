"""The board's own motion: a trapezoidal ramp (bounded speed and acceleration, no
overshoot) and the position loop that follows it. Used only when the board acts alone
(its emergency return); in normal use the host plans and the board enforces limits."""

import math


class Ramp:
    def __init__(self, pos):
        self.pos = pos
        self.vel = 0.0
        self.done = False

    def step(self, goal, vmax, amax, dt):
        """Advance the setpoint by dt toward goal: accelerate, cruise, then brake so as to
        stop exactly at the goal. The braking speed is the discrete one (the speed from
        which steps of amax*dt stop within the distance left), so the last step is small."""
        d = goal - self.pos
        if d == 0.0 and self.vel == 0.0:
            self.done = True
            return
        direction = 1.0 if d > 0 else -1.0
        v = self.vel * direction  # speed toward the goal (negative: moving away)
        if v < 0.0:
            v_new = min(0.0, v + amax * dt)  # stop moving away first
        else:
            h = 0.5 * amax * dt
            v_cap = -h + math.sqrt(h * h + 2.0 * amax * abs(d))
            v_new = max(min(vmax, v + amax * dt, v_cap), v - amax * dt)
        pos = self.pos + direction * v_new * dt
        if (goal - pos) * direction <= 0.0:
            pos, v_new = goal, 0.0
        self.pos, self.vel = pos, direction * v_new
        self.done = pos == goal and v_new == 0.0


class Follower:
    """Velocity feed-forward plus PI on position error. Without the host's load observer,
    the integral carries the user's weight; it is clamped so it cannot wind up."""

    def __init__(self, no_load_speed_dps, kp=0.2, ki=0.5, i_max=0.6):
        self.ff = 1.0 / no_load_speed_dps
        self.kp = kp
        self.ki = ki
        self.i_max = i_max
        self.integ = 0.0

    def duty(self, sp_pos, sp_vel, angle, dt):
        err = sp_pos - angle
        self.integ += self.ki * err * dt
        if self.integ > self.i_max:
            self.integ = self.i_max
        elif self.integ < -self.i_max:
            self.integ = -self.i_max
        d = self.ff * sp_vel + self.kp * err + self.integ
        return 1.0 if d > 1.0 else (-1.0 if d < -1.0 else d)
