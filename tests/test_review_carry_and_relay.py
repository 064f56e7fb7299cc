"""Findings of the review of the merged way-back work (stop 23), each through the real CLI on
the trace, with its scenario under sim/scenarios/stranded/review_*.toml:

1. A held UP carried into the supervised recovery when the e-stop was released (DESIGN:
   releasing the e-stop does not move anything). Anything that refuses the recovery ends the
   carry; a new press is the way back.
2. The carry was re-armed after every monitor stop of a supervised recovery: three probes of
   a driver stuck on again on one press. A hold carries into one supervised recovery only.
4. At idle with a held fault latched the supply relay opened while the motor held the table
   (the brake found failing): brake released, no drive, the table sank to the stop. The relay
   stays closed while the motor holds at idle, and nowhere is the brake released with the
   supply cut.

In 1 and 2 the injected runaway itself passes the emergency speed in its first tick (the
driver is stuck on at full duty before anything can act): the one violation the trace may
hold, checked below.
"""

from __future__ import annotations

from tests.conftest import SCENARIOS, run_scenario_cli

STRANDED = SCENARIOS / "stranded"
UPRIGHT = -80.0


def _only_the_injected_runaway(violations: list[str]) -> bool:
    return len(violations) == 1 and violations[0].startswith("speed: at t=40.01 s")


def test_releasing_the_estop_with_up_held_moves_nothing(tmp_path) -> None:
    run = run_scenario_cli(STRANDED / "review_estop_ends_the_carry.toml", tmp_path)
    s = run.summary
    assert _only_the_injected_runaway(s["violations"]), s["violations"]
    hops = [(t["t_s"], t["from"], t["to"]) for t in s["transitions"]]
    # The e-stop is released at 50 s with UP held since 39 s: nothing starts until the new
    # press at 56 s.
    assert [h for h in hops if h[2] == "supervised_return"] == [
        (56.0, "fault", "supervised_return")
    ]
    still = [r for r in run.trace if 50.0 <= r["t_s"] < 56.0]
    assert all(r["brake"] == 1.0 and r["motor_cmd"] == 0.0 for r in still)
    assert max(r["angle_deg"] for r in still) - min(r["angle_deg"] for r in still) < 0.05
    # ... and the new press is the way back.
    assert s["final_state"] == "idle" and s["ended_upright"]


def test_a_held_up_carries_into_one_supervised_recovery_only(tmp_path) -> None:
    run = run_scenario_cli(STRANDED / "review_carry_once_per_hold.toml", tmp_path)
    s = run.summary
    assert _only_the_injected_runaway(s["violations"]), s["violations"]
    starts = [t for t in s["transitions"] if t["to"] == "supervised_return"]
    assert len(starts) == 1, s["transitions"]  # was 3 (one per re-injected runaway)
    assert s["final_state"] == "fault"
    after = [r for r in run.trace if r["t_s"] >= 44.0]
    assert all(r["brake"] == 1.0 and r["motor_cmd"] == 0.0 for r in after)


def test_idle_on_the_motor_after_a_failed_brake_keeps_the_table_upright(tmp_path) -> None:
    run = run_scenario_cli(STRANDED / "review_idle_motor_hold_keeps_the_supply.toml", tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    s = run.summary
    assert s["final_state"] == "idle" and s["ended_upright"] and not s["violations"]
    idle = [r for r in run.trace if r["state"] == "idle" and r["t_s"] > 100.0]
    assert idle, "never reached idle"
    assert min(r["angle_deg"] for r in idle) > UPRIGHT - 0.5  # sank to -90 before
    assert any(r["brake"] == 0.0 and r["motor_cmd"] != 0.0 for r in idle)  # the motor holds
