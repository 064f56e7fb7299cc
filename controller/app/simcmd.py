"""``invtable run`` with backend "sim": the simulator in real time, driven by a person.

On a terminal, a keyboard pendant (``sim.keyboard``) presses the buttons and flips the
ankle lock and e-stop, and a live view shows the table. Without a terminal (a service,
a test) it runs headless. SIGTERM and SIGINT end it cleanly: the motor is commanded off
and the brake on before the process exits.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

from controller.app.explain import tag
from controller.app.service import refuse_unrecorded
from controller.core.clock import Clock, RealTimeClock
from controller.core.config import Config
from controller.core.limits import is_upright
from sim.runner import RunResult, Simulation
from sim.scenario import Event, Scenario
from sim.trace import TraceWriter


def run_bench(
    config: Config,
    *,
    duration: float | None = None,
    trace: Path | None = None,
    start_angle_deg: float | None = None,
    program: tuple[tuple[float, float], ...] = (),
    recorder: object = None,
    mass_kg: float = 80.0,
    height_cm: float = 178.0,
    clock: Clock | None = None,
    pendant: object = None,
    result: RunResult | None = None,
    who: str = "",
    resume_hint: str = "",
    supervisor: object = None,
) -> int:
    """Run the bench until quit, SIGTERM/SIGINT or ``duration``. ``clock``, ``pendant`` (an
    object with ``poll(now) -> [Event]`` and ``quit``) and ``result`` are injected by tests: a
    scripted person pressing the pendant in simulated time, with the run's transitions and
    events (refusals with their reasons) read back from ``result`` (it is given the bench's
    scenario: the program and the person come from the arguments, never from the caller's
    result). ``supervisor`` adds the remote RETURN/STOP presses (the page, MQTT) to the
    pendant's and is shown the table every tick."""
    scenario = Scenario(
        name="bench",
        duration_s=duration or float("inf"),
        seed=0,
        mass_kg=mass_kg,
        height_cm=height_cm,
        config=config,
        events=(),
        start_angle_deg=start_angle_deg,
        program=program,
    )
    # However long it runs (a service runs for days) memory stays bounded: only the last rows
    # are kept, and with --trace every row streams to a temporary file next to it, renamed
    # into place on exit (a crash or a failed write leaves no partial trace, no temporary file).
    writer = TraceWriter(trace) if trace else None
    try:
        sim, result = _run(
            scenario, writer, duration, recorder, clock, pendant, result, who, supervisor
        )
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    print(
        f"invtable run: stopped at t={sim.now:.2f} s in state {sim.last_state}; motor off, brake on"
    )
    angle = sim.table.physics.angle
    if not is_upright(angle, config.limits.upright_deg):
        print(
            f"invtable run: the simulated person is LEFT OFF UPRIGHT at {angle:.1f} deg, held on "
            "the brake. "
            + (
                resume_hint
                or "Nothing was saved (no --data): this simulated table is discarded; run with "
                "--data DIR to keep the table's angle between runs."
            )
        )
    if writer is not None:
        writer.commit()
        print(f"  trace: {trace}")
    for line in result.violations:
        print(f"invtable: violation: {line}", file=sys.stderr)
    return 0 if not result.violations else 1


def _run(
    scenario: Scenario,
    writer: TraceWriter | None,
    duration: float | None,
    recorder: object,
    clock: Clock | None,
    pendant: object,
    result: RunResult | None,
    who: str = "",
    supervisor: object = None,
) -> tuple[Simulation, RunResult]:
    """The bench loop until the duration ends, the pendant quits or a signal arrives; the
    table is stopped safely (motor off, brake on) however it ends."""
    if result is not None:
        result.scenario = scenario
    sim = Simulation(scenario, result=result, keep_rows=False, trace=writer)
    # Resumed or not, the ankle lock reads as it is (open until someone closes it): the saved
    # state holds only the angle, never a lock nobody confirmed.
    clock = clock or RealTimeClock()
    stop = {"flag": False}

    def on_signal(signum: int, _frame: object) -> None:
        stop["flag"] = True

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    try:
        if pendant is not None:
            _loop(sim, clock, duration, stop, pendant, None, recorder, supervisor)
        elif interactive:
            from controller.app.view import LiveView
            from sim.keyboard import KEYS_HELP, KeyboardPendant

            with (
                KeyboardPendant() as pendant,
                LiveView(
                    "invtable run - simulated table (bench)", keys=KEYS_HELP, subtitle=who
                ) as view,
            ):
                _loop(sim, clock, duration, stop, pendant, view, recorder, supervisor)
        else:
            print(
                "invtable run: simulator backend, headless (no terminal): "
                f"{'until SIGTERM' if duration is None else f'for {duration:g} s'}",
                flush=True,
            )
            _loop(sim, clock, duration, stop, None, None, recorder, supervisor)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        sim.table.safe_stop()  # clean stop: motor off, brake on
        if recorder is not None:
            recorder.close()  # type: ignore[attr-defined]
        result = sim.finish()
    return sim, result


def _loop(
    sim: Simulation,
    clock: Clock,
    duration: float | None,
    stop: dict,
    pendant: object,
    view: object,
    recorder: object = None,
    supervisor: object = None,
) -> None:
    ready = view is not None  # the live view shows it; headless, say it once
    quitting = QuitFlow(sim, view)
    log = None if view is not None else ReadableLog(sim.result)  # headless: lines, as it goes
    while not stop["flag"] and (duration is None or sim.now <= duration + 1e-9):
        clock.wait_until(sim.now)
        if pendant is not None:
            for ev in pendant.poll(sim.now):  # type: ignore[attr-defined]
                sim.apply(ev)
            if quitting.done(pendant):
                break
        if supervisor is not None:
            for ev in supervisor.events(sim.now):  # type: ignore[attr-defined]
                sim.apply(ev)
        row = sim.tick()
        if log is not None:
            log.flush()
        if supervisor is not None:
            supervisor.publish(row.t_s, sim.controller, bool(row.alarm), bool(row.brake))  # type: ignore[attr-defined]
        if recorder is not None:
            recorder.poll(  # type: ignore[attr-defined]
                sim.result.transitions, sim.result.events, row.t_s, row.angle_deg, row.motor_cmd
            )
            refuse_unrecorded(sim.controller, recorder)  # a failed store refuses START from now on
        if not ready:
            print("invtable run: ready", flush=True)
            ready = True
        if view is not None and sim.k % 5 == 0:
            view.update(sim.progress(row, duration or 0.0))  # type: ignore[attr-defined]
        sim.advance()


QUIT_PROMPT = (
    "The person is off upright.  y: bring them upright (RETURN), then quit   "
    "n: carry on   q: quit NOW and leave them there"
)
RETURNING_PROMPT = "Bringing the person upright (RETURN), then quitting.   q: quit NOW instead"


class QuitFlow:
    """``q`` on the keyboard pendant: quits at once with the table upright; off upright it
    asks first, and "y" presses RETURN and quits once the table is idle (upright). The way
    back is the controller's own RETURN: nothing here moves the table by itself."""

    def __init__(self, sim: Simulation, view: object) -> None:
        self.sim, self.view = sim, view
        self.returning = False
        self.release_at: float | None = None

    def _upright(self) -> bool:
        return is_upright(self.sim.table.physics.angle, self.sim.cfg.limits.upright_deg)

    def _prompt(self, text: str) -> None:
        if self.view is not None:
            self.view.prompt = text  # type: ignore[attr-defined]

    def done(self, pendant: Any) -> bool:
        """Whether the loop stops now (called each tick after the pendant's events)."""
        sim, now = self.sim, self.sim.now
        if getattr(pendant, "quit", False):
            return True
        if self.release_at is not None and now >= self.release_at:
            sim.apply(Event(now, "release", "return"))
            self.release_at = None
        if getattr(pendant, "quit_asked", False):
            pendant.quit_asked = False
            if self.returning or self._upright():
                return True  # upright already, or a second q while returning: quit now
            pendant.asking = True
            self._prompt(QUIT_PROMPT)
        answer = getattr(pendant, "answer", None)
        if getattr(pendant, "asking", False) and answer:
            pendant.asking, pendant.answer = False, None
            if answer == "y":
                sim.apply(Event(now, "press", "return"))
                self.release_at = now + 0.2
                self.returning = True
                self._prompt(RETURNING_PROMPT)
            else:
                self._prompt("")
        return self.returning and sim.last_state == "idle" and self._upright()


class ReadableLog:
    """Headless ``run`` (no terminal): each transition and event as a line a person reads,
    printed as it happens (the service on hardware keeps its JSON lines for journald)."""

    def __init__(self, result: RunResult) -> None:
        self.result = result
        self.n_t = self.n_e = 0

    def flush(self) -> None:
        res = self.result
        if len(res.transitions) == self.n_t and len(res.events) == self.n_e:
            return
        lines = [
            (t.t_s, 1, f"{t.source} -> {t.dest} ({t.trigger})") for t in res.transitions[self.n_t :]
        ] + [(e.t_s, 0, f"{tag(e.message)}: {e.message}") for e in res.events[self.n_e :]]
        self.n_t, self.n_e = len(res.transitions), len(res.events)
        for t_s, _, text in sorted(lines, key=lambda x: (x[0], x[1])):
            print(f"  t={t_s:9.2f} s  {text}", flush=True)
