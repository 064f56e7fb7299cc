"""One supervised recovery: the hold-to-run way up out of a held fault (controller/core/recovery.py
has the watch that judges it and the back-EMF odometer).

With a trusted angle the controller drives it on the position loop (Pace.SUPERVISED) and this
only watches. With no angle trusted for position it drives on the motor's back-EMF: the speed
request ramps up to the supervised speed, the duty comes from the back-EMF's load estimate
(bounded), and upright is the upright switch plus the stretch the back-EMF measures after it.
A recovery that went the wrong way is not offered again.

After a driver that ignored its command (a runaway: ``driver_disobeys``) the recovery begins
with a probe: the supply relay closed, duty 0, the brake still engaged, for ``PROBE_S``. A
driver still stuck on draws its stall current against the brake and the probe ends it (the
relay opens again, the table never moved); one that obeys again draws nothing, and only then
is the brake released. Every new press probes again.

Pure logic: time and the measurements are passed in.
"""

from __future__ import annotations

from collections import deque

from controller.core.limits import clamp
from controller.core.limp_home import UPRIGHT_SWITCH_WINDOW_DEG
from controller.core.monitor import CURRENT_EXCESS_A, CURRENT_LAG_S, NO_LOAD_CURRENT_A
from controller.core.motion import SETTLE_DEG
from controller.core.recovery import (
    NO_PROGRESS_S,
    SUPERVISED_ACCEL_DPS2,
    SUPERVISED_DUTY_MAX,
    SUPERVISED_SPEED_DPS,
    WRONG_WAY_DEG,
    BackEmfOdometer,
    SupervisedWatch,
    Verdict,
)

Readings = tuple[float | None, float | None]

# The probe lasts the longest the current reading may lag a command (monitor.CURRENT_LAG_S)
# plus margin; at duty 0 on the brake nothing but a driver stuck on draws more than the
# no-load bound plus the monitor's excess for a driver that ignores its command.
PROBE_S = CURRENT_LAG_S + 0.1
PROBE_CURRENT_A = NO_LOAD_CURRENT_A + CURRENT_EXCESS_A
STILL_SPREAD_DEG = 0.3  # both live readings within this for NO_PROGRESS_S: the table stands
READINGS_MOVED_DEG = 2.0  # both readings moved this far toward upright: they are not frozen


class Supervised:
    def __init__(self, stall_current_a: float, no_load_speed_dps: float) -> None:
        self.stall_current_a = stall_current_a
        self.no_load_speed_dps = no_load_speed_dps
        self.watch: SupervisedWatch | None = None
        self.emf: BackEmfOdometer | None = None  # driving on the back-EMF (no trusted angle)
        self.speed = 0.0  # the speed request on the back-EMF
        self.switch_travel: float | None = None  # odometer travel when the upright switch closed
        self.switch_open_seen = False  # the upright switch read open during this back-EMF drive
        self.refused: str | None = None  # why it must not run again
        self.readings0: Readings | None = None  # both angle readings when the back-EMF drive began
        self.probe_until: float | None = None  # probing the driver on the brake until then
        self._still: deque[tuple[float, float, float]] = deque()  # (t, primary, secondary)

    def begin_probe(self, now: float) -> None:
        """Hold on the brake with the supply closed and duty 0 for ``PROBE_S`` first."""
        self.end()
        self.probe_until = now + PROBE_S

    def probe(self, now: float, current_a: float) -> Verdict | None:
        """The probe's verdict this tick: a ``supervised_driver_on`` verdict if the driver
        still draws current at duty 0; None otherwise (``probing`` turns False once over)."""
        if self.probe_until is None:
            return None
        if current_a > PROBE_CURRENT_A:
            self.probe_until = None
            return Verdict(
                "supervised_driver_on",
                f"the motor driver is still on: {current_a:.1f} A at duty 0 on the brake "
                f"(at most {PROBE_CURRENT_A:g} A): its supply is cut again",
            )
        if now >= self.probe_until - 1e-9:
            self.probe_until = None
        return None

    @property
    def probing(self) -> bool:
        return self.probe_until is not None

    def begin_on_angle(self, now: float, angle: float) -> None:
        self.switch_travel = None
        self.emf = None
        self.watch = SupervisedWatch(now, angle)

    def begin_on_emf(self, now: float, load: float, readings: Readings | None = None) -> None:
        """``load``: gravity's pull where the table last stopped on trusted sensors;
        ``readings``: both angle readings now (see ``readings_sink``)."""
        self.readings0 = readings
        self.switch_travel = None
        self.switch_open_seen = False
        self._still.clear()
        self.speed = 0.0
        self.emf = BackEmfOdometer(self.stall_current_a, self.no_load_speed_dps, load)
        self.watch = SupervisedWatch(now, 0.0)

    def end(self) -> None:
        self.emf = None
        self.watch = None
        self.probe_until = None

    def emf_step(self, duty: float, current_a: float, dt: float, switch_closed: bool) -> bool:
        """Advance the back-EMF drive by the tick; True once upright by evidence (the trusted
        upright switch closed and the back-EMF measured the last stretch after it)."""
        emf = self.emf
        if emf is None:
            raise RuntimeError("not driving on the back-EMF")
        emf.update(duty, current_a, dt)
        self.speed = max(-SUPERVISED_SPEED_DPS, self.speed - SUPERVISED_ACCEL_DPS2 * dt)
        if not switch_closed:
            self.switch_open_seen = True
        elif self.switch_travel is None and self.switch_open_seen:
            # Only a switch seen closing on the way is evidence: one that reads closed from
            # the start lies (stuck closed: campaign 2026 index 5287 went idle at -6.4 deg).
            self.switch_travel = emf.travel
        return (
            self.switch_travel is not None
            and self.switch_travel - emf.travel >= UPRIGHT_SWITCH_WINDOW_DEG - SETTLE_DEG
        )

    def emf_duty(self) -> float:
        """The duty for the requested speed by the back-EMF's load estimate, bounded."""
        if self.emf is None:
            raise RuntimeError("not driving on the back-EMF")
        return clamp(self.emf.duty_for(self.speed), -SUPERVISED_DUTY_MAX, SUPERVISED_DUTY_MAX)

    def readings_sink(self, readings: Readings, agree_deg: float) -> bool:
        """On the back-EMF: both angle readings moved toward inversion by more than
        ``WRONG_WAY_DEG`` since it began, and agree. The odometer's model can be wrong (a weak
        drive stalled against gravity draws as little current as a freely turning one, and the
        table sank 6 deg while UP was held); two readings that move together are not frozen."""
        start = self.readings0
        a, b = readings
        if self.emf is None or start is None or a is None or b is None:
            return False
        a0, b0 = start
        if a0 is None or b0 is None:
            return False
        return abs(a - b) <= agree_deg and a - a0 > WRONG_WAY_DEG and b - b0 > WRONG_WAY_DEG

    def readings_arrived(self, readings: Readings, agree_deg: float, upright_deg: float) -> bool:
        """On the back-EMF: both angle readings moved toward upright by more than
        ``READINGS_MOVED_DEG`` since it began, agree, and read upright. Two readings that move
        together are not frozen: they end the drive where a lying upright switch (stuck closed,
        so never seen closing) cannot; without this the drive ran on into the upright stop."""
        start = self.readings0
        a, b = readings
        if self.emf is None or start is None or a is None or b is None:
            return False
        a0, b0 = start
        if a0 is None or b0 is None:
            return False
        return (
            abs(a - b) <= agree_deg
            and a0 - a > READINGS_MOVED_DEG
            and b0 - b > READINGS_MOVED_DEG
            and 0.5 * (a + b) <= upright_deg + SETTLE_DEG  # (the stop brakes a little after)
        )

    def readings_still(self, now: float, readings: Readings, agree_deg: float) -> bool:
        """On the back-EMF: both angle readings are live (each changed at least once, as a
        frozen one never does), agree, and stood within ``STILL_SPREAD_DEG`` for
        ``NO_PROGRESS_S``: the table does not move, whatever the odometer says. (A weak drive
        stalled against gravity draws as little current as a turning one: the odometer
        counted travel while the table stood still at 15.8 deg, campaign 2026 index 1874.)"""
        a, b = readings
        window = self._still
        if self.emf is None or a is None or b is None or abs(a - b) > agree_deg:
            window.clear()
            return False
        window.append((now, a, b))
        while len(window) > 2 and now - window[1][0] >= NO_PROGRESS_S:
            window.popleft()
        if now - window[0][0] < NO_PROGRESS_S - 1e-9:
            return False
        for i in (1, 2):
            values = [w[i] for w in window]
            if max(values) - min(values) > STILL_SPREAD_DEG or len(set(values)) < 2:
                return False
        return True

    def judge(
        self, now: float, pos: float, duty: float, sinking: bool = False, still: bool = False
    ) -> Verdict | None:
        """The watch's verdict on this tick's motion (None: it follows the command);
        ``sinking``: ``readings_sink`` says the table goes the wrong way whatever the odometer;
        ``still``: ``readings_still`` says it does not move."""
        verdict = self.watch.update(now, pos, duty) if self.watch is not None else None
        if verdict is None and still:
            verdict = Verdict(
                "supervised_no_progress",
                f"both angle readings, live and agreeing, stood still for {NO_PROGRESS_S:g} s "
                "while driving on the back-EMF: the table does not follow (a weak drive?)",
            )
        if verdict is None and sinking:
            verdict = Verdict(
                "supervised_wrong_way",
                "both angle readings moved toward inversion while driving toward upright",
            )
        if verdict is not None and verdict.code == "supervised_wrong_way":
            self.refused = verdict.reason
        return verdict
