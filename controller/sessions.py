"""``invtable session start``: a user's program on the simulated table, planned by the
progression rules, budgeted by the actuator's duty cycle, recorded in the history.

The history is committed when the session begins, at every state change, and at its end;
the simulated table's angle is saved beside it, so a process killed mid-session leaves a
record the next start marks ``interrupted`` and a table that ``invtable run --data DIR``
resumes (and brings upright) where it was.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from controller.clock import ScaledClock, wall_time
from controller.config import Config
from controller.errors import InputError, Problem
from controller.history import Store, User
from controller.progression import plan_session
from controller.programs import Program
from sim.runner import RunResult, run_scenario
from sim.scenario import scenario_from_dict

TABLE_STATE = "sim_table.json"


def outcome_of(dests: list[str], triggers: list[str], completed: bool) -> str:
    """How a session ended, from its transitions (the first that applies, most severe first)."""
    for outcome, happened in (("power_loss", "power_off" in dests), ("estop", "estop" in dests),
                              ("fault", "fault" in dests or "limp_home" in dests),
                              ("emergency", "emergency_return" in dests), ("time_limit", "time_limit" in triggers),
                              ("user_stop", "paused" in dests or "press_up" in triggers)):
        if happened:
            return outcome
    return "completed" if completed else "interrupted"


def travel_s(targets: list[float], upright: float, rest_deg: float, cfg: Config) -> float:
    """Time on the move: every leg at the normal speed, each with its ramp up and down."""
    m = cfg.motion
    legs = [abs(b - a) for a, b in zip([upright] + targets, targets + [rest_deg, upright]) if b != a]
    return sum(d / m.max_speed_dps + m.max_speed_dps / m.max_accel_dps2 for d in legs)


def duty_wait_s(store: Store, cfg: Config, now: float) -> float:
    """0 when a session may start; else the seconds until the duty budget allows one."""
    m = cfg.motion
    used = store.motor_on_since(now - m.duty_window_s)
    if used < m.duty_on_s:
        return 0.0
    # The oldest session in the window leaves it first.
    for s in store.sessions():
        end = s["ended_at"] or s["started_at"]
        if end >= now - m.duty_window_s and s["motor_on_s"]:
            return max(1.0, end + m.duty_window_s - now)
    return m.duty_window_s


def save_table_angle(data_dir: Path, angle: float) -> None:
    from sim.runner import atomic_write
    atomic_write(data_dir / TABLE_STATE, lambda fh: json.dump({"angle_deg": round(angle, 4)}, fh))


def saved_table_angle(data_dir: Path) -> float | None:
    try:
        return float(json.loads((data_dir / TABLE_STATE).read_text())["angle_deg"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_duty(store: Store, cfg: Config) -> None:
    wait = duty_wait_s(store, cfg, wall_time())
    if wait > 0:
        raise InputError([Problem("history", "motion.duty_on_s",
                                  f"the actuator's duty budget ({cfg.motion.duty_on_s:g} s on per "
                                  f"{cfg.motion.duty_window_s:g} s) is used up: wait {wait:.0f} s")])


def plan_for(store: Store, user: User, program: Program, cfg: Config) -> Any:
    """The progression-checked plan for this user's program today."""
    now = wall_time()
    best_peak, best_hold = store.best(user.name)
    first = store.first_session_at(user.name)
    up = cfg.limits.upright_deg
    wanted = program.resolved(min(user.max_angle_deg, cfg.limits.max_angle_deg))
    overhead = travel_s([t for t, _ in wanted], up, program.rest_deg, cfg) + program.rest_s
    plan = plan_session(wanted, overhead_s=overhead,
                        profile_max_deg=user.max_angle_deg, profile_max_session_s=user.max_session_s,
                        table_max_deg=cfg.limits.max_angle_deg, table_max_session_s=cfg.session.max_duration_s,
                        best_peak_deg=best_peak, best_hold_s=best_hold, beginner=user.stage == "beginner",
                        days_since_first=None if first is None else (now - first) / 86400.0,
                        locked_out=user.locked_out)
    return plan


def session_config(cfg: Config, plan: Any, program: Program) -> Config:
    """The config a planned session runs with: its time limit and its rest."""
    from dataclasses import replace
    targets = [t for t, _ in plan.steps]
    session = replace(cfg.session, max_duration_s=plan.max_duration_s, target_deg=max(targets + [program.rest_deg]),
                      rest_deg=program.rest_deg, rest_s=program.rest_s, hold_s=0.0)
    return replace(cfg, session=session)


class SessionRecorder:
    """Records the sessions a running controller (the service, the bench run) performs:
    begun when START leaves idle, its state changes committed, ended when it is back at
    idle (or held in a fault), every transition and fault in the audit log."""

    def __init__(self, store: Store, user: User, program: Program, plan: Any) -> None:
        self.store, self.user, self.program, self.plan = store, user, program, plan
        self.clips = list(plan.clips)
        self.sid: int | None = None
        self.last_outcome: str | None = None  # of the last session ended
        self.n_t = self.n_e = 0
        self.peak = self.past = self.motor_on = 0.0
        self.last_t: float | None = None
        self.events: list[dict] = []
        self.triggers: list[str] = []
        self.dests: list[str] = []

    def poll(self, transitions: list, events: list, t: float, angle: float, motor_cmd: float) -> None:
        dt = 0.0 if self.last_t is None else t - self.last_t
        self.last_t = t
        if self.sid is not None:
            self.peak = max(self.peak, angle)
            self.past += dt if angle > 0.0 else 0.0
            self.motor_on += dt if motor_cmd != 0.0 else 0.0
        for tr in transitions[self.n_t:]:
            self.store.audit({"event": "transition", "session": self.sid, "t_s": round(tr.t_s, 3), "from": tr.source,
                              "to": tr.dest, "trigger": tr.trigger})
            if self.sid is None and tr.source == "idle" and tr.dest == "ramp":
                self.sid = self.store.begin_session(self.user.name, self.program.name, self.clips)
                self.peak, self.past, self.motor_on, self.events = angle, 0.0, 0.0, []
                self.triggers, self.dests = [], []
            if self.sid is not None:
                self.events.append({"t_s": tr.t_s, "from": tr.source, "to": tr.dest, "trigger": tr.trigger})
                self.triggers.append(tr.trigger)
                self.dests.append(tr.dest)
                self.store.progress(self.sid, tr.dest, self.peak, self.past, self.events)
                if tr.dest == "idle" or (tr.dest == "fault" and tr.trigger in ("fault", "exception")):
                    self._end()
        self.n_t = len(transitions)
        for e in events[self.n_e:]:
            if e.message.startswith("fault:"):
                self.store.audit({"event": "fault", "session": self.sid, "t_s": round(e.t_s, 3), "message": e.message})
        self.n_e = len(events)

    def _end(self) -> None:
        outcome = outcome_of(self.dests, self.triggers, "rest" in self.dests)
        hold = sum(h for _, h in self.plan.steps) if outcome == "completed" else 0.0
        assert self.sid is not None
        self.store.end_session(self.sid, outcome, self.peak, self.past, hold, self.motor_on, self.events)
        self.sid, self.last_outcome = None, outcome

    def close(self) -> None:
        """The process ends with a session open: it was cut short (the next start also finds it)."""
        if self.sid is not None:
            self.store.end_session(self.sid, "interrupted", self.peak, self.past, 0.0, self.motor_on, self.events)
            self.sid, self.last_outcome = None, "interrupted"


def start_session(store: Store, user: User, program: Program, cfg: Config, *, speed: float, seed: int,
                  out: Any = sys.stdout) -> tuple[RunResult, str | None, list[str]]:
    check_duty(store, cfg)
    plan = plan_for(store, user, program, cfg)
    up = cfg.limits.upright_deg
    for clip in plan.clips:
        print(f"  clipped: {clip}", file=out)
    targets = [t for t, _ in plan.steps]
    duration = min(plan.max_duration_s + 60.0, travel_s(targets, up, program.rest_deg, cfg)
                   + sum(h for _, h in plan.steps) + program.rest_s + 30.0)
    session_cfg = {"max_duration_s": plan.max_duration_s, "target_deg": max(targets + [program.rest_deg]),
                   "rest_deg": program.rest_deg, "rest_s": program.rest_s, "hold_s": 0.0}
    data = {"scenario": {"name": f"{user.name}: {program.name}", "duration_s": duration, "seed": seed},
            "user": {"mass_kg": user.weight_kg, "height_cm": user.height_cm},
            "config": {"session": session_cfg},
            "program": {"steps": [list(s) for s in plan.steps]},
            "events": [{"at_s": 0.5, "do": "set", "input": "ankle_lock", "value": True},
                       {"at_s": 1.0, "do": "tap", "input": "start"}]}
    base = {"limits": {"upright_deg": cfg.limits.upright_deg, "max_angle_deg": cfg.limits.max_angle_deg},
            "motion": {k: getattr(cfg.motion, k) for k in ("max_speed_dps", "max_accel_dps2", "emergency_speed_dps",
                                                          "emergency_accel_dps2", "jog_max_s")}}
    data["config"].update(base)
    scenario = scenario_from_dict(data, f"session {program.name}")
    recorder = SessionRecorder(store, user, program, plan)
    result = RunResult(scenario)
    saved = {"state": "", "t": -1.0}

    def on_tick(p: Any) -> None:
        row = result.rows[-1]
        recorder.poll(result.transitions, result.events, row[0], row[2], row[6])
        if p.state != saved["state"] or p.t_s - saved["t"] >= 1.0:  # where a restart resumes the table
            save_table_angle(store.dir, p.angle_deg)
            saved["state"], saved["t"] = p.state, p.t_s

    run_scenario(scenario, clock=ScaledClock(speed) if speed > 0 else None, on_progress=on_tick,
                 progress_every=1, result=result)
    recorder.close()
    save_table_angle(store.dir, result.rows[-1][2])
    outcome = recorder.last_outcome
    return result, outcome, list(plan.clips)
