"""Issue 19: a person's daily limits and rest, supervised first sessions, and symptoms that
hold and lock progression. The rules are pure functions (first half); then the real CLI with
the calendar time injected (``$INVTABLE_TEST_WALL_TIME``, test only): no test sleeps."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest

from controller.app import allowance
from controller.app.allowance import Limits, check_start, symptom_state
from controller.app.history import Store
from controller.app.progression import plan_session
from controller.app.sessions import check_allowance
from tests.conftest import read_trace, run_cli

HOUR = 3600.0
DAY = 86400.0
# 2026-03-02 10:00 UTC; every test here runs with TZ=UTC (the day is the local calendar day)
T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.timezone.utc).timestamp()
LIM = Limits(sessions_per_day=2, past_s_per_day=360.0, rest_s=2 * HOUR, supervised_sessions=3)


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


def entry(i: int, start: float, **kw: object) -> dict:
    base = {
        "id": i,
        "started_at": start,
        "ended_at": start + 200.0,
        "progress_at": start + 200.0,
        "past_horizontal_s": 100.0,
        "peak_deg": 20.0,
        "hold_s": 60.0,
        "outcome": "completed",
        "supervisor": "Sam",
        "feedback": None,
    }
    return {**base, **kw}


# ------------------------------------------------------------------ the rules, pure


def test_the_rest_between_sessions_refuses_then_allows() -> None:
    ledger = [entry(1, T0)]
    end = T0 + 200.0
    v = check_start(ledger, end + 600.0, LIM, supervisor="Sam")
    assert not v.allowed and v.next_at == end + 2 * HOUR
    assert "rest: at least 120 minutes" in v.message() and "next session allowed at" in v.message()
    assert "2026-03-02 12:04" in v.message()  # 12:03:20, never shown earlier than true
    assert check_start(ledger, end + 2 * HOUR, LIM, supervisor="Sam").allowed


def test_the_daily_session_count_refuses_until_midnight() -> None:
    ledger = [entry(1, T0 - 4 * HOUR), entry(2, T0)]
    v = check_start(ledger, T0 + 5 * HOUR, LIM, supervisor="Sam")
    midnight = dt.datetime(2026, 3, 3, tzinfo=dt.timezone.utc).timestamp()
    assert v.reasons == ("daily limit: 2 of 2 sessions today",) and v.next_at == midnight
    assert "2026-03-03 00:00" in v.message()
    assert check_start(ledger, midnight, LIM, supervisor="Sam").allowed


def test_the_daily_minutes_refuse_and_the_rest_still_applies_after_midnight() -> None:
    late = dt.datetime(2026, 3, 2, 23, 0, tzinfo=dt.timezone.utc).timestamp()
    ledger = [entry(1, late, past_horizontal_s=400.0)]
    v = check_start(ledger, late + 1000.0, LIM, supervisor="Sam")
    assert any("6.7 of 6 minutes past horizontal" in r for r in v.reasons)
    assert v.next_at == late + 200.0 + 2 * HOUR  # the rest ends after midnight: the later time
    assert allowance.past_left_s(ledger, late + 1000.0, LIM) == 0.0


def test_a_supervisor_is_needed_until_the_first_sessions_have_completed() -> None:
    ledger = [entry(1, T0 - 2 * DAY), entry(2, T0 - DAY, outcome="interrupted")]
    v = check_start(ledger, T0, LIM, supervisor=None)
    assert not v.allowed and v.next_at is None  # no time makes a supervisor appear
    assert "first 3 sessions need a supervisor present (1 completed)" in v.message()
    assert check_start(ledger, T0, LIM, supervisor="Sam").allowed
    done = ledger + [entry(3, T0 - 3 * DAY), entry(4, T0 - 4 * DAY)]
    assert check_start(done, T0, LIM, supervisor=None).allowed


def test_a_clock_set_back_never_makes_the_rest_longer_than_the_rest() -> None:
    ledger = [entry(1, T0 + DAY)]  # recorded "tomorrow", then the clock went back
    v = check_start(ledger, T0, LIM, supervisor="Sam")
    assert v.next_at is not None and v.next_at <= T0 + 2 * HOUR


def test_simulated_and_real_sessions_keep_separate_ledgers() -> None:
    assert allowance.ledger_sources("sim") == ("sim",)
    assert allowance.ledger_sources("sim", count_sim=True) == ("sim",)
    assert allowance.ledger_sources("real") == ("real", "unknown")
    assert allowance.ledger_sources("real", count_sim=True) == ("real", "unknown", "sim")


def test_a_symptom_holds_progression_and_missing_feedback_does_not_release_it() -> None:
    ledger = [
        entry(1, T0, feedback="none", peak_deg=20.0, hold_s=60.0),
        entry(2, T0 + DAY, feedback="dizziness", peak_deg=30.0, hold_s=120.0),
        entry(3, T0 + 2 * DAY, feedback=None, peak_deg=30.0),
    ]
    s = symptom_state(ledger)
    assert s.held and "dizziness after session #2" in s.held and not s.locked
    assert s.step == (20.0, 60.0)  # the last comfortable step
    ledger.append(entry(4, T0 + 3 * DAY, feedback="back_pain_better", peak_deg=20.0))
    assert symptom_state(ledger).held is None  # a comfortable answer releases the hold


def test_eye_pressure_or_headache_twice_in_a_row_locks_until_a_clearance() -> None:
    ledger = [
        entry(1, T0, feedback="headache"),
        entry(2, T0 + DAY, feedback=None),  # missing feedback does not break the run
        entry(3, T0 + 2 * DAY, feedback="eye_pressure,nausea"),
        entry(4, T0 + 3 * DAY, feedback="none"),
    ]
    s = symptom_state(ledger)
    assert s.locked and s.lock_sessions == (1, 3) and "until a clearance" in (s.held or "")
    assert symptom_state(ledger, cleared_at=T0 + 2.5 * DAY).held is None
    # a headache, then a comfortable session, then a headache: no lock, only a hold
    broken = [entry(1, T0, feedback="headache"), entry(2, T0 + DAY, feedback="none")]
    broken.append(entry(3, T0 + 2 * DAY, feedback="headache"))
    s = symptom_state(broken)
    assert not s.locked and s.held


def test_a_held_plan_does_not_step_up_and_fits_the_minutes_left_today() -> None:
    common = dict(
        profile_max_deg=60.0,
        profile_max_session_s=600.0,
        table_max_deg=60.0,
        table_max_session_s=600.0,
        best_peak_deg=30.0,
        best_hold_s=120.0,
        beginner=False,
        days_since_first=30.0,
        locked_out=False,
    )
    free = plan_session([(50.0, 300.0)], **common)  # type: ignore[arg-type]
    assert free.steps[0] == (40.0, 240.0)
    held = plan_session([(50.0, 300.0)], held="headache after session #2", **common)  # type: ignore[arg-type]
    assert held.steps[0] == (30.0, 120.0)
    assert any("headache after session #2" in c for c in held.clips)
    short = plan_session([(50.0, 300.0)], past_left_s=150.0, overhead_s=50.0, **common)  # type: ignore[arg-type]
    assert short.steps[0][1] == pytest.approx(100.0)
    assert any("100 s" in c or "150 s left today" in c for c in short.clips)


def test_the_controller_refusal_is_withdrawn_when_the_rest_is_over() -> None:
    from tests.test_machine import Driver

    d = Driver()
    d.ctrl.refuse_sessions("allowance", "daily rules: rest")
    d.tap("start")
    assert d.ctrl.state == "idle"
    assert any(e.message == "refused start: daily rules: rest" for e in d.ctrl.events)
    d.ctrl.allow_sessions("allowance")
    d.ctrl.allow_sessions("allowance")  # every tick may say it: noted once
    assert [e.message for e in d.ctrl.events].count("sessions allowed again: allowance") == 1
    d.tap("start")
    assert d.ctrl.state != "idle"


# ------------------------------------------------------------------ through the CLI


def cli(data: Path, at: float, monkeypatch: pytest.MonkeyPatch, *args: str | Path):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("INVTABLE_TEST_WALL_TIME", repr(at))
    res = run_cli(*args, "--data", data)
    assert "Traceback" not in res.stderr, res.stderr
    return res


def add(data: Path, at: float, mp: pytest.MonkeyPatch, name: str, *extra: str) -> None:
    res = cli(
        data,
        at,
        mp,
        "user",
        "add",
        name,
        "--height-cm",
        "175",
        "--weight-kg",
        "80",
        "--screening",
        "no",
        *extra,
    )
    assert res.code == 0, res.stderr


def start(data: Path, at: float, mp: pytest.MonkeyPatch, name: str, *extra: str):  # type: ignore[no-untyped-def]
    return cli(
        data, at, mp, "session", "start", "--user", name, "--program", "first session", *extra
    )


def test_cli_daily_limits_and_rest_refuse_then_allow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(tmp_path, T0 - DAY, monkeypatch, "ann")  # a beginner: 2 sessions a day, 2 h rest
    sup = ("--supervised-by", "Sam")
    assert start(tmp_path, T0, monkeypatch, "ann", *sup).code == 0
    res = start(tmp_path, T0 + 1800.0, monkeypatch, "ann", *sup)  # 30 minutes later
    assert res.code == 2 and "START refused: rest: at least 120 minutes" in res.stderr
    assert "next session allowed at 2026-03-02 12:0" in res.stderr
    assert start(tmp_path, T0 + 2 * HOUR + 100.0, monkeypatch, "ann", *sup).code == 0
    res = start(tmp_path, T0 + 6 * HOUR, monkeypatch, "ann", *sup)
    assert res.code == 2 and "daily limit: 2 of 2 sessions today" in res.stderr
    assert "next session allowed at 2026-03-03 00:00" in res.stderr
    # the refused STARTs recorded nothing; the next morning it is allowed again
    rows = json.loads(cli(tmp_path, T0 + 6 * HOUR, monkeypatch, "history", "--json").stdout)
    assert len(rows) == 2 and {r["source"] for r in rows} == {"sim"}
    assert start(tmp_path, T0 + DAY - 2 * HOUR + 6 * HOUR, monkeypatch, "ann", *sup).code == 0
    # simulated sessions never consume the person's real allowance
    store = Store(tmp_path, write=False)
    user = store.get_user("ann")
    assert user is not None
    assert check_allowance(store, user, source="real", supervisor="Sam", now=T0 + DAY).allowed
    assert not check_allowance(store, user, source="sim", supervisor="Sam", now=T0 + DAY).allowed
    out = cli(tmp_path, T0 + DAY, monkeypatch, "history", "--user", "ann").stdout
    assert "2026-03-02: 2 of 2 sessions" in out and "2026-03-03: 1 of 2 sessions" in out


def test_cli_limits_are_widened_only_with_a_clearance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(tmp_path, T0, monkeypatch, "bob", "--stage", "established")
    for args, fragment in (
        (["--sessions-per-day", "5"], "only a clearance widens it"),
        (["--rest-min", "20"], "only a clearance widens it"),
        (["--supervised-sessions", "0"], "only a clearance widens it"),
        (["--sessions-per-day", "9", "--limits-cleared-by", "Dr Z"], "outside 1 .. 6"),
        (["--rest-min", "5", "--limits-cleared-by", "Dr Z"], "outside 15 .. 1440"),
    ):
        res = cli(tmp_path, T0, monkeypatch, "user", "edit", "bob", *args)
        assert res.code == 2 and fragment in res.stderr, (args, res.stderr)
    assert (
        cli(tmp_path, T0, monkeypatch, "user", "edit", "bob", "--sessions-per-day", "1").code == 0
    )
    res = cli(
        tmp_path, T0, monkeypatch, "user", "edit", "bob", "--rest-min", "20",
        "--limits-cleared-by", "Dr Z",
    )  # fmt: skip
    assert res.code == 0, res.stderr
    shown = json.loads(cli(tmp_path, T0, monkeypatch, "user", "show", "bob", "--json").stdout)
    assert shown["sessions_per_day"] == 1 and shown["rest_s"] == 1200.0
    assert shown["limits_cleared_by"] == "Dr Z" and shown["limits_cleared_at"] == T0
    audit = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert any(
        a["event"] == "user_edited" and a["changes"].get("rest_s", {}).get("after") == 1200.0
        for a in audit
    )


def test_cli_supervised_first_sessions_refuse_then_accept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(tmp_path, T0 - DAY, monkeypatch, "cat")
    res = start(tmp_path, T0, monkeypatch, "cat")
    assert res.code == 2
    assert "first 3 sessions need a supervisor present (0 completed)" in res.stderr
    assert "--supervised-by NAME" in res.stderr
    bad = start(tmp_path, T0, monkeypatch, "cat", "--supervised-by", "x\ny")
    assert bad.code == 2 and "--supervised-by: must be printable" in bad.stderr
    assert start(tmp_path, T0, monkeypatch, "cat", "--supervised-by", "Sam Lee").code == 0
    rows = json.loads(cli(tmp_path, T0, monkeypatch, "history", "--json").stdout)
    assert [r["supervisor"] for r in rows] == ["Sam Lee"]
    audit = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    began = [a for a in audit if a["event"] == "session_started"]
    assert [a["supervisor"] for a in began] == ["Sam Lee"]
    out = cli(tmp_path, T0, monkeypatch, "history", "--user", "cat").stdout
    assert "supervised by Sam Lee" in out and "supervisors: Sam Lee" in out


def test_cli_symptoms_hold_and_lock_progression_and_the_report_shows_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Established, simulated sessions counted toward progression (--count-sim), a day apart."""
    add(tmp_path, T0 - DAY, monkeypatch, "dan", "--stage", "established")
    (tmp_path / "programs").mkdir()
    (tmp_path / "programs" / "deep.toml").write_text(
        '[program]\nname = "deep"\nsteps = [[50.0, 60.0]]\n'
    )

    def session(day: int, expect_peak: float, fragment: str) -> None:
        trace = tmp_path / f"t{day}.csv"
        res = cli(
            tmp_path, T0 + day * DAY, monkeypatch, "session", "start", "--user", "dan",
            "--program", "deep", "--count-sim", "--supervised-by", "Sam", "--trace", trace,
        )  # fmt: skip
        assert res.code == 0, res.stderr
        assert fragment in res.stdout, res.stdout
        peak = max(r["angle_deg"] for r in read_trace(trace))
        assert peak == pytest.approx(expect_peak, abs=0.6), (day, peak)

    def felt(day: int, what: str) -> str:
        res = cli(
            tmp_path, T0 + day * DAY + 600, monkeypatch, "session", "feedback", "--user", "dan",
            "--felt", what,
        )  # fmt: skip
        assert res.code == 0, res.stderr
        return res.stdout

    session(0, 20.0, "a first session stays at 20 deg")
    felt(0, "none")
    session(1, 30.0, "+10 deg over the best completed session")
    assert "HELD: headache after session #2" in felt(1, "headache")
    session(2, 20.0, "headache after session #2: progression holds at the last comfortable")
    assert "LOCKED" in felt(2, "eye_pressure")
    session(3, 20.0, "progression locked at the last comfortable step until a clearance")
    felt(3, "none")  # a comfortable session does not lift a lock
    session(4, 20.0, "until a clearance")
    # session 5 gets no feedback at all: missing is not "none"
    out = tmp_path / "report.png"
    res = cli(tmp_path, T0 + 5 * DAY, monkeypatch, "report", "--user", "dan", "--out", out)
    assert res.code == 0, res.stderr
    assert "progression: LOCKED: eye pressure or headache after sessions #2, #3" in res.stdout
    assert "(sessions without feedback: 1)" in res.stdout
    hist = cli(tmp_path, T0 + 5 * DAY, monkeypatch, "history", "--user", "dan").stdout
    assert "felt: headache (SYMPTOM)" in hist and "felt: eye pressure (SYMPTOM)" in hist
    assert "felt: not given" in hist and "felt: none" in hist
    rows = json.loads(cli(tmp_path, T0 + 5 * DAY, monkeypatch, "history", "--json").stdout)
    assert [r["feedback"] for r in rows] == ["none", "headache", "eye_pressure", "none", None]
    # feedback is evidence: not given twice; bad answers named
    res = cli(
        tmp_path, T0 + 5 * DAY, monkeypatch, "session", "feedback", "--user", "dan", "--session",
        "2", "--felt", "none",
    )  # fmt: skip
    assert res.code == 2 and "already has feedback (headache)" in res.stderr
    res = cli(
        tmp_path, T0 + 5 * DAY, monkeypatch, "session", "feedback", "--user", "dan", "--felt",
        "vertigo",
    )  # fmt: skip
    assert res.code == 2 and "unknown answer(s) vertigo" in res.stderr
    # a clearance lifts the lock: progression steps up again from the best completed session
    res = cli(
        tmp_path, T0 + 5 * DAY, monkeypatch, "user", "edit", "dan", "--progression-cleared-by",
        "Dr Okafor",
    )  # fmt: skip
    assert res.code == 0, res.stderr
    felt(4, "none")
    session(6, 40.0, "+10 deg over the best completed session")


def test_cli_run_refuses_start_on_the_control_thread_until_the_rest_is_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """`run --user --program` on the simulator: the pendant's START is refused while the rest
    lasts (in simulated time, from the wall time at the start of the run), then allowed."""
    from sim.scenario import Event
    from tests.test_records import run_in_sim_time, tap

    add(
        tmp_path, T0 - DAY, monkeypatch, "eve", "--stage", "established", "--rest-min", "15",
        "--supervised-sessions", "0", "--limits-cleared-by", "Dr Z",
    )  # fmt: skip
    db = sqlite3.connect(tmp_path / "invtable.db")
    with db:  # a simulated session that ended 800 s ago: 100 s of rest left
        db.execute(
            "INSERT INTO sessions (user, user_id, program, started_at, ended_at, peak_deg, "
            "hold_s, outcome, motor_on_s, source, past_horizontal_s) VALUES ('eve', (SELECT uid "
            "FROM users WHERE name='eve'), 'x', ?, ?, 20.0, 60.0, 'completed', 10.0, 'sim', 60.0)",
            (T0 - 1000.0, T0 - 800.0),
        )
    db.close()
    monkeypatch.setenv("INVTABLE_TEST_WALL_TIME", repr(T0))
    trace = tmp_path / "t.csv"
    script = [
        (0.5, Event(0.5, "set", "ankle_lock", True)),
        *tap(1.0, "start"),
        *tap(110.0, "start"),
    ]
    code, result = run_in_sim_time(
        monkeypatch,
        [
            "run", "--user", "eve", "--program", "first session", "--data", str(tmp_path),
            "--duration", "115", "--trace", str(trace),
        ],
        script,
    )  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "START will be refused: rest: at least 15 minutes" in out.out
    refusals = [e.message for e in result.events if e.message.startswith("refused start")]
    assert len(refusals) == 1 and "daily rules: rest: at least 15 minutes" in refusals[0]
    assert "next session allowed at 2026-03-02 10:02" in refusals[0]
    messages = [e.message for e in result.events]
    assert "sessions allowed again: allowance" in messages
    ramps = [t.t_s for t in result.transitions if t.dest == "ramp"]
    assert ramps and 110.0 <= ramps[0] < 111.0  # the second START, after the rest
    rows = read_trace(trace)
    assert {r["state"] for r in rows if r["t_s"] < 110.0} <= {"boot", "idle"}


def test_an_old_store_gains_the_new_columns_and_keeps_working(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database from before issue 19 (and before sources): read as is, then migrated by the
    next writer; its old session (unknown source) counts in the real ledger, not the sim one."""
    from tests.test_records import OLD_SCHEMA

    db = sqlite3.connect(tmp_path / "invtable.db")
    db.executescript(OLD_SCHEMA)
    db.close()
    shown = json.loads(cli(tmp_path, T0, monkeypatch, "user", "show", "old", "--json").stdout)
    assert shown["sessions_per_day"] is None and shown["progression_cleared_by"] is None
    res = start(tmp_path, T0, monkeypatch, "old", "--supervised-by", "Sam")
    assert res.code == 0, res.stderr
    rows = json.loads(cli(tmp_path, T0, monkeypatch, "history", "--json").stdout)
    assert [r["supervisor"] for r in rows] == [None, "Sam"]
    assert [r["feedback"] for r in rows] == [None, None]
    store = Store(tmp_path, write=False)
    user = store.get_user("old")
    assert user is not None
    assert [e["source"] for e in store.ledger(user, allowance.ledger_sources("real"))] == [
        "unknown"
    ]
    assert [e["source"] for e in store.ledger(user, allowance.ledger_sources("sim"))] == ["sim"]


def test_a_record_that_makes_no_sense_refuses_start_and_never_raises_on_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate of `run --user` judges on the control thread: whatever it reads, it refuses
    START with a reason rather than raise into the loop that must bring the person up."""
    from controller.app.sessions import AllowanceGate

    add(tmp_path, T0 - DAY, monkeypatch, "fay")
    store = Store(tmp_path)
    user = store.get_user("fay")
    assert user is not None
    gate = AllowanceGate(store, user, source="sim", supervisor="Sam", wall_start=T0)
    assert gate.refusal(0.0) is None
    store.db.execute(
        "INSERT INTO sessions (user, user_id, program, started_at, clipped, events, source) "
        "VALUES ('fay', ?, 'x', 'garbage', '[]', '[]', 'sim')",
        (user.uid,),
    )
    gate.judge(5.0)
    why = gate.refusal(6.0)
    assert why is not None and why.startswith("daily rules: cannot judge the daily rules")


def test_cli_run_needs_a_supervisor_for_the_first_sessions_and_records_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """`run --user --program`: without --supervised-by the pendant's START is refused with the
    reason (the controller runs: the way back needs nothing); with it, START runs the session
    and the supervisor is recorded."""
    from sim.scenario import Event
    from tests.test_records import run_in_sim_time, tap

    add(tmp_path, T0 - DAY, monkeypatch, "gil")
    monkeypatch.setenv("INVTABLE_TEST_WALL_TIME", repr(T0))
    res = run_cli("run", "--supervised-by", "Sam", "--duration", "1")
    assert res.code == 2 and "--supervised-by: goes with --user" in res.stderr
    script = [(0.5, Event(0.5, "set", "ankle_lock", True)), *tap(1.0, "start")]
    args = ["run", "--user", "gil", "--program", "first session", "--data", str(tmp_path)]
    code, result = run_in_sim_time(monkeypatch, [*args, "--duration", "5"], script)
    assert code == 0, capsys.readouterr().err
    refusals = [e.message for e in result.events if e.message.startswith("refused start")]
    assert len(refusals) == 1 and "first 3 sessions need a supervisor present" in refusals[0]
    assert not any(t.dest == "ramp" for t in result.transitions)
    script = [(0.5, Event(0.5, "set", "ankle_lock", True)), *tap(1.0, "start")]
    code, result = run_in_sim_time(
        monkeypatch, [*args, "--supervised-by", "Sam", "--duration", "200"], script
    )
    assert code == 0, capsys.readouterr().err
    assert any(t.dest == "ramp" for t in result.transitions)
    assert not [e for e in result.events if e.message.startswith("refused start")]
    rows = Store(tmp_path, write=False).sessions("gil")
    assert [(r["supervisor"], r["source"], r["outcome"]) for r in rows] == [
        ("Sam", "sim", "completed")
    ]


def test_feedback_goes_to_the_session_just_done_never_an_older_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(tmp_path, T0 - DAY, monkeypatch, "hal")
    res = cli(tmp_path, T0, monkeypatch, "session", "feedback", "--user", "hal", "--felt", "none")
    assert res.code == 2 and "hal has no session yet" in res.stderr
    store = Store(tmp_path)
    user = store.get_user("hal")
    assert user is not None
    for ended in (T0 - 100.0, None):  # an ended session, then one still open
        store.db.execute(
            "INSERT INTO sessions (user, user_id, program, started_at, ended_at, outcome, "
            "clipped, events, source) VALUES ('hal', ?, 'x', ?, ?, ?, '[]', '[]', 'sim')",
            (user.uid, T0 - 200.0, ended, None if ended is None else "completed"),
        )
    res = cli(tmp_path, T0, monkeypatch, "session", "feedback", "--user", "hal", "--felt", "none")
    assert res.code == 2 and "session 2 has not ended" in res.stderr
    res = cli(
        tmp_path, T0, monkeypatch, "session", "feedback", "--user", "hal", "--felt",
        "none,headache",
    )  # fmt: skip
    assert res.code == 2 and "'none' goes alone" in res.stderr
    res = cli(
        tmp_path, T0, monkeypatch, "session", "feedback", "--user", "hal", "--session", "1",
        "--felt", "nausea,back_pain_worse",
    )  # fmt: skip
    assert res.code == 0, res.stderr
    assert [r["feedback"] for r in Store(tmp_path, write=False).sessions("hal")] == [
        "nausea,back_pain_worse",
        None,
    ]
    felt = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [a["felt"] for a in felt if a["event"] == "session_feedback"] == [
        ["nausea", "back_pain_worse"]
    ]
