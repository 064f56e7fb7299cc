"""Position loop: turns the profile's setpoint into a motor duty command.

The gearmotor's speed follows its duty closely (back-EMF): ``speed ~ no_load * (duty -
load)``, where ``load`` is the duty fraction eaten by gravity and friction. So the loop:

1. asks for a velocity: the profile's velocity plus a proportional position correction,
   **clamped to the active speed limit**;
2. converts it to duty with the nominal motor constant and adds the estimated load.

The load comes from a disturbance observer (a three-state estimator of angle, load and
the load's rate of change, driven by the applied duty and the measured angle), not from
integrating the position error. That matters for safety: an integral term winds up while
the table lags (for example when the brake releases and gravity pulls it back) and later
drives the true speed past the limit; the observer's estimate does not depend on the
setpoint at all, so the true speed follows the clamped velocity request.

The load-rate state matters: as the table moves, gravity's torque changes with the
angle (fastest near upright for a heavy user), and a two-state observer follows such a
ramp with a constant lag that showed up as 0.3 deg/s of overspeed; with the rate state
the ramp is followed without steady-state error.

The load estimate is bounded twice (issue 11, reproduction 3: both angle sensors froze near
the goal, the observer read "no motion despite the duty" as a growing load and wound the duty
up to 0.98, and the table ran at 21.6 deg/s to the stop):

- by what is physically plausible, ``load_max`` (the heaviest allowed user needs at most
  0.38 of the default gearmotor's duty anywhere; a failed brake's release transient 0.48);
- by what the motor current says, when the caller passes it: the current measures the
  motor's torque (``I = I0 + I_stall |tau| / stall``), and in this model the load *is* that
  torque as a duty fraction (``load = duty - speed / no_load``). A reading that stands still
  while the motor turns freely draws little current, so the estimate cannot run away from
  it; the largest current over a short window (measurement lag, the serial link) plus a
  margin is the bound. The current gives the torque's size, not its sign, so the sign is
  held too: while the current has stayed clearly above zero over the window the torque has
  not crossed zero, and neither may the estimate (a frozen reading with gravity helping the
  motion pushed it from -0.13 through zero to +0.17 within the magnitude bound), and its
  size may not fall below the smallest torque of the window either (less the margin): the
  load's size *is* the torque's. This assumes ``stall_current_a`` is the motor's (the
  controller should pass ``hardware.motor_stall_current_a``). During the
  brake-release phase neither bound applies (the current is still that of the held brake
  while the load appears).

  A bound that binds is itself evidence: the readings say "no motion despite the duty"
  while the current says the motor is turning freely. ``denied_s`` counts how long the
  current bound has held the estimate back without a break; the safety monitor should treat
  a few tenths of a second of it as frozen readings. (Wiring the current in without that
  makes the wind-up, and with it the current-deficit signature, small: in stranded_3a the
  table then crept on at 4.7 deg/s unseen instead of running at 10 deg/s and being caught.)

Model per tick (``c = dt * no_load_speed``): ``angle += c * (duty - load)``,
``load += dt * rate``. The observer corrects with the innovation ``e = measured -
predicted`` using gains that put all three poles at ``p = exp(-bandwidth * dt)``:
``l1 = 1 - p^3``, ``l2 = -(1 - p)^2 (p + 2) / c``, ``l3 = -(1 - p)^3 / (c dt)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from controller.core.limits import clamp, clamp_motor

DRIVE_GAP_S = 0.1  # a tick later than this: the hardware dead-man has cut the drive (sim/table.py)


@dataclass(frozen=True, slots=True)
class LoopGains:
    no_load_speed_dps: float = 20.0  # nominal motor speed at duty 1 (the feed-forward constant)
    kp: float = 3.0  # deg/s of correction per degree of position error
    observer_bandwidth: float = 5.0  # rad/s; higher follows load changes faster, passes more noise
    release_bandwidth: float = (
        40.0  # rad/s while the brake has just released and the load is unknown
    )
    release_s: float = 0.25  # how long the release bandwidth is used
    # The load estimate is bounded (duty fraction): the heaviest allowed user needs at most 0.38
    # of the default gearmotor (controller/core/capability.py: 257 N m of 700 at 40.8 deg, plus the
    # acceleration), a failed brake's release transient 0.48. A frozen reading cannot wind it
    # past this (it was 0.8: duty 0.98 and 21.6 deg/s in issue 11, repro 3).
    load_max: float = 0.5
    # Bound by the motor current (when the caller passes it): the motor's torque as a duty
    # fraction, the largest over ``current_window_s``, plus ``current_margin``.
    stall_current_a: float = 20.0  # the gearmotor's figures (hardware.motor_stall_current_a)
    no_load_current_a: float = 0.5  # a lower bound of the no-load current (a larger bound is safe)
    current_margin: float = 0.05  # about 1 deg/s of speed error at most
    current_window_s: float = 0.2  # covers 5 ticks of current lag and the serial link
    # The load at upright before anything is known (the first brake release after boot).
    # The user lies above the pivot axis, so at upright gravity always pulls toward upright;
    # this is the duty that holds the LIGHTEST allowed user there (40 kg), so the prior can
    # only under-compensate. Without it the first release sagged a 136 kg user back at
    # 4.1 deg/s against a 4 deg/s limit. A table's value is measured at commissioning.
    upright_load_prior: float = 0.05
    # Mechanical time constant J * no_load / stall_torque (0.018-0.04 s over the user range):
    # the duty that accelerates the inertia is fed forward from the profile's acceleration,
    # so the observer does not see every start and end of an acceleration as a load step.
    accel_time_constant_s: float = 0.03


class PositionLoop:
    __slots__ = (
        "gains",
        "est_angle",
        "load",
        "rate",
        "last_duty",
        "_l1",
        "_l2",
        "_l3",
        "_dt",
        "_bw",
        "_pred_dt",
        "_pred_u",
        "_release_left",
        "_torque_window",
        "current_bound",
        "_side",
        "_floor",
        "denied_s",
        "_denied_now",
    )

    def __init__(self, gains: LoopGains | None = None) -> None:
        self.gains = gains or LoopGains()
        self.est_angle = 0.0
        self.load = 0.0
        self.rate = 0.0
        self.last_duty = 0.0
        self._dt = 0.0
        self._bw = 0.0
        self._l1 = self._l2 = self._l3 = 0.0
        self._release_left = 0.0
        self._pred_dt: float | None = None  # the tick length the last prediction assumed
        self._pred_u = 0.0  # the duty that prediction integrated (less load, accel)
        self._torque_window: list[float] = []  # recent torque fractions from the current
        self.current_bound: float | None = None  # the last bound the current set (for traces)
        self._side = 0  # the load's sign while the torque cannot have crossed zero
        self._floor = 0.0  # ... and the least its size can be then
        self.denied_s = 0.0  # how long the current bound has bound without a break
        self._denied_now = False

    def _design(self, dt: float, bandwidth: float, track_rate: bool) -> None:
        p = math.exp(-bandwidth * dt)
        c = dt * self.gains.no_load_speed_dps
        if track_rate:  # three poles at p
            self._l1 = 1.0 - p**3
            self._l2 = -((1.0 - p) ** 2) * (p + 2.0) / c
            self._l3 = -((1.0 - p) ** 3) / (c * dt)
        else:  # two poles at p, rate held at zero
            self._l1 = 1.0 - p * p
            self._l2 = -((1.0 - p) ** 2) / c
            self._l3 = 0.0
        self._dt = dt
        self._bw = bandwidth

    def reset(self, angle: float, load: float = 0.0) -> None:
        """Start a motion from rest at ``angle``; ``load`` is the best prior guess."""
        self.est_angle = angle
        self.load = clamp(load, -self.gains.load_max, self.gains.load_max)
        self.rate = 0.0
        self.last_duty = 0.0
        self._release_left = self.gains.release_s
        self._pred_dt = None
        self._torque_window = []
        self.current_bound = None
        self._side = 0
        self._floor = 0.0
        self.denied_s = 0.0

    def _load_bound(self, current_a: float | None, dt: float, releasing: bool) -> float:
        """The largest plausible |load| now: ``load_max``, tightened by the motor current."""
        g = self.gains
        if current_a is None or current_a != current_a:  # no current measurement (or NaN)
            return g.load_max
        fraction = max(0.0, current_a - g.no_load_current_a) / g.stall_current_a
        window = self._torque_window
        window.append(fraction)
        keep = max(1, int(round(g.current_window_s / dt)))
        if len(window) > keep:
            del window[: len(window) - keep]
        if releasing or len(window) < keep:
            self.current_bound = None
            self._side = 0
            return g.load_max
        if min(window) > g.current_margin:  # the torque stayed clearly one-signed: hold the sign
            if self._side == 0 and abs(self.load) > g.current_margin:
                self._side = 1 if self.load > 0.0 else -1
            self._floor = min(window) - g.current_margin
        else:
            self._side = 0
            self._floor = 0.0
        self.current_bound = min(g.load_max, max(window) + g.current_margin)
        return self.current_bound

    def update(
        self,
        setpoint: float,
        setpoint_vel: float,
        measured: float,
        dt: float,
        speed_limit: float,
        setpoint_acc: float = 0.0,
        current_a: float | None = None,
    ) -> float:
        """One tick: the duty for ``setpoint``; ``current_a`` (the measured motor current, if
        the caller has it) bounds the load estimate so a frozen reading cannot wind it up."""
        g = self.gains
        if dt <= 0.0:
            return self.last_duty
        if self._pred_dt is not None and dt > DRIVE_GAP_S:
            # The loop was late past the hardware dead-man: the drive was cut and the brake
            # held the table meanwhile, so the prediction (motor driving) is void. Restart it
            # from the measurement; the load (gravity, friction) is still the best guess.
            self.est_angle = measured
            self.rate = 0.0
        elif self._pred_dt is not None and abs(dt - self._pred_dt) > 1e-9:
            # The last prediction assumed the next tick would come as late as that one did; it
            # came ``dt`` later (jitter, a stall, catch-up ticks): predict over the real time.
            extra = dt - self._pred_dt
            self.est_angle += extra * g.no_load_speed_dps * self._pred_u
            self.load = clamp(self.load + extra * self.rate, -g.load_max, g.load_max)
        # Brake-release phase: the load (gravity) appears at once and is not known yet, so the
        # observer runs fast until it has caught it, then slower to pass less sensor noise.
        # The release load is a step: a rate state would ring on it, so it is tracked only
        # afterwards, when the load changes smoothly with the angle.
        releasing = self._release_left > 0.0
        bandwidth = g.release_bandwidth if releasing else g.observer_bandwidth
        self._release_left -= dt
        if dt != self._dt or bandwidth != self._bw:
            self._design(dt, bandwidth, track_rate=not releasing)
        bound = self._load_bound(current_a, dt, releasing)
        self._denied_now = False
        # Observer, correct: ``est_angle`` is what the model predicted for now.
        innovation = measured - self.est_angle
        self.load = self._bounded(self.load + self._l2 * innovation, bound)
        self.rate += self._l3 * innovation
        corrected = self.est_angle + self._l1 * innovation
        # Velocity request, clamped to the limit, then duty.
        vel_cmd = clamp(setpoint_vel + g.kp * (setpoint - measured), -speed_limit, speed_limit)
        accel_ff = g.accel_time_constant_s * setpoint_acc / g.no_load_speed_dps
        duty = clamp_motor(vel_cmd / g.no_load_speed_dps + self.load + accel_ff)
        # Observer, predict the next tick with the duty applied now (less the share that
        # accelerates the inertia, which adds no steady speed).
        self._pred_u = duty - accel_ff - self.load
        self._pred_dt = dt
        self.est_angle = corrected + dt * g.no_load_speed_dps * self._pred_u
        self.load = self._bounded(self.load + dt * self.rate, bound)
        bound_by_current = self._denied_now and self.current_bound is not None
        self.denied_s = self.denied_s + dt if bound_by_current else 0.0
        self.last_duty = duty
        return duty

    def _bounded(self, load: float, bound: float) -> float:
        """Clamp the load (to its held sign's side); at a bound the rate state stops pushing."""
        side, floor = self._side, self._floor
        low, high = (-bound if side <= 0 else floor), (bound if side >= 0 else -floor)
        if low <= load <= high:
            return load
        self._denied_now = True
        if (load > high) == (self.rate > 0.0):
            self.rate = 0.0
        return clamp(load, low, high)
