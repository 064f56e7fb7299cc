"""The verdict on one session: the run's invariants, the "nobody stranded" rule, no crash.

The stranded rule is independent of the controller (TESTING.md's one question, judged on the
TRUE angle from the physics): the person ends upright, or the supervised recovery a person
would try brings them upright. The recovery is written as scenario events appended after the
session (release every button and the e-stop, lock the ankles, power on, wait 2 s, hold UP
for the distance at the recovery speed plus 30 s) with ``[expect] ended_upright = true``: the
scenario that failed is a file ``invtable sim`` runs alone and fails the same way.

Outcomes: ``upright`` (ended upright), ``recovered`` (the held UP brought them upright),
``held_unmovable`` (a fault that leaves no physical way back is active at the end: a jammed or
runaway drive, the safety relay's cut, a lost link; DESIGN: "only the e-stop while pressed, or
a motor that physically cannot move, stops a way back"), ``held_weak_drive`` (the open item of
docs/safety.md: a weak drive against a heavy load is held on the brake with the alarm, not yet
lifted); and the failures: ``violation`` (an invariant), ``stranded``, ``crash``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from controller.core.errors import InputError
from controller.core.limits import is_upright
from hal.interfaces import BUTTONS
from sim.runner import PERIOD_S, RunResult, Simulation
from sim.scenario import scenario_from_dict

# Faults after which no way back exists for software to offer (tests/test_stateful_two_faults.py).
UNMOVABLE = frozenset({"motor_stall", "motor_runaway", "estop_wire_break", "link_loss"})
# Invariants a fault makes physically impossible to keep: in e-stop (the hardwired relay cut the
# motor), with the power off, or with the controller hung, only the brake holds the table; with
# the brake failed or slipping nothing can: it moves (``estop``, ``power_off``, ``hung``), and
# may slide out of the envelope (``envelope_undriven``, only ever reported in those states).
# Such a violation is no failure by itself: the session is still judged by the stranded rule,
# and any other violation in it is a failure (the envelope once driving again included).
_UNDRIVEN_KINDS = frozenset({"estop", "power_off", "hung", "envelope_undriven"})
EXCUSED: dict[str, frozenset[str]] = {
    "brake_failed": _UNDRIVEN_KINDS,
    "brake_slip": _UNDRIVEN_KINDS,
}
RECOVERY_SPEED_DPS = 1.0  # the slowest way back the design allows: hold-to-run at reduced speed
# ... unless the configuration itself is slower: DESIGN allows ``max_speed_dps`` down to 0.5,
# and a motion is planned below its limit (at least 70 % of it). Holding UP brings the person
# back at the configured pace then, and the judge holds it long enough (campaign 2026 indexes
# 1510, 6291, 9861: 76 deg at 0.35 deg/s take 218 s, the judge held UP for 106 s).
PLANNED_FRACTION = 0.7
RECOVERY_MARGIN_S = 30.0
RECOVERY_WAIT_S = 2.0
FAILURES = ("violation", "stranded", "crash")
PASSES = ("upright", "recovered", "held_unmovable", "held_weak_drive")


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: str  # one of PASSES or FAILURES
    reason: str  # a line a person reads ("" when passed)
    key: str  # what "fails the same way" means to the shrinker: outcome + violation kind
    simulated_s: float  # simulated seconds run (session plus recovery)
    scenario: dict[str, Any]  # the scenario that was judged last (with the recovery if tried)

    @property
    def failed(self) -> bool:
        return self.outcome in FAILURES


def active_faults_at_end(data: dict[str, Any]) -> set[str]:
    active: set[str] = set()
    for ev in data.get("events", []):
        if ev["do"] == "fault":
            active.add(ev["fault"])
        elif ev["do"] == "clear_fault":
            active.discard(ev["fault"])
    return active


def recovery_speed(max_speed_dps: float) -> float:
    """The speed the judge's held UP is timed at: 1 deg/s, or the configured pace if slower."""
    return min(RECOVERY_SPEED_DPS, PLANNED_FRACTION * max_speed_dps)


def with_recovery(
    data: dict[str, Any], distance_deg: float, speed_dps: float = RECOVERY_SPEED_DPS
) -> dict[str, Any]:
    """The session followed by the supervised recovery a person would try, expecting upright
    (UP held for ``distance_deg`` at ``speed_dps``, plus a margin)."""
    out = copy.deepcopy(data)
    end = float(out["scenario"]["duration_s"])
    events = out.setdefault("events", [])
    events += [{"at_s": end, "do": "release", "input": b} for b in BUTTONS]
    events += [
        {"at_s": end, "do": "set", "input": "estop", "value": False},
        {"at_s": end, "do": "set", "input": "ankle_lock", "value": True},
        {"at_s": end, "do": "power", "value": True},
        {"at_s": round(end + RECOVERY_WAIT_S, 2), "do": "press", "input": "up"},
    ]
    hold = max(0.0, distance_deg) / speed_dps + RECOVERY_MARGIN_S
    out["scenario"]["duration_s"] = round(end + RECOVERY_WAIT_S + hold, 1)
    out["expect"] = {"ended_upright": True}
    return out


def _run(data: dict[str, Any], backend: str) -> tuple[RunResult, float]:
    """Run the scenario as ``invtable sim`` does, but stop at the first tick with a violation
    no injected fault excuses: the verdict is then known (the first violation's kind), and a
    campaign where a systematic defect fails half the sessions in their first seconds does not
    simulate them to the end. Returns the result and the simulated seconds actually run."""
    scenario = scenario_from_dict(data, str(data["scenario"].get("name", "campaign")))
    excused = excused_kinds(data)
    sim = Simulation(scenario, backend=backend, keep_rows=False)
    found = sim.checker.violations
    events, next_event = scenario.events, 0
    n_ticks = int(round(scenario.duration_s / PERIOD_S))
    try:
        for k in range(n_ticks + 1):
            next_event = sim.begin_tick(events, next_event)
            sim.tick()
            if found and any(kind not in excused for kind in found):
                break
            if k < n_ticks:
                sim.advance()
    finally:
        result = sim.finish()
    return result, sim.now


def _crash(data: dict[str, Any], exc: BaseException, simulated: float) -> Verdict:
    if isinstance(exc, InputError):
        reason = f"crash: the generated scenario is invalid: {exc.problems[0]}"
    else:
        reason = f"crash: {type(exc).__name__}: {exc}"
    return Verdict("crash", reason, f"crash:{type(exc).__name__}", simulated, data)


def injected(data: dict[str, Any]) -> set[str]:
    return {e["fault"] for e in data.get("events", []) if e["do"] == "fault"}


def excused_kinds(data: dict[str, Any]) -> set[str]:
    """The invariants the injected faults make impossible to keep (``EXCUSED``)."""
    excused: set[str] = set()
    for fault in injected(data):
        excused |= EXCUSED.get(fault, frozenset())
    return excused


def unexcused(violations: list[str], data: dict[str, Any]) -> list[str]:
    """The violations no injected fault excuses."""
    excused = excused_kinds(data)
    return [v for v in violations if v.split(":", 1)[0] not in excused]


def _violation(violations: list[str], data: dict[str, Any], simulated: float, when: str) -> Verdict:
    result_violations = violations
    first = result_violations[0]
    kind = first.split(":", 1)[0]
    more = f" (+{len(result_violations) - 1} more)" if len(result_violations) > 1 else ""
    return Verdict("violation", f"{when}{first}{more}", f"violation:{kind}", simulated, data)


def judge(data: dict[str, Any], backend: str = "sim") -> Verdict:
    """Run one session and judge it (see the module's docstring)."""
    simulated = float(data["scenario"]["duration_s"])
    try:
        result, simulated = _run(data, backend)
    except Exception as exc:  # a crash is a finding, not the campaign's end
        return _crash(data, exc, simulated)
    violations = unexcused(result.violations, data)
    if violations:
        return _violation(violations, data, simulated, "")
    upright_deg = result.scenario.config.limits.upright_deg
    final = result.summary["final_angle_deg"]
    if is_upright(final, upright_deg):
        return Verdict("upright", "", "upright", simulated, data)
    if active_faults_at_end(data) & UNMOVABLE:
        return Verdict("held_unmovable", "", "held_unmovable", simulated, data)
    speed = recovery_speed(result.scenario.config.motion.max_speed_dps)
    recovery = with_recovery(data, final - upright_deg, speed)
    try:
        again, rerun = _run(recovery, backend)
    except Exception as exc:
        return _crash(recovery, exc, simulated)
    simulated += rerun
    violations = unexcused(again.violations, recovery)
    if violations:
        return _violation(violations, recovery, simulated, "during the recovery: ")
    final2 = again.summary["final_angle_deg"]
    if is_upright(final2, upright_deg):
        return Verdict("recovered", "", "recovered", simulated, recovery)
    last = again.rows[-1] if again.rows else None
    weak = "motor_weak" in injected(data)
    if (
        weak
        and again.summary["final_state"] == "fault"
        and last is not None
        and last.alarm
        and last.brake
    ):
        return Verdict("held_weak_drive", "", "held_weak_drive", simulated, recovery)
    reason = (
        f"stranded: ended the session at {final:.1f} deg; after "
        f"{recovery['scenario']['duration_s'] - data['scenario']['duration_s']:.0f} s of "
        f"held UP still at {final2:.1f} deg in {again.summary['final_state']}"
    )
    return Verdict("stranded", reason, "stranded", simulated, recovery)
