"""``make bench`` / ``python -m sim.bench``: the core performance figures, measured.

Reported, never asserted in tests (the machine is shared and noisy):
- real-time factor of a 600 s simulated session including writing its trace CSV
  (target: >= 200x on a 2-core machine);
- the controller's own cost per tick (update() alone, without physics);
- emergency return time from 60 deg divided by the ideal trapezoid time for the
  configured emergency speed and acceleration (target: <= 1.05);
- e-stop latency on the gpio backend over gpiozero's mock pins: from the e-stop pin's edge
  to the motor PWM pin reading 0 (p50, p99), next to the floor: gpiozero's own mock
  callback latency (edge to a no-op callback).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

from controller.profile import trapezoid_time
from sim.runner import run_scenario, write_trace
from sim.scenario import scenario_from_dict

LOCK = {"at_s": 0.5, "do": "set", "input": "ankle_lock", "value": True}


def long_session() -> dict:
    return {"scenario": {"name": "600 s session", "duration_s": 600.0, "seed": 1},
            "config": {"session": {"target_deg": 60.0, "hold_s": 420.0, "max_duration_s": 600.0, "rest_s": 60.0}},
            "events": [LOCK, {"at_s": 1.0, "do": "tap", "input": "start"}]}


def realtime_factor(repeats: int) -> dict:
    scenario = scenario_from_dict(long_session(), "bench")
    times, tick_costs = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            result = run_scenario(scenario)
            write_trace(result, Path(tmp) / "trace.csv")
            times.append(time.perf_counter() - start)
    best = min(times)
    # Controller cost alone: replay the recorded inputs through update() would need the HAL;
    # instead time the same run with the physics stubbed to a no-op.
    from sim import table as table_mod
    original = table_mod.SimTable.advance
    table_mod.SimTable.advance = lambda self, duration: setattr(self, "t", self.t + duration)
    try:
        start = time.perf_counter()
        r = run_scenario(scenario)
        tick_costs.append((time.perf_counter() - start) / len(r.rows))
    finally:
        table_mod.SimTable.advance = original
    return {"sim_seconds": 600.0, "wall_seconds_best": round(best, 3),
            "wall_seconds_median": round(statistics.median(times), 3),
            "realtime_factor": round(600.0 / best, 1),
            "tick_cost_us_without_physics": round(tick_costs[0] * 1e6, 1)}


def emergency_ratio() -> dict:
    data = {"scenario": {"name": "emergency", "duration_s": 80.0, "seed": 1},
            "config": {"session": {"target_deg": 60.0}},
            "events": [LOCK, {"at_s": 1.0, "do": "tap", "input": "start"},
                       {"at_s": 45.0, "do": "tap", "input": "return"}]}
    scenario = scenario_from_dict(data, "bench")
    result = run_scenario(scenario)
    start = next(t.t_s for t in result.transitions if t.dest == "emergency_return")
    rows = [r for r in result.rows if r[0] >= start]
    start_angle = rows[0][2]
    arrived = next(r[0] for r in rows if r[2] <= scenario.config.limits.upright_deg + 0.5)
    m = scenario.config.motion
    ideal = trapezoid_time(start_angle - scenario.config.limits.upright_deg, m.emergency_speed_dps, m.emergency_accel_dps2)
    return {"from_deg": round(start_angle, 2), "seconds": round(arrived - start, 3), "ideal_seconds": round(ideal, 3),
            "ratio": round((arrived - start) / ideal, 4)}


def percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"n": len(ordered), "p50_us": round(pick(0.5) * 1e6, 1), "p99_us": round(pick(0.99) * 1e6, 1),
            "max_us": round(ordered[-1] * 1e6, 1)}


def estop_latency_gpio_mock(n: int = 2000) -> dict:
    """Edge on an e-stop channel pin -> PWM pin at 0, through GpioTable's callback."""
    from gpiozero import DigitalInputDevice
    from gpiozero.pins.mock import MockPWMPin

    from controller.config import Gpio
    from hal.gpio.backend import GpioTable
    from hal.interfaces import Outputs
    from sim.gpio_world import SimPinFactory

    stamps: dict[str, float] = {}

    class StampPin(MockPWMPin):
        def _change_state(self, value):  # noqa: ANN001, ANN202
            changed = super()._change_state(value)
            if changed and self._function == "output" and value == 0.0:
                stamps.setdefault(self.info.name, time.perf_counter())
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
        start = time.perf_counter()
        estop_a.drive_high()
        samples.append(stamps[pwm_name] - start)
        estop_a.drive_low()
    table.close()
    factory.reset()
    # The floor: the same edge to a callback that does nothing.
    factory = SimPinFactory()
    device = DigitalInputDevice(17, pull_up=True, pin_factory=factory)
    pin = factory.pin(17)
    pin.drive_low()
    hit: list[float] = []
    device.when_deactivated = lambda: hit.append(time.perf_counter())
    floor = []
    for _ in range(n):
        hit.clear()
        start = time.perf_counter()
        pin.drive_high()
        floor.append(hit[0] - start)
        pin.drive_low()
    device.close()
    factory.reset()
    return {"estop_to_pwm0": percentiles(samples), "gpiozero_callback_floor": percentiles(floor)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sim.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = {"machine": f"{platform.machine()} {platform.processor() or ''} python {platform.python_version()}".strip(),
               "realtime": realtime_factor(args.repeats), "emergency_return": emergency_ratio(),
               "estop_gpio_mock": estop_latency_gpio_mock()}
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    rt, er = figures["realtime"], figures["emergency_return"]
    print(f"machine: {figures['machine']}")
    print(f"600 s session with trace: {rt['wall_seconds_best']} s wall (median {rt['wall_seconds_median']} s) "
          f"-> {rt['realtime_factor']}x real time  [target >= 200x: {'met' if rt['realtime_factor'] >= 200 else 'NOT met'}]")
    print(f"controller + HAL cost per tick (physics stubbed): {rt['tick_cost_us_without_physics']} us")
    print(f"emergency return from {er['from_deg']} deg: {er['seconds']} s vs ideal {er['ideal_seconds']} s "
          f"-> {er['ratio']}x  [target <= 1.05: {'met' if er['ratio'] <= 1.05 else 'NOT met'}]")
    es = figures["estop_gpio_mock"]
    e, f = es["estop_to_pwm0"], es["gpiozero_callback_floor"]
    print(f"e-stop edge -> motor PWM 0 on gpio-mock: p50 {e['p50_us']} us, p99 {e['p99_us']} us, max {e['max_us']} us "
          f"(n={e['n']})  [target p99 < 1000 us: {'met' if e['p99_us'] < 1000 else 'NOT met'}]")
    print(f"  floor, gpiozero mock edge -> no-op callback: p50 {f['p50_us']} us, p99 {f['p99_us']} us")


if __name__ == "__main__":
    main()
