"""Issue 17, the campaign's "stranded" findings (seed 2026, 10,000 sessions): the root causes
of docs/campaign-findings/stranded.md, each fixed in the controller and checked here through
the real CLI (``invtable sim``) on the trace, with its scenario under sim/scenarios/stranded/.

- A: a latched runaway (the driver stuck on) was a dead end even after the driver obeyed
  again. Now UP or RETURN first probes the driver on the brake (supply closed, duty 0); a
  driver still on cuts the supply again before anything moves, one that obeys gives the
  supervised way back.
"""

from __future__ import annotations

from controller.core.limits import is_upright
from controller.core.supervised import PROBE_CURRENT_A, PROBE_S
from tests.conftest import SCENARIOS, run_scenario_cli
from tests.test_machine import Driver, inputs

STRANDED = SCENARIOS / "stranded"
UPRIGHT = -80.0


def between(rows: list[dict], t0: float, t1: float) -> list[dict]:
    return [r for r in rows if t0 <= r["t_s"] < t1]


# ---------------------------------------------------------------- A: runaway, then cleared
def test_cli_a_runaway_that_clears_leaves_a_probed_supervised_way_back(tmp_path) -> None:
    run = run_scenario_cli(STRANDED / "campaign_a_runaway_cleared.toml", tmp_path)
    assert run.code == 0, run.stderr
    s = run.summary
    assert s["final_state"] == "idle" and s["ended_upright"]
    hops = [(t["from"], t["to"]) for t in s["transitions"]]
    assert hops[-4:] == [
        ("fault", "supervised_return"),  # UP at 70 s while the driver is still stuck on
        ("supervised_return", "fault"),  # the probe cuts it again
        ("fault", "supervised_return"),  # UP at 80 s, the fault cleared at 75 s
        ("supervised_return", "idle"),
    ]
    messages = [e["message"] for e in s["events"]]
    assert any("supervised_driver_on" in m for m in messages)
    rows = run.trace
    # The first probe (driver still on): the brake holds, the table does not move at all.
    first = between(rows, 69.9, 72.0)
    assert all(r["brake"] == 1.0 and r["motor_cmd"] == 0.0 for r in first)
    assert max(r["angle_deg"] for r in first) - min(r["angle_deg"] for r in first) < 0.05
    assert [r["state"] for r in first if r["state"] == "supervised_return"] == [
        "supervised_return"
    ]  # one tick: the stall current is seen at once
    # The second probe: PROBE_S on the brake at duty 0, then the brake is released.
    probe = between(rows, 80.0, 80.0 + PROBE_S - 0.011)
    assert probe and all(r["brake"] == 1.0 and r["motor_cmd"] == 0.0 for r in probe)
    assert all(r["state"] == "supervised_return" for r in probe)
    moving = between(rows, 80.0 + PROBE_S + 0.1, 140.0)
    assert any(r["brake"] == 0.0 for r in moving)
    # Hold-to-run toward upright only, at the supervised speed.
    best = moving[0]["angle_deg"]
    for r in moving:
        best = min(best, r["angle_deg"])
        assert r["angle_deg"] <= best + 0.5
        assert r["velocity_dps"] > -(2.0 + 1.0)
    assert is_upright(rows[-1]["angle_deg"], UPRIGHT)


def test_a_driver_still_on_is_caught_by_the_probe_before_the_brake_is_released() -> None:
    """Unit level: runaway latched off upright; UP probes on the brake with the supply closed;
    the stall current ends it with the supply cut; once it draws nothing, the brake opens."""
    d = Driver(20.0)  # boot off upright: the return starts
    assert d.ctrl.state == "returning"
    for _ in range(50):
        d.tick()
    angle = d.ctrl.angle
    d.t += 0.01
    d.ctrl.update(d.t, inputs(angle)._replace(motor_current_a=40.0))
    assert d.ctrl.state == "fault" and d.ctrl.monitor.driver_disobeys
    d.tick(angle)
    assert not d.out.motor_power and d.out.brake
    d.tick(angle, buttons=("up",))
    assert d.ctrl.state == "supervised_return"
    assert d.out.motor_power and d.out.brake and d.out.motor_cmd == 0.0  # the probe
    d.t += 0.01
    on = inputs(angle, buttons=("up",))._replace(motor_current_a=PROBE_CURRENT_A + 1.0)
    d.out = d.ctrl.update(d.t, on)
    assert d.ctrl.state == "fault" and "supervised_driver_on" in d.ctrl.monitor.latched
    assert not d.out.motor_power and d.out.brake and d.out.motor_cmd == 0.0
    d.tick(angle)  # released
    d.tick(angle, buttons=("up",))  # pressed again: probed again
    assert d.ctrl.state == "supervised_return"
    for _ in range(int(PROBE_S / 0.01) - 2):
        d.tick(angle, buttons=("up",))
        assert d.out.brake and d.out.motor_cmd == 0.0 and d.out.motor_power
    for _ in range(5):
        d.tick(angle, buttons=("up",))
    assert d.ctrl.state == "supervised_return" and not d.out.brake
    assert d.out.motor_cmd < 0.0  # toward upright
