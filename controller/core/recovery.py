"""Supervised recovery: the way back to upright where automatic motion was judged unsafe.

A held fault (the drive or the sensors are not trusted enough for an automatic return) is a
pause, never a dead end (DESIGN section 3, issue 11). Holding UP or RETURN drives the table
toward upright slowly (hold-to-run at ``SUPERVISED_SPEED_DPS``, IEC 60204-1 style reduced
speed), and this watch stops it again (brake, back to the held fault) the moment the motion
does not follow the command:

- no progress toward upright within ``NO_PROGRESS_S`` (a jammed or too weak drive),
- motion toward inversion beyond ``WRONG_WAY_DEG`` (a driver or brake that pushes the
  wrong way), or faster than ``SUPERVISED_SPEED_DPS + OVERSPEED_DPS``,
- the duty pinned at ``SUPERVISED_DUTY_MAX`` (the drive cannot do it).

It needs no trusted angle sensor: when neither reading is trusted for position, the speed
and the distance come from the motor's back-EMF (current against duty) and the upright
switch ends the motion. That is the "remaining evidence" of the issue; a frozen reading
can therefore not wind the duty up (the duty is computed from the back-EMF, not from the
frozen position, and bounded).

Pure logic: time and measurements are passed in; no I/O.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

SUPERVISED_SPEED_DPS = (
    2.0  # hold-to-run speed toward upright: the limp home's reduced speed (35 mm/s
)
# at the head); at 1 deg/s a slide to the 95 deg stop took 3 min of holding
SUPERVISED_ACCEL_DPS2 = 2.0
SUPERVISED_DUTY_MAX = 0.9  # the duty is bounded: a wrong estimate cannot wind it up to full
NO_PROGRESS_S = 3.0  # within this window at least MIN_PROGRESS_DEG toward upright ...
MIN_PROGRESS_DEG = 0.5  # ... (4.5 deg expected at the planned 1.5 deg/s; noise 0.1)
WRONG_WAY_DEG = 1.0  # toward inversion beyond the most upright point reached
OVERSPEED_DPS = 1.5  # over the supervised speed, judged over SPEED_WINDOW_S
SPEED_WINDOW_S = 0.5
DUTY_PINNED_S = 1.0  # at the duty bound this long: the drive cannot move the table
NO_LOAD_CURRENT_A = 0.6  # the gearmotor's no-load current (hardware.md), for the back-EMF
EMF_LOAD_GAIN = 10.0  # 1/s: how fast the back-EMF load estimate follows (a slow one let a
# 136 kg user sag more than WRONG_WAY_DEG at the start)
EMF_RATE_GAIN = 0.5  # 1/s: the load trend is a slow average (gravity changes with the angle)
EMF_SETTLE_S = 1.0  # the trend is learnt only after the start's transient
EMF_DEADBAND = 0.02  # |load| below this (0.4 A above no-load) cannot be signed reliably
SINGLE_OUT_DEG = 1.0  # a reading that moved this much on the brake while ...
STILL_DEG = 0.3  # ... the other moved less than this is the bad one


@dataclass(frozen=True, slots=True)
class Verdict:
    code: str  # "supervised_no_progress" | "supervised_wrong_way" | "supervised_overspeed" | ...
    reason: str


class BackEmfOdometer:
    """Speed and distance from the motor alone: ``current = I0 + Istall * |duty - v / v0|``.

    One current reading fits two speeds, ``v0 (duty -+ k)``. The odometer starts from rest
    on the brake (the branch taken from the sign of gravity's pull where the table last
    stopped on trusted sensors) and then follows the branch nearest to its last speed (the
    table's inertia keeps the speed continuous; on a tie the slower one). Where the two
    branches meet (``k`` near zero: gravity's pull turns over near horizontal, or the
    current reading is quantized), nearness says nothing: there the load (``duty - v / v0``,
    what gravity and friction eat) is carried on its trend, so the crossing keeps its
    direction. (Without that the gpio backend's quantized current picked the mirrored branch
    and the table sped up to 5 deg/s.) Used when no angle sensor is trusted for position; the
    distance is relative."""

    def __init__(
        self, stall_current_a: float, no_load_speed_dps: float, prior_load: float = 0.0
    ) -> None:
        self.i_stall = stall_current_a
        self.v0 = no_load_speed_dps
        self.prior = prior_load  # the load where the table last stopped on trusted sensors
        self.load = prior_load  # the best first guess too (from none, a 136 kg user sagged 4 deg/s)
        self.rate = 0.0  # the load's trend, per second
        self.speed = 0.0
        self.travel = 0.0  # integrated signed distance since the start
        self.elapsed = 0.0

    def duty_for(self, speed_dps: float) -> float:
        return speed_dps / self.v0 + self.load

    def update(self, duty: float, current_a: float, dt: float) -> float:
        self.elapsed += dt
        k = max(0.0, current_a - NO_LOAD_CURRENT_A) / self.i_stall
        if k < EMF_DEADBAND and self.elapsed > EMF_SETTLE_S:
            self.load += self.rate * dt  # cannot tell the branch here: carry the trend across
            v = self.v0 * (duty - self.load)
        else:
            low, high = self.v0 * (duty - k), self.v0 * (duty + k)  # loads +k and -k
            d_low, d_high = abs(low - self.speed), abs(high - self.speed)
            if self.elapsed <= EMF_SETTLE_S and abs(self.prior) >= EMF_DEADBAND:
                # Starting from rest both branches are equally near: gravity's direction where the
                # table last stopped on trusted sensors decides (a short user near horizontal is
                # pulled toward upright, a tall one toward inversion).
                v = low if self.prior > 0 else high
            elif d_low == d_high:
                v = low if abs(low) < abs(high) else high
            else:
                v = low if d_low < d_high else high
            measured = duty - v / self.v0
            new_load = self.load + min(1.0, EMF_LOAD_GAIN * dt) * (measured - self.load)
            if dt > 0 and self.elapsed > EMF_SETTLE_S:
                self.rate += min(1.0, EMF_RATE_GAIN * dt) * (
                    (new_load - self.load) / dt - self.rate
                )
            self.load = new_load
        self.speed = v
        self.travel += v * dt
        return v


def single_out(
    at_hold: tuple[float | None, float | None], now: tuple[float | None, float | None]
) -> str | None:
    """On the brake the table stands still: a reading that moved while the other did not is
    the bad one (a drift). Returns the GOOD sensor's name, or None if it cannot be told."""
    if None in at_hold or None in now:
        return None
    moved_a, moved_b = abs(now[0] - at_hold[0]), abs(now[1] - at_hold[1])  # type: ignore[operator]
    if moved_a > SINGLE_OUT_DEG and moved_b < STILL_DEG:
        return "secondary"
    if moved_b > SINGLE_OUT_DEG and moved_a < STILL_DEG:
        return "primary"
    return None


class SupervisedWatch:
    """Judges one supervised motion from its position samples (angle or back-EMF travel)."""

    def __init__(self, now: float, pos: float) -> None:
        self.start_t = now
        self.best = pos  # the most upright position reached
        self.samples: deque[tuple[float, float]] = deque()
        self.samples.append((now, pos))
        self.pinned_since: float | None = None

    def update(self, now: float, pos: float, duty: float) -> Verdict | None:
        self.samples.append((now, pos))
        while len(self.samples) > 2 and now - self.samples[1][0] >= NO_PROGRESS_S:
            self.samples.popleft()
        self.best = min(self.best, pos)
        if pos > self.best + WRONG_WAY_DEG:
            return Verdict(
                "supervised_wrong_way",
                f"moved {pos - self.best:.1f} deg toward inversion while driving toward upright",
            )
        t0, p0 = self.samples[0]
        if now - t0 >= NO_PROGRESS_S - 1e-9 and p0 - pos < MIN_PROGRESS_DEG:
            return Verdict(
                "supervised_no_progress",
                f"{p0 - pos:.2f} deg toward upright in {now - t0:.1f} s "
                "despite the command: the motion does not follow",
            )
        recent = [(t, p) for t, p in self.samples if now - t <= SPEED_WINDOW_S + 1e-9]
        if len(recent) > 1 and recent[-1][0] - recent[0][0] >= SPEED_WINDOW_S - 1e-9:
            speed = abs(recent[-1][1] - recent[0][1]) / (recent[-1][0] - recent[0][0])
            if speed > SUPERVISED_SPEED_DPS + OVERSPEED_DPS:
                return Verdict(
                    "supervised_overspeed",
                    f"moving at {speed:.1f} deg/s against the supervised "
                    f"{SUPERVISED_SPEED_DPS:g} deg/s",
                )
        if abs(duty) >= SUPERVISED_DUTY_MAX - 1e-9:
            if self.pinned_since is None:
                self.pinned_since = now
            elif now - self.pinned_since >= DUTY_PINNED_S:
                return Verdict(
                    "supervised_no_progress",
                    f"duty at its bound {SUPERVISED_DUTY_MAX:g} for "
                    f"{DUTY_PINNED_S:g} s: the drive cannot move the table",
                )
        else:
            self.pinned_since = None
        return None
