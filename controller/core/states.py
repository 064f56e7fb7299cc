"""The state machine's states: the names the trace, the summary and the diagram show."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """A StrEnum: ``State.IDLE == "idle"``, and it prints as its plain name."""

    BOOT = "boot"
    IDLE = "idle"
    JOGGING = "jogging"
    HOLDING = "holding"
    RAMP = "ramp"
    HOLD = "hold"
    REST = "rest"
    PAUSED = "paused"
    RETURNING = "returning"
    EMERGENCY_RETURN = "emergency_return"
    LIMP_HOME = "limp_home"
    SUPERVISED_RETURN = "supervised_return"
    ESTOP = "estop"
    FAULT = "fault"

    def __repr__(self) -> str:
        # Messages that quote a state with !r (the runner's expectations) show the plain name.
        return repr(self.value)
