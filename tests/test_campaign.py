"""``invtable campaign`` (issue 17): random sessions judged, failures shrunk to scenarios.

Through the real CLI (subprocess) with small N: the exit codes (0 none failed, 1 some, 2 bad
arguments), ``campaign.json``'s fields, reproducibility (the same seed gives the same result
with one process, two, or a local Dask cluster; one index alone gives the same verdict), and a
planted bug (the session time limit's detector disabled, ``tests/planted_bug``) found and
shrunk to a scenario that ``invtable sim`` then fails the same way, and passes without the bug.
The engine's pure parts (generation, shrinking) are tested in-process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from controller.core.config import read_toml
from sim.campaign.generate import Options, default_faults, generate
from sim.campaign.judge import Verdict, active_faults_at_end, judge, recovery_speed, with_recovery
from sim.campaign.shrink import shrink
from sim.faults import FAULTS
from sim.scenario import scenario_from_dict
from tests.conftest import ROOT, run_cli

PLANTED = ROOT / "tests" / "planted_bug"


def campaign(tmp: Path, *args: str, planted: bool = False, timeout: float = 300) -> Any:
    env_path = os.environ.get("PYTHONPATH", "")
    if planted:
        os.environ["PYTHONPATH"] = f"{PLANTED}{os.pathsep}{env_path}" if env_path else str(PLANTED)
    try:
        return run_cli("campaign", "--out", tmp, "--quiet", *args, timeout=timeout)
    finally:
        if planted:
            if env_path:
                os.environ["PYTHONPATH"] = env_path
            else:
                os.environ.pop("PYTHONPATH", None)


def result_of(out: Path) -> dict[str, Any]:
    data = json.loads((out / "campaign.json").read_text())
    data.pop("wall_s")
    return data


def files_of(out: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((out / "failures").glob("*.toml"))}


# ---------------------------------------------------------------- exit codes and fields
@pytest.mark.parametrize(
    "args, says",
    [
        (["--runs", "0", "--seed", "1"], "--runs"),
        (["--seed", "1"], "--runs"),
        (["--runs", "2", "--seed", "1", "--faults", "motor_stall,warp_drive"], "warp_drive"),
        (["--runs", "2", "--seed", "1", "--max-faults", "9"], "--max-faults"),
        (["--runs", "2", "--seed", "1", "--jobs", "0"], "--jobs"),
        (["--runs", "2", "--seed", "1", "--executor", "ray"], "Dask"),
        (["--runs", "2", "--seed", "1", "--executor", "local", "tcp://x:1"], "--executor"),
        (["--runs", "2", "--seed", "x"], "--seed"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(tmp_path: Path, args: list[str], says: str) -> None:
    r = run_cli("campaign", "--out", tmp_path / "c", *args)
    assert r.code == 2, r.stderr
    assert says in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "c" / "campaign.json").exists()


def test_out_that_is_a_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    r = run_cli("campaign", "--out", f, "--runs", "1", "--seed", "1")
    assert r.code == 2 and "not a folder" in r.stderr


def test_passing_campaign_exits_0_with_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "c"
    r = campaign(out, "--runs", "3", "--seed", "1", "--faults", "none", "--jobs", "1")
    assert r.code == 0, r.stdout + r.stderr
    data = json.loads((out / "campaign.json").read_text())
    assert data["runs"] == 3 and data["seed"] == 1 and data["backend"] == "sim"
    assert data["failures"] == [] and sum(data["outcomes"].values()) == 3
    assert data["simulated_s"] > 3 * 20.0 and data["wall_s"] > 0
    assert data["by_fault"] == {"(none)": data["outcomes"]}
    assert "no failure" in (out / "summary.txt").read_text()
    assert "3 sessions" in r.stdout


# ---------------------------------------------------------------- the planted bug
def test_planted_bug_is_found_and_shrunk_to_a_scenario_sim_fails(tmp_path: Path) -> None:
    out = tmp_path / "c"
    r = campaign(out, "--seed", "3", "--index", "27", "--faults", "none", planted=True)
    assert r.code == 1, r.stdout + r.stderr
    data = json.loads((out / "campaign.json").read_text())
    (failure,) = data["failures"]
    assert failure["index"] == 27 and failure["reason"].startswith("time_limit:")
    assert failure["shrunk"] and "time_limit" in failure["shrunk_reason"]
    path = out / failure["scenario"]
    shrunk = read_toml(path)
    session_events = [e for e in shrunk["events"] if e["at_s"] < shrunk["events"][-1]["at_s"] - 2]
    assert len(session_events) <= 3, shrunk["events"]  # the lock and START (+ at most one)
    assert "user" not in shrunk  # the default person is enough
    assert shrunk["scenario"]["duration_s"] < 120.0
    # `invtable sim` with the bug fails the same way; without it, not for the time limit.
    env = dict(os.environ, PYTHONPATH=str(PLANTED))
    bugged = subprocess.run(
        [sys.executable, "-m", "controller", "sim", str(path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert bugged.returncode == 1 and "time_limit" in bugged.stderr, bugged.stderr
    clean = run_cli("sim", path)
    assert "time_limit" not in clean.stderr, clean.stderr


# ---------------------------------------------------------------- reproducibility
def test_same_seed_same_result_with_one_or_two_processes(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    args = ["--runs", "6", "--seed", "7", "--shrink-per-key", "1", "--shrink-budget", "8"]
    r1 = campaign(one, *args, "--jobs", "1")
    r2 = campaign(two, *args, "--jobs", "2")
    assert r1.code == r2.code and r1.code in (0, 1), r1.stderr + r2.stderr
    assert result_of(one) == result_of(two)
    assert files_of(one) == files_of(two)
    # One index alone gives the same verdict as inside the campaign.
    data = result_of(one)
    failed = {f["index"]: f for f in data["failures"]}
    index = data["failures"][0]["index"] if failed else 0
    alone = tmp_path / "alone"
    campaign(alone, "--seed", "7", "--index", str(index), "--shrink-budget", "0")
    got = result_of(alone)
    assert got["runs"] == 1
    if failed:
        assert got["failures"][0]["reason"] == failed[index]["reason"]
    else:
        assert got["failures"] == []


def test_dask_local_cluster_gives_the_same_files(tmp_path: Path) -> None:
    pytest.importorskip("distributed", reason="the cluster extra is not installed")
    local, dask = tmp_path / "local", tmp_path / "dask"
    args = ["--runs", "4", "--seed", "11", "--shrink-per-key", "1", "--shrink-budget", "6"]
    r1 = campaign(local, *args, "--jobs", "1")
    r2 = campaign(dask, *args, "--jobs", "2", "--executor", "dask")
    assert r1.code == r2.code, r2.stdout + r2.stderr
    assert result_of(local) == result_of(dask)
    assert files_of(local) == files_of(dask)


# ---------------------------------------------------------------- the engine, in-process
def test_sessions_are_a_function_of_seed_and_index() -> None:
    o = Options(seed=5)
    assert generate(o, 3) == generate(o, 3)
    assert generate(o, 3) != generate(o, 4)
    assert generate(o, 3) != generate(Options(seed=6), 3)


def test_sessions_are_valid_and_respect_the_fault_limit() -> None:
    kinds: Counter[str] = Counter()
    for k in (0, 1, 3):
        o = Options(seed=2, max_faults=k, timing="realistic")
        for i in range(40):
            data = generate(o, i)
            scenario_from_dict(data, "generated")  # raises on anything invalid
            active: set[str] = set()
            for ev in data["events"]:
                kinds[ev["do"]] += 1
                if ev["do"] == "fault":
                    active.add(ev["fault"])
                    assert len(active) <= k
                elif ev["do"] == "clear_fault":
                    active.discard(ev["fault"])
                assert ev.get("fault") != "link_loss"  # not on the sim backend
    for do in ("set", "tap", "press", "release", "fault", "power", "stall"):
        assert kinds[do], f"never generated: {do}"
    assert "link_loss" not in default_faults("sim") and "link_loss" in default_faults("serial")
    assert set(default_faults("serial")) == set(FAULTS)


def test_recovery_appends_the_held_up_and_expects_upright() -> None:
    data = generate(Options(seed=1), 0)
    rec = with_recovery(data, 40.0)
    assert rec["expect"] == {"ended_upright": True}
    assert rec["events"][-1] == {
        "at_s": round(data["scenario"]["duration_s"] + 2.0, 2),
        "do": "press",
        "input": "up",
    }
    assert rec["scenario"]["duration_s"] == pytest.approx(data["scenario"]["duration_s"] + 72.0)
    assert data.get("expect") is None  # the session itself is not changed
    assert (
        active_faults_at_end(
            {"events": [{"do": "fault", "fault": "a"}, {"do": "clear_fault", "fault": "a"}]}
        )
        == set()
    )


def test_shrinker_keeps_only_what_the_failure_needs() -> None:
    """A judge that fails whenever a brake_failed fault is injected: the shrunk session is that
    one event, an end just after it, and the default person and setup."""

    def fake_judge(data: dict[str, Any], backend: str) -> Verdict:
        bad = any(e.get("fault") == "brake_failed" for e in data["events"])
        key = "violation:brake" if bad else "upright"
        return Verdict("violation" if bad else "upright", key, key, 1.0, data)

    session = generate(Options(seed=4), 0)
    session["events"].append({"at_s": 30.0, "do": "fault", "fault": "brake_failed"})
    session["scenario"]["duration_s"] = max(session["scenario"]["duration_s"], 200.0)
    small, verdict, runs = shrink(fake_judge(session, "sim"), session, "sim", 400, fake_judge)
    assert small["events"] == [{"at_s": 30.0, "do": "fault", "fault": "brake_failed"}]
    assert small["scenario"]["duration_s"] <= 33.0
    assert "user" not in small and not small.get("config") and verdict.failed
    assert runs < 400


def test_the_held_up_is_timed_at_a_slow_configured_pace() -> None:
    """A configuration slower than 1 deg/s (DESIGN allows max_speed 0.5) is held long enough:
    the way back at the configured pace is a way back (campaign 2026 index 1510)."""
    assert recovery_speed(4.0) == 1.0
    assert recovery_speed(0.5) == pytest.approx(0.35)
    data = generate(Options(seed=1), 0)
    rec = with_recovery(data, 70.0, recovery_speed(0.5))
    assert rec["scenario"]["duration_s"] == pytest.approx(
        data["scenario"]["duration_s"] + 2.0 + 200.0 + 30.0
    )


def test_a_session_at_the_slowest_configuration_is_recovered_at_its_pace() -> None:
    """Campaign seed 2026 index 1510 (max and emergency speed 0.5, no fault): judged stranded
    when the judge held UP for the distance at 1 deg/s; it is brought up at its own pace."""
    data = generate(Options(seed=2026), 1510)
    assert data["config"]["motion"]["max_speed_dps"] == 0.5
    verdict = judge(data)
    assert verdict.outcome in ("upright", "recovered"), verdict.reason
