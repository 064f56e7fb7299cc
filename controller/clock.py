"""Clocks: the only place in ``controller/`` that touches wall-clock time.

The controller itself never reads the time; the runner passes ``now`` into every
``update``. ``SimClock`` makes that time simulated (as fast as the CPU allows);
``RealTimeClock`` paces the same loop against ``time.monotonic`` with absolute
deadlines, so a late tick does not push every later tick back (no drift).
"""
from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...
    def wait_until(self, t: float) -> None: ...


class SimClock:
    """Simulated time: waiting is instantaneous, time is whatever the runner says."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def wait_until(self, t: float) -> None:
        if t > self.t:
            self.t = t


class RealTimeClock:
    """Monotonic time from an origin, with absolute-deadline waits."""

    def __init__(self) -> None:
        self._origin = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self._origin

    def wait_until(self, t: float) -> None:
        delay = t - self.now()
        if delay > 0:
            time.sleep(delay)
