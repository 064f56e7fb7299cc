"""Profiles, screening, programs, progression, the duty budget and the history, through the
real CLI (the simulator behind `session start`)."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controller.app.programs import builtin_programs
from controller.app.progression import plan_session
from tests.conftest import ROOT, read_trace, run_cli


def add(data: Path, name: str, screening: str = "no", **kw: object) -> None:
    extra = [f"--{k.replace('_', '-')}={v}" for k, v in kw.items()]
    res = run_cli(
        "user",
        "add",
        name,
        "--height-cm",
        "175",
        "--weight-kg",
        "80",
        "--screening",
        screening,
        "--data",
        data,
        *extra,
    )
    assert res.code == 0, res.stderr


def history(data: Path) -> list[dict]:
    res = run_cli("history", "--json", "--data", data)
    assert res.code == 0, res.stderr
    return json.loads(res.stdout)


def test_profile_lifecycle_and_bad_input_writes_nothing(tmp_path: Path) -> None:
    add(tmp_path, "ann")
    db = (tmp_path / "invtable.db").read_bytes()
    for args, fragment in [
        (["--height-cm", "140"], "--height-cm: 140 is outside the table's 147 .. 198 cm"),
        (["--weight-kg", "150"], "--weight-kg: 150 is outside"),
        (["--screening", "flu"], "--screening: unknown condition(s) flu"),
        (["--max-session-s", "900"], "--max-session-s: 900 is outside 10 .. 600"),
    ]:
        base = {"--height-cm": "175", "--weight-kg": "80", "--screening": "no"}
        base[args[0]] = args[1]
        res = run_cli(
            "user", "add", "bob", *[x for kv in base.items() for x in kv], "--data", tmp_path
        )
        assert res.code == 2 and fragment in res.stderr and "Traceback" not in res.stderr, (
            res.stderr
        )
    assert (
        run_cli(
            "user",
            "add",
            "ann",
            "--height-cm",
            "175",
            "--weight-kg",
            "80",
            "--screening",
            "no",
            "--data",
            tmp_path,
        ).code
        == 2
    )  # already there
    assert (tmp_path / "invtable.db").read_bytes() == db  # nothing written
    assert run_cli("user", "show", "nobody", "--data", tmp_path).code == 2
    assert run_cli("user", "edit", "ann", "--stage", "established", "--data", tmp_path).code == 0
    shown = json.loads(run_cli("user", "show", "ann", "--json", "--data", tmp_path).stdout)
    assert shown["stage"] == "established" and not shown["locked_out"]
    assert "ann" in run_cli("user", "list", "--data", tmp_path).stdout
    assert run_cli("user", "remove", "ann", "--data", tmp_path).code == 0
    assert "ann" not in run_cli("user", "list", "--data", tmp_path).stdout


def test_a_locked_out_profile_never_passes_horizontal_until_cleared(tmp_path: Path) -> None:
    add(tmp_path, "bob", screening="high_blood_pressure,anticoagulants")
    trace = tmp_path / "t.csv"
    res = run_cli(
        "session",
        "start",
        "--user",
        "bob",
        "--program",
        "first session",
        "--data",
        tmp_path,
        "--trace",
        trace,
    )
    assert res.code == 0, res.stderr
    assert "LOCKED OUT" in res.stdout and "clipped to 0 deg (screening" in res.stdout
    assert max(r["angle_deg"] for r in read_trace(trace)) <= 0.5  # the true angle, whole trace
    assert (
        run_cli("user", "edit", "bob", "--cleared-by", "Dr. Okafor", "--data", tmp_path).code == 0
    )
    shown = json.loads(run_cli("user", "show", "bob", "--json", "--data", tmp_path).stdout)
    assert shown["cleared_by"] == "Dr. Okafor" and shown["cleared_at"] and not shown["locked_out"]


@pytest.mark.parametrize("program", sorted(builtin_programs()))
def test_each_builtin_program_runs_within_its_limits(program: str, tmp_path: Path) -> None:
    add(tmp_path, "cat", stage="established", max_angle_deg=45)
    # A history good enough that progression does not clip: a completed 40 deg real session.
    db = sqlite3.connect(tmp_path / "invtable.db")
    with db:
        db.execute(
            "INSERT INTO sessions (user, user_id, program, started_at, ended_at, peak_deg, hold_s, "
            "outcome, motor_on_s, source) "
            "VALUES ('cat', (SELECT uid FROM users WHERE name='cat'), 'x', ?, ?, 40.0, "
            "300.0, 'completed', 0.0, 'real')",
            (time.time() - 30 * 86400,) * 2,
        )
    db.close()
    trace = tmp_path / "t.csv"
    res = run_cli(
        "session",
        "start",
        "--user",
        "cat",
        "--program",
        program,
        "--data",
        tmp_path,
        "--trace",
        trace,
    )
    assert res.code == 0, res.stderr
    assert "outcome: completed" in res.stdout
    rows = read_trace(trace)
    p = builtin_programs()[program]
    targets = [45.0 if t == "max" else t for t, _ in p.steps]
    assert max(r["angle_deg"] for r in rows) <= max(targets) + 0.5
    # Every step's target is reached (within 1 deg) in order, and it ends resting then upright.
    holds = [r for r in rows if r["state"] == "hold"]
    for t in targets:
        assert any(abs(r["angle_deg"] - t) < 1.0 for r in holds), t
    runs = [r["state"] for i, r in enumerate(rows) if i == 0 or rows[i - 1]["state"] != r["state"]]
    assert runs[-3:] == ["rest", "returning", "idle"]
    assert abs(rows[-1]["angle_deg"] + 80.0) < 0.5
    assert history(tmp_path)[-1]["outcome"] == "completed"


def test_progression_clips_an_over_ambitious_program_and_says_so() -> None:
    plan = plan_session(
        [(60.0, 300.0)],
        profile_max_deg=60.0,
        profile_max_session_s=600.0,
        table_max_deg=60.0,
        table_max_session_s=600.0,
        best_peak_deg=25.0,
        best_hold_s=120.0,
        beginner=False,
        days_since_first=30.0,
        locked_out=False,
    )
    assert plan.steps == ((35.0, 240.0),)
    assert any("+10 deg over the best" in c for c in plan.clips) and any(
        "+2 minutes" in c for c in plan.clips
    )
    tight = plan_session(
        [(20.0, 300.0)],
        profile_max_deg=60.0,
        profile_max_session_s=120.0,
        table_max_deg=60.0,
        table_max_session_s=600.0,
        best_peak_deg=20.0,
        best_hold_s=600.0,
        beginner=False,
        days_since_first=30.0,
        locked_out=False,
        overhead_s=60.0,
    )
    assert (
        tight.steps == ((20.0, 0.9 * 120.0 - 60.0),)
        and "must fit its 120 s limit" in tight.clips[0]
    )
    beginner = plan_session(
        [(60.0, 60.0)],
        profile_max_deg=60.0,
        profile_max_session_s=600.0,
        table_max_deg=60.0,
        table_max_session_s=600.0,
        best_peak_deg=50.0,
        best_hold_s=600.0,
        beginner=True,
        days_since_first=3.0,
        locked_out=False,
    )
    assert beginner.steps == ((30.0, 60.0),) and "first two weeks" in beginner.clips[0]


def test_malformed_and_unknown_programs_exit_2_naming_the_field(tmp_path: Path) -> None:
    add(tmp_path, "dan")
    (tmp_path / "programs").mkdir()
    (tmp_path / "programs" / "bad.toml").write_text(
        '[program]\nname = "bad"\nsteps = [[120.0, 10.0]]\n'
    )
    res = run_cli("program", "list", "--data", tmp_path)
    assert (
        res.code == 2
        and "bad.toml: program.steps[0]: must be" in res.stderr
        and "Traceback" not in res.stderr
    )
    (tmp_path / "programs" / "bad.toml").write_text(
        '[program]\nname = "mine"\nsteps = [[15.0, 30.0]]\n'
    )
    assert "mine:" in run_cli("program", "list", "--data", tmp_path).stdout
    res = run_cli("session", "start", "--user", "dan", "--program", "nope", "--data", tmp_path)
    assert res.code == 2 and "--program: no program 'nope'" in res.stderr
    res = run_cli("session", "start", "--user", "nobody", "--program", "mine", "--data", tmp_path)
    assert res.code == 2 and "--user: no user 'nobody'" in res.stderr
    assert history(tmp_path) == []  # nothing recorded


def test_the_duty_budget_refuses_a_session_with_the_wait(tmp_path: Path) -> None:
    add(tmp_path, "eve")
    db = sqlite3.connect(tmp_path / "invtable.db")
    t0 = time.time()
    with db:
        db.execute(
            "INSERT INTO sessions "
            "(user, program, started_at, ended_at, peak_deg, hold_s, outcome, motor_on_s) "
            "VALUES ('eve', 'x', ?, ?, 20.0, 60.0, 'completed', 250.0)",
            (t0 - 100,) * 2,
        )
    db.close()
    res = run_cli(
        "session", "start", "--user", "eve", "--program", "first session", "--data", tmp_path
    )
    elapsed = (
        time.time() - t0
    )  # the wait counts down while the CLI starts (seconds on a busy machine)
    assert res.code == 2 and "duty budget" in res.stderr
    wait = int(re.search(r"wait (\d+) s", res.stderr).group(1))  # type: ignore[union-attr]
    assert 1100 - elapsed - 1 <= wait <= 1100, (wait, elapsed)


def test_history_report_and_audit_log(tmp_path: Path) -> None:
    add(tmp_path, "fay")
    assert (
        run_cli(
            "session", "start", "--user", "fay", "--program", "first session", "--data", tmp_path
        ).code
        == 0
    )
    rows = history(tmp_path)
    assert (
        rows[0]["user"] == "fay"
        and rows[0]["outcome"] == "completed"
        and rows[0]["peak_deg"] > 19.0
    )
    assert any(e["to"] == "hold" for e in rows[0]["events"])
    out = tmp_path / "report.png"
    assert run_cli("report", "--user", "fay", "--out", out, "--data", tmp_path).code == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    kinds = {a["event"] for a in audit}
    assert {"user_added", "session_started", "transition", "session_ended"} <= kinds


def test_a_killed_session_is_recorded_as_interrupted_and_the_table_comes_upright(
    tmp_path: Path,
) -> None:
    add(tmp_path, "gus")
    assert (
        run_cli(
            "session", "start", "--user", "gus", "--program", "first session", "--data", tmp_path
        ).code
        == 0
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "controller",
            "session",
            "start",
            "--user",
            "gus",
            "--program",
            "first session",
            "--data",
            str(tmp_path),
            "--speed",
            "20",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the second session is holding inverted
            db = sqlite3.connect(tmp_path / "invtable.db", timeout=5)
            state = db.execute("SELECT state FROM sessions WHERE id=2").fetchone()
            db.close()
            if state and state[0] == "hold":
                break
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    db_before = (tmp_path / "invtable.db").read_bytes()
    rows = history(tmp_path)  # a reader: sees the open session, changes nothing
    assert [r["outcome"] for r in rows] == ["completed", None]
    assert (tmp_path / "invtable.db").read_bytes() == db_before
    assert rows[1]["motor_on_s"] > 0  # the progress records carry the motor time so far
    assert rows[0]["peak_deg"] > 19.0
    saved = json.loads((tmp_path / "sim_table.json").read_text())["angle_deg"]
    assert saved > 10.0
    trace = tmp_path / "resume.csv"
    res = run_cli("run", "--data", tmp_path, "--duration", "45", "--trace", trace, timeout=120)
    assert res.code == 0, res.stderr
    after = history(tmp_path)  # the next controller (it holds the table lock) records the kill
    assert [r["outcome"] for r in after] == ["completed", "interrupted"]  # nothing else lost
    assert after[1]["motor_on_s"] >= rows[1]["motor_on_s"] + 5.0  # charged conservatively
    assert not list(tmp_path.glob(".sim_table.json.*"))  # no temp files left
    rows = read_trace(trace)
    assert rows[0]["angle_deg"] == pytest.approx(saved, abs=0.01)
    assert abs(rows[-1]["angle_deg"] + 80.0) < 0.5 and rows[-1]["state"] == "idle"


def test_the_pendant_start_runs_the_selected_users_program_and_it_is_recorded(
    tmp_path: Path,
) -> None:
    """What `invtable run --user --program` wires up: the planned steps in the controller,
    the recorder on its transitions (here driven by a scripted START on the simulator)."""
    from controller.app.history import Store
    from controller.app.sessions import SessionRecorder, plan_for, session_config
    from controller.core.config import Config
    from sim.runner import Simulation
    from sim.scenario import Event, Scenario

    add(tmp_path, "ida", screening="pregnancy")  # locked out: the plan stays at horizontal
    store = Store(tmp_path)
    user = store.get_user("ida")
    program = builtin_programs()["intermittent"]
    plan = plan_for(store, user, program, Config())
    cfg = session_config(Config(), plan, program)
    sim = Simulation(
        Scenario(
            name="run",
            duration_s=1e9,
            seed=0,
            mass_kg=user.weight_kg,
            height_cm=user.height_cm,
            config=cfg,
            events=(),
            program=plan.steps,
        )
    )
    recorder = SessionRecorder(store, user, program, plan)
    sim.apply(Event(0.0, "set", "ankle_lock", True))
    for k in range(int(400 / 0.01)):
        if k == 100:
            sim.apply(Event(sim.now, "press", "start"))
        if k == 120:
            sim.apply(Event(sim.now, "release", "start"))
        row = sim.tick()
        recorder.poll(
            sim.result.transitions, sim.result.events, row.t_s, row.angle_deg, row.motor_cmd
        )
        sim.advance()
        if k > 200 and row.state == "idle":
            break
    recorder.close()
    assert max(r.angle_deg for r in sim.result.rows) <= 0.5  # never past horizontal
    rows = history(tmp_path)
    assert (
        len(rows) == 1
        and rows[0]["outcome"] == "completed"
        and rows[0]["program"] == "intermittent"
    )
    assert any("screening" in c for c in rows[0]["clipped"]) and rows[0]["motor_on_s"] > 0


def test_run_needs_user_and_program_together() -> None:
    res = run_cli("run", "--user", "ida", "--duration", "1")
    assert res.code == 2 and "--program: --user and --program go together" in res.stderr
