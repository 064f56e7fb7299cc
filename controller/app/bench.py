"""``invtable bench`` (and ``make bench``): the performance figures, each next to its floor.

Measured, reported, never asserted in tests (the machine is shared and noisy):

- control-loop period jitter at 100 Hz in real time (lateness of each tick against its
  absolute deadline: p50, p99, max, missed ticks) next to a bare periodic Python loop on the
  same clock, with the second core idle and then loaded by a busy process;
- e-stop latency: on ``sim`` from the input edge to the motor command 0 (the edge lands at
  a random moment within a tick; the command follows at the next tick), and on
  ``gpio-mock`` from the e-stop pin's edge to the motor PWM pin at 0 (through the callback),
  next to the floor: gpiozero's own mock edge-to-callback latency;
- serial command round trip over a pseudo-terminal (SET_OUTPUTS out, ACK back through the
  host's reader thread) and codec frames per second;
- simulator real-time factor for a 600 s session with its trace CSV, in process and as
  ``invtable sim`` (process start included), and the controller's own cost per tick (pure
  Python only), with whether ``make fast``'s compiled modules ran them;
- ``invtable campaign`` throughput on 2 cores (simulated seconds per wall second);
- emergency return time divided by the ideal trapezoid time;
- ``invtable run`` headless, on the simulator backend and on the Pi's gpio path with
  gpiozero's mock pins: time from process start to ready, the loop's CPU (the process's own
  CPU time sampled from /proc after ready and before the end), peak RSS.

Every target's figure is measured, never estimated by subtraction; a figure that could not
be measured is reported as "not measured" and its target is not met (``target``).
"""

from __future__ import annotations

import json
import os
import platform
import random
import select
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable
from unittest import mock

from controller.core import clock as stopwatch
from controller.core.profile import trapezoid_time
from sim.runner import run_scenario
from sim.scenario import scenario_from_dict

LOCK = {"at_s": 0.5, "do": "set", "input": "ankle_lock", "value": True}
PERIOD_S = 0.01

TARGETS = {
    "jitter_p99_ratio": 1.5,
    "estop_gpio_mock_p99_us": 1000.0,
    "realtime_factor": 500.0,
    "process_realtime_factor": 1000.0,
    "campaign_rate": 1500.0,
    "emergency_ratio": 1.02,
    "run_cpu_percent": 2.0,
    "run_rss_mb": 60.0,
    "run_ready_s": 1.5,
}


def percentiles(samples: list[float], scale: float = 1e6) -> dict:
    ordered = sorted(samples)
    n = len(ordered)

    def pick(q: float) -> float:
        return round(ordered[min(n - 1, int(q * n))] * scale, 1)

    return {"n": n, "p50": pick(0.5), "p99": pick(0.99), "max": round(ordered[-1] * scale, 1)}


# ---------------------------------------------------------------- loop jitter
class Busy:
    """A process spinning on the other core for the "loaded" measurements."""

    def __enter__(self) -> "Busy":
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait()


def periodic(seconds: float, body: Callable[[], None] | None, spin_s: float) -> dict:
    """Run ``body`` every 10 ms on absolute deadlines; lateness of each start."""
    from controller.core.clock import RealTimeClock

    clock = RealTimeClock(spin_s=spin_s)
    late = []
    n = int(seconds / PERIOD_S)
    for k in range(n):
        deadline = k * PERIOD_S
        clock.wait_until(deadline)
        late.append(max(0.0, clock.now() - deadline))
        if body is not None:
            body()
    out = percentiles(late)
    out["missed"] = sum(1 for x in late if x > PERIOD_S)
    return out


def control_body() -> Callable[[], None]:
    from controller.core.config import Config
    from sim.runner import Simulation
    from sim.scenario import Scenario

    sim = Simulation(
        Scenario(
            name="bench",
            duration_s=1e9,
            seed=0,
            mass_kg=80.0,
            height_cm=178.0,
            config=Config(),
            events=(),
        ),
        keep_rows=False,
    )  # as `invtable run`: the last rows only

    def body() -> None:
        sim.tick()
        sim.advance()

    return body


def jitter(seconds: float, spin_s: float, control_idle_s: float | None = None) -> dict:
    """Bare and control loops, other core idle then loaded; ``control_idle_s`` lengthens the
    idle control run alone (the 10-minute "no missed tick" target)."""
    out = {}
    for loaded in (False, True):
        key = "loaded" if loaded else "idle"
        if loaded:
            with Busy():
                stopwatch.sleep(0.2)
                bare = periodic(seconds, None, spin_s)
                ctrl = periodic(seconds, control_body(), spin_s)
        else:
            bare = periodic(seconds, None, spin_s)
            ctrl = periodic(control_idle_s or seconds, control_body(), spin_s)
        out[key] = {
            "bare_us": bare,
            "control_us": ctrl,
            "p99_ratio": round(ctrl["p99"] / max(bare["p99"], 1.0), 2),
        }
    return out


def timing_methods(seconds: float) -> dict:
    """The bare loop's lateness and CPU cost for each way of waiting: chosen by measurement."""
    out = {}
    for name, spin in (
        ("sleep", 0.0),
        ("sleep_then_spin_0.2ms", 0.0002),
        ("sleep_then_spin_1ms", 0.001),
    ):
        cpu0 = stopwatch.process_time()
        wall0 = stopwatch.perf_counter()
        r = periodic(seconds, None, spin)
        r["cpu_percent"] = round(
            100 * (stopwatch.process_time() - cpu0) / (stopwatch.perf_counter() - wall0), 2
        )
        out[name] = r
    return out


# ---------------------------------------------------------------- e-stop latency
def estop_sim(n: int = 300) -> dict:
    """Real time on the sim backend: an edge at a random moment of a tick; the next tick's
    update commands 0. Latency = that write's time minus the edge's time."""
    from controller.core.config import Config
    from sim.runner import Simulation
    from sim.scenario import Event, Scenario

    sim = Simulation(
        Scenario(
            name="bench",
            duration_s=1e9,
            seed=0,
            mass_kg=80.0,
            height_cm=178.0,
            config=Config(),
            events=(),
        )
    )
    rng = random.Random(1)
    sim.apply(Event(0.0, "set", "ankle_lock", True))
    samples = []
    for _ in range(n):
        sim.apply(Event(sim.now, "set", "estop", False))
        for _ in range(3):
            sim.tick()
            sim.advance()
        start = stopwatch.perf_counter()
        stopwatch.sleep(rng.uniform(0.0, PERIOD_S))  # the edge lands somewhere in the period
        edge = stopwatch.perf_counter()
        while stopwatch.perf_counter() - start < PERIOD_S:
            pass  # the rest of the period
        sim.apply(Event(sim.now, "set", "estop", True))
        row = sim.tick()
        done = stopwatch.perf_counter()
        assert row.motor_cmd == 0.0
        samples.append(done - edge)
        sim.advance()
    return percentiles(samples)


def estop_gpio_mock(n: int = 2000) -> dict:
    """Edge on an e-stop channel pin -> PWM pin at 0, through GpioTable's callback; and the
    floor: the same edge to a callback that does nothing."""
    from gpiozero import DigitalInputDevice
    from gpiozero.pins.mock import MockPWMPin

    from hal.gpio.backend import GpioTable
    from hal.gpio.config import Gpio
    from hal.interfaces import Outputs
    from sim.gpio_world import SimPinFactory

    stamps: dict[str, float] = {}

    class StampPin(MockPWMPin):
        def _change_state(self, value: float) -> bool:
            changed = super()._change_state(value)
            if changed and self._function == "output" and value == 0.0:
                stamps.setdefault(self.info.name, stopwatch.perf_counter())
            return changed

    g = Gpio()
    factory = SimPinFactory()
    factory.pin_class = StampPin
    table = GpioTable(g, pin_factory=factory)
    estop_a = factory.pin(g.estop_a)
    for name in ("estop_a", "estop_b", "overtravel", "ankle_a", "ankle_b"):
        factory.pin(getattr(g, name)).drive_low()
    driving = Outputs(motor_cmd=0.5, brake=False, alarm=False, heartbeat=False, motor_power=True)
    pwm_name = f"GPIO{g.motor_pwm}"
    samples = []
    for _ in range(n):
        table.read()
        table.write(driving)
        stamps.clear()
        start = stopwatch.perf_counter()
        estop_a.drive_high()
        samples.append(stamps[pwm_name] - start)
        estop_a.drive_low()
    table.close()
    factory.reset()
    factory = SimPinFactory()
    device = DigitalInputDevice(17, pull_up=True, pin_factory=factory)
    pin = factory.pin(17)
    pin.drive_low()
    hit: list[float] = []
    device.when_deactivated = lambda: hit.append(stopwatch.perf_counter())
    floor = []
    for _ in range(n):
        hit.clear()
        start = stopwatch.perf_counter()
        pin.drive_high()
        floor.append(hit[0] - start)
        pin.drive_low()
    device.close()
    factory.reset()
    return {
        "estop_to_pwm0_us": percentiles(samples),
        "gpiozero_callback_floor_us": percentiles(floor),
    }


# ---------------------------------------------------------------- serial
def serial_round_trip(n: int = 500) -> dict:
    """SET_OUTPUTS from the real SerialTable over a pty to the board logic (answering from
    its own thread, as the Pico's loop would), ACK back through the host's reader thread."""
    from firmware import protocol as P
    from firmware.board import Board, Sensors
    from hal.interfaces import Outputs
    from hal.serial.backend import SerialTable
    from sim.serial_world import Wire

    wire = Wire()
    board = Board(0)
    board.step(0, Sensors(-80.0, -80.0, upright=True))
    stop = threading.Event()

    def board_side() -> None:
        decoder = P.Decoder()
        while not stop.is_set():
            ready, _, _ = select.select([wire.master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(wire.master, 4096)
            except BlockingIOError:
                continue
            now = int(stopwatch.monotonic() * 1000) % (1 << 30)
            for seq, mtype, payload in decoder.feed(data):
                for reply in board.on_frame(seq, mtype, payload, now):
                    os.write(wire.master, reply)
            os.write(wire.master, board.status_frame())

    thread = threading.Thread(target=board_side, daemon=True)
    thread.start()
    host = SerialTable(wire.path)
    out = Outputs(motor_cmd=0.0, brake=True, alarm=False, heartbeat=False, motor_power=True)
    samples = []
    try:
        for _ in range(n):
            while not host.frames.empty():
                host.frames.get_nowait()
            start = stopwatch.perf_counter()
            host.write(out)
            while True:
                seq, mtype, _ = host.frames.get(timeout=1.0)
                if mtype in (P.ACK, P.NAK):
                    break
            samples.append(stopwatch.perf_counter() - start)
    finally:
        stop.set()
        host.close()
        thread.join(timeout=1.0)
        wire.close()
    # Codec throughput: encode and decode STATUS frames, one second.
    from firmware import protocol as P2

    frame_count = 0
    t0 = stopwatch.perf_counter()
    decoder = P2.Decoder()
    while stopwatch.perf_counter() - t0 < 1.0:
        batch = b"".join(
            P2.pack(i & 0xFF, P2.STATUS, i & 0xFFFF, -8000, -7990, 50, 63, 1, -200, 3, 12)
            for i in range(100)
        )
        frame_count += len(decoder.feed(batch))
    return {
        "round_trip_us": percentiles(samples),
        "codec_frames_per_s": int(frame_count / (stopwatch.perf_counter() - t0)),
    }


# ---------------------------------------------------------------- simulator
def long_session() -> dict:
    return {
        "scenario": {"name": "600 s session", "duration_s": 600.0, "seed": 1},
        "config": {
            "session": {
                "target_deg": 60.0,
                "hold_s": 420.0,
                "max_duration_s": 600.0,
                "rest_s": 60.0,
            }
        },
        "events": [LOCK, {"at_s": 1.0, "do": "tap", "input": "start"}],
    }


def realtime_factor(repeats: int) -> dict:
    scenario = scenario_from_dict(long_session(), "bench")
    times, cpu = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            start, cpu0 = stopwatch.perf_counter(), stopwatch.process_time()
            run_scenario(
                scenario, keep_rows=False, trace=Path(tmp) / "trace.csv"
            )  # as `invtable sim --trace`
            times.append(stopwatch.perf_counter() - start)
            cpu.append(stopwatch.process_time() - cpu0)
    best = min(times)
    from controller.core import fastload
    from sim import table as table_mod

    def no_physics(self: table_mod.SimTable, duration: float) -> None:
        self.t += duration

    tick_cost: float | None = None
    if "sim.table" not in fastload.in_use()["loaded"]:  # a compiled class cannot be patched
        with mock.patch.object(table_mod.SimTable, "advance", no_physics):
            start = stopwatch.perf_counter()
            r = run_scenario(scenario)
            tick_cost = (stopwatch.perf_counter() - start) / r.stats.rows
    return {
        "sim_seconds": 600.0,
        "wall_seconds_best": round(best, 3),
        "wall_seconds_median": round(statistics.median(times), 3),
        "realtime_factor": round(600.0 / best, 1),
        # CPU time: what the run itself costs, less disturbed by other processes on a shared
        # machine than the wall time (the target is judged on the wall time).
        "cpu_seconds_best": round(min(cpu), 3),
        "realtime_factor_by_cpu": round(600.0 / min(cpu), 1),
        "tick_cost_us_without_physics": None if tick_cost is None else round(tick_cost * 1e6, 1),
    }


def sim_process_factor(repeats: int) -> dict:
    """``invtable sim`` on the 600 s session with ``--trace``, as a user runs it: the wall time
    from starting the process to its exit (interpreter start and imports included), best of
    ``repeats``, on one core (the simulator is single-threaded)."""
    import resource

    import tomli_w

    times, cpu = [], []
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp) / "session600.toml"
        scenario.write_text(tomli_w.dumps(long_session()))
        for _ in range(repeats):
            used0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = stopwatch.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "controller", "sim", str(scenario)]
                + ["--trace", str(Path(tmp) / "trace.csv")],
                capture_output=True,
                stdin=subprocess.DEVNULL,
            )
            times.append(stopwatch.perf_counter() - start)
            used = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(used.ru_utime - used0.ru_utime + used.ru_stime - used0.ru_stime)
    best = min(times)
    return {
        "sim_seconds": 600.0,
        "wall_seconds_best": round(best, 3),
        "wall_seconds_median": round(statistics.median(times), 3),
        "realtime_factor": round(600.0 / best, 1),
        # The process's own CPU time (user + system, from the kernel's accounting of the child):
        # the figure a shared machine disturbs least; the target is judged on the wall time.
        "cpu_seconds_best": round(min(cpu), 3),
        "realtime_factor_by_cpu": round(600.0 / min(cpu), 1),
        "exit": done.returncode,
    }


def campaign_rate(runs: int, jobs: int = 2) -> dict:
    """``invtable campaign --runs N --seed 1 --jobs 2`` as a user runs it (process start and the
    worker pool's start included): simulated seconds per wall second over the whole command.
    Shrinking is off (``--shrink-per-key 0``): the figure is the sessions' throughput."""
    with tempfile.TemporaryDirectory() as tmp:
        start = stopwatch.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "controller", "campaign", "--runs", str(runs), "--seed", "1"]
            + ["--jobs", str(jobs), "--quiet", "--shrink-per-key", "0", "--out", tmp],
            capture_output=True,
            stdin=subprocess.DEVNULL,
        )
        wall = stopwatch.perf_counter() - start
        try:
            result = json.loads((Path(tmp) / "campaign.json").read_text())
        except (OSError, ValueError):
            return {"runs": runs, "jobs": jobs, "rate": None, "exit": done.returncode}
    return {
        "runs": runs,
        "jobs": jobs,
        "simulated_s": result["simulated_s"],
        "wall_s": round(wall, 2),
        "rate": round(result["simulated_s"] / wall, 1),
        "outcomes": result["outcomes"],
        "exit": done.returncode,
    }


def timed_realtime_factor() -> dict:
    """The same 600 s session under realistic timing (jitter 3 ms, current lag 3 ticks, a
    stall a minute): what the timing model costs the simulator (the jitter campaign's rate)."""
    data = long_session()
    data["timing"] = {"tick_jitter_ms": 3.0, "current_lag_ticks": 3}
    data["events"] = data["events"] + [
        {"at_s": 60.0 * k + 7.0, "do": "stall", "duration_s": 0.05} for k in range(9)
    ]
    scenario = scenario_from_dict(data, "bench")
    start = stopwatch.perf_counter()
    result = run_scenario(scenario)
    wall = stopwatch.perf_counter() - start
    return {
        "sim_seconds": 600.0,
        "wall_seconds": round(wall, 3),
        "realtime_factor": round(600.0 / wall, 1),
        "late_ticks": result.summary["late_ticks"],
        "faults": [
            e["message"] for e in result.summary["events"] if e["message"].startswith("fault:")
        ],
    }


def service_cadence(seconds: float) -> dict:
    """``invtable run``'s loop on the real clock, in process (simulated table behind it):
    watchdog pings and late ticks. Measured and reported, never asserted: the tests check
    the cadence exactly on an injected clock (tests/test_service.py)."""
    import io

    from controller.app.service import JsonLog, run_service
    from controller.core.config import Config
    from sim.table import SimTable

    class Notifier:
        watchdog_interval_s = 0.2

        def __init__(self) -> None:
            self.sent: list[tuple[float, str]] = []

        def notify(self, message: str) -> bool:
            self.sent.append((stopwatch.perf_counter(), message))
            return True

        def close(self) -> None:
            pass

    cfg = Config()
    notifier, out = Notifier(), io.StringIO()
    run_service(
        cfg,
        duration=seconds,
        log=JsonLog(out),
        notifier=notifier,  # type: ignore[arg-type]
        make_hardware=lambda: SimTable(
            angle_deg=cfg.limits.upright_deg, upright_deg=cfg.limits.upright_deg
        ),
    )
    pings = [t for t, m in notifier.sent if m == "WATCHDOG=1"]
    gaps = [b - a for a, b in zip(pings, pings[1:], strict=False)]
    stopping = next(
        json.loads(line) for line in out.getvalue().splitlines() if '"stopping"' in line
    )
    return {
        "seconds": seconds,
        "pings": len(pings),
        "pings_expected": int(round(seconds / 0.2)),
        "max_ping_gap_ms": round(max(gaps, default=0.0) * 1000, 1),
        "late_ticks": stopping["late_ticks"],
        "max_late_ms": stopping["max_late_ms"],
    }


def emergency_ratio() -> dict:
    data = {
        "scenario": {"name": "emergency", "duration_s": 80.0, "seed": 1},
        "config": {"session": {"target_deg": 60.0}},
        "events": [
            LOCK,
            {"at_s": 1.0, "do": "tap", "input": "start"},
            {"at_s": 45.0, "do": "tap", "input": "return"},
        ],
    }
    scenario = scenario_from_dict(data, "bench")
    result = run_scenario(scenario)
    start = next(t.t_s for t in result.transitions if t.dest == "emergency_return")
    rows = [r for r in result.rows if r[0] >= start]
    start_angle = rows[0][2]
    arrived = next(r[0] for r in rows if r[2] <= scenario.config.limits.upright_deg + 0.5)
    m = scenario.config.motion
    ideal = trapezoid_time(
        start_angle - scenario.config.limits.upright_deg,
        m.emergency_speed_dps,
        m.emergency_accel_dps2,
    )
    return {
        "from_deg": round(start_angle, 2),
        "seconds": round(arrived - start, 3),
        "ideal_seconds": round(ideal, 3),
        "ratio": round((arrived - start) / ideal, 4),
    }


# ---------------------------------------------------------------- invtable run
GPIO_MOCK_ENV = {"GPIOZERO_PIN_FACTORY": "mock", "GPIOZERO_MOCK_PIN_CLASS": "mockpwmpin"}


def proc_cpu_s(pid: int) -> float | None:
    """The process's CPU time so far (user + system, all threads) from ``/proc/PID/stat``, in
    seconds at the kernel's clock-tick resolution; None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14, 15)


def proc_hwm_mb(pid: int) -> float | None:
    """Peak resident memory (VmHWM) of a running process; None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            kb = next(int(ln.split()[1]) for ln in fh if ln.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        return None
    return kb / 1024


def run_process(seconds: float, backend: str = "sim") -> dict:
    """``invtable run`` headless: start-to-ready, the loop's CPU, peak RSS.

    ``backend="sim"``: the simulator backend (the physics runs in the process too).
    ``backend="gpio-mock"``: the Pi's path, ``hardware.backend = "gpio"`` with gpiozero's own
    mock pin factory (``GPIOZERO_PIN_FACTORY=mock``): the service, the controller and the gpio
    HAL, no physics behind the pins (nothing drives the angle sensor, so the controller holds in
    a fault: the loop still reads, updates and writes every 10 ms).

    The loop's CPU is measured, not estimated: the process's own CPU time (``/proc/PID/stat``)
    sampled once it said ready and again before it stops, over the wall time between the two
    samples. Where ``/proc`` cannot be read the figure is None ("not measured")."""
    cmd = [sys.executable, "-m", "controller", "run", "--duration", str(seconds)]
    env = dict(os.environ)
    tmp = None
    if backend == "gpio-mock":
        tmp = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
        tmp.write('[hardware]\nbackend = "gpio"\n')
        tmp.close()
        cmd += ["--config", tmp.name]
        env.update(GPIO_MOCK_ENV)
    start = stopwatch.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    ready = None
    sample: dict[str, Any] = {}
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if "ready" in line and ready is None:
            ready = stopwatch.perf_counter() - start
            cpu0, t0 = proc_cpu_s(proc.pid), stopwatch.perf_counter()
            stopwatch.sleep(max(0.0, seconds - 0.5))
            cpu1, t1 = proc_cpu_s(proc.pid), stopwatch.perf_counter()
            sample = {"hwm": proc_hwm_mb(proc.pid), "window": t1 - t0}
            if cpu0 is not None and cpu1 is not None:
                sample["loop_cpu"] = cpu1 - cpu0
    _, status, usage = os.wait4(proc.pid, 0)
    wall = stopwatch.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if tmp is not None:
        os.unlink(tmp.name)
    cpu = usage.ru_utime + usage.ru_stime
    loop_cpu = sample.get("loop_cpu")
    state = None
    for line in lines:
        if '"stopping"' in line:
            try:
                state = json.loads(line).get("state")
            except ValueError:
                pass
    return {
        "backend": backend,
        "ready_s": None if ready is None else round(ready, 3),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 3),
        "cpu_percent_of_a_core": round(100 * cpu / wall, 2),
        # Measured over the window between the two /proc samples (None: not measured).
        "loop_cpu_percent": None
        if loop_cpu is None
        else round(100 * loop_cpu / sample["window"], 2),
        "loop_window_s": round(sample["window"], 2) if sample else None,
        "cpu_resolution_s": round(1 / os.sysconf("SC_CLK_TCK"), 4),
        "peak_rss_mb": None if sample.get("hwm") is None else round(sample["hwm"], 1),
        "state": state,
        "exit": proc.returncode,
    }


def target(value: float | None, limit: float, below: bool = True) -> tuple[Any, bool | None]:
    """(the figure, met?) for the targets table; ``None`` when the figure was not measured:
    a missing figure never passes."""
    if value is None or value != value:  # None or NaN
        return ("not measured", None)
    return (value, value < limit if below else value >= limit)


# ---------------------------------------------------------------- report
def supervised_loop(seconds: float) -> dict:
    """The service loop with the supervisor page open (issue 15); none when aiohttp is absent."""
    try:
        from controller.app.supervisor.bench import supervised
    except ImportError:
        return {}
    return supervised(seconds)


def measure(quick: bool = False, long: bool = False) -> dict[str, Any]:
    seconds = 1.0 if quick else 10.0
    from controller.core import fastload
    from controller.core.clock import DEFAULT_SPIN_S

    figures: dict[str, Any] = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
        "loop_timing_methods": timing_methods(1.0 if quick else 5.0),
        "jitter": jitter(seconds, DEFAULT_SPIN_S, 600.0 if long else None),
        "estop_sim_us": estop_sim(30 if quick else 300),
        "estop_gpio_mock": estop_gpio_mock(200 if quick else 2000),
        "serial": serial_round_trip(50 if quick else 500),
        # Whether `make fast`'s compiled modules ran the simulator figures (the `invtable sim`
        # child inherits the environment and the tree, so it decides the same).
        "compiled": fastload.in_use(),
        "simulator": realtime_factor(1 if quick else 3),
        "simulator_process": sim_process_factor(1 if quick else 3),
        "campaign": campaign_rate(4 if quick else 60),
        "emergency_return": emergency_ratio(),
        "simulator_timed": timed_realtime_factor(),
        "service_cadence": service_cadence(1.0 if quick else 5.0),
        "run": run_process(2.0 if quick else 10.0),
        "supervised": supervised_loop(1.0 if quick else 10.0),
        "run_gpio_mock": run_process(2.0 if quick else 10.0, "gpio-mock"),
    }
    j = figures["jitter"]["idle"]
    figures["targets"] = {
        "loop jitter p99 <= 1.5x bare loop p99 (idle)": (
            j["p99_ratio"],
            j["p99_ratio"] <= TARGETS["jitter_p99_ratio"],
        ),
        "no missed tick unloaded"
        + (" (10 min)" if long else f" (over {seconds:g} s; --long for 10 min)"): (
            j["control_us"]["missed"],
            j["control_us"]["missed"] == 0,
        ),
        "e-stop edge -> motor 0 p99 < 1 ms on gpio-mock (us)": (
            figures["estop_gpio_mock"]["estop_to_pwm0_us"]["p99"],
            figures["estop_gpio_mock"]["estop_to_pwm0_us"]["p99"]
            < TARGETS["estop_gpio_mock_p99_us"],
        ),
        "simulator >= 500x real time": (
            figures["simulator"]["realtime_factor"],
            figures["simulator"]["realtime_factor"] >= TARGETS["realtime_factor"],
        ),
        "invtable sim 600 s session with trace >= 1000x real time (process start included)": (
            target(
                figures["simulator_process"]["realtime_factor"],
                TARGETS["process_realtime_factor"],
                below=False,
            )
        ),
        "invtable campaign >= 1500 simulated s per wall s on 2 cores": target(
            figures["campaign"]["rate"], TARGETS["campaign_rate"], below=False
        ),
        "emergency return <= 1.02x ideal": (
            figures["emergency_return"]["ratio"],
            figures["emergency_return"]["ratio"] <= TARGETS["emergency_ratio"],
        ),
        "invtable run (sim) loop CPU < 2 % of a core": target(
            figures["run"]["loop_cpu_percent"], TARGETS["run_cpu_percent"]
        ),
        "invtable run (sim) RSS < 60 MB": target(
            figures["run"]["peak_rss_mb"], TARGETS["run_rss_mb"]
        ),
        "invtable run (sim) ready < 1.5 s": target(
            figures["run"]["ready_s"], TARGETS["run_ready_s"]
        ),
        "invtable run (gpio-mock) loop CPU < 2 % of a core": target(
            figures["run_gpio_mock"]["loop_cpu_percent"], TARGETS["run_cpu_percent"]
        ),
        "invtable run (gpio-mock) RSS < 60 MB": target(
            figures["run_gpio_mock"]["peak_rss_mb"], TARGETS["run_rss_mb"]
        ),
    }
    return figures


def print_table(f: dict[str, Any], stream: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=stream or sys.stdout)
    console.print(f"[bold]invtable bench[/bold] on {f['machine']}")
    t = Table(title="figures and their floors")
    for col in ("figure", "measured", "floor / reference"):
        t.add_column(col)
    for load in ("idle", "loaded"):
        j = f["jitter"][load]
        c, b = j["control_us"], j["bare_us"]
        t.add_row(
            f"100 Hz control loop lateness, other core {load} (us)",
            f"p50 {c['p50']}  p99 {c['p99']}  max {c['max']}  missed {c['missed']}",
            f"bare loop: p50 {b['p50']}  p99 {b['p99']}  max {b['max']}",
        )
    for name, r in f["loop_timing_methods"].items():
        t.add_row(
            f"bare loop waiting by {name} (us)",
            f"p99 {r['p99']}  max {r['max']}",
            f"CPU {r['cpu_percent']} %",
        )
    e = f["estop_gpio_mock"]
    t.add_row(
        "e-stop edge -> PWM 0, gpio-mock (us)",
        f"p50 {e['estop_to_pwm0_us']['p50']}  p99 {e['estop_to_pwm0_us']['p99']}",
        f"gpiozero mock callback: p50 {e['gpiozero_callback_floor_us']['p50']}  "
        f"p99 {e['gpiozero_callback_floor_us']['p99']}",
    )
    s = f["estop_sim_us"]
    t.add_row(
        "e-stop edge -> command 0, sim, real time (us)",
        f"p50 {s['p50']}  p99 {s['p99']}",
        "the next 10 ms tick",
    )
    sr = f["serial"]
    t.add_row(
        "serial SET_OUTPUTS -> ACK over a pty (us)",
        f"p50 {sr['round_trip_us']['p50']}  p99 {sr['round_trip_us']['p99']}",
        f"codec: {sr['codec_frames_per_s']} frames/s",
    )
    sim = f["simulator"]
    t.add_row(
        "600 s session with trace, simulated",
        f"{sim['wall_seconds_best']} s: {sim['realtime_factor']}x real time "
        f"(CPU {sim['cpu_seconds_best']} s: {sim['realtime_factor_by_cpu']}x)",
        "controller + HAL: not measured (compiled)"
        if sim["tick_cost_us_without_physics"] is None
        else f"controller + HAL {sim['tick_cost_us_without_physics']} us per tick",
    )
    co = f.get("compiled", {})
    t.add_row(
        "compiled modules (`make fast`)",
        f"used: {len(co['loaded'])} modules" if co.get("compiled") else "not used: pure Python",
        co.get("reason", "-"),
    )
    sp = f["simulator_process"]
    t.add_row(
        "invtable sim, the same session, whole process",
        f"{sp['wall_seconds_best']} s: {sp['realtime_factor']}x real time "
        f"(CPU {sp['cpu_seconds_best']} s: {sp['realtime_factor_by_cpu']}x)",
        "interpreter start and imports included",
    )
    ca = f["campaign"]
    t.add_row(
        f"invtable campaign --runs {ca['runs']} --jobs {ca['jobs']}",
        f"{_figure(ca['rate'], 'simulated s per wall s')}",
        f"{ca.get('simulated_s', '-')} simulated s in {ca.get('wall_s', '-')} s "
        "(process and pool start included, no shrinking)",
    )
    st = f["simulator_timed"]
    t.add_row(
        "the same under \\[timing] (jitter 3 ms, lag 3, stalls)",
        f"{st['wall_seconds']} s: {st['realtime_factor']}x real time",
        f"{st['late_ticks']} late ticks, faults: {len(st['faults'])}",
    )
    sc = f["service_cadence"]
    t.add_row(
        f"service loop, real clock, {sc['seconds']:g} s",
        f"{sc['pings']} watchdog pings (max gap {sc['max_ping_gap_ms']} ms)",
        f"expected {sc['pings_expected']}; {sc['late_ticks']} late "
        f"ticks, max {sc['max_late_ms']} ms late",
    )
    for name, sv in f.get("supervised", {}).items():
        t.add_row(
            f"service loop lateness, {name}, {sv['feeds']} feeds connected (us)",
            f"p50 {sv['p50']}  p99 {sv['p99']}  max {sv['max']}  missed {sv['missed']}",
            f"process CPU {sv['process_cpu_percent']} % (no supervisor: first row)",
        )
    er = f["emergency_return"]
    t.add_row(
        "emergency return from 60 deg",
        f"{er['seconds']} s: {er['ratio']}x",
        f"ideal trapezoid {er['ideal_seconds']} s",
    )
    for key, what in (("run", "sim, headless"), ("run_gpio_mock", "gpio-mock, the Pi's path")):
        r = f[key]
        t.add_row(
            f"invtable run ({what})",
            f"ready {_figure(r['ready_s'], 's')}, loop CPU {_figure(r['loop_cpu_percent'], '%')} "
            f"over {r['loop_window_s']} s, RSS {_figure(r['peak_rss_mb'], 'MB')}",
            f"whole process CPU {r['cpu_percent_of_a_core']} % (start-up included); "
            f"state {r['state']}",
        )
    console.print(t)
    tg = Table(title="targets")
    tg.add_column("target")
    tg.add_column("measured")
    tg.add_column("")
    for name, (value, met) in f["targets"].items():
        verdict = {
            True: "[green]met[/green]",
            False: "[red]NOT met[/red]",
            None: "[yellow]NOT MEASURED[/yellow]",
        }[met]
        tg.add_row(name, str(value), verdict)
    console.print(tg)


def _figure(value: float | None, unit: str) -> str:
    return "not measured" if value is None else f"{value} {unit}"


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(
        prog="invtable bench", description="measure the performance figures"
    )
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument(
        "--quick", action="store_true", help="short runs (a smoke test, not figures to publish)"
    )
    p.add_argument(
        "--long",
        action="store_true",
        help="10 minutes of loop timing (the 'no missed tick' target)",
    )
    args = p.parse_args(argv)
    print(
        "invtable bench: measuring (about "
        + ("20 s" if args.quick else "12 min" if args.long else "2 min")
        + ") ...",
        file=sys.stderr,
        flush=True,
    )
    figures = measure(quick=args.quick, long=args.long)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print_table(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
