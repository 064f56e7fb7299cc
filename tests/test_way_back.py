"""Issue 11, "nobody is left upside down": the adversarial reproductions as CLI scenarios.

Each ``sim/scenarios/stranded/stranded_*.toml`` is one reproduction of issue 11, run through the
real CLI on all three backends (sim, gpio-mock, serial). They live in a subdirectory, not among
the example scenarios, because several start or end where the invariant checker must object
whatever the controller does (a boot beyond max_angle_deg, a failed brake sliding while the
power is off): the question here is the way back, not a clean run (exit 1 is allowed, exit 2 not).

- ``stranded_1a_beyond_max_angle``: repro 1, boot at 61 deg (max 60); RETURN, UP, power cycle.
- ``stranded_1b_brake_failed_power_cut``: repro 1, failed brake + power cut, slid past the envelope.
- ``stranded_2a_switch_stuck_then_drift`` / ``2b_drift_then_switch_stuck``: repro 2, both orders
  (limp home "ended on the upright switch", ``idle`` off upright with every button dead).
- ``stranded_3a_both_sensors_frozen``: repro 3, both sensors frozen near the goal (load observer
  wind-up ran the table to the 95 deg stop).
- ``stranded_3b_stuck_primary_brake_slip``: repro 3, stuck primary + slipping brake, 136 kg.
- ``stranded_4a_heavy_fast_return`` / ``4b_heavy_fast_return_90``: repro 4, 136 kg, the fastest
  emergency return config check accepts, 60 and 90 deg envelopes (15 deg/s itself is refused:
  ``test_repro4_infeasible_emergency_speed_is_refused``).
- ``stranded_6a_power_cycle_in_estop``: repro 6, the session clock survives a power cycle; DOWN
  and START refused after a reboot off upright.
- ``stranded_6b_cooldown``: repro 6, ``session.cooldown_s`` after a forced return (the key comes
  with issue 11: until then this scenario is invalid input, exit 2).
- ``stranded_7_button_held_at_boot``: repro 7, DOWN held from power-on (gpio debounce).
- ``stranded_8_all_buttons``: repro 8, all five buttons together in a hold: RETURN wins.
- ``stranded_9_boot_unlocked``: repro 9, no motor command while the ankle lock is open.

Repro 5 (serial board firmware) is tested elsewhere. The assertion is TESTING.md's one
question: the person ends upright (true angle in the trace, ``ended_upright`` in the summary),
where the controller held, after a supervised recovery tried (the scenario's last held UP,
held to the end): and that recovery never moves the person toward inversion.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Callable

import pytest

from controller.core.limits import has_left_upright, is_upright
from tests.conftest import SCENARIOS, Run, run_cli, run_scenario_cli

BACKENDS = ("sim", "gpio-mock", "serial")
STRANDED = sorted((SCENARIOS / "stranded").glob("stranded_*.toml"))
UPRIGHT = -80.0  # every stranded scenario keeps the default upright_deg
# A motion under way when UP is pressed stops within this (4 deg/s at 4 deg/s^2: 1 s).
RECOVERY_GRACE_S = 2.0
REGRESS_DEG = 0.5  # during the recovery the table never goes back toward inversion by more

_runs: dict[tuple[str, str], Run] = {}
RunOf = Callable[[str, str], Run]  # the run_of fixture: (scenario name, backend) -> its run


@pytest.fixture(scope="module")
def run_of(tmp_path_factory: pytest.TempPathFactory) -> RunOf:
    """Each (scenario, backend) runs once per module; the specific tests reuse the run."""

    def get(name: str, backend: str) -> Run:
        key = (name, backend)
        if key not in _runs:
            out = tmp_path_factory.mktemp(f"{name}-{backend}")
            _runs[key] = run_scenario_cli(
                SCENARIOS / "stranded" / f"{name}.toml", out, "--backend", backend
            )
        return _runs[key]

    return get


def scenario_events(name: str) -> list[dict]:
    with open(SCENARIOS / "stranded" / f"{name}.toml", "rb") as fh:
        return tomllib.load(fh).get("events", [])


def recovery_start(name: str) -> float | None:
    """The supervised recovery: the last UP press, held to the end of the scenario."""
    ups = [
        e["at_s"] for e in scenario_events(name) if e["do"] == "press" and e.get("input") == "up"
    ]
    releases = [
        e["at_s"] for e in scenario_events(name) if e["do"] == "release" and e.get("input") == "up"
    ]
    if not ups or (releases and max(releases) > max(ups)):
        return None
    return max(ups)


def describe(run: Run) -> str:
    s = run.summary
    return (
        f"final {s['final_state']} at {s['final_angle_deg']} deg; transitions "
        f"{[(t['t_s'], t['to'], t['trigger']) for t in s['transitions']][-8:]}; "
        f"events {[e['message'] for e in s.get('events', [])][-5:]}; stderr {run.stderr[-600:]}"
    )


def assert_way_back(name: str, run: Run) -> None:
    """Upright at the end (true angle), `idle` only upright, the recovery only toward upright."""
    assert run.code != 2, f"invalid input: {run.stderr}"
    final = run.trace[-1]["angle_deg"]
    assert is_upright(final, UPRIGHT) and run.summary["ended_upright"], f"stranded: {describe(run)}"
    for r in run.trace:
        assert not (r["state"] == "idle" and has_left_upright(r["angle_deg"], UPRIGHT)), (
            f"idle off upright at t={r['t_s']:.2f}: angle {r['angle_deg']:.1f}; {describe(run)}"
        )
    start = recovery_start(name)
    if start is not None:
        lowest = None
        for r in run.trace:
            if r["t_s"] < start + RECOVERY_GRACE_S:
                continue
            lowest = r["angle_deg"] if lowest is None else min(lowest, r["angle_deg"])
            assert r["angle_deg"] <= lowest + REGRESS_DEG, (
                f"moved toward inversion during the held UP at t={r['t_s']:.2f}: "
                f"{r['angle_deg']:.1f} after {lowest:.1f}; {describe(run)}"
            )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("scenario", STRANDED, ids=lambda p: p.stem)
def test_nobody_is_left_upside_down(scenario: Path, backend: str, run_of: RunOf) -> None:
    run = run_of(scenario.stem, backend)
    assert_way_back(scenario.stem, run)


def rows_between(run: Run, t0: float, t1: float) -> list[dict]:
    return [r for r in run.trace if t0 <= r["t_s"] <= t1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_repro1_beyond_max_angle_the_way_back_is_not_refused(backend: str, run_of: RunOf) -> None:
    """Beyond max_angle_deg the first RETURN, or the held UP, already moves toward upright
    (the envelope check must never refuse motion toward upright)."""
    run = run_of("stranded_1a_beyond_max_angle", backend)
    assert run.code != 2, run.stderr
    before_power_cut = rows_between(run, 0.0, 19.9)
    assert min(r["angle_deg"] for r in before_power_cut) < 60.0 - 1.0, describe(run)
    assert max(r["angle_deg"] for r in run.trace) <= 61.0 + REGRESS_DEG, describe(run)


@pytest.mark.parametrize("backend", BACKENDS)
def test_repro3_frozen_sensors_do_not_wind_the_drive_up(backend: str, run_of: RunOf) -> None:
    """Both sensors frozen near the goal: no runaway toward inversion (it ran to the 95 deg
    stop at 21.6 deg/s): never past the envelope, never faster than the session limit."""
    run = run_of("stranded_3a_both_sensors_frozen", backend)
    assert run.code != 2, run.stderr
    after = rows_between(run, 38.8, 1e9)
    assert max(r["angle_deg"] for r in after) <= 60.0 + 1.0, describe(run)
    assert max(r["velocity_dps"] for r in after) <= 4.0 + 0.5, describe(run)


@pytest.mark.parametrize("backend", BACKENDS)
def test_repro6_session_clock_survives_a_power_cycle(backend: str, run_of: RunOf) -> None:
    """The session clock (trace ``session_s``) is not restarted by the reboot; DOWN and START
    after the reboot off upright are refused; the 60 s limit still returns the user."""
    run = run_of("stranded_6a_power_cycle_in_estop", backend)
    assert run.code != 2, run.stderr
    left = next(r["t_s"] for r in run.trace if has_left_upright(r["angle_deg"], UPRIGHT))
    clock_start = left - 1.0  # the clock starts when the jog is commanded, before the table leaves
    back = next(
        r["t_s"] for r in run.trace if r["t_s"] > left and is_upright(r["angle_deg"], UPRIGHT)
    )
    for r in run.trace:
        if (
            r["powered"]
            and r["state"] not in ("boot", "power_off", "hung")
            and left <= r["t_s"] < back - 1.0
        ):
            assert r["session_s"] >= r["t_s"] - clock_start - 2.0, (
                f"session clock restarted: session_s {r['session_s']:.1f} at t={r['t_s']:.2f}; "
                f"{describe(run)}"
            )
    at_down = rows_between(run, 49.9, 50.0)[-1]["angle_deg"]
    refused = rows_between(run, 50.0, 70.0)
    assert max(r["angle_deg"] for r in refused) <= at_down + REGRESS_DEG, (
        f"DOWN or START accepted after a reboot off upright; {describe(run)}"
    )
    # Off upright from ~1 s; the 60 s limit plus the return (~30 deg from ~0 deg... at 4 deg/s,
    # 110 deg at most) must bring them back before the supervised recovery at 100 s.
    reached_deg = max(r["angle_deg"] for r in run.trace)
    limit_back = clock_start + 60.0 + (reached_deg - UPRIGHT) / 4.0 + 10.0
    assert back <= limit_back, (
        f"off upright until {back:.1f} s, limit {limit_back:.1f} s; {describe(run)}"
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_repro6_cooldown_after_a_forced_return(backend: str, run_of: RunOf) -> None:
    """After the time limit forced a return, START and DOWN are refused for cooldown_s (30 s);
    after it, DOWN moves again (the cool-down ends)."""
    run = run_of("stranded_6b_cooldown", backend)
    assert run.code != 2, f"session.cooldown_s is not a config key yet (issue 11): {run.stderr}"
    forced = next(t for t in run.summary["transitions"] if t["trigger"] == "time_limit")
    arrived = next(
        t["t_s"]
        for t in run.summary["transitions"]
        if t["t_s"] > forced["t_s"] and t["to"] == "idle"
    )
    assert arrived < 40.0 and arrived + 30.0 > 45.0, (
        f"scenario timing assumption broken: {describe(run)}"
    )
    resting = rows_between(run, arrived, arrived + 30.0)
    assert max(r["angle_deg"] for r in resting) <= UPRIGHT + 1.0, (
        f"tilted during the cool-down; {describe(run)}"
    )
    after = rows_between(run, 70.0, 73.5)
    assert max(r["angle_deg"] for r in after) >= UPRIGHT + 3.0, (
        f"DOWN refused after the cool-down; {describe(run)}"
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_repro7_button_held_at_boot_never_moves_the_table(backend: str, run_of: RunOf) -> None:
    run = run_of("stranded_7_button_held_at_boot", backend)
    assert run.code != 2, run.stderr
    assert max(r["angle_deg"] for r in run.trace) <= UPRIGHT + REGRESS_DEG, (
        f"a DOWN held from power-on moved the table; {describe(run)}"
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_repro8_return_wins_over_the_other_buttons(backend: str, run_of: RunOf) -> None:
    run = run_of("stranded_8_all_buttons", backend)
    assert run.code != 2, run.stderr
    first = next(t for t in run.summary["transitions"] if t["t_s"] >= 40.0)
    assert first["to"] == "emergency_return" and first["t_s"] <= 40.05, describe(run)
    later = rows_between(run, 40.2, 1e9)
    assert all(
        b["angle_deg"] <= a["angle_deg"] + 0.05 for a, b in zip(later, later[1:], strict=False)
    ), describe(run)


@pytest.mark.parametrize("backend", BACKENDS)
def test_repro9_no_motor_command_while_the_ankle_lock_is_open(backend: str, run_of: RunOf) -> None:
    """While ``ankle_locked`` is 0 the motor command is 0, unless it drives toward upright
    from off upright (no brake-test push before the lock is confirmed)."""
    run = run_of("stranded_9_boot_unlocked", backend)
    assert run.code != 2, run.stderr
    for r in run.trace:
        if not r["ankle_locked"] and r["motor_cmd"] != 0.0:
            assert r["motor_cmd"] < 0.0 and not is_upright(r["angle_deg"], UPRIGHT), (
                f"motor command {r['motor_cmd']:.2f} with the ankle lock open at t={r['t_s']:.2f} "
                f"({r['state']}); {describe(run)}"
            )


REPRO4_CONFIG = """
[limits]
max_angle_deg = {max_angle}
[motion]
emergency_speed_dps = 15.0
emergency_accel_dps2 = 15.0
"""


@pytest.mark.parametrize("max_angle", [60.0, 90.0])
def test_repro4_infeasible_emergency_speed_is_refused(max_angle: float, tmp_path: Path) -> None:
    """15 deg/s toward upright is more than the default gearmotor gives a 136 kg, 198 cm user
    near 41 deg (README "Motor capability"): config check and every load refuse it, with numbers."""
    cfg = tmp_path / "fast.toml"
    cfg.write_text(REPRO4_CONFIG.format(max_angle=max_angle))
    res = run_cli("config", "check", cfg)
    assert res.code == 2 and "Traceback" not in res.stderr, res.stderr
    assert str(cfg) in res.stderr and "motion.emergency_speed_dps" in res.stderr, res.stderr
    assert "136 kg" in res.stderr and "N m" in res.stderr, res.stderr
    scenario = tmp_path / "repro4.toml"
    scenario.write_text(
        '[scenario]\nname = "repro 4"\nduration_s = 10.0\n[user]\nmass_kg = 136.0\n'
        f"[config.limits]\nmax_angle_deg = {max_angle}\n"
        "[config.motion]\nemergency_speed_dps = 15.0\nemergency_accel_dps2 = 15.0\n"
    )
    res = run_cli("sim", scenario)
    assert res.code == 2 and "config.motion.emergency_speed_dps" in res.stderr, res.stderr
