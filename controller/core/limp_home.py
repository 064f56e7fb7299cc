"""Limp home: slowly upright on what is still trusted after a sensor fault.

With one angle sensor still trusted the controller drives upright on it (slow, Pace.LIMP) and
ends as any return does. With no sensor trusted for position (they disagree and neither can be
singled out, or both froze), the upright switch marks a known point: it closes
``UPRIGHT_SWITCH_WINDOW_DEG`` before upright, and the last stretch is measured from there (a
drifting sensor is still right about motion). Neither a trusted angle nor a trusted switch
means nothing says where upright is: automatic motion stops (a held fault; the supervised
recovery remains). A limp home that takes too long gives up the same way.

Pure logic: time and the inputs are passed in; the controller drives and fires the triggers.
"""

from __future__ import annotations

from enum import StrEnum

from controller.core.monitor import Detection, Recovery, SafetyMonitor
from controller.core.motion import SETTLE_DEG
from hal.interfaces import Inputs

LIMP_TIMEOUT_MARGIN_S = 10.0  # limp home gives up (hold + alarm) this long after its ideal time
LIMP_PAST_UPRIGHT_DEG = 5.0  # with no sensor trusted for position, aim this far past upright
# until the upright switch closes
UPRIGHT_SWITCH_WINDOW_DEG = 1.5  # the upright switch closes this far before upright (hardware)
SWITCH_PLAUSIBLE_DEG = 3.0  # a reading within this of the switch point makes its closing plausible


class Step(StrEnum):
    DRIVING = "driving"  # go on
    BY_ANGLE = "by_angle"  # a sensor is trusted: the usual arrival at upright ends it
    AT_SWITCH = "at_switch"  # upright by the upright switch: brake, done


class LimpHome:
    def __init__(self, upright_deg: float) -> None:
        self.upright = upright_deg
        self.deadline = 0.0
        self.began_on_switch = False  # the upright switch was closed when it began
        self.switch_at: tuple[float | None, float | None] | None = None  # readings at closing

    def goal(self, position_untrusted: bool) -> float:
        """Upright; with no sensor trusted for position, past it: the switch ends the move
        (the mechanical stop lies beyond)."""
        return self.upright - LIMP_PAST_UPRIGHT_DEG if position_untrusted else self.upright

    def begin(self, now: float, angle: float, planned_dps: float, upright_switch: bool) -> None:
        self.switch_at = None
        self.began_on_switch = upright_switch
        distance = abs(angle - self.upright)
        self.deadline = now + distance / planned_dps * 1.5 + LIMP_TIMEOUT_MARGIN_S

    def step(self, now: float, inp: Inputs, monitor: SafetyMonitor) -> Step | Detection:
        """One tick: how it goes on, or the fault that ends it in a hold."""
        if now > self.deadline:
            return Detection(
                "limp_timeout", "limp home did not reach upright in time", Recovery.HOLD
            )
        if not monitor.position_untrusted:
            return Step.BY_ANGLE
        if not monitor.upright_switch_trusted:
            # Driving on would end wherever a lying switch or a drifting mean says (issue 11,
            # repro 2 ended `idle` at 28.9 deg).
            return Detection(
                "no_upright_reference",
                "no trusted angle sensor and no trusted upright switch: automatic motion stops",
                Recovery.HOLD,
            )
        if self.began_on_switch or (inp.upright_switch and self.switch_at is None):
            if not self._switch_plausible(inp, monitor.sensors_frozen):
                return Detection(
                    "upright_switch_stuck",
                    "upright switch closed where neither angle sensor is near upright",
                    Recovery.HOLD,
                )
            if self.began_on_switch:
                return Step.AT_SWITCH  # the switch, the one trusted reference, says upright
            self.switch_at = (inp.angle_primary_deg, inp.angle_secondary_deg)
            return Step.DRIVING
        if self.switch_at is not None:
            # Travel since the switch closed, by the sensor that moved most: a stuck sensor
            # understates it, one drifting the other way stops early (the safe side).
            travelled = max(
                (start - now_)
                for start, now_ in zip(
                    self.switch_at, (inp.angle_primary_deg, inp.angle_secondary_deg), strict=True
                )
                if start is not None and now_ is not None
            )
            if travelled >= UPRIGHT_SWITCH_WINDOW_DEG - SETTLE_DEG:
                return Step.AT_SWITCH
        return Step.DRIVING

    def _switch_plausible(self, inp: Inputs, sensors_frozen: bool) -> bool:
        """The upright switch closing is believed only where one of the angle readings agrees
        (one sensor is always right when they disagree by a single fault), or where no reading
        is left to disagree (both frozen: the switch is the last evidence)."""
        if sensors_frozen:
            return True
        near = self.upright + UPRIGHT_SWITCH_WINDOW_DEG + SWITCH_PLAUSIBLE_DEG
        readings = [r for r in (inp.angle_primary_deg, inp.angle_secondary_deg) if r is not None]
        return not readings or min(readings) <= near
