"""The brake test: at upright, the motor pushes against the engaged brake and the table must
not move.

It runs at upright only (at boot, and before every session), and pushes toward inversion: at
upright gravity always pulls toward upright (the user lies above the pivot axis) and the brake
is seen holding that at rest; pushing toward upright would only add to gravity, and a failed
brake would then let the table run. It stops pushing the moment the table moves, and never
pushes without the ankle lock (issue 11, repro 9).

Pure logic: time and the measured angle are passed in; the controller applies ``duty``.
"""

from __future__ import annotations

from enum import StrEnum

from controller.core.monitor import Detection, Recovery

BRAKE_TEST_DUTY = 0.35  # 245 N m at the sim's gearmotor: a net 55-210 N m over the user range
BRAKE_TEST_S = 0.3
BRAKE_TEST_MOVE_DEG = 0.2  # the table must not move more than this (it stops pushing at once)


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    STOPPED = "stopped"  # the ankle lock opened: no verdict (the pre-session test repeats it)


class BrakeTest:
    def __init__(self) -> None:
        self.until: float | None = None  # a test is running until then
        self.ref = 0.0  # the angle where it began
        self.moved = 0.0  # the most the table has moved since

    @property
    def running(self) -> bool:
        return self.until is not None

    @property
    def duty(self) -> float:
        """The push toward inversion while a test runs (the brake stays engaged)."""
        return BRAKE_TEST_DUTY if self.running else 0.0

    def start(self, now: float, angle: float) -> None:
        self.until = now + BRAKE_TEST_S
        self.ref = angle
        self.moved = 0.0

    def cancel(self) -> None:
        self.until = None

    def step(self, now: float, angle: float, ankle_locked: bool) -> Outcome | None:
        """Advance the running test: None while it goes on, else how it ended."""
        until = self.until
        if until is None:
            raise RuntimeError("no brake test is running")
        if not ankle_locked:
            self.until = None
            return Outcome.STOPPED
        self.moved = max(self.moved, abs(angle - self.ref))
        if now < until and self.moved <= BRAKE_TEST_MOVE_DEG:
            return None
        self.until = None
        return Outcome.FAILED if self.moved > BRAKE_TEST_MOVE_DEG else Outcome.PASSED

    def failure(self) -> Detection:
        """The fault a failed test latches: the brake slips, the motor holds from then on."""
        return Detection(
            "brake_test_failed",
            f"the table moved {self.moved:.2f} deg "
            f"against a {BRAKE_TEST_DUTY:g} duty push on the brake",
            Recovery.EMERGENCY_RETURN,
            brake_slips=True,
        )
