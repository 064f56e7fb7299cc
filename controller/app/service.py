"""``invtable run`` on hardware: the real-time control loop as a systemd service.

One thread: ``read -> update -> write`` every 10 ms on absolute deadlines
(``controller.core.clock.RealTimeClock``). systemd is told READY=1 after the first complete
tick and WATCHDOG=1 only from the loop itself, so a hung loop stops the pings and systemd
kills and restarts the service (the hardware dead-man has already stopped the motor by
then; the restarted controller brings the user upright). SIGTERM and SIGINT end the loop;
the table is left with the motor off, the supply relay open and the brake engaged, and the
last log line says what the output pins read.

Logs are JSON lines on stdout (journald keeps them): every transition and every event
(faults with their reason, refusals, notes), each with the controller's time.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Any, Callable, Sequence, TextIO

from controller.app.sdnotify import Notifier
from controller.core.clock import Clock, RealTimeClock
from controller.core.config import Config
from controller.core.machine import Controller, EventRecord, TransitionRecord

PERIOD_S = 0.01


class JsonLog:
    """One JSON object a line. Thread-safe: the supervisor's threads log here too."""

    def __init__(self, stream: TextIO = sys.stdout) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def __call__(self, event: str, **fields: Any) -> None:
        line = json.dumps({"event": event, **fields}, separators=(",", ":")) + "\n"
        with self._lock:
            self.stream.write(line)
            self.stream.flush()

    def transition(self, t: TransitionRecord) -> None:
        self("transition", t_s=round(t.t_s, 3), source=t.source, dest=t.dest, trigger=t.trigger)

    def note(self, e: EventRecord) -> None:
        kind = "fault" if e.message.startswith("fault:") else "note"
        self(kind, t_s=round(e.t_s, 3), message=e.message)


def refuse_unrecorded(ctrl: Controller | None, recorder: Any) -> None:
    """Hand the recorder's refusal (its store failed: sessions need their record) to the
    controller, on the control thread after the recorder's poll. Idempotent, so every tick may
    call it, and a controller restarted in the same run (the simulator's power cycles) gets it
    again. Only START from ``idle`` reads it; the way back never does."""
    reason = getattr(recorder, "refusal", None)
    if reason and ctrl is not None:
        ctrl.refuse_sessions("history", reason)
    if ctrl is not None and hasattr(recorder, "allowance_refusal"):
        # The person's daily rules (issue 19): refused until the rest is over, then allowed.
        why = recorder.allowance_refusal
        if why:
            ctrl.refuse_sessions("allowance", why)
        else:
            ctrl.allow_sessions("allowance")


def run_service(
    config: Config,
    *,
    duration: float | None = None,
    pin_factory: Any = None,
    log: JsonLog | None = None,
    make_hardware: Callable[[], Any] | None = None,
    program: Sequence[tuple[float, float]] = (),
    recorder: Any = None,
    clock: Clock | None = None,
    notifier: Notifier | None = None,
    supervisor: Any = None,
) -> int:
    """Run until SIGTERM/SIGINT (or ``duration`` seconds). Exit 0 on a clean stop, 1 when
    the hardware itself failed (systemd restarts the service). ``clock`` and ``notifier``
    are injected by tests (a clock that stalls on cue, a fake notify socket): the loop's
    cadence is then checked exactly, not against a busy machine's wall clock. ``supervisor``
    (``controller.app.supervisor.runtime.Supervisor``) adds the remote RETURN/STOP presses to
    the pendant's and gets the status every tick; neither call waits."""
    log = log or JsonLog()
    if make_hardware is None:
        from hal.gpio.backend import GpioTable

        def make_hardware() -> Any:
            return GpioTable(config.hardware.gpio, pin_factory=pin_factory)

    stop: dict[str, str | None] = {"signal": None}

    def on_signal(signum: int, _frame: object) -> None:
        stop["signal"] = signal.Signals(signum).name

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    notifier = notifier or Notifier()
    hw = None
    code = 0
    try:
        hw = make_hardware()
        clock = clock or RealTimeClock()
        ctrl = Controller(
            config, clock.now(), on_transition=log.transition, on_event=log.note, program=program
        )
        log(
            "start",
            backend=config.hardware.backend,
            period_s=PERIOD_S,
            watchdog_s=notifier.watchdog_interval_s,
        )
        k = 0
        next_ping = 0.0
        missed = 0
        max_late = 0.0
        while stop["signal"] is None and (duration is None or k * PERIOD_S < duration):
            deadline = k * PERIOD_S
            clock.wait_until(deadline)
            now = clock.now()
            max_late = max(max_late, now - deadline)
            if now - deadline > PERIOD_S:
                missed += 1  # reported at the end; the controller copes with a long dt (issue 12)
            inputs = hw.read()
            if supervisor is not None:
                inputs = supervisor.merge(now, inputs)  # remote presses, as the pendant's
            for kind, detail in hw.drain_events() if hasattr(hw, "drain_events") else ():
                log("input", t_s=round(now, 3), edge=kind, detail=detail)
            out = ctrl.update(now, inputs)
            hw.write(out)
            if supervisor is not None:
                supervisor.publish(now, ctrl, out.alarm, out.brake)
            if recorder is not None:
                recorder.poll(ctrl.transitions, ctrl.events, now, ctrl.angle, out.motor_cmd)
                refuse_unrecorded(ctrl, recorder)
            if k == 0:
                notifier.notify("READY=1\nSTATUS=controlling the table")
                log("ready", t_s=round(now, 3))
            if notifier.watchdog_interval_s is not None and now >= next_ping:
                notifier.notify("WATCHDOG=1")
                next_ping = now + notifier.watchdog_interval_s
            k += 1
        log(
            "stopping",
            reason=stop["signal"] or "duration",
            ticks=k,
            late_ticks=missed,
            max_late_ms=round(max_late * 1000.0, 1),
            state=ctrl.state,
            input_edges_dropped=getattr(hw, "events_dropped", 0),
        )
    except Exception as exc:  # the hardware failed: stop safely, let systemd restart us
        log("error", message=f"{type(exc).__name__}: {exc}")
        code = 1
    finally:
        if hw is not None:
            hw.safe_stop()  # first, whatever else fails: nothing (the store least) stands before it
        for s, handler in old.items():
            signal.signal(s, handler)
        notifier.notify("STOPPING=1")
        if recorder is not None:
            try:
                recorder.close()
            except Exception as exc:  # the record is lost, the table is already safe
                log("error", message=f"recording failed at stop: {type(exc).__name__}: {exc}")
        if hw is not None:
            pins = getattr(hw, "pin_outputs", None)
            hw.close()
            if pins is not None:
                log(
                    "stopped",
                    motor_cmd=pins.motor_cmd,
                    brake=pins.brake,
                    motor_power=pins.motor_power,
                )
        notifier.close()
    return code
