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

from controller.clock import wall_time
from typing import Any

from controller.config import Config
from controller.errors import InputError, Problem
from controller.history import Store, User
from controller.progression import plan_session
from controller.programs import Program
from sim.runner import PERIOD_S, RunResult, run_scenario
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


def classify(result: RunResult) -> str:
    dests = [t.dest for t in result.transitions]
    return outcome_of(dests, [t.trigger for t in result.transitions],
                      "rest" in dests and bool(result.rows) and result.rows[-1][1] == "idle")


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
        self.sid = None

    def close(self) -> None:
        """The process ends with a session open: it was cut short (the next start also finds it)."""
        if self.sid is not None:
            self.store.end_session(self.sid, "interrupted", self.peak, self.past, 0.0, self.motor_on, self.events)
            self.sid = None


def start_session(store: Store, user: User, program: Program, cfg: Config, *, speed: float, seed: int,
                  out: Any = sys.stdout) -> tuple[RunResult, str, list[str]]:
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
    sid = store.begin_session(user.name, program.name, list(plan.clips))
    seen = {"state": "", "transitions": 0, "events": 0, "peak": up, "past": 0.0, "t": 0.0}
    holder: dict[str, Any] = {}

    def on_progress(p: Any) -> None:
        seen["peak"] = max(seen["peak"], p.angle_deg)
        if p.angle_deg > 0.0:
            seen["past"] += p.t_s - seen["t"]
        seen["t"] = p.t_s
        result = holder.get("result")
        if p.state != seen["state"] or (p.t_s % 1.0) < 0.05:
            save_table_angle(store.dir, p.angle_deg)
        if p.state != seen["state"]:
            seen["state"] = p.state
            store.progress(sid, p.state, seen["peak"], seen["past"], [])
        if result is not None:
            for t in result.transitions[seen["transitions"]:]:
                store.audit({"event": "transition", "session": sid, "t_s": round(t.t_s, 3), "from": t.source,
                             "to": t.dest, "trigger": t.trigger})
            seen["transitions"] = len(result.transitions)
            for e in result.events[seen["events"]:]:
                if e.message.startswith("fault:"):
                    store.audit({"event": "fault", "session": sid, "t_s": round(e.t_s, 3), "message": e.message})
            seen["events"] = len(result.events)

    clock = None
    if speed > 0:
        from controller.clock import RealTimeClock

        class Scaled:
            def __init__(self) -> None:
                self.rt = RealTimeClock()

            def wait_until(self, t: float) -> None:
                self.rt.wait_until(t / speed)

            def now(self) -> float:
                return self.rt.now() * speed
        clock = Scaled()
    holder["result"] = RunResult(scenario)
    result = run_scenario(scenario, clock=clock, on_progress=on_progress, progress_every=5, result=holder["result"])
    on_progress_final = result.rows[-1]
    save_table_angle(store.dir, on_progress_final[2])
    outcome = classify(result)
    s = result.summary
    motor_on = sum(PERIOD_S for r in result.rows if r[6] != 0.0)
    hold = sum(h for _, h in plan.steps) if outcome == "completed" else 0.0
    events = [{"t_s": t.t_s, "from": t.source, "to": t.dest, "trigger": t.trigger} for t in result.transitions]
    store.end_session(sid, outcome, s["max_angle_deg"], s["time_past_horizontal_s"], hold, motor_on, events)
    return result, outcome, list(plan.clips)
