"""The actuator's duty-cycle budget: motor-on seconds in a sliding window of controller
time. New sessions and jogs away from upright are refused while it is used up (with the
wait); a return to upright never is."""

from __future__ import annotations

from collections import deque


class DutyBudget:
    def __init__(self, on_s: float, window_s: float) -> None:
        self.on_s = on_s
        self.window_s = window_s
        self._buckets: deque[list[float]] = (
            deque()
        )  # [second, motor-on seconds in it], oldest first
        self._total = 0.0

    def seed(self, now: float, used_s: float) -> None:
        """Usage from before this controller started (the history), counted as if just now."""
        if used_s > 0:
            self._buckets.append([float(int(now)), used_s])
            self._total += used_s

    def record(self, now: float, dt: float, motor_on: bool) -> None:
        if not motor_on or dt <= 0:
            return
        second = float(int(now))
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += dt
        else:
            self._buckets.append([second, dt])
        self._total += dt

    def _expire(self, now: float) -> None:
        while self._buckets and self._buckets[0][0] + 1.0 <= now - self.window_s:
            self._total -= self._buckets.popleft()[1]

    def used_s(self, now: float) -> float:
        self._expire(now)
        return max(0.0, self._total)

    def wait_s(self, now: float) -> float:
        """0 when there is budget left; else how long until there is."""
        used = self.used_s(now)
        if used < self.on_s:
            return 0.0
        excess = used - self.on_s
        for second, seconds in self._buckets:
            excess -= seconds
            if excess < 0:
                return max(0.0, second + 1.0 + self.window_s - now)
        return self.window_s
