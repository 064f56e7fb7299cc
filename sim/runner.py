"""Run a scenario: the simulated world, the real controller, the trace and the verdict.

Each 10 ms tick (100 Hz): apply the scenario events due, then ``read -> update -> write``
through the HAL exactly as on hardware, record one trace row, then let the physics
integrate the next 10 ms at 1 kHz. A power cut stops the controller (it is not ticked
and its outputs drop to the unpowered state); restoring power boots a fresh controller.
The same loop runs in simulated time or paced to real time (``realtime=True``).

Each row goes, as it is made, to the invariant checker, the summary's accumulator
(``TraceStats``), the trace file when one is asked for (``sim.trace.TraceWriter``) and the
plot's bounded series: the CLI keeps only the last rows, so memory does not grow with
``duration_s`` (issue 13). The Python API keeps every row unless told not to.
"""

from __future__ import annotations

import json
import random
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from controller.core.clock import Clock, RealTimeClock, SimClock
from controller.core.limits import is_upright
from controller.core.machine import Controller, EventRecord, TransitionRecord
from hal.interfaces import TableHardware
from sim.checks import InvariantChecker, Row
from sim.faults import HANG_S
from sim.scenario import Event, Scenario
from sim.table import SimTable
from sim.timing import Timing
from sim.trace import (  # noqa: F401 - TRACE_COLUMNS, TraceRow, atomic_write: re-exported
    TAIL_ROWS,
    TRACE_COLUMNS,
    PlotSeries,
    TraceRow,
    TraceWriter,
    atomic_write,
)
from sim.world import World, make_world

PERIOD_S = 0.01
TICK_COST_S = 0.0005  # a catch-up tick after a late one starts this long after the previous one
# (the loop's own compute time: the service runs missed deadlines back to back)


class TraceStats:
    """What the summary and the expectations need from the trace, folded in one row at a time.

    Why: a streaming run keeps no full trace (a day is 8.6 million rows), so every figure the
    summary JSON (a CONTRACT) reports from the rows is accumulated here as each row is made.
    Each is computed exactly as the whole-list code did (the first row starts each extreme,
    only a strictly greater or smaller value replaces it, the time past horizontal is summed
    in the same order from an integer 0), so the summaries are byte-identical."""

    __slots__ = (
        "rows",
        "max_angle",
        "min_angle",
        "final_angle",
        "final_state",
        "max_speed",
        "past_horizontal",
        "late_ticks",
        "max_late_ms",
        "visited",
    )

    def __init__(self) -> None:
        self.rows = 0  # rows fed
        self.max_angle = self.min_angle = self.final_angle = 0.0
        self.final_state = ""
        self.max_speed = 0.0
        # sum() of nothing is the int 0: the JSON says 0, not 0.0. `Any`, not `float`: compiled
        # (`make fast`), a `float` is a C double and the int 0 would become 0.0.
        self.past_horizontal: Any = 0
        self.late_ticks = 0
        self.max_late_ms = 0.0
        self.visited: set[str] = set()

    def feed(self, row: TraceRow) -> None:
        angle, speed, late, state = row.angle_deg, abs(row.velocity_dps), row.late_ms, row.state
        if self.rows:
            if angle > self.max_angle:
                self.max_angle = angle
            if angle < self.min_angle:
                self.min_angle = angle
            if speed > self.max_speed:
                self.max_speed = speed
            if late > self.max_late_ms:
                self.max_late_ms = late
            if angle > 0.0:  # from the second row on, as the whole-list code's rows[1:]
                self.past_horizontal += PERIOD_S
        else:
            self.max_angle = self.min_angle = angle
            self.max_speed = speed
            self.max_late_ms = late
        if late > PERIOD_S * 1000.0:
            self.late_ticks += 1
        if state != self.final_state:
            self.visited.add(state)
            self.final_state = state
        self.final_angle = angle
        self.rows += 1


@dataclass
class RunResult:
    """A run: its trace rows (all of them, or only the last ``TAIL_ROWS`` for a streaming run;
    see ``run_scenario``'s ``keep_rows``), what happened, and the verdict. ``stats`` holds the
    summary's figures over every row either way; ``series`` a bounded copy for the plot when
    one was asked for."""

    scenario: Scenario
    rows: list[TraceRow] | deque[TraceRow] = field(default_factory=list)
    transitions: list[TransitionRecord] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    unmet: list[str] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    stats: TraceStats = field(default_factory=TraceStats)
    series: PlotSeries | None = None

    @property
    def passed(self) -> bool:
        return not self.violations and not self.unmet

    @property
    def rows_complete(self) -> bool:
        """Whether ``rows`` is the whole trace (not only the bounded tail of a streaming run)."""
        return isinstance(self.rows, list)


@dataclass(frozen=True, slots=True)
class Progress:
    """What a live view needs, handed out every few ticks."""

    t_s: float
    duration_s: float
    state: str
    angle_deg: float
    setpoint_deg: float
    session_s: float
    max_session_s: float
    target_deg: float
    brake: bool
    alarm: bool
    last_event: str = ""
    ankle_locked: bool = False
    estop_in: bool = False
    last_event_t: float | None = None  # when ``last_event`` happened (its age is shown)
    state_since_t: float = 0.0  # when the current state began
    step: str = ""  # the program step under way, in words ("step 2/3: 30 deg, hold 25 s")
    interlocks: tuple[str, ...] = ()  # why START would be refused now (empty: ready)


class Simulation:
    """The world plus whichever controller is currently powered, advanced one tick at a time."""

    def __init__(
        self,
        scenario: Scenario,
        result: RunResult | None = None,
        backend: str = "sim",
        *,
        keep_rows: bool = True,
        trace: TraceWriter | None = None,
        plot_series: bool = False,
        board: str = "cpython",
    ) -> None:
        """``keep_rows=False`` keeps only the last ``TAIL_ROWS`` rows in ``result.rows`` (memory
        bounded whatever the run's length); ``trace`` receives every row as it is made;
        ``plot_series`` collects a bounded, decimated copy for the plot in ``result.series``."""
        cfg = self.cfg = scenario.config
        start_angle = (
            cfg.limits.upright_deg if scenario.start_angle_deg is None else scenario.start_angle_deg
        )
        self.table = SimTable(
            mass_kg=scenario.mass_kg,
            height_cm=scenario.height_cm,
            angle_deg=start_angle,
            upright_deg=cfg.limits.upright_deg,
            seed=scenario.seed,
        )
        self.result = result or RunResult(scenario)
        res = self.result
        if not keep_rows and res.rows_complete:
            res.rows = deque(res.rows, maxlen=TAIL_ROWS)
        if plot_series and res.series is None:
            res.series = PlotSeries()
        # Where each row goes as it is made: nothing downstream needs the whole list.
        self._sinks: list[Callable[[TraceRow], None]] = [res.rows.append, res.stats.feed]
        if trace is not None:
            self._sinks.append(trace.write)
        self.checker = InvariantChecker(cfg)
        if res.series is not None:
            series, checker = res.series, self.checker
            # The plot draws the bound each row was checked against (fed before the sinks).
            self._sinks.append(lambda row: series.feed(row, checker.allowed_speed))
        self.controller: Controller | None = None
        self.backend = backend
        self.hal: TableHardware | None = None  # what the running process opened (per boot)
        # Real-time imperfections: with none (no [timing], no stall) every tick starts on its
        # 10 ms slot and the loop below is exactly the lockstep one (byte-identical traces).
        self.timing: Timing = scenario.timing
        self.stalls = [ev for ev in scenario.events if ev.do == "stall"]
        self.timed = not self.timing.ideal or bool(self.stalls)
        self.table.current_lag_ticks = self.timing.current_lag_ticks
        # Its own stream, so the sensor noise draws (the table's) are the same with or without it.
        self.jitter_rng = random.Random(f"timing:{scenario.seed}")
        self.t_tick = 0.0  # when the current tick started (timed runs)
        self.late_s = 0.0  # ... and how late that was versus its slot (the trace's late_ms)
        self._was_late = False
        self.world: World = make_world(
            backend,
            self.table,
            cfg,
            timing=self.timing,
            seed=scenario.seed,
            clock=lambda: self.now,
            board=board,
            log=lambda t, msg: self.result.events.append(EventRecord(t, msg)),
        )
        self.checker.board_acts_alone = self.world.has_link
        if not self.world.has_link and (
            self.timing.link_latency_ms or self.timing.board_clock != "lockstep"
        ):
            self.result.events.append(
                EventRecord(
                    0.0,
                    "timing: link_latency_ms / board_clock not applicable on "
                    f"backend {backend} (no serial link)",
                )
            )
        self.last_state = "boot"
        self.hang_until: float | None = None  # controller_hang: the loop is frozen until then
        self.k = 0

    @property
    def now(self) -> float:
        return self.t_tick if self.timed else self.k * PERIOD_S

    def begin_tick(self, events: Sequence[Event], next_event: int) -> int:
        """Bring the world to the instant this tick starts and apply the scenario events due
        by then; returns the index of the next event not yet applied.

        Ideal timing: the tick starts on its slot ``k * PERIOD_S`` (the world is already
        there). Timed: it starts late by a seeded jitter, by any stall that began before it,
        and never sooner than ``TICK_COST_S`` after the previous tick (the catch-up ticks
        after a stall); the world (physics, wiring, dead-man) runs on through the lateness
        and each event is applied at its own instant."""
        if not self.timed:
            now = self.now
            while next_event < len(events) and events[next_event].at_s <= now + 1e-9:
                self.apply(events[next_event])
                next_event += 1
            return next_event
        slot = self.k * PERIOD_S
        jitter = self.timing.tick_jitter_ms / 1000.0
        start = slot + (self.jitter_rng.random() * jitter if jitter else 0.0)
        if self.k:
            start = max(start, self.t_tick + TICK_COST_S)
        table = self.table
        while next_event < len(events) and events[next_event].at_s <= start + 1e-9:
            ev = events[next_event]
            if ev.at_s > table.t + 1e-9:
                table.advance_to(ev.at_s)
            if ev.do == "stall":
                # The loop pauses from at_s for duration_s: this tick cannot start before.
                start = max(start, ev.at_s + ev.duration_s)
                self.result.events.append(
                    EventRecord(
                        ev.at_s,
                        f"stall: the control loop is paused for {ev.duration_s * 1000:.0f} ms",
                    )
                )
            else:
                self.apply(ev, at=max(ev.at_s, table.t))
            next_event += 1
        table.advance_to(start)
        if (
            table.powered
            and self.controller is not None
            and self.hang_until is None
            and not table.deadman_ok
        ):
            # The loop was late past the charge pump's hold-up: the wiring cut the drive and
            # applied the brake, exactly as for a hang, until the heartbeat toggles again.
            self.result.events.append(
                EventRecord(
                    start,
                    f"dead-man: no heartbeat for "
                    f"{table.heartbeat_age_s * 1000:.0f} ms: the "
                    "wiring cut the drive and applied the brake",
                )
            )
        self.t_tick = start
        self.late_s = late = start - slot
        missed = late > PERIOD_S  # missed its slot (counted in the summary from the trace)
        if missed:
            if not self._was_late:  # logged once per run of late ticks (a late tick is no fault)
                self.result.events.append(
                    EventRecord(start, f"late tick: started {late * 1000:.1f} ms after its slot")
                )
        self._was_late = missed
        return next_event

    def apply(self, ev: Event, at: float | None = None) -> None:
        """A world event: a person pressing, a wire breaking, the power going."""
        table, now = self.table, (self.now if at is None else at)
        if ev.do == "set":
            if ev.target == "ankle_lock":
                table.ankle_lock_closed = ev.value
            else:
                table.estop_button = ev.value
        elif ev.do == "press":
            table.press(ev.target)
        elif ev.do == "release":
            table.release(ev.target)
        elif ev.do == "fault":
            table.inject(ev.target)
            self.checker.fault_injected = True
            note = f"injected fault {ev.target}"
            if ev.target == "link_loss":
                if self.world.has_link:
                    self.world.cut_link(True)
                    note += ": the serial link is cut both ways"
                else:
                    note += f": not applicable on backend {self.backend} (there is no serial link)"
            elif ev.target == "controller_hang" and table.powered and self.hang_until is None:
                self.hang_until = now + HANG_S
                self.result.transitions.append(
                    TransitionRecord(now, self.last_state, "hung", "controller_hang")
                )
            self.result.events.append(EventRecord(now, note))
        elif ev.do == "clear_fault":
            table.clear(ev.target)
            if ev.target == "controller_hang" and self.hang_until is not None:
                self.hang_until = now
            if ev.target == "link_loss":
                self.world.cut_link(False)
            self.result.events.append(EventRecord(now, f"cleared fault {ev.target}"))
        elif ev.do == "power":
            if ev.value and not table.powered:
                table.set_power(True)
                self.world.power(True, now)  # a motion board boots with the table's supply
                self.result.transitions.append(
                    TransitionRecord(now, "power_off", "boot", "power_restored")
                )
            elif not ev.value and table.powered:
                table.set_power(False)
                self.result.transitions.append(
                    TransitionRecord(now, self.last_state, "power_off", "power_cut")
                )
                self.controller = None
                self._end_process()
                self.world.power(False, now)
                self.hang_until = None  # a power cycle ends a hang too

    def tick(self) -> TraceRow:
        """read -> update -> write at ``now``, record the trace row; the caller then advances."""
        table, now = self.table, self.now
        if self.hang_until is not None and now >= self.hang_until:
            # The service watchdog restarts the process: a fresh controller boots.
            self.hang_until = None
            table.clear("controller_hang")
            self.controller = None
            self._end_process()
            self.result.transitions.append(TransitionRecord(now, "hung", "boot", "service_restart"))
        if table.powered and self.hang_until is None and self.controller is None:
            self.hal = self.world.open_hal()  # a process starting opens its hardware first
        self.world.before(now)  # a motion board samples and reports, host or no host
        if not table.powered:
            row = self._record_unpowered(now)
        elif self.hang_until is not None:
            row = self._record_hung(now)
        else:
            row = self._control(now)
        self.world.after(now)  # a motion board takes the host's frames, steps, drives its pins
        for sink in self._sinks:
            sink(row)
        return row

    def _control(self, now: float) -> TraceRow:
        """One tick of the powered, running controller process through its HAL."""
        controller, hal, table = self.controller, self.hal, self.table
        assert hal is not None
        if controller is None:
            controller = self.controller = Controller(
                self.cfg,
                now,
                on_transition=self.result.transitions.append,
                on_event=self.result.events.append,
                program=self.result.scenario.program,
            )
        inputs = hal.read()
        out = controller.update(now, inputs)
        hal.write(out)
        state = self.last_state = controller.state
        motion = controller.motion  # what controller.tracking, .profile, .speed_limit read
        tracking = motion.tracking
        profile = motion.profile
        latched = controller.monitor.latched
        # As _record(...) with these keywords, passed in _row's order (every tick).
        return self._row(
            now,
            state,
            inputs.angle_primary_deg,  # sensor
            profile.pos if tracking else controller.angle,  # setpoint
            out.motor_cmd,
            out.alarm,
            out.brake or table.estop_circuit_open,  # commanded_brake: software and wiring
            inputs.estop_pressed,  # estop_in
            inputs.ankle_locked,
            True,  # powered
            inputs.motor_current_a,  # current
            profile.goal if tracking else None,  # goal
            profile.vel if tracking else 0.0,  # sp_vel
            tracking,
            motion.speed_limit,
            motion.accel_limit,
            controller.session_elapsed_s,
            ";".join(sorted(latched)) if latched else "",  # faults
        )

    def _record_hung(self, now: float) -> TraceRow:
        """Hung: nothing reads, nothing writes; the last outputs stay latched in the
        hardware, but the heartbeat has stopped, so the dead-man cuts the motor."""
        table = self.table
        out = table.outputs
        return self._record(
            now,
            "hung",
            sensor=None,
            setpoint=table.physics.angle,
            motor_cmd=out.motor_cmd,
            alarm=out.alarm,
            commanded_brake=table.brake_engaged,
            estop_in=table.estop_circuit_open,
            ankle_locked=table.ankle_lock_closed,
            powered=True,
            current=table.physics.current,
        )

    def _record_unpowered(self, now: float) -> TraceRow:
        """No supply: the motor is off, the brake (spring-applied) holds, nothing is read."""
        table = self.table
        return self._record(
            now,
            "power_off",
            sensor=None,
            setpoint=table.physics.angle,
            motor_cmd=0.0,
            alarm=False,
            commanded_brake=True,
            estop_in=table.estop_circuit_open,
            ankle_locked=table.ankle_lock_closed,
            powered=False,
            current=0.0,
        )

    def _record(
        self,
        now: float,
        state: str,
        *,
        sensor: float | None,
        setpoint: float,
        motor_cmd: float,
        alarm: bool,
        commanded_brake: bool,
        estop_in: bool,
        ankle_locked: bool,
        powered: bool,
        current: float,
        goal: float | None = None,
        sp_vel: float = 0.0,
        tracking: bool = False,
        speed_limit: float = 0.0,
        accel_limit: float = 0.0,
        session_s: float = 0.0,
        faults: str = "",
    ) -> TraceRow:
        """The one place a tick's trace row is made (and the checker's view of it): the
        trace shows the true angle and the brake as it really is, the checker judges what
        software and wiring commanded."""
        return self._row(
            now,
            state,
            sensor,
            setpoint,
            motor_cmd,
            alarm,
            commanded_brake,
            estop_in,
            ankle_locked,
            powered,
            current,
            goal,
            sp_vel,
            tracking,
            speed_limit,
            accel_limit,
            session_s,
            faults,
        )

    def _row(
        self,
        now: float,
        state: str,
        sensor: float | None,
        setpoint: float,
        motor_cmd: float,
        alarm: bool,
        commanded_brake: bool,
        estop_in: bool,
        ankle_locked: bool,
        powered: bool,
        current: float,
        goal: float | None,
        sp_vel: float,
        tracking: bool,
        speed_limit: float,
        accel_limit: float,
        session_s: float,
        faults: str,
    ) -> TraceRow:
        """``_record``'s body, its arguments by position (the powered tick calls it directly)."""
        physics = self.table.physics
        angle, vel = physics.angle, physics.vel
        # Both rows by position through tuple.__new__ (the same tuples, without the NamedTuples'
        # Python-level __new__).
        self.checker.feed(
            tuple.__new__(
                Row,
                (
                    now,
                    state,
                    angle,
                    vel,
                    sp_vel,
                    goal,
                    tracking,
                    speed_limit,
                    accel_limit,
                    motor_cmd,
                    commanded_brake,
                    estop_in,
                    ankle_locked,
                    powered,
                ),
            )
        )
        return tuple.__new__(
            TraceRow,
            (
                now,
                state,
                angle,
                vel,
                sensor,
                setpoint,
                motor_cmd,
                int(self.table.brake_engaged) if powered else 1,
                goal,
                sp_vel,
                speed_limit,
                accel_limit,
                int(alarm),
                int(estop_in),
                int(ankle_locked),
                int(powered),
                session_s,
                current,
                faults,
                self.late_s * 1000.0,
            ),
        )

    def _end_process(self) -> None:
        """The controller process is gone (power cut, crash): its pins are released."""
        if self.hal is not None:
            self.world.close_hal(self.hal)
            self.hal = None

    def advance(self) -> None:
        """On to the next tick's slot (timed runs move the world in ``begin_tick``)."""
        if not self.timed:
            self.table.advance(PERIOD_S)
        self.k += 1

    def progress(self, row: TraceRow, duration_s: float) -> Progress:
        res, ctrl = self.result, self.controller
        step, target = "", self.cfg.session.target_deg
        interlocks: tuple[str, ...] = ("controller not running",)
        if ctrl is not None:
            interlocks = tuple(ctrl.start_problems())
            session = ctrl.session
            steps, i = session.steps, min(session.step_i, len(session.steps) - 1)
            if row.state in ("ramp", "hold", "paused"):
                target = steps[i][0]
                step = f"step {i + 1}/{len(steps)}: {target:g} deg, hold {steps[i][1]:g} s"
                if row.state == "hold":
                    step += f" ({max(0.0, session.phase_end_t - row.t_s):.0f} s left)"
            elif row.state == "rest":
                target = self.cfg.session.rest_deg
                step = f"rest at {target:g} deg"
            elif row.state in ("returning", "emergency_return", "limp_home", "supervised_return"):
                target = self.cfg.limits.upright_deg
        return Progress(
            row.t_s,
            duration_s,
            row.state,
            row.angle_deg,
            row.setpoint_deg,
            row.session_s,
            self.cfg.session.max_duration_s,
            target,
            bool(row.brake),
            bool(row.alarm),
            res.events[-1].message if res.events else "",
            bool(row.ankle_locked),
            bool(row.estop_in),
            res.events[-1].t_s if res.events else None,
            res.transitions[-1].t_s if res.transitions else 0.0,
            step,
            interlocks,
        )

    def finish(self) -> RunResult:
        self._end_process()
        self.world.close()
        self.result.violations = self.checker.messages()
        self.result.summary = summarize(self.result)
        return self.result


def run_scenario(
    scenario: Scenario,
    *,
    realtime: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    progress_every: int = 10,
    clock: Clock | None = None,
    backend: str = "sim",
    result: RunResult | None = None,
    keep_rows: bool = True,
    trace: Path | None = None,
    plot_series: bool = False,
    board: str = "cpython",
) -> RunResult:
    """Run a whole scenario in simulated time (or paced by ``clock``/``realtime``) on the
    ``sim`` backend (the HAL in-process), ``gpio-mock`` (the gpio backend on mock pins) or
    ``serial`` (the serial backend to the virtual motion board; ``board``: the firmware under
    ``cpython`` in-process or in a ``micropython`` process, sim/mp_board.py).

    Memory: with ``keep_rows=True`` (the default, for tests and scripts that look at the
    rows) ``result.rows`` holds every row, about 300 bytes per 10 ms tick. The CLI passes
    ``keep_rows=False``: only the last ``TAIL_ROWS`` rows stay, the summary and the
    invariant checks are folded in row by row, ``trace`` (a path) is streamed to a
    temporary file renamed into place when the run ends (deleted if it does not end well),
    and ``plot_series`` keeps a bounded copy for the plot."""
    writer = TraceWriter(trace) if trace is not None else None
    try:
        sim = Simulation(
            scenario,
            result=result,
            backend=backend,
            keep_rows=keep_rows,
            trace=writer,
            plot_series=plot_series,
            board=board,
        )
        clock = clock or (RealTimeClock() if realtime else SimClock())
        events = scenario.events
        next_event = 0
        n_ticks = int(round(scenario.duration_s / PERIOD_S))
        for k in range(n_ticks + 1):
            next_event = sim.begin_tick(events, next_event)
            clock.wait_until(sim.now)
            row = sim.tick()
            if on_progress is not None and k % progress_every == 0:
                on_progress(sim.progress(row, scenario.duration_s))
            if k < n_ticks:
                sim.advance()
        done = sim.finish()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        writer.commit()
    return done


def summarize(result: RunResult) -> dict:
    """The summary JSON (DESIGN section 8, a CONTRACT), plus the expectations' verdict,
    from the figures accumulated row by row (``result.stats``): no row list is needed."""
    sc = result.scenario
    cfg = sc.config
    st = result.stats
    if st.rows:
        max_angle, min_angle, final_angle, final_state = (
            st.max_angle,
            st.min_angle,
            st.final_angle,
            st.final_state,
        )
    else:  # stopped before the first tick (a signal during start-up): nothing moved
        max_angle = min_angle = final_angle = (
            cfg.limits.upright_deg if sc.start_angle_deg is None else sc.start_angle_deg
        )
        final_state = "boot"
    summary = {
        "scenario": sc.name,
        "passed": False,
        "violations": [],
        "max_angle_deg": round(max_angle, 4),
        "min_angle_deg": round(min_angle, 4),
        "max_speed_dps": round(st.max_speed, 4),
        "time_past_horizontal_s": round(st.past_horizontal, 2),
        "final_state": final_state,
        "final_angle_deg": round(final_angle, 4),
        "ended_upright": is_upright(final_angle, cfg.limits.upright_deg),
        "transitions": [
            {"t_s": round(t.t_s, 3), "from": t.source, "to": t.dest, "trigger": t.trigger}
            for t in result.transitions
        ],
        "events": [{"t_s": round(e.t_s, 3), "message": e.message} for e in result.events],
        "source": sc.source,
        # Real time: ticks that started more than a period late, and the worst lateness
        # (logged, never a fault by itself; DESIGN section 3).
        "late_ticks": st.late_ticks,
        "max_late_ms": round(st.max_late_ms, 3),
    }
    result.unmet = check_expectations(result, summary)
    summary["violations"] = result.violations + result.unmet
    summary["passed"] = not summary["violations"]
    return summary


def check_expectations(result: RunResult, summary: dict) -> list[str]:
    exp = result.scenario.expect
    unmet = []
    visited = result.stats.visited
    if exp.ended_upright is not None and summary["ended_upright"] != exp.ended_upright:
        unmet.append(
            f"expect.ended_upright = {str(exp.ended_upright).lower()}, but the final angle was "
            f"{summary['final_angle_deg']:.2f} deg"
        )
    if exp.max_angle_deg is not None and summary["max_angle_deg"] > exp.max_angle_deg:
        unmet.append(
            f"expect.max_angle_deg = {exp.max_angle_deg:g}, "
            f"but the angle reached {summary['max_angle_deg']:.2f} deg"
        )
    if exp.min_angle_deg is not None and summary["min_angle_deg"] < exp.min_angle_deg:
        unmet.append(
            f"expect.min_angle_deg = {exp.min_angle_deg:g}, "
            f"but the angle reached {summary['min_angle_deg']:.2f} deg"
        )
    if exp.max_speed_dps is not None and summary["max_speed_dps"] > exp.max_speed_dps:
        unmet.append(
            f"expect.max_speed_dps = {exp.max_speed_dps:g}, "
            f"but the speed reached {summary['max_speed_dps']:.2f} deg/s"
        )
    if exp.final_state is not None and summary["final_state"] != exp.final_state:
        unmet.append(
            f"expect.final_state = {exp.final_state!r}, but it ended in {summary['final_state']!r}"
        )
    for state in exp.visited:
        if state not in visited:
            unmet.append(f"expect.visited: state {state!r} never occurred")
    for state in exp.not_visited:
        if state in visited:
            unmet.append(f"expect.not_visited: state {state!r} occurred")
    if (
        exp.max_time_past_horizontal_s is not None
        and summary["time_past_horizontal_s"] > exp.max_time_past_horizontal_s
    ):
        unmet.append(
            f"expect.max_time_past_horizontal_s = {exp.max_time_past_horizontal_s:g}, "
            f"but it was {summary['time_past_horizontal_s']:.2f} s"
        )
    return unmet


def write_trace(result: RunResult, path: Path) -> None:
    """The trace of a run that kept every row (``keep_rows=True``), written atomically.

    A streaming run passes ``trace=`` to ``run_scenario`` instead: its rows were written as
    they came and only the last ``TAIL_ROWS`` are still here."""
    if not result.rows_complete:
        raise ValueError(
            f"only the last {TAIL_ROWS} rows of this run are in memory: stream its trace "
            "with run_scenario(..., trace=PATH)"
        )
    with TraceWriter(path) as writer:
        writer.write_all(result.rows)


def write_summary(result: RunResult, path: Path) -> None:
    atomic_write(path, lambda fh: json.dump(result.summary, fh, indent=2))
