"""Where a session stands, and a jog: the bookkeeping the states share, apart from the
decisions (``controller.core.machine`` decides; this only remembers). Time is passed in.

A session is the program's steps (target, hold) driven one after another, the clock that
started when the table left upright (DESIGN: the time limit counts from there), the timed
phase under way (a hold or the rest) and what a pause keeps of it."""

from __future__ import annotations

from dataclasses import dataclass

from controller.core.states import State


@dataclass
class Session:
    steps: list[tuple[float, float]]  # (target_deg, hold_s) each, at least one
    step_i: int = 0
    left_upright_t: float | None = None  # the session clock's start; None while upright
    phase_end_t: float = 0.0  # when the timed phase (hold, rest) under way ends
    phase_remaining: float | None = None  # what a pause kept of a timed phase
    rest_timing: bool = False  # the rest has settled and its time is running
    paused_from: State | None = None  # the session phase a pause resumes

    def elapsed(self, now: float) -> float:
        return 0.0 if self.left_upright_t is None else now - self.left_upright_t

    def start_clock(self, now: float) -> None:
        """Never restarts a running clock (a pause or a step does not give time back)."""
        if self.left_upright_t is None:
            self.left_upright_t = now

    @property
    def target_deg(self) -> float:
        return self.steps[self.step_i][0]

    @property
    def hold_s(self) -> float:
        return self.steps[self.step_i][1]

    def next_step(self) -> bool:
        """On to the program's next step; False after the last one."""
        if self.step_i + 1 < len(self.steps):
            self.step_i += 1
            return True
        return False

    def start_phase(self, now: float, full_s: float) -> None:
        """A timed phase begins: its full length, or what a pause kept of it."""
        remaining, self.phase_remaining = self.phase_remaining, None
        self.phase_end_t = now + (full_s if remaining is None else remaining)

    def phase_over(self, now: float) -> bool:
        return now >= self.phase_end_t

    def pause(self, source: State, now: float) -> None:
        """Remember what to resume and keep what is left of a timed phase."""
        self.paused_from = source
        if source == State.HOLD or (source == State.REST and self.rest_timing):
            self.phase_remaining = max(0.0, self.phase_end_t - now)

    def end(self) -> None:
        """Upright and idle: the next session starts afresh (its steps from the start)."""
        self.left_upright_t = None
        self.paused_from = None
        self.phase_remaining = None


@dataclass
class Jog:
    direction: int = 0  # +1 toward inversion (DOWN), -1 toward upright (UP)
    started_t: float = 0.0

    @property
    def button(self) -> str:
        """The button that must stay held for the jog to go on."""
        return "down" if self.direction > 0 else "up"
