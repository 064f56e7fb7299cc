"""Stateful property test: random faults combined with random inputs, interleaved with
time, on the real controller plus simulator; the invariant checker must stay clean.

Faults follow the single-fault design basis (IEC 60601-1): at most one fault per run. After
its first fault the table is out of service (latched, sessions refused) until repaired, so
a second fault would be a double fault.

Exemptions, each a documented residual risk (README fault table):
- the speed bound after a runaway or weak-drive fault (the overshoot before detection);
- a failed brake while nothing may drive (e-stop pressed or its latch not yet left, power
  off, controller hung): the shorted windings make it a slow slide, but nothing may hold
  the table (releasing an e-stop must not start the motor; ISO 13850).
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from hal.interfaces import BUTTONS
from sim.faults import FAULTS
from sim.runner import Simulation
from sim.scenario import Event, scenario_from_dict
from tests.conftest import examples

OVERSPEED_FAULTS = {"motor_runaway", "motor_weak"}
BRAKE_FAULTS = {"brake_failed", "brake_slip"}
UNDRIVEN_KINDS = ("envelope", "estop", "power_off", "hung", "overshoot")


class TableUnderFaults(RuleBasedStateMachine):
    @initialize(
        user=st.sampled_from([(80.0, 178.0), (136.0, 198.0), (40.0, 147.0)]),
        target_deg=st.sampled_from([20.0, 45.0, 60.0]),
        seed=st.integers(0, 1000),
    )
    def start(self, user: tuple[float, float], target_deg: float, seed: int) -> None:
        data = {
            "scenario": {"name": "stateful", "duration_s": 1000.0, "seed": seed},
            "user": {"mass_kg": user[0], "height_cm": user[1]},
            "config": {
                "session": {
                    "target_deg": target_deg,
                    "hold_s": 10.0,
                    "rest_s": 3.0,
                    "rest_deg": 0.0,
                }
            },
        }
        self.sim = Simulation(scenario_from_dict(data, "stateful"))
        self.sim.apply(Event(0.0, "set", "ankle_lock", True))
        self.injected: set[str] = set()
        self.active = ""
        self.undriven_with_bad_brake = False
        self.run_for(1.0)

    def run_for(self, seconds: float) -> None:
        for _ in range(int(seconds / 0.01)):
            self.sim.tick()
            self.sim.advance()
            if self.injected & BRAKE_FAULTS and self.sim.last_state == "estop":
                self.undriven_with_bad_brake = True

    @rule(button=st.sampled_from(BUTTONS), hold_s=st.sampled_from([0.2, 1.0, 5.0]))
    def press(self, button: str, hold_s: float) -> None:
        self.sim.apply(Event(self.sim.now, "press", button))
        self.run_for(hold_s)
        self.sim.apply(Event(self.sim.now, "release", button))

    @rule(locked=st.booleans())
    def ankle_lock(self, locked: bool) -> None:
        self.sim.apply(Event(self.sim.now, "set", "ankle_lock", locked))

    @rule(pressed=st.booleans())
    def estop(self, pressed: bool) -> None:
        self.sim.apply(Event(self.sim.now, "set", "estop", pressed))
        self.undriven_with_bad_brake |= pressed and bool(self.injected & BRAKE_FAULTS)

    @precondition(lambda self: not self.injected)
    @rule(fault=st.sampled_from(sorted(FAULTS)))
    def inject(self, fault: str) -> None:
        self.active = fault
        self.injected.add(fault)
        self.sim.apply(Event(self.sim.now, "fault", fault))
        undriven = self.sim.table.estop_circuit_open or self.sim.hang_until is not None
        self.undriven_with_bad_brake |= undriven and bool(self.injected & BRAKE_FAULTS)

    @precondition(lambda self: bool(self.active))
    @rule()
    def clear(self) -> None:
        self.sim.apply(Event(self.sim.now, "clear_fault", self.active))
        self.active = ""

    @rule(seconds=st.sampled_from([1.0, 5.0, 20.0]))
    def wait(self, seconds: float) -> None:
        self.run_for(seconds)

    @invariant()
    def safety_invariants_hold(self) -> None:
        if not hasattr(self, "sim"):
            return
        violations = self.sim.checker.messages()
        if self.injected & OVERSPEED_FAULTS:
            violations = [v for v in violations if not v.startswith("speed:")]
        if self.undriven_with_bad_brake or (
            self.injected & BRAKE_FAULTS and "controller_hang" in self.injected
        ):
            violations = [v for v in violations if not v.startswith(UNDRIVEN_KINDS)]
        assert violations == [], (
            violations,
            self.sim.result.transitions[-6:],
            sorted(self.injected),
        )


TableUnderFaults.TestCase.settings = settings(
    max_examples=examples(25), stateful_step_count=15, suppress_health_check=[HealthCheck.too_slow]
)
test_random_faults_and_inputs_keep_the_invariants = TableUnderFaults.TestCase
