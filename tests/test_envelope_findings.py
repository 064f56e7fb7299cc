"""The envelope findings of the 10,000-session campaign (seed 2026; docs/campaign-findings/
envelope.md), checked through the real CLI on the trace:

- a boot beyond ``max_angle_deg`` failed at t=0 whatever the controller did: the checker now
  judges the table against where it began (it may only come back, never go deeper);
- a failed brake caught creeping at idle after a limp home was left to slide past upright;
- a failed brake at upright was caught late (one noisy reference reading) and the heavy user
  stopped 0.6 deg past upright;
- with the drive cut (e-stop, power off, a stalled loop past the dead-man) a failed brake lets
  the table slide out of the envelope: that is ``envelope_undriven``, which the campaign's
  judge excuses for brake faults, and the controller is held to the envelope again from where
  it takes over.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import tomllib
from pathlib import Path

from controller.core.config import Config
from sim.campaign.judge import judge
from sim.checks import InvariantChecker, Row

FINDINGS = Path(__file__).resolve().parent.parent / "sim" / "scenarios" / "findings"


def run(tmp_path: Path, scenario: Path) -> tuple[int, dict, list[dict]]:
    trace, summary = tmp_path / "t.csv", tmp_path / "s.json"
    res = subprocess.run(
        [sys.executable, "-m", "controller", "sim", str(scenario), "--backend", "sim"]
        + ["--trace", str(trace), "--summary", str(summary)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode in (0, 1), res.stderr
    with trace.open() as fh:
        rows = list(csv.DictReader(fh))
    return res.returncode, json.loads(summary.read_text()), rows


def kinds(summary: dict) -> list[str]:
    return [v.split(":", 1)[0] for v in summary["violations"]]


def test_a_boot_beyond_max_angle_passes_and_the_table_never_goes_deeper(tmp_path: Path) -> None:
    code, summary, rows = run(tmp_path, FINDINGS / "boot_beyond_max_angle_no_fault.toml")
    assert code == 0 and summary["violations"] == [], summary["violations"]
    assert summary["ended_upright"] and summary["final_state"] == "idle"
    # DOWN held at 2 s moved nothing deeper: the table only came back from 64.5 deg.
    assert max(float(r["angle_deg"]) for r in rows) <= 64.5 + 0.5
    assert "jogging" not in {r["state"] for r in rows}


def _row(t: float, angle: float, state: str = "idle") -> Row:
    return Row(t, state, angle, 0.0, 0.0, None, False, 0.0, 0.0, 0.0, True, False, True, True)


def test_the_checker_still_flags_a_table_that_goes_deeper_than_where_it_began() -> None:
    checker = InvariantChecker(Config())
    for k, angle in enumerate([64.5, 64.0, 62.0, 62.3, 62.6]):
        checker.feed(_row(k * 0.01, angle))
    assert list(checker.violations) == ["envelope"]  # 62.6 is 0.6 past where it came back to
    assert checker.violations["envelope"][0] == 0.04
    undriven = InvariantChecker(Config())
    for k, (angle, state) in enumerate([(-80.0, "idle"), (-81.0, "estop"), (-80.8, "returning")]):
        undriven.feed(_row(k * 0.01, angle, state))
    undriven.feed(_row(0.03, -81.4, "returning"))  # deeper again once driving: the controller's
    assert sorted(undriven.violations) == ["envelope", "envelope_undriven"]


def test_a_brake_that_fails_at_idle_after_a_limp_home_is_held_by_the_motor(tmp_path: Path) -> None:
    code, summary, rows = run(
        tmp_path, FINDINGS / "brake_failed_creeps_at_idle_after_limp_home.toml"
    )
    assert code == 0, summary["violations"]
    creep = next(e["t_s"] for e in summary["events"] if "brake_creep" in e["message"])
    after = [r for r in rows if float(r["t_s"]) >= creep]
    assert min(float(r["angle_deg"]) for r in after) >= -80.5
    # The motor holds at idle (the brake cannot): a duty, the table still, at upright.
    last = after[-1]
    assert last["state"] == "idle" and float(last["motor_cmd"]) > 0.05
    assert abs(float(last["velocity_dps"])) < 0.05 and abs(float(last["angle_deg"]) + 80.0) < 0.5


def test_a_brake_that_fails_at_upright_is_caught_before_the_envelope(tmp_path: Path) -> None:
    code, summary, rows = run(tmp_path, FINDINGS / "brake_failed_sags_below_upright.toml")
    assert code == 0, summary["violations"]
    assert any("brake_creep" in e["message"] for e in summary["events"])
    assert min(float(r["angle_deg"]) for r in rows) >= -80.5


ESTOP_BRAKE_FAILED = """
[scenario]
name = "brake fails in the e-stop at upright"
duration_s = 30.0
seed = 5

[user]
mass_kg = 136.0
height_cm = 198.0

[[events]]
at_s = 0.5
do = "set"
input = "ankle_lock"
value = true

[[events]]
at_s = 2.0
do = "set"
input = "estop"
value = true

[[events]]
at_s = 3.0
do = "fault"
fault = "brake_failed"

[[events]]
at_s = 6.0
do = "set"
input = "estop"
value = false

[[events]]
at_s = 7.0
do = "tap"
input = "return"
"""


def test_a_failed_brake_in_the_estop_is_an_undriven_excursion(tmp_path: Path) -> None:
    """The hardwired cut leaves nothing to drive: the slide is ``envelope_undriven`` (still a
    violation of the run), the campaign's judge excuses it for a brake fault, and RETURN brings
    the user back without going deeper."""
    path = tmp_path / "estop.toml"
    path.write_text(ESTOP_BRAKE_FAILED)
    code, summary, rows = run(tmp_path, path)
    assert code == 1 and "envelope_undriven" in kinds(summary), summary["violations"]
    assert "envelope" not in kinds(summary), summary["violations"]
    assert summary["ended_upright"] and summary["final_state"] == "idle"
    deepest = min(float(r["angle_deg"]) for r in rows if r["state"] == "estop")
    left = [r for r in rows if float(r["t_s"]) > 7.0]
    assert deepest < -80.5 and min(float(r["angle_deg"]) for r in left) >= deepest - 0.5
    verdict = judge(tomllib.loads(ESTOP_BRAKE_FAILED))
    assert not verdict.failed, verdict.reason


def test_a_limp_home_under_way_at_the_time_limit_is_the_way_back(tmp_path: Path) -> None:
    """The sensor drops out 0.8 s before the 60 s limit: the limp home is the return the limit
    asks for (the emergency profile is not trusted on one sensor). It goes on past the limit,
    only toward upright, and ends there; the checker accepts it (RETURN_OK)."""
    code, summary, rows = run(tmp_path, FINDINGS / "time_limit_in_limp_home.toml")
    assert code == 0, summary["violations"]
    left = next(float(r["t_s"]) for r in rows if float(r["angle_deg"]) > -78.0)
    past = [r for r in rows if float(r["t_s"]) > left + 60.0 and r["state"] != "idle"]
    assert past and {r["state"] for r in past} == {"limp_home"}
    assert max(float(r["velocity_dps"]) for r in past) <= 0.05  # never toward inversion
    assert summary["ended_upright"] and summary["final_state"] == "idle"


def test_a_weak_drive_sinking_past_upright_is_held_on_the_brake(tmp_path: Path) -> None:
    """Only the 3 deg following error stopped it (at -81.3 deg); the envelope guard now holds
    on the brake 0.4 deg past upright_deg, as it does past max_angle_deg."""
    code, summary, rows = run(tmp_path, FINDINGS / "motor_weak_sinks_past_upright.toml")
    assert code == 0, summary["violations"]
    assert any(e["message"].startswith("fault: envelope:") for e in summary["events"])
    assert min(float(r["angle_deg"]) for r in rows) >= -80.5
    last = rows[-1]
    assert last["state"] == "fault" and last["brake"] == "1" and float(last["motor_cmd"]) == 0.0
    assert abs(float(last["velocity_dps"])) < 0.05


def test_a_brake_that_fails_with_no_trusted_angle_is_still_caught(tmp_path: Path) -> None:
    """After a drift nobody could single out, the creep check was off at idle and the table slid
    past upright unheld; both readings moving the same way are a creep, and the motor holds."""
    code, summary, rows = run(
        tmp_path, FINDINGS / "brake_failed_at_idle_with_untrusted_sensors.toml"
    )
    assert code == 0, summary["violations"]
    assert any(
        e["message"].startswith("fault: brake_creep: both sensors moved") for e in summary["events"]
    )
    assert min(float(r["angle_deg"]) for r in rows) >= -80.5
    last = rows[-1]
    assert last["state"] == "idle" and float(last["motor_cmd"]) > 0.0
    assert abs(float(last["velocity_dps"])) < 0.05
