"""Motion planning: the profile the table follows, at which pace, and the position loop that
drives it (docs/control.md).

The controller decides where to go and when to stop; this decides how: a trapezoid planned
below the pace's speed limit, the loop's load prior at each brake release, a controlled stop,
and a return re-planned slower when its drive runs near full duty. ``tracking`` is True while
the brake is released and the loop drives. Pure logic: time and the measured angle are
passed in.
"""

from __future__ import annotations

import math
from collections import deque
from enum import StrEnum

from controller.core.capability import TableModel
from controller.core.config import Config
from controller.core.limits import clamp_target, is_upright
from controller.core.motor_loop import PositionLoop
from controller.core.profile import TrapezoidProfile
from controller.core.recovery import SUPERVISED_ACCEL_DPS2, SUPERVISED_SPEED_DPS

SETTLE_DEG = 0.3  # "arrived": within this of the goal ...
SETTLE_TIMEOUT_S = 1.0  # ... or this long after the profile finished
SETTLE_COMING_DPS = 0.2  # ... unless the table still comes toward the goal faster than this
LIMP_SPEED_DPS = 2.0  # limp home: slow, on the one sensor still trusted
LIMP_ACCEL_DPS2 = 2.0
LIMP_PLAN_FRACTION = 0.75
# Profiles are planned this far below the state's speed limit: the true speed deviates from
# the plan by sensor noise and motor dynamics (measured about 0.2 deg/s worst case in the
# simulator across 40-136 kg users), and the limit applies to the true speed.
SPEED_MARGIN_DPS = 0.25
# Emergency return under load: when the drive runs near full duty while the table still comes
# up, the return is re-planned slower (never held while it makes progress toward upright).
SLOW_DOWN_DUTY = 0.95  # |duty| at or above this ...
SLOW_DOWN_S = 0.2  # ... for this long: re-plan at SLOW_DOWN_FACTOR of the speed
SLOW_DOWN_FACTOR = 0.7
SLOW_DOWN_MIN_DPS = 1.0  # never planned slower than this (below it the monitor judges progress)
# Gravity's pull measured while moving on trusted sensors, this long before they were last
# trusted: a frozen reading is caught within about 0.5 s (monitor), and the loop's load
# estimate meanwhile winds up against it, so the newest samples are not evidence.
MOVING_PRIOR_AGE_S = 1.0


class Pace(StrEnum):
    NORMAL = "normal"  # motion.max_speed_dps, motion.max_accel_dps2
    EMERGENCY = "emergency"  # motion.emergency_speed_dps, motion.emergency_accel_dps2
    LIMP = "limp"  # slow, on less trustworthy measurement
    SUPERVISED = "supervised"  # the supervised recovery's hold-to-run speed


class Motion:
    def __init__(self, config: Config) -> None:
        self.cfg = config
        self.profile = TrapezoidProfile()
        self.loop = PositionLoop()
        self.tracking = False  # True: brake released and the position loop drives
        self.load_known = False  # the loop has estimated the load at least once
        self.done_t: float | None = None  # when the profile finished
        self.speed_limit = 0.0  # the active profile's limits (for the trace and checks)
        self.accel_limit = 0.0
        self.braked_angle: float | None = None  # where the brake was last engaged
        self.slow_down_t: float | None = None  # the drive has been near full duty since then
        self.trusted_load = 0.0  # the loop's load where a motion last ended with nothing latched
        # (time, gravity's pull) while the loop drives on trusted sensors: the loop's load less
        # the friction the model gives for the planned speed (a moving table's load is not
        # gravity's alone; friction is about 0.02 of duty, gravity up to 0.38).
        self._moving_loads: deque[tuple[float, float]] = deque()
        model = TableModel()
        torque = config.hardware.motor_stall_torque_nm
        self._coulomb = model.coulomb / torque
        self._viscous = model.viscous * math.pi / 180.0 / torque  # per deg/s

    def setpoint(self, angle: float) -> float:
        return self.profile.pos if self.tracking else angle

    def move_to(self, goal: float, angle: float, pace: Pace = Pace.NORMAL) -> None:
        """Plan a motion to ``goal`` (clamped to the envelope); from rest, release the brake."""
        m = self.cfg.motion
        if pace == Pace.SUPERVISED:
            vmax, amax = SUPERVISED_SPEED_DPS, SUPERVISED_ACCEL_DPS2
            if self.tracking:
                amax = max(amax, self.profile.amax)
        elif pace == Pace.LIMP:
            vmax, amax = (
                min(LIMP_SPEED_DPS, m.max_speed_dps),
                min(LIMP_ACCEL_DPS2, m.max_accel_dps2),
            )
            if self.tracking:  # never brake a motion more gently than the profile it takes over
                amax = max(amax, self.profile.amax)
        elif pace == Pace.EMERGENCY:
            vmax, amax = m.emergency_speed_dps, m.emergency_accel_dps2
        else:
            vmax, amax = m.max_speed_dps, m.max_accel_dps2
        goal = clamp_target(goal, self.cfg.limits.upright_deg, self.cfg.limits.max_angle_deg)
        # Limp home runs on less trustworthy measurement (one sensor, or a drifting mean):
        # it is planned well below its limit, slow being its whole point.
        plan_speed = (
            LIMP_PLAN_FRACTION * vmax
            if pace == Pace.LIMP
            else max(vmax - SPEED_MARGIN_DPS, 0.7 * vmax)
        )
        if not self.tracking:
            self.profile.reset(angle)
            if self.load_known:
                prior = self.loop.load  # the last estimate is the best guess
            elif is_upright(angle, self.cfg.limits.upright_deg):
                prior = self.loop.gains.upright_load_prior
            else:
                prior = 0.0
            self.loop.reset(angle, prior)
            self.load_known = True
            self.tracking = True
        self.profile.set_goal(goal, plan_speed, amax)
        self.speed_limit, self.accel_limit = vmax, amax
        self.done_t = None

    def restart(self, goal: float, angle: float, pace: Pace, load: float) -> None:
        """A new motion from rest whose load prior is ``load``, not the loop's last estimate."""
        self.tracking = False
        self.load_known = False
        self.move_to(goal, angle, pace)
        self.loop.reset(angle, load)

    def stop(self) -> None:
        """A controlled stop: the profile decelerates to rest (the brake engages once settled)."""
        if self.tracking:
            self.profile.stop()
            self.done_t = None

    def engage_brake(self, angle: float, trusted: bool) -> None:
        """The brake holds from here; ``trusted``: nothing latched, so the loop's load is
        gravity's pull here, measured on trusted sensors (the prior of a later release)."""
        if self.tracking and trusted:
            self.trusted_load = self.loop.load
            self._moving_loads.clear()  # stopped since: the stop is the newer evidence
        self.tracking = False
        self.braked_angle = angle

    def drive_open_loop(self, speed_limit: float, accel_limit: float) -> None:
        """The position loop stands down while another estimate drives (the back-EMF); the
        limits still bound the motion."""
        self.tracking = False
        self.speed_limit, self.accel_limit = speed_limit, accel_limit

    def step(self, dt: float, now: float) -> None:
        """Advance the profile by ``dt`` and note when it finished."""
        if not self.tracking:
            return
        if dt > 0.0:
            self.profile.step(dt)
        if self.profile.done:
            if self.done_t is None:
                self.done_t = now
        else:
            self.done_t = None

    def settled(self, angle: float, now: float, speed: float | None = None) -> bool:
        """At rest on the brake, or the profile done and the table there (or given time, unless
        ``speed``, the measured one, says it still comes toward the goal: a limp home that
        lagged its plan was braked at 1.5 deg/s, 1 deg short of upright, and called idle)."""
        if not self.tracking or self.done_t is None:
            return not self.tracking
        goal = self.profile.goal
        if abs(angle - goal) <= SETTLE_DEG:
            return True
        coming = speed is not None and abs(speed) > SETTLE_COMING_DPS and speed * (goal - angle) > 0
        return now - self.done_t >= SETTLE_TIMEOUT_S and not coming

    def replan_from_rest(self, angle: float) -> None:
        """The same goal and limits, planned again from rest where the table stands."""
        p = self.profile
        goal, vmax, amax = p.goal, p.vmax, p.amax
        p.reset(angle)
        p.set_goal(goal, vmax, amax)

    def adapt_to_torque(self, now: float, angle: float, duty: float) -> float | None:
        """A return whose drive runs near full duty is re-planned slower while the table still
        comes up (issue 11, repro 4: 136 kg at 60 deg with a 15 deg/s emergency speed was held
        at 48.8 deg); the monitor holds only a saturated drive that makes no progress. Returns
        the new planned speed when it re-planned."""
        if self.slow_down_t is None and not (self.tracking and self.profile.goal < angle):
            return None  # not heading up, and not being watched
        if not self.tracking or abs(duty) < SLOW_DOWN_DUTY:
            self.slow_down_t = None
            return None
        if self.slow_down_t is None:
            self.slow_down_t = now
            return None
        if now - self.slow_down_t < SLOW_DOWN_S or self.profile.vmax <= SLOW_DOWN_MIN_DPS:
            return None
        slower = max(SLOW_DOWN_MIN_DPS, SLOW_DOWN_FACTOR * self.profile.vmax)
        self.profile.vmax = slower
        self.profile.pos = (
            angle  # the setpoint waits for the table (it lagged a drive at its limit)
        )
        self.slow_down_t = None
        return slower

    def drive(
        self,
        angle: float,
        dt: float,
        current_a: float | None,
        *,
        now: float | None = None,
        trusted: bool = False,
    ) -> float:
        """The loop's duty for this tick, following the profile; ``trusted``: nothing is
        latched, so the loop's load is remembered as gravity's pull (``emf_prior``)."""
        p = self.profile
        duty = self.loop.update(p.pos, p.vel, angle, dt, p.vmax, p.acc, current_a=current_a)
        if trusted and now is not None:
            friction = math.copysign(self._coulomb + self._viscous * abs(p.vel), p.vel)
            loads = self._moving_loads
            loads.append((now, self.loop.load - (friction if p.vel else 0.0)))
            while loads and loads[0][0] < now - 2.0 * MOVING_PRIOR_AGE_S:
                loads.popleft()
        return duty

    def emf_prior(self) -> float:
        """Gravity's pull for a drive on the back-EMF (no angle trusted): where the table last
        stopped on trusted sensors, or, if it was moving on them since, what the loop measured
        ``MOVING_PRIOR_AGE_S`` before they were last trusted. (Without the moving one, sensors
        that froze mid-ramp left a prior of 0 from upright: the odometer took the slow branch
        while gravity pulled the table up at 6-14 deg/s and past upright.)"""
        loads = self._moving_loads
        if loads:
            cutoff = loads[-1][0] - MOVING_PRIOR_AGE_S
            older = [load for t, load in loads if t <= cutoff + 1e-9]
            if older:
                return older[-1]
        return self.trusted_load
