"""What the supervisor sees: an immutable ``Status`` the control thread publishes.

The control thread builds it from the controller every ``EVERY_S`` of controller time and
swaps it in under a lock (one reference assignment); the servers only ever read the latest.
Nothing here calls back into the controller from another thread.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any

EVERY_S = 0.1  # publish rate: 10 per second is smooth on a phone and costs the loop nothing


@dataclass(frozen=True, slots=True)
class Status:
    """One moment of the table, as ``GET /api/status`` returns it (docs/supervision.md)."""

    t_s: float = 0.0
    state: str = "off"
    state_text: str = "not running"
    angle_deg: float | None = None
    upright_deg: float = -80.0
    max_angle_deg: float = 60.0
    session_s: float = 0.0
    limit_s: float = 0.0
    time_left_s: float | None = None
    user: str | None = None
    program: str | None = None
    step: int | None = None  # 1-based step of the program while a session runs
    steps: int = 0
    step_target_deg: float | None = None
    alarm: bool = False
    alarm_reasons: tuple[str, ...] = ()
    faults: tuple[dict[str, str], ...] = ()
    interlocks: dict[str, bool] = field(default_factory=dict)
    brake: bool = True
    seq: int = 0  # increases with every publish: a client sees the feed is alive

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["alarm_reasons"] = list(self.alarm_reasons)
        out["faults"] = list(self.faults)
        return out


STATE_TEXT = {
    "boot": "starting up (self-test)",
    "idle": "upright, ready",
    "ramp": "tilting to the program's angle",
    "hold": "holding the angle",
    "rest": "resting between steps",
    "returning": "coming back upright",
    "paused": "paused (STOP): press START to go on or RETURN to come up",
    "jog": "moving on the pendant",
    "emergency_return": "EMERGENCY RETURN to upright",
    "estop": "E-STOP pressed: motor off, brake on",
    "fault": "FAULT",
    "limp_home": "fault: slowly upright on the sensor still trusted",
    "supervised_return": "fault: returning under supervision",
    "off": "not running",
}
SESSION_STATES = frozenset({"ramp", "hold", "rest", "paused", "jog"})


def status_of(
    ctrl: Any,
    alarm_out: bool,
    brake: bool,
    seq: int,
    user: str | None = None,
    program: str | None = None,
) -> Status:
    """Read the controller on the control thread (the only thread that may) into a Status."""
    if ctrl is None:
        return Status(seq=seq, user=user, program=program)
    cfg = ctrl.cfg
    state = str(ctrl.state)
    angle = float(ctrl.angle)
    limit = float(cfg.session.max_duration_s)
    session = float(ctrl.session_elapsed_s)
    sess = ctrl.session  # the session's bookkeeping (controller/core/session.py)
    off_upright = sess.left_upright_t is not None
    inp = ctrl.inputs
    estop = bool(inp is not None and inp.estop_pressed)
    ankle = bool(inp is not None and inp.ankle_locked)
    latched = sorted(ctrl.monitor.latched)
    reasons_by_code: dict[str, str] = {}
    for ev in reversed(ctrl.events[-200:]):
        if ev.message.startswith("fault: "):
            code = ev.message[7:].split(":", 1)[0]
            reasons_by_code.setdefault(code, ev.message[7:])
    faults = tuple({"code": c, "reason": reasons_by_code.get(c, c)} for c in latched)
    alarm_reasons = []
    if latched or state == "fault":
        alarm_reasons.append("fault latched")
    if estop and off_upright:
        alarm_reasons.append("e-stop pressed while inverted")
    if off_upright and session >= limit:
        alarm_reasons.append("off upright past the time limit")
    steps = list(sess.steps)
    in_session = state in SESSION_STATES
    return Status(
        t_s=round(float(ctrl.now), 2),
        state=state,
        state_text=STATE_TEXT.get(state, state),
        angle_deg=round(angle, 2),
        upright_deg=float(cfg.limits.upright_deg),
        max_angle_deg=float(cfg.limits.max_angle_deg),
        session_s=round(session, 1),
        limit_s=limit,
        time_left_s=round(max(0.0, limit - session), 1) if off_upright else None,
        user=user,
        program=program,
        step=sess.step_i + 1 if in_session else None,
        steps=len(steps),
        step_target_deg=float(steps[sess.step_i][0]) if in_session else None,
        alarm=bool(alarm_reasons) or alarm_out,
        alarm_reasons=tuple(alarm_reasons) or (("buzzer on",) if alarm_out else ()),
        faults=faults,
        interlocks={"ankle_locked": ankle, "estop_pressed": estop},
        brake=brake,
        seq=seq,
    )


class StatusBoard:
    """The latest Status: written by the control thread, read by any server thread."""

    def __init__(self, user: str | None = None, program: str | None = None) -> None:
        self._lock = threading.Lock()
        self._status = Status(user=user, program=program)
        self._next_t: float | None = None
        self.user = user
        self.program = program

    def publish(self, now: float, ctrl: Any, alarm_out: bool, brake: bool) -> None:
        """Called every tick by the control thread; builds a Status every EVERY_S. Never
        raises: a bug here must not stop the table (the page then shows "unknown" and the
        alarm instead of a picture it cannot trust)."""
        if self._next_t is not None and now < self._next_t:
            return
        self._next_t = now + EVERY_S
        try:
            status = status_of(
                ctrl, alarm_out, brake, self._status.seq + 1, self.user, self.program
            )
        except Exception as exc:  # the table matters more than its picture; say so on the page
            status = Status(
                state="unknown",
                state_text=f"the supervisor cannot read the controller ({type(exc).__name__})",
                alarm=True,
                alarm_reasons=("status unavailable",),
                seq=self._status.seq + 1,
                user=self.user,
                program=self.program,
            )
        with self._lock:
            self._status = status

    def latest(self) -> Status:
        with self._lock:
            return self._status
