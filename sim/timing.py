"""The scenario's real-time imperfections (DESIGN section 6, ``[timing]``): shared by the
runner (tick jitter, stalls, current lag) and the serial world (link latency, the board's
own clock). The default is today's ideal world: 10 ms ticks, no lag, a board in lockstep.
"""

from __future__ import annotations

from dataclasses import dataclass

BOARD_CLOCKS = ("lockstep", "own")


@dataclass(frozen=True, slots=True)
class Timing:
    tick_jitter_ms: float = 0.0  # each control tick starts late by a seeded 0..this (0..20)
    current_lag_ticks: int = 0  # the current the controller reads lags the command (0..5)
    link_latency_ms: float = 0.0  # serial: every frame arrives this much later, both ways (0..50)
    board_clock: str = "lockstep"  # serial: "lockstep" or "own" (the board steps on its own clock)

    @property
    def ideal(self) -> bool:
        return self == IDEAL


IDEAL = Timing()
