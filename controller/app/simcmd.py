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

from controller.app.service import refuse_unrecorded
from controller.core.clock import Clock, RealTimeClock
from controller.core.config import Config
from sim.runner import RunResult, Simulation
from sim.scenario import Scenario
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
) -> int:
    """Run the bench until quit, SIGTERM/SIGINT or ``duration``. ``clock``, ``pendant`` (an
    object with ``poll(now) -> [Event]`` and ``quit``) and ``result`` are injected by tests: a
    scripted person pressing the pendant in simulated time, with the run's transitions and
    events (refusals with their reasons) read back from ``result`` (it is given the bench's
    scenario: the program and the person come from the arguments, never from the caller's
    result)."""
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
        sim, result = _run(scenario, writer, duration, recorder, clock, pendant, result)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    print(
        f"invtable run: stopped at t={sim.now:.2f} s in state {sim.last_state}; motor off, brake on"
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
            _loop(sim, clock, duration, stop, pendant, None, recorder)
        elif interactive:
            from controller.app.view import LiveView
            from sim.keyboard import KEYS_HELP, KeyboardPendant

            with (
                KeyboardPendant() as pendant,
                LiveView("invtable run - simulated table (bench)", keys=KEYS_HELP) as view,
            ):
                _loop(sim, clock, duration, stop, pendant, view, recorder)
        else:
            print(
                "invtable run: simulator backend, headless (no terminal): "
                f"{'until SIGTERM' if duration is None else f'for {duration:g} s'}",
                flush=True,
            )
            _loop(sim, clock, duration, stop, None, None, recorder)
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
) -> None:
    ready = view is not None  # the live view shows it; headless, say it once
    while not stop["flag"] and (duration is None or sim.now <= duration + 1e-9):
        clock.wait_until(sim.now)
        if pendant is not None:
            for ev in pendant.poll(sim.now):  # type: ignore[attr-defined]
                sim.apply(ev)
            if pendant.quit:  # type: ignore[attr-defined]
                break
        row = sim.tick()
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
