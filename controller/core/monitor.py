"""Safety monitor: fault detection independent of the state machine's normal path.

Every tick the controller hands the monitor what it measured and what it commanded; the
monitor answers with at most one new ``Detection``. It holds no policy about states: it
says what is wrong, how trustworthy motion still is, and which sensor (if any) is still
good. It owns what is latched (``latch``, also for the faults the controller finds) and
the most conservative ``Recovery`` among it; the controller sounds the alarm and routes
the recovery to the state machine:

- ``emergency_return``: sensors and drive are trusted (a brake that does not hold, a
  switch wire, an upright switch that lies, a stuck pendant button): the controller's
  ``fault`` state drives upright on the emergency profile;
- ``limp_home``: one angle sensor is bad: slowly upright on the other one;
- ``hold``: moving would be worse (a drive that does not obey, both sensors bad): motor
  supply cut, brake on, alarm, wait for help.

Thresholds are chosen against the simulator's measured normal behaviour (tracking within
0.3 deg, sensor disagreement within 0.2 deg, speed within 0.05 deg/s of the limit), with
margins of ten times or more.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Callable, NamedTuple

from controller.core.config import Config
from controller.core.states import State
from hal.interfaces import Inputs

SENSOR_AGREE_DEG = 1.0  # the two angle sensors must agree this closely (normally within 0.25):
# a stuck sensor halves the fused angle's motion and fools the load
# observer into speeding the table up, so it must be caught early
FOLLOWING_ERROR_DEG = 3.0  # measured vs setpoint while driving
CREEP_DEG = 0.25  # movement allowed while the brake holds (the fused angle's noise
# peaks near 0.1)
BRAKED_REF_SAMPLES = 5  # the sensors' reference when braked is the mean of this many first
# readings: a single noisy primary reading (sigma 0.05, 0.088 deg quanta) cost up to 0.16 deg
# of creep before detection, and a heavy user slid past upright (campaign seed 2026)
SPEED_MARGIN_DPS = 4.0  # measured speed over the active limit: runaway (noise peaks ~1.5)
SPEED_WINDOW_S = 0.1  # speed = angle change over at least this much measured time (noise about
# +-1.5 deg/s peak over 0.1 s); never samples x the current tick's dt: the
# catch-up ticks after a late one are < 1 ms apart
SPEED_SAMPLES_MAX = (
    1000  # bound on the timestamped samples kept (catch-up ticks come ~0.5 ms apart)
)
RUNAWAY_CURRENT_A = 10.0  # current while braked and moving: the driver is on (a runaway draws
# ~20 A; the brake test's push 7 A)
OVERCURRENT_A = 15.0  # sustained current: jammed drive
CURRENT_EXCESS_A = 5.0  # current above what the last command can draw: the driver ignores it
# (normal ticks stay within 1.6 A of the prediction: sensor-speed noise)
CURRENT_LAG_S = 0.2  # the current read may reflect any command this recent; the delays add
# up: the serial link both ways (2 x 50 ms, DESIGN section 6), a
# current path lagging 5 ticks (50 ms), a board on its own clock (10 ms),
# tick jitter (20 ms) and the tick a command needs to act (10 ms) ...
CURRENT_LAG_TICKS = 6  # ... or any of this many latest commands (a sensor path that lags by
# reads: up to 5 ticks plus the one a command needs to act)
ENVELOPE_GUARD_DEG = 0.4  # measured angle past max_angle_deg while driving: stop on the brake
# (arrivals overshoot < 0.1; a first brake release sags ~0.25)
SATURATED_DUTY = 0.99  # full duty ...
SATURATED_S = 0.15  # ... for this long: the drive cannot follow
OVERCURRENT_S = 0.5
NO_LOAD_CURRENT_A = 1.0  # upper bound of the gearmotor's no-load current
OVERTRAVEL_REAL_DEG = 2.0  # the over-travel switch open this far past max_angle_deg is real
# (nearer: a wire or switch fault)
AMBIGUOUS_DEG = 0.5  # the sensors' distances from the reference differ by less: ambiguous
RATE_WINDOW_S = 0.3  # measured time over which "this sensor stopped moving" is judged
STILL_DEG = 0.15  # moved less than this in the window: not moving (noise ~0.1)
NOISY_STEP_DEG = 0.6  # a sensor whose mean step between samples exceeds this (a sensor at the
# fastest motion, 15 deg/s, steps 0.15 per 10 ms plus 0.1 of quantization) ...
NOISY_RATIO = 4.0  # ... and this many times the other's is the noisy one
NOISY_SAMPLES = 5  # at least this many samples in the rate window to judge it
MOVING_DEG = 0.4  # moved more than this: moving
SWITCH_LIE_DEG = 5.0  # upright switch closed this far from upright: it lies
STUCK_BUTTON_GRACE_S = 5.0  # a button held this long past the jog cap is stuck
DISCREPANCY_S = 0.05  # two channels of one safety input may differ this long (contact bounce)
PROGRESS_DPS = 0.2  # measured speed toward upright that counts as progress (noise ~0.15 at 0.3 s)
CURRENT_DEFICIT_A = 4.5  # current this far BELOW what the command draws at the measured speed:
# the motor turns although the sensors say it does not (frozen readings);
# normal ticks stay within 1.6 A of the prediction
FROZEN_DPS = 0.5  # the readings "stand still" below this measured speed (noise ~0.15)
LIVE_CURRENT_A = 0.3  # below this the current sensor gives nothing (no-load draw is 0.6 A)
FROZEN_READ_S = 0.08  # both readings bit-identical this long while driving ...
FROZEN_MOVE_DEG = 0.2  # ... and the setpoint moved this far meanwhile (2 encoder counts,
# 2 steps of the 12-bit sensor: a following table changes both)
LOAD_DENIED_S = 0.3  # the current bounding the loop's load estimate this long: frozen readings
CURRENT_DEFICIT_S = 0.1  # above the worst measurement lag (5 ticks) plus a transient


class Recovery(StrEnum):
    """How the table comes back once a fault is latched, least conservative first."""

    REPORT = "report"
    EMERGENCY_RETURN = "emergency_return"
    LIMP_HOME = "limp_home"
    HOLD = "hold"

    @property
    def severity(self) -> int:
        return list(Recovery).index(self)


class Sensor(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"

    @property
    def other(self) -> Sensor:
        return Sensor.SECONDARY if self is Sensor.PRIMARY else Sensor.PRIMARY


@dataclass(frozen=True, slots=True)
class Detection:
    code: str  # reason code, e.g. "brake_creep"
    reason: str  # human-readable detail
    recovery: Recovery
    good_sensor: Sensor | None = None  # the other one is distrusted from now on
    driver_stuck_on: bool = False  # the current says the driver ignores its command
    brake_slips: bool = False  # the brake does not hold: the motor holds instead from now on


class Snapshot(NamedTuple):
    """What the controller did and believes this tick (the monitor's only view of it)."""

    now: float
    state: State
    tracking: bool  # the position loop is driving (brake released)
    setpoint: float
    speed_limit: float
    motor_cmd: float  # last command sent
    angle: float  # the controller's fused angle
    braked_angle: float | None  # where the brake was engaged (None while driving)
    motor_power: bool = True  # the supply relay was closed for the last command
    goal: float | None = (
        None  # the active profile's goal (None while braked): which way the drive heads
    )
    load_denied_s: float = 0.0  # how long the motor current has held the loop's load estimate back


def make_snapshot(
    now: float,
    state: State,
    tracking: bool,
    setpoint: float,
    speed_limit: float,
    motor_cmd: float,
    angle: float,
    braked_angle: float | None,
    motor_power: bool,
    goal: float | None,
    load_denied_s: float,
) -> Snapshot:
    """A ``Snapshot`` with every field, by position through ``tuple.__new__``: the same tuple
    as ``Snapshot(...)`` without the NamedTuple's Python-level ``__new__`` (once a tick)."""
    snapshot: Snapshot = tuple.__new__(
        Snapshot,
        (
            now,
            state,
            tracking,
            setpoint,
            speed_limit,
            motor_cmd,
            angle,
            braked_angle,
            motor_power,
            goal,
            load_denied_s,
        ),
    )
    return snapshot


Check = Callable[[Snapshot, Inputs, float], "Detection | None"]  # one of the monitor's checks
# States whose brake the creep check does not watch (a frozenset: looked up every tick).
BRAKE_UNWATCHED = frozenset((State.FAULT, State.BOOT))


class SafetyMonitor:
    def __init__(self, config: Config) -> None:
        self.cfg = config
        # What is latched and what it implies; written only by latch() (and single_out_sensor).
        self.latched: set[str] = set()
        self.recovery = Recovery.REPORT  # the most conservative recovery among latched faults
        self.distrusted: set[Sensor] = set()
        self.position_untrusted = False  # the sensors disagree and neither can be singled out
        self.driver_disobeys = False  # the current says the driver ignores its command
        self.brake_slips = False  # the brake does not hold (creep, failed brake test)
        self.sensors_frozen = False  # the back-EMF says the motor turns, the readings do not
        self._motion_start: float | None = None  # the angle where the current motion began
        self._angles: deque[tuple[float, float]] = deque(maxlen=SPEED_SAMPLES_MAX)  # (t, angle)
        self._predicted: deque[float] = deque()  # the current each recent command could draw
        self._predicted_t: deque[float] = deque()  # ... and when (kept apart: max() runs in C)
        self._first_t: float | None = None  # the first tick the current was judged
        self._raw: deque[tuple[float, float | None, float | None]] = deque(maxlen=SPEED_SAMPLES_MAX)
        self._since: dict[str, float] = {}  # when each sustained condition began
        self._braked_raw: tuple[float | None, float | None] | None = None  # sensors when braked
        self._braked_at: float | None = None
        self._braked_n = 0  # readings averaged into _braked_raw so far
        self._held_since: dict[str, float] = {}
        self.held_at_boot: set[str] = set()  # set by the controller on its first update
        # (t, setpoint, current, current changed since) when both readings last changed
        self._frozen_since: tuple[float, float, float, bool] | None = None
        self._last_raw: tuple[float | None, float | None] = (None, None)
        self._checks = (
            self._link,
            self._sensors,
            self._unchanged,
            self._drive,
            self._saturation,
            self._brake,
            self._current,
            self._back_emf,
            self._switches,
            self._buttons,
        )
        self._speed: float | None = None  # this tick's measured speed
        self._carried_speed: float | None = None  # the speed before a change of sensor
        self._motion_start_t: float | None = None  # when the current motion began
        # The checks that judge the readings and the current against the drive: only on a
        # fresh snapshot (``check``).
        self._against_drive = (self._unchanged, self._current, self._back_emf)
        # ... and those that judge this host's drive or brake: not while the motion board
        # returns the user on its own (``inp.board_returning``): the motion is the board's
        # (it released the brake itself), not ours; ``_drive`` judges it then.
        self._host_drive = (*self._against_drive, self._saturation, self._brake)

    def _lasted(self, key: str, active: bool, now: float, duration: float) -> bool:
        """True once ``active`` has held continuously for ``duration`` seconds."""
        if not active:
            if key in self._since:
                del self._since[key]
            return False
        return now - self._since.setdefault(key, now) >= duration

    def _moved(self) -> tuple[float, float] | None:
        """How far each sensor moved over the rate window (None without a full window)."""
        raw = self._raw
        if len(raw) < 2 or raw[-1][0] - raw[0][0] < RATE_WINDOW_S - 1e-6:
            return None  # (a window of samples, not of sample counts: catch-up ticks are close)
        (_, a0, b0), (_, a1, b1) = raw[0], raw[-1]
        if a0 is None or b0 is None or a1 is None or b1 is None:
            return None
        return abs(a1 - a0), abs(b1 - b0)

    def _noisy(self, moving: bool) -> tuple[Sensor, float] | None:
        """The sensor whose readings jump between samples while the other's do not (a noisy
        one; by its distance from the reference alone it was a coin toss: campaign 2026 index
        3336 trusted the noisy primary), with its mean step; None if neither stands out."""
        raw = [r for r in self._raw if r[1] is not None and r[2] is not None]
        if len(raw) < NOISY_SAMPLES:
            return None
        pairs = list(zip(raw, raw[1:], strict=False))
        steps_a = [abs(r1[1] - r0[1]) for r0, r1 in pairs]  # type: ignore[operator]
        steps_b = [abs(r1[2] - r0[2]) for r0, r1 in pairs]  # type: ignore[operator]
        step_a, step_b = sum(steps_a) / len(steps_a), sum(steps_b) / len(steps_b)
        for bad, mine, other in (
            (Sensor.PRIMARY, step_a, step_b),
            (Sensor.SECONDARY, step_b, step_a),
        ):
            # (While driving, the other one repeating itself to the bit is frozen, no better:
            # not chosen. On the brake a good reading may well repeat itself.)
            if mine > NOISY_STEP_DEG and mine > NOISY_RATIO * other and (other > 0 or not moving):
                return bad, mine
        return None

    def observe_raw(self, now: float, inp: Inputs) -> None:
        """Keep both raw readings over the rate window; also during the boot self-test (its
        samples tell a noisy sensor at the first tick after it: campaign 2026 index 3336)."""
        raw = self._raw
        raw.append((now, inp.angle_primary_deg, inp.angle_secondary_deg))
        horizon = now - RATE_WINDOW_S + 1e-6
        while len(raw) > 2 and raw[1][0] <= horizon:
            raw.popleft()

    def latch(self, det: Detection) -> None:
        """Latch a fault, whoever found it (these checks or the controller), with what it says
        about the hardware; the recovery only ever becomes more conservative."""
        self.latched.add(det.code)
        if det.recovery.severity > self.recovery.severity:
            self.recovery = det.recovery
        if det.driver_stuck_on:
            self.driver_disobeys = True
        if det.brake_slips:
            self.brake_slips = True
        if det.good_sensor:
            self.distrusted.add(det.good_sensor.other)
            self._angles.clear()  # the measured angle changes source: restart the speed window
            # ... and until it is full again the table moves on as it did: the current check
            # takes the speed last measured (taken as 0, the current a table coming up draws
            # under a braking duty read as a runaway: campaign 2026 index 7930).
            self._carried_speed = self._speed

    @property
    def upright_switch_trusted(self) -> bool:
        return "upright_switch_stuck" not in self.latched

    def hold_after_error(self) -> None:
        """An internal error: nothing is trusted to move (no fault code to latch)."""
        self.recovery = Recovery.HOLD

    def single_out_sensor(self, good: Sensor, reason: str) -> Detection:
        """The controller found the bad reading by other evidence (it moved on the brake).
        Frozen readings stay untrusted whatever is singled out."""
        self.position_untrusted = self.sensors_frozen
        det = Detection("sensor_singled_out", reason, Recovery.HOLD, good_sensor=good)
        self.latch(det)
        return det

    def measured_speed(self, dt: float | None = None) -> float | None:
        """Angle change over measured time: the newest sample against the newest one at least
        ``SPEED_WINDOW_S`` older (None until the window is full). ``dt`` is ignored: a late
        tick and its catch-up ticks change the spacing, not the time the samples carry."""
        samples = self._angles
        if len(samples) < 2:
            return None
        (t0, a0), (t1, a1) = samples[0], samples[-1]
        if t1 - t0 < SPEED_WINDOW_S - 1e-6:
            return None
        return (a1 - a0) / (t1 - t0)

    def _sample_angle(self, now: float, angle: float) -> None:
        """Keep the speed window's samples: drop the oldest while the next one is old enough."""
        samples = self._angles
        samples.append((now, angle))
        horizon = now - SPEED_WINDOW_S + 1e-6
        while len(samples) > 2 and samples[1][0] <= horizon:
            samples.popleft()

    def check(self, s: Snapshot, inp: Inputs, dt: float) -> Detection | None:
        """The first new problem found this tick (most severe checks first), or None.

        A snapshot that repeats the last one heard (``inp.fresh`` false: a serial link's gap)
        is not sampled and not judged against the drive: its readings and current are old,
        and stamped with this tick's time they read as a table standing still under a
        turning motor (a 0.25 s link blip mid-ramp latched sensors_frozen and the back-EMF
        drive that followed overshot upright)."""
        if inp.fresh:
            self._sample_angle(s.now, s.angle)
            self.observe_raw(s.now, inp)
        if not s.tracking:
            self._motion_start = None
            self._motion_start_t = None
        elif self._motion_start is None:
            self._motion_start = s.angle  # where this motion (brake release) began
            self._motion_start_t = s.now
        self._speed = self.measured_speed(dt)
        if self._speed is not None:
            self._carried_speed = None
        checks: tuple[Check, ...] = self._checks
        if (
            not inp.fresh
            or inp.board_returning
            or (s.state == State.SUPERVISED_RETURN and not s.tracking)
        ):
            # Driving on the back-EMF (no angle trusted): the current check's speed would be
            # the frozen reading's zero; the supervised watch judges the motion instead. While
            # the board returns on its own, the host's drive checks stand down. (The usual
            # tick runs every check: no filter built.)
            checks = tuple(c for c in checks if self._applies(c, s, inp))
        latched = self.latched
        for check in checks:
            det = check(s, inp, dt)
            if det is not None and (
                det.code not in latched
                or (det.driver_stuck_on and s.state == State.SUPERVISED_RETURN)
            ):
                # (A driver stuck on again during a supervised recovery ends it, latched or not.)
                self.latch(det)
                return det
        return None

    def _applies(self, check: Check, s: Snapshot, inp: Inputs) -> bool:
        """Whether ``check`` runs this tick (``check``: the usual tick runs them all)."""
        if check == self._current and s.state == State.SUPERVISED_RETURN and not s.tracking:
            return False
        if inp.board_returning and check in self._host_drive:
            return False
        return inp.fresh or check not in self._against_drive

    # ---------------------------------------------------------------- the checks
    def _link(self, s: Snapshot, inp: Inputs, dt: float) -> Detection | None:
        if not inp.link_ok:
            # Nothing this side commands reaches the motor now; the motion board returns the
            # user on its own (its dead-man) and latches its shutdown.
            return Detection(
                "link_lost", "no telemetry from the motion board: it acts alone", Recovery.HOLD
            )
        return None

    def _sensors(self, s: Snapshot, inp: Inputs, dt: float) -> Detection | None:
        a, b = inp.angle_primary_deg, inp.angle_secondary_deg
        if self.position_untrusted:
            return None  # already latched; only the upright switch ends the limp home
        if self.distrusted:
            remaining = b if Sensor.PRIMARY in self.distrusted else a
            if remaining is None:
                return Detection(
                    "sensors_lost",
                    "the remaining angle sensor gives no reading either",
                    Recovery.HOLD,
                )
            return None
        if a is None and b is None:
            return Detection("sensors_lost", "neither angle sensor gives a reading", Recovery.HOLD)
        if a is None or b is None:
            lost = Sensor.PRIMARY if a is None else Sensor.SECONDARY
            return Detection(
                "sensor_dropout",
                f"the {lost} angle sensor gives no reading",
                Recovery.LIMP_HOME,
                lost.other,
            )
        if abs(a - b) > SENSOR_AGREE_DEG:
            moving = self._motion_start_t is not None and (
                s.now - self._motion_start_t >= RATE_WINDOW_S
            )
            noisy = self._noisy(moving)
            if noisy is not None:
                bad, step = noisy
                return Detection(
                    "sensor_disagree",
                    f"primary {a:.1f} vs secondary {b:.1f} deg; the {bad} is noisy (steps of "
                    f"{step:.1f} deg between samples): trusting the {bad.other}",
                    Recovery.LIMP_HOME,
                    bad.other,
                )
            # The bad one is the one that left the reference: the setpoint while driving (the
            # table follows it), or the angle where the brake holds the table still.
            ref = (
                s.setpoint
                if s.tracking
                else (s.braked_angle if s.braked_angle is not None else s.angle)
            )
            da, db = abs(a - ref), abs(b - ref)
            if abs(da - db) < AMBIGUOUS_DEG:
                # A stuck sensor gives itself away by not moving while the other one does.
                moved = self._moved()
                if moved is not None:
                    m_a, m_b = moved
                    for bad, m_bad, m_good in (
                        (Sensor.PRIMARY, m_a, m_b),
                        (Sensor.SECONDARY, m_b, m_a),
                    ):
                        if m_bad < STILL_DEG and m_good > MOVING_DEG:
                            return Detection(
                                "sensor_disagree",
                                f"primary {a:.1f} vs secondary {b:.1f} deg; the "
                                f"{bad} stopped moving: trusting the {bad.other}",
                                Recovery.LIMP_HOME,
                                bad.other,
                            )
                self.position_untrusted = True
                # While driving, the loop servoes the two sensors' mean onto the setpoint, so a
                # slowly drifting sensor and the good one sit equally far from it: neither can
                # be trusted for position. Their mean still measures speed well (a drift is an
                # offset), so the limp home runs on the mean and stops at the upright switch.
                return Detection(
                    "sensor_disagree",
                    f"primary {a:.1f} vs secondary {b:.1f} deg; cannot tell "
                    "which is wrong: limp home on the upright switch",
                    Recovery.LIMP_HOME,
                )
            good = Sensor.PRIMARY if da < db else Sensor.SECONDARY
            return Detection(
                "sensor_disagree",
                f"primary {a:.1f} vs secondary {b:.1f} deg; trusting the {good}",
                Recovery.LIMP_HOME,
                good,
            )
        return None

    def _drive(self, s: Snapshot, inp: Inputs, dt: float) -> Detection | None:
        v = self._speed
        if inp.board_returning:
            return self._board_return(s, v)
        if (
            s.tracking
            and s.angle > self.cfg.limits.max_angle_deg + ENVELOPE_GUARD_DEG
            and not self._heading_up(s)  # the way back from beyond the envelope is never refused
            and "brake_creep" not in self.latched
        ):  # with a bad brake the motor must keep holding
            # Normal arrivals overshoot by under 0.1 deg: past this the drive cannot stop the
            # table (too weak for this user); the brake can.
            return Detection(
                "envelope",
                f"{s.angle:.2f} deg is past max_angle_deg "
                f"{self.cfg.limits.max_angle_deg:g}: the drive cannot stop the table",
                Recovery.HOLD,
            )
        floor = self.cfg.limits.upright_deg
        if s.goal is not None:
            floor = min(floor, s.goal)  # a limp home searching for the upright switch past it
        if (
            s.tracking
            and s.angle < floor - ENVELOPE_GUARD_DEG
            and not self.position_untrusted  # (no angle to judge by)
            and not self._heading_back_from_upright(s)
            and "brake_creep" not in self.latched
        ):
            # Past upright the drive cannot hold the table up (a weak motor, a heavy user): it
            # sinks head-up and the following error (3 deg) came too late; the brake can.
            return Detection(
                "envelope",
                f"{s.angle:.2f} deg is past upright_deg {self.cfg.limits.upright_deg:g}: "
                "the drive cannot hold the table",
                Recovery.HOLD,
            )
        if s.tracking:
            if v is not None and abs(v) > s.speed_limit + SPEED_MARGIN_DPS:
                return Detection(
                    "runaway", f"moving at {v:.1f} deg/s, limit {s.speed_limit:g}", Recovery.HOLD
                )
            if abs(s.angle - s.setpoint) > FOLLOWING_ERROR_DEG:
                # Moving away from the setpoint is a runaway; not moving (or toward it) a stall.
                away = v is not None and abs(v) > 0.5 and (s.angle - s.setpoint) * v > 0
                code = "runaway" if away else "stall"
                return Detection(
                    code,
                    f"following error: measured {s.angle:.1f} deg, setpoint {s.setpoint:.1f} deg",
                    Recovery.HOLD,
                )
        return None

    def _board_return(self, s: Snapshot, v: float | None) -> Detection | None:
        """The motion board returns the user on its own (its host went silent; this host was
        restarted meanwhile, and the board refuses its commands): judged against the board's
        emergency profile and its direction, not this host's setpoint (a restarted host read
        the board's 7-8 deg/s as its own runaway and latched a fault over a good return)."""
        if v is None:
            return None
        limit = self.cfg.motion.emergency_speed_dps
        away = (s.angle - self.cfg.limits.upright_deg) * v > 0
        if abs(v) > limit + SPEED_MARGIN_DPS or (away and abs(v) > SPEED_MARGIN_DPS):
            how = "away from upright" if away else f"over its limit {limit:g}"
            return Detection(
                "runaway",
                f"the motion board's own return moves at {v:.1f} deg/s, {how}",
                Recovery.HOLD,
            )
        return None

    def _heading_up(self, s: Snapshot) -> bool:
        """The drive is taking the table toward upright and it is going there (not holding at the
        envelope, not sinking): a limit check must not stop such a motion."""
        # A table that sinks further although the drive heads up (too weak for this user) still
        # trips: past the envelope, or past where a motion that began beyond it started.
        if s.goal is None or s.goal >= s.angle - 1.0:
            return False
        start = self._motion_start if self._motion_start is not None else s.angle
        return s.angle <= max(start, self.cfg.limits.max_angle_deg) + ENVELOPE_GUARD_DEG

    def _heading_back_from_upright(self, s: Snapshot) -> bool:
        """Beyond upright (a boot there), the drive takes the table back into the envelope and
        it is not sinking further than where that motion began."""
        if s.goal is None or s.goal <= s.angle + 1.0:
            return False
        start = self._motion_start if self._motion_start is not None else s.angle
        return s.angle >= min(start, self.cfg.limits.upright_deg) - ENVELOPE_GUARD_DEG

    def progressing_up(self, s: Snapshot) -> bool:
        """Toward upright and measurably getting there (the speed window says so)."""
        return (
            s.goal is not None
            and s.goal < s.angle - 1.0
            and self._speed is not None
            and self._speed < -PROGRESS_DPS
        )

    def _brake(self, s: Snapshot, inp: Inputs, dt: float) -> Detection | None:
        # Also in the e-stop latch: nothing may move there, but a brake that lets go must be
        # latched and sounded now, and bound whatever motion leaves the latch.
        if s.tracking or s.braked_angle is None or s.state in BRAKE_UNWATCHED:
            return None
        a, b = inp.angle_primary_deg, inp.angle_secondary_deg
        if self._braked_at != s.braked_angle or self._braked_raw is None:
            self._braked_at = s.braked_angle
            self._braked_raw = (a, b)
            self._braked_n = 1
        elif self._braked_n < BRAKED_REF_SAMPLES:
            n = self._braked_n
            self._braked_n = n + 1
            self._braked_raw = (
                _mean_in(self._braked_raw[0], a, n),
                _mean_in(self._braked_raw[1], b, n),
            )
        a0, b0 = self._braked_raw
        if self.position_untrusted:
            # Neither sensor can be singled out (one drifts, and a drift looks like creep): a
            # drift moves one reading, a slipping brake both the same way. (Left unchecked, a
            # failed brake slid the table past upright at idle after such a limp home.) Only
            # with nothing driving: a supervised motion on the back-EMF moves the table braked
            # in this sense, and readings judged frozen are not believed at all.
            if a0 is None or b0 is None or a is None or b is None:
                return None
            if s.motor_cmd != 0.0 or self.sensors_frozen:
                return None
            da, db = a - a0, b - b0
            if da * db > 0 and min(abs(da), abs(db)) > CREEP_DEG:
                return Detection(
                    "brake_creep",
                    f"both sensors moved ({da:+.1f}, {db:+.1f} deg) while braked",
                    Recovery.EMERGENCY_RETURN,
                    brake_slips=True,
                )
            return None
        if a0 is None or b0 is None or a is None or b is None or self.distrusted:
            moved_a = moved_b = abs(s.angle - s.braked_angle)
        else:
            moved_a, moved_b = abs(a - a0), abs(b - b0)
        if (moved_a > CREEP_DEG) != (moved_b > CREEP_DEG) and max(moved_a, moved_b) > 2 * CREEP_DEG:
            # Only one sensor says the braked table moves: the brake holds and that one lies.
            good = Sensor.SECONDARY if moved_a > moved_b else Sensor.PRIMARY
            return Detection(
                "sensor_disagree",
                f"the {good.other} "
                f"moved {max(moved_a, moved_b):.1f} deg while braked, the {good} did not",
                Recovery.LIMP_HOME,
                good,
            )
        if moved_a > CREEP_DEG and moved_b > CREEP_DEG:
            if inp.motor_current_a > RUNAWAY_CURRENT_A:
                return Detection(
                    "runaway",
                    f"the driver is on ({inp.motor_current_a:.1f} A) while holding "
                    "and the table moves",
                    Recovery.HOLD,
                    driver_stuck_on=True,
                )
            return Detection(
                "brake_creep",
                f"moved {s.angle - s.braked_angle:+.1f} deg while braked",
                Recovery.EMERGENCY_RETURN,
                brake_slips=True,
            )
        return None

    def _saturation(self, s: Snapshot, inp: Inputs, dt: float) -> Detection | None:
        # Normal motion never needs full duty (at most ~0.8 with the heaviest user at the
        # emergency speed): a saturated drive cannot do what is asked (weak, overloaded).
        # On the way back to upright a saturated drive that still makes progress is slow, not
        # failed: the controller re-plans slower (machine.py); only no progress holds.
        saturated = s.tracking and abs(s.motor_cmd) >= SATURATED_DUTY and not self.progressing_up(s)
        if self._lasted("saturated", saturated, s.now, SATURATED_S):
            return Detection(
                "drive_saturated",
                f"full duty for {SATURATED_S:g} s: the drive cannot follow (weak or overloaded)",
                Recovery.HOLD,
            )
        return None

    def _current(self, s: Snapshot, inp: Inputs, dt: float) -> Detection | None:
        # A DC motor draws no-load current plus stall current times |duty - speed/no-load
        # speed|. Far more than that means the driver applies more than we command (stuck
        # on): caught in one sample (plus the sensor's lag), before the table can gain more
        # than ~2 deg/s. The reading lags the command (sensor filter, a board on its own
        # clock, the link): it is compared with the most any recent command could draw, so
        # the brake test's push read a few ticks later is not taken for a runaway.
        hw = self.cfg.hardware
        v = self._speed if self._speed is not None else (self._carried_speed or 0.0)
        now_predicted = NO_LOAD_CURRENT_A + hw.motor_stall_current_a * abs(
            s.motor_cmd - v / hw.motor_no_load_speed_dps
        )
        recent, times = self._predicted, self._predicted_t
        recent.append(now_predicted)
        times.append(s.now)
        horizon = s.now - CURRENT_LAG_S - 1e-6
        while len(recent) > CURRENT_LAG_TICKS and times[0] < horizon:
            recent.popleft()
            times.popleft()
        predicted = max(recent)
        if self._first_t is None:
            self._first_t = s.now
        # Judged only once every command the reading may reflect has been seen here: the
        # monitor does not run during the boot self-test, whose brake-test push (7 A) the
        # reading still shows a few ticks later when the sensor path lags.
        seen_all = (
            len(recent) >= CURRENT_LAG_TICKS and s.now - self._first_t >= CURRENT_LAG_S - 1e-6
        )
        if seen_all and s.motor_power and inp.motor_current_a > predicted + CURRENT_EXCESS_A:
            return Detection(
                "runaway",
                f"{inp.motor_current_a:.1f} A drawn, at most {predicted:.1f} A expected for "
                f"duty {s.motor_cmd:+.2f} (or a command of the last "
                f"{CURRENT_LAG_S * 1000:.0f} ms): the driver ignores its command",
                Recovery.HOLD,
                driver_stuck_on=True,
            )
        if self._lasted("overcurrent", inp.motor_current_a > OVERCURRENT_A, s.now, OVERCURRENT_S):
            return Detection(
                "overcurrent",
                f"{inp.motor_current_a:.1f} A for {OVERCURRENT_S:g} s (jammed drive)",
                Recovery.HOLD,
            )
        return None

    def _unchanged(self, s: Snapshot, inp: Inputs, dt: float) -> Detection | None:
        # Two live sensors on a moving table do not both repeat their readings to the bit once it
        # has moved a few of their steps (0.09 deg for the 12-bit sensor, 0.1 for the encoder): both
        # unchanged while the profile moved on is a frozen reading, caught within
        # FROZEN_READ_S, before the load observer has wound the duty up (the current
        # signature in _back_emf takes about 0.5 s and let the table pass the envelope).
        # Only fresh telemetry counts: a serial link that delivers nothing repeats its last
        # STATUS whole, the current included, so the current must have changed meanwhile.
        # (With no live current reading the motor's side of the story is unknown: not judged.)
        raw = (inp.angle_primary_deg, inp.angle_secondary_deg)
        same = raw == self._last_raw and None not in raw and inp.motor_current_a > LIVE_CURRENT_A
        self._last_raw = raw
        if not (same and s.tracking) or self.position_untrusted or self.distrusted:
            self._frozen_since = None
            return None
        if self._frozen_since is None:
            self._frozen_since = (s.now, s.setpoint, inp.motor_current_a, False)
            return None
        t0, sp0, current0, fresh = self._frozen_since
        fresh = fresh or inp.motor_current_a != current0
        self._frozen_since = (t0, sp0, current0, fresh)
        if fresh and s.now - t0 >= FROZEN_READ_S and abs(s.setpoint - sp0) >= FROZEN_MOVE_DEG:
            self.position_untrusted = self.sensors_frozen = True
            return Detection(
                "sensors_frozen",
                f"both angle readings unchanged for {s.now - t0:.2f} s while the "
                f"setpoint moved {abs(s.setpoint - sp0):.2f} deg: the readings are frozen",
                Recovery.HOLD,
            )
        return None

    def _back_emf(self, s: Snapshot, inp: Inputs, dt: float) -> Detection | None:
        hw = self.cfg.hardware
        v = self._speed or 0.0
        predicted = NO_LOAD_CURRENT_A + hw.motor_stall_current_a * abs(
            s.motor_cmd - v / hw.motor_no_load_speed_dps
        )
        # Far less current than the command draws at the measured speed means the motor turns
        # (its back-EMF opposes the supply) while the angle readings say it does not: the
        # readings are frozen. Both sensors frozen near a goal let the load
        # observer wind the duty up to 0.98 and the table ran at 21.6 deg/s (issue 11, repro 3).
        # Nothing is left to drive on by position: hold, and the supervised recovery runs on
        # the back-EMF and the upright switch (controller/core/recovery.py).
        # (A reading of no current at all is a current sensor that gives nothing, not evidence
        # against the angle sensors: a turning motor draws at least its no-load current.)
        # The readings must also stand still: a weak motor draws less current than the model
        # too, but its table visibly moves (or sinks) on the sensors.
        # The position loop's load estimate held back by the current (motor_loop.denied_s) is the
        # same evidence seen earlier: the readings ask for ever more duty, the current says the
        # motor already turns freely.
        still = s.motor_power and s.tracking and not self.position_untrusted and abs(v) < FROZEN_DPS
        deficit = (
            still
            and LIVE_CURRENT_A < inp.motor_current_a
            and (
                inp.motor_current_a < predicted - CURRENT_DEFICIT_A
                or s.load_denied_s >= LOAD_DENIED_S
            )
        )
        if self._lasted("current_deficit", deficit, s.now, CURRENT_DEFICIT_S):
            self.position_untrusted = self.sensors_frozen = True
            return Detection(
                "sensors_frozen",
                f"{inp.motor_current_a:.1f} A drawn at duty {s.motor_cmd:+.2f}, "
                f"{predicted:.1f} A expected at the measured {v:+.1f} deg/s: the motor turns, "
                "the angle readings do not follow",
                Recovery.HOLD,
            )
        return None

    def _switches(self, s: Snapshot, inp: Inputs, dt: float) -> Detection | None:
        up = self.cfg.limits.upright_deg
        if (
            inp.upright_switch
            and s.angle > up + SWITCH_LIE_DEG
            and s.state != State.LIMP_HOME
            and not self.position_untrusted
        ):
            # (During a limp home, or with no sensor trusted for position, the switch closing
            # is evidence against the sensors, not against the switch.)
            return Detection(
                "upright_switch_stuck",
                f"upright switch closed at {s.angle:.1f} deg; returning by the angle alone",
                Recovery.EMERGENCY_RETURN,
            )
        if self._lasted("estop_channels", inp.estop_discrepancy, s.now, DISCREPANCY_S):
            # The safety relay has cut the motor supply (it opens on either channel): nothing
            # can move, so the fault holds; the alarm calls for help (docs/safety.md H11).
            return Detection(
                "estop_channel_fault",
                "the e-stop's two channels disagree (a cut wire or a "
                "failed contact): the hardwired cut holds the motor off",
                Recovery.HOLD,
            )
        if self._lasted("ankle_channels", inp.ankle_discrepancy, s.now, DISCREPANCY_S):
            return Detection(
                "ankle_channel_fault",
                "the ankle lock's two channels disagree (a cut wire or "
                "a failed contact): the lock is not trusted",
                Recovery.EMERGENCY_RETURN,
            )
        if inp.overtravel_tripped:
            if s.angle < self.cfg.limits.max_angle_deg + OVERTRAVEL_REAL_DEG:
                return Detection(
                    "overtravel_switch_open",
                    f"over-travel switch open at {s.angle:.1f} deg (wire or switch fault)",
                    Recovery.EMERGENCY_RETURN,
                )
            # Reached by a drive heading for inversion: it cannot be trusted, hold. Found there
            # (a slide after a power cut, a boot) with the drive heading up: the way back is
            # never refused by a limit check.
            recovery = (
                Recovery.EMERGENCY_RETURN
                if (not s.tracking or self._heading_up(s))
                else Recovery.HOLD
            )
            return Detection(
                "overtravel", f"over-travel limit reached at {s.angle:.1f} deg", recovery
            )
        return None

    def _buttons(self, s: Snapshot, inp: Inputs, dt: float) -> Detection | None:
        if not inp.buttons and not self._held_since and not self.held_at_boot:
            return None  # nothing held, nothing remembered: the usual tick
        # A released button is forgotten: held from boot only until first let go.
        self.held_at_boot &= inp.buttons
        for name in list(self._held_since):
            if name not in inp.buttons:
                del self._held_since[name]
        for name in sorted(inp.buttons):
            if s.state == State.SUPERVISED_RETURN and name in ("up", "return"):
                continue  # held on purpose for as long as the slow way back takes
            since = self._held_since.setdefault(name, s.now)
            if (
                name in self.held_at_boot
                or s.now - since > self.cfg.motion.jog_max_s + STUCK_BUTTON_GRACE_S
            ):
                held = "since boot" if name in self.held_at_boot else f"{s.now - since:.0f} s"
                # A pendant with a shorted contact cannot be trusted for STOP or RETURN either:
                # the session ends and the user comes upright.
                return Detection(
                    f"button_stuck_{name}",
                    f"{name.upper()} held {held}; it is ignored and the pendant is not trusted",
                    Recovery.EMERGENCY_RETURN,
                )
        return None


def _mean_in(mean: float | None, x: float | None, n: int) -> float | None:
    """The mean of ``n`` readings with ``x`` added (None once any reading was missing)."""
    if mean is None or x is None:
        return None
    return mean + (x - mean) / (n + 1)
