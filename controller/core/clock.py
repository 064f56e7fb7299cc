"""Clocks: the only place in ``controller/`` that touches wall-clock time.

The controller itself never reads the time; the runner passes ``now`` into every
``update``. ``SimClock`` makes that time simulated (as fast as the CPU allows);
``RealTimeClock`` paces the same loop against ``time.monotonic`` with absolute
deadlines, so a late tick does not push every later tick back (no drift).
"""

from __future__ import annotations

import math
import os
import time
from typing import Protocol

# Real elapsed and CPU time for the benchmark (controller/app/bench.py), which measures the
# code against the wall clock: it reads them here, the one wall-clock module of controller/.
perf_counter = time.perf_counter
process_time = time.process_time
monotonic = time.monotonic
sleep = time.sleep


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


# Sleep-then-spin: sleep until this long before the deadline, then spin on the clock. The
# choice is measured by `invtable bench` (docs/performance.md): spinning cuts the lateness
# a sleep's wake-up adds, at a CPU cost of about spin/period.
DEFAULT_SPIN_S = 0.0


class RealTimeClock:
    """Monotonic time from an origin, with absolute-deadline waits."""

    def __init__(self, spin_s: float = DEFAULT_SPIN_S) -> None:
        self._origin = time.monotonic()
        self.spin_s = spin_s

    def now(self) -> float:
        return time.monotonic() - self._origin

    def wait_until(self, t: float) -> None:
        delay = t - self.now() - self.spin_s
        if delay > 0:
            time.sleep(delay)
        while self.spin_s and self.now() < t:
            pass


class ScaledClock:
    """Real time sped up ``speed`` times: a simulated session a person can watch, still short."""

    def __init__(self, speed: float) -> None:
        self.rt = RealTimeClock()
        self.speed = speed

    def now(self) -> float:
        return self.rt.now() * self.speed

    def wait_until(self, t: float) -> None:
        self.rt.wait_until(t / self.speed)


# TEST ONLY: calendar time fixed at this many seconds since the epoch, so the CLI's daily
# limits and rest interval (controller/app/allowance.py) are tested without waiting.
TEST_WALL_TIME_ENV = "INVTABLE_TEST_WALL_TIME"


def wall_time() -> float:
    """Calendar time (seconds since the epoch) for records (the session history, the audit
    log, profile clearances) and the per-day rules on a person's sessions (the duty budget, the
    daily limits). Never used by the control loop. ``$INVTABLE_TEST_WALL_TIME`` replaces it
    for tests only (a finite number; anything else is ignored)."""
    fake = os.environ.get(TEST_WALL_TIME_ENV)
    if fake:
        try:
            value = float(fake)
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return value
    return time.time()
