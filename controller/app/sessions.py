"""``invtable session start``: a user's program on the simulated table, planned by the
progression rules, budgeted by the actuator's duty cycle, recorded in the history.

The history is committed when the session begins, at every state change, every
``PROGRESS_EVERY_S`` (with the motor time so far) and at its end; the simulated table's
angle is saved beside it (atomically, by every command that moves it), so a process killed
mid-session leaves a record the next controller marks ``interrupted`` (charged its motor
time) and a table that ``invtable run --data DIR`` resumes (and brings upright) where it was.

The store is never on the path back to upright: a recorder whose store fails says so loudly
on stderr, stops recording, and lets the controller carry on. From then on its ``refusal``
says why new sessions must be refused (they need their record); the loop that runs the
controller hands it to ``Controller.refuse_sessions``, so the pendant's START is refused for
the rest of the run while the session under way, and every way back, carry on.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from controller.app.history import PROGRESS_EVERY_S, Store, User
from controller.app.programs import Program
from controller.app.progression import plan_session
from controller.core.clock import ScaledClock, wall_time
from controller.core.config import Config
from controller.core.errors import InputError, Problem, StoreError
from sim.runner import RunResult, run_scenario
from sim.scenario import scenario_from_dict

TABLE_STATE = "sim_table.json"


def outcome_of(dests: list[str], triggers: list[str], completed: bool) -> str:
    """How a session ended, from its transitions (the first that applies, most severe first)."""
    for outcome, happened in (
        ("power_loss", "power_off" in dests),
        ("estop", "estop" in dests),
        ("fault", "fault" in dests or "limp_home" in dests),
        ("emergency", "emergency_return" in dests),
        ("time_limit", "time_limit" in triggers),
        ("user_stop", "paused" in dests or "press_up" in triggers),
    ):
        if happened:
            return outcome
    return "completed" if completed else "interrupted"


def travel_s(targets: list[float], upright: float, rest_deg: float, cfg: Config) -> float:
    """Time on the move: every leg at the normal speed, each with its ramp up and down."""
    m = cfg.motion
    # zip stops at the shorter list, so the final rest -> upright leg is not counted (as before).
    pairs = zip([upright] + targets, targets + [rest_deg, upright], strict=False)
    legs = [abs(b - a) for a, b in pairs if b != a]
    return sum(d / m.max_speed_dps + m.max_speed_dps / m.max_accel_dps2 for d in legs)


def duty_wait_s(store: Store, cfg: Config, now: float, *, count_sim: bool = False) -> float:
    """0 when a session may start; else the seconds until the duty budget allows one.
    Simulated sessions do not heat the real actuator: they count only with ``count_sim``."""
    m = cfg.motion
    used = store.motor_on_since(now - m.duty_window_s, count_sim=count_sim)
    if used < m.duty_on_s:
        return 0.0
    # The oldest session in the window leaves it first.
    counted = ("real", "unknown") + (("sim",) if count_sim else ())
    for s in store.sessions():
        end = s["ended_at"] or s["started_at"]
        if end >= now - m.duty_window_s and s["motor_on_s"] and s.get("source", "real") in counted:
            return max(1.0, end + m.duty_window_s - now)
    return m.duty_window_s


def save_table_angle(data_dir: Path, angle: float) -> None:
    """Where the simulated table is: only what is true (its angle), written atomically."""
    from sim.runner import atomic_write

    def dump(fh: Any) -> None:
        json.dump({"angle_deg": round(angle, 4)}, fh)

    atomic_write(data_dir / TABLE_STATE, dump)


def clean_table_temp_files(data_dir: Path) -> None:
    """Temp files a killed writer left behind (only the lock holder calls this)."""
    for tmp in Path(data_dir).glob(f".{TABLE_STATE}.*"):
        try:
            tmp.unlink()
        except OSError:
            pass


def saved_table_angle(data_dir: Path) -> float | None:
    try:
        angle = float(json.loads((data_dir / TABLE_STATE).read_text())["angle_deg"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return angle if -90.0 <= angle <= 90.0 else None  # NaN and nonsense are no resume point


def check_duty(store: Store, cfg: Config, *, count_sim: bool = False) -> None:
    wait = duty_wait_s(store, cfg, wall_time(), count_sim=count_sim)
    if wait > 0:
        raise InputError(
            [
                Problem(
                    "history",
                    "motion.duty_on_s",
                    f"the actuator's duty budget ({cfg.motion.duty_on_s:g} s on per "
                    f"{cfg.motion.duty_window_s:g} s) is used up: wait {wait:.0f} s",
                )
            ]
        )


def plan_for(
    store: Store, user: User, program: Program, cfg: Config, *, count_sim: bool = False
) -> Any:
    """The progression-checked plan for this person's program today (by their id, so a
    re-added name starts at the first-session rule; simulated sessions only with ``count_sim``)."""
    now = wall_time()
    best_peak, best_hold = store.best(user, count_sim=count_sim)
    first = store.first_session_at(user, count_sim=count_sim)
    up = cfg.limits.upright_deg
    wanted = program.resolved(min(user.max_angle_deg, cfg.limits.max_angle_deg))
    overhead = travel_s([t for t, _ in wanted], up, program.rest_deg, cfg) + program.rest_s
    plan = plan_session(
        wanted,
        overhead_s=overhead,
        profile_max_deg=user.max_angle_deg,
        profile_max_session_s=user.max_session_s,
        table_max_deg=cfg.limits.max_angle_deg,
        table_max_session_s=cfg.session.max_duration_s,
        best_peak_deg=best_peak,
        best_hold_s=best_hold,
        beginner=user.stage == "beginner",
        days_since_first=None if first is None else (now - first) / 86400.0,
        locked_out=user.locked_out,
    )
    return plan


def session_overrides(plan: Any, program: Program) -> dict[str, float]:
    """The ``[session]`` values a planned session runs with: its time limit and its rest (the
    program's steps carry the targets and holds)."""
    targets = [t for t, _ in plan.steps]
    return {
        "max_duration_s": plan.max_duration_s,
        "target_deg": max(targets + [program.rest_deg]),
        "rest_deg": program.rest_deg,
        "rest_s": program.rest_s,
        "hold_s": 0.0,
    }


def session_config(cfg: Config, plan: Any, program: Program) -> Config:
    """The config a planned session runs with on the table (``run --user --program``)."""
    from dataclasses import replace

    return replace(cfg, session=replace(cfg.session, **session_overrides(plan, program)))


class SessionRecorder:
    """Records the sessions a running controller (the service, the bench run) performs:
    begun when START leaves idle, its progress committed at every state change and every
    ``PROGRESS_EVERY_S``, ended when it is back at idle (or held in a fault), every
    transition and fault in the audit log. Never raises: a store failure is reported loudly
    once, recording stops, and the controller carries on (``failed`` says why, ``refusal``
    tells the loop to refuse new sessions for the rest of the run)."""

    def __init__(
        self,
        store: Store,
        user: User,
        program: Program,
        plan: Any,
        *,
        source: str = "sim",
        err: Any = None,
    ) -> None:
        self.store, self.user, self.program, self.plan = store, user, program, plan
        self.source = source
        self.err = err
        self.clips = list(plan.clips)
        self.sid: int | None = None
        self.last_outcome: str | None = None  # of the last session ended
        self.failed: str | None = None
        self.n_t = self.n_e = 0
        self.peak = self.past = self.motor_on = 0.0
        self.last_t: float | None = None
        self.last_progress_t = 0.0
        self.events: list[dict] = []
        self.triggers: list[str] = []
        self.dests: list[str] = []

    def _safely(self, what: Any, *args: Any) -> None:
        if self.failed is not None:
            return
        try:
            what(*args)
        except StoreError as exc:
            self.failed = str(exc)
            print(
                f"invtable: STORE ERROR: {exc}: session {self.sid or ''} is no longer recorded and "
                "new sessions are refused for the rest of this run; the table carries on and "
                "returns the person",
                file=self.err or sys.stderr,
                flush=True,
            )

    @property
    def refusal(self) -> str | None:
        """Why new sessions must be refused (None while the store records): a session run
        for a person's history must not run unrecorded, so once a write has failed START is
        refused for the rest of the run (the session under way finishes, the way back never
        asks)."""
        return store_refusal(self.failed)

    def poll(
        self, transitions: list, events: list, t: float, angle: float, motor_cmd: float
    ) -> None:
        dt = 0.0 if self.last_t is None else t - self.last_t
        self.last_t = t
        if self.sid is not None:
            self.peak = max(self.peak, angle)
            self.past += dt if angle > 0.0 else 0.0
            self.motor_on += dt if motor_cmd != 0.0 else 0.0
        for tr in transitions[self.n_t :]:
            self._safely(
                self.store.audit,
                {
                    "event": "transition",
                    "session": self.sid,
                    "t_s": round(tr.t_s, 3),
                    "from": tr.source,
                    "to": tr.dest,
                    "trigger": tr.trigger,
                },
            )
            if self.sid is None and tr.source == "idle" and tr.dest == "ramp":
                self.peak, self.past, self.motor_on, self.events = angle, 0.0, 0.0, []
                self.triggers, self.dests = [], []
                self.sid = -1  # begun, even if the store cannot say so
                self._safely(
                    lambda: setattr(
                        self,
                        "sid",
                        self.store.begin_session(
                            self.user, self.program.name, self.clips, self.source
                        ),
                    )
                )
            if self.sid is not None:
                self.events.append(
                    {"t_s": tr.t_s, "from": tr.source, "to": tr.dest, "trigger": tr.trigger}
                )
                self.triggers.append(tr.trigger)
                self.dests.append(tr.dest)
                self._progress(t)
                if tr.dest == "idle" or (
                    tr.dest == "fault" and tr.trigger in ("fault", "exception")
                ):
                    self._end()
        self.n_t = len(transitions)
        if self.sid is not None and t - self.last_progress_t >= PROGRESS_EVERY_S:
            self._progress(t)  # the motor time a kill would otherwise hide
        for e in events[self.n_e :]:
            if e.message.startswith("fault:"):
                self._safely(
                    self.store.audit,
                    {
                        "event": "fault",
                        "session": self.sid,
                        "t_s": round(e.t_s, 3),
                        "message": e.message,
                    },
                )
        self.n_e = len(events)

    def _progress(self, t: float) -> None:
        self.last_progress_t = t
        if self.sid is not None and self.sid > 0:
            sid = self.sid
            self._safely(
                lambda: self.store.progress(
                    sid,
                    self.dests[-1] if self.dests else "ramp",
                    self.peak,
                    self.past,
                    self.events,
                    self.motor_on,
                )
            )

    def _end(self, outcome: str | None = None) -> None:
        outcome = outcome or outcome_of(self.dests, self.triggers, "rest" in self.dests)
        hold = sum(h for _, h in self.plan.steps) if outcome == "completed" else 0.0
        sid = self.sid
        if sid is not None and sid > 0:
            self._safely(
                lambda: self.store.end_session(
                    sid, outcome, self.peak, self.past, hold, self.motor_on, self.events
                )
            )
        self.sid, self.last_outcome = None, outcome

    def close(self) -> None:
        """The process ends with a session open: it was cut short (the next start also finds it)."""
        if self.sid is not None:
            self._end("interrupted")


def store_refusal(failed: str | None) -> str | None:
    """The controller's refusal reason for a failed store (``failed`` names the file and why)."""
    return (
        None
        if failed is None
        else f"history store unavailable: {failed}; sessions need their record"
    )


class NoHistory:
    """The recorder of a ``run --user --program`` whose store failed before it began: nothing
    can be recorded, so the pendant's START is refused from the first tick (a plain session
    in its place would run unplanned and unrecorded for that person)."""

    last_outcome: str | None = None

    def __init__(self, failed: str) -> None:
        self.failed = failed

    @property
    def refusal(self) -> str | None:
        return store_refusal(self.failed)

    def poll(
        self, transitions: list, events: list, t: float, angle: float, motor_cmd: float
    ) -> None:
        """Nothing to record."""

    def close(self) -> None:
        """Nothing to close."""


class TableStateSaver:
    """Saves the simulated table's angle (on every state change and every second of
    controller time) for a controller that moves it, so a restart resumes where it truly is."""

    def __init__(self, data_dir: Path, inner: Any = None, err: Any = None) -> None:
        self.dir, self.inner, self.err = Path(data_dir), inner, err
        self.state, self.t = "", -1.0
        self.angle: float | None = None
        self.failed: str | None = None

    def _save(self, angle: float) -> None:
        if self.failed is not None:
            return
        try:
            save_table_angle(self.dir, angle)
        except OSError as exc:
            self.failed = f"{self.dir / TABLE_STATE}: {exc.strerror or exc}"
            print(
                f"invtable: STORE ERROR: {self.failed}: the simulated table's position is no "
                "longer saved",
                file=self.err or sys.stderr,
                flush=True,
            )

    def poll(
        self, transitions: list, events: list, t: float, angle: float, motor_cmd: float
    ) -> None:
        if self.inner is not None:
            self.inner.poll(transitions, events, t, angle, motor_cmd)
        state = transitions[-1].dest if transitions else ""
        self.angle = angle
        if state != self.state or t - self.t >= 1.0:
            self._save(angle)
            self.state, self.t = state, t

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()
        if self.angle is not None:
            self._save(self.angle)

    @property
    def last_outcome(self) -> str | None:
        return getattr(self.inner, "last_outcome", None)

    @property
    def refusal(self) -> str | None:
        """The recorder's (the saved angle only lets a restarted simulator resume: its loss
        refuses nothing)."""
        return getattr(self.inner, "refusal", None)


def start_session(
    store: Store,
    user: User,
    program: Program,
    cfg: Config,
    *,
    speed: float,
    seed: int,
    out: Any = sys.stdout,
    count_sim: bool = False,
    trace: Path | None = None,
) -> tuple[RunResult, str | None, list[str], str | None]:
    """Run the session on the simulated table (the caller holds the table lock). Returns the
    run, its outcome, the clips, and the store failure that stopped the recording (if any).
    The run keeps only its last rows (memory bounded); with ``trace`` every row streams to
    that file as the session goes."""
    check_duty(store, cfg, count_sim=count_sim)
    plan = plan_for(store, user, program, cfg, count_sim=count_sim)
    up = cfg.limits.upright_deg
    for clip in plan.clips:
        print(f"  clipped: {clip}", file=out)
    targets = [t for t, _ in plan.steps]
    duration = min(
        plan.max_duration_s + 60.0,
        travel_s(targets, up, program.rest_deg, cfg)
        + sum(h for _, h in plan.steps)
        + program.rest_s
        + 30.0,
    )
    data: dict[str, Any] = {
        "scenario": {"name": f"{user.name}: {program.name}", "duration_s": duration, "seed": seed},
        "user": {"mass_kg": user.weight_kg, "height_cm": user.height_cm},
        "config": {"session": session_overrides(plan, program)},
        "program": {"steps": [list(s) for s in plan.steps]},
        "events": [
            {"at_s": 0.5, "do": "set", "input": "ankle_lock", "value": True},
            {"at_s": 1.0, "do": "tap", "input": "start"},
        ],
    }
    base = {
        "limits": {
            "upright_deg": cfg.limits.upright_deg,
            "max_angle_deg": cfg.limits.max_angle_deg,
        },
        "motion": {
            k: getattr(cfg.motion, k)
            for k in (
                "max_speed_dps",
                "max_accel_dps2",
                "emergency_speed_dps",
                "emergency_accel_dps2",
                "jog_max_s",
            )
        },
    }
    data["config"].update(base)
    scenario = scenario_from_dict(data, f"session {program.name}")
    recorder = SessionRecorder(store, user, program, plan, source="sim")
    saver = TableStateSaver(store.dir, recorder)
    result = RunResult(scenario)

    def on_tick(p: Any) -> None:
        row = result.rows[-1]
        saver.poll(result.transitions, result.events, row.t_s, row.angle_deg, row.motor_cmd)

    try:
        run_scenario(
            scenario,
            clock=ScaledClock(speed) if speed > 0 else None,
            on_progress=on_tick,
            progress_every=1,
            result=result,
            keep_rows=False,
            trace=trace,
        )
    finally:
        saver.close()
    return result, recorder.last_outcome, list(plan.clips), recorder.failed or saver.failed
