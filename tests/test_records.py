"""Issue 13: records a clinician can trust, and a store that is never on the way back to upright.

Broken stores are real files (garbage, a corrupted page, a read-only folder); a full disk is
simulated by making the writes fail with ENOSPC (and, for SQLite, a real page limit)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import pytest

from controller.app import cli
from controller.app.commands import common, records
from controller.app.history import Store
from controller.app.programs import builtin_programs
from controller.app.sessions import SessionRecorder, check_duty, plan_for
from controller.app.tablelock import TableLock
from controller.core.clock import Clock
from controller.core.config import Config
from controller.core.errors import InputError, StoreError
from hal.interfaces import Inputs, Outputs
from sim.runner import RunResult
from tests.conftest import ROOT, CliResult, read_trace, run_cli

# These tests are about other things than supervision (tests/test_allowance.py is): their
# profiles need no supervisor, by a recorded clearance.
UNSUPERVISED = ("--supervised-sessions", "0", "--limits-cleared-by", "test clearance")


def add(data: Path, name: str, screening: str = "no", *extra: str) -> None:
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
        *UNSUPERVISED,
        *extra,
    )
    assert res.code == 0, res.stderr


def no_traceback(res: CliResult) -> None:
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr, res.stderr


def insert_session(
    data: Path,
    name: str,
    *,
    source: str,
    peak: float = 40.0,
    motor_on: float = 0.0,
    outcome: str | None = "completed",
    age_s: float = 100.0,
) -> None:
    db = sqlite3.connect(data / "invtable.db")
    with db:
        db.execute(
            "INSERT INTO sessions (user, user_id, program, started_at, ended_at, peak_deg, hold_s, "
            "outcome, motor_on_s, source) "
            "VALUES (?, (SELECT uid FROM users WHERE name=?), 'x', ?, ?, ?, 300.0, ?, ?, ?)",
            (name, name, time.time() - age_s, time.time() - age_s, peak, outcome, motor_on, source),
        )
    db.close()


# ------------------------------------------------------------------ the store never blocks a return


class FakeHardware:
    """A SimTable that records the order of the shutdown calls."""

    def __init__(self, calls: list[str]) -> None:
        from sim.table import SimTable

        self.table = SimTable(angle_deg=-80.0, upright_deg=-80.0)
        self.calls = calls

    def read(self) -> Inputs:
        return self.table.read()

    def write(self, out: Outputs) -> None:
        self.table.write(out)

    def safe_stop(self) -> None:
        self.calls.append("safe_stop")
        self.table.safe_stop()

    def close(self) -> None:
        self.calls.append("close")


class BrokenRecorder:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def poll(self, *args: object) -> None:
        pass

    def close(self) -> None:
        self.calls.append("recorder.close")
        raise StoreError("/data/invtable.db", "database or disk is full")


def test_the_service_runs_safe_stop_first_even_when_the_store_fails() -> None:
    import io

    from controller.app.service import JsonLog, run_service

    calls: list[str] = []
    log = io.StringIO()
    code = run_service(
        Config(),
        duration=0.05,
        log=JsonLog(log),
        make_hardware=lambda: FakeHardware(calls),
        recorder=BrokenRecorder(calls),
    )
    assert calls[0] == "safe_stop" and "recorder.close" in calls and "close" in calls
    assert code == 0
    assert "recording failed at stop" in log.getvalue() and "/data/invtable.db" in log.getvalue()


class ScriptedTable:
    """The simulated table behind the service loop: the world moves to the clock's time at
    every read, and a person's presses (``at_s``, button, pressed) happen on cue."""

    def __init__(self, clock: Clock, script: list[tuple[float, object]]) -> None:
        from sim.table import SimTable

        self.table = SimTable(angle_deg=-80.0, upright_deg=-80.0)
        self.table.ankle_lock_closed = True
        self.clock, self.script = clock, sorted(script, key=lambda item: item[0])

    def read(self) -> Inputs:
        now = self.clock.now()
        self.table.advance_to(now)
        while self.script and self.script[0][0] <= now + 1e-9:
            action = self.script.pop(0)[1]
            if callable(action):
                action()
            else:
                button, pressed = action
                (self.table.press if pressed else self.table.release)(button)
        return self.table.read()

    def write(self, out: Outputs) -> None:
        self.table.write(out)

    def safe_stop(self) -> None:
        self.table.safe_stop()

    def close(self) -> None:
        pass


def test_the_service_refuses_start_for_the_rest_of_the_run_once_the_store_fails(
    tmp_path: Path,
) -> None:
    """The service loop (gpio and serial backends): the store fails during the ramp; RETURN
    still brings the person upright, and START afterwards is refused with the reason, logged."""
    import io
    from dataclasses import replace

    from controller.app.service import JsonLog, run_service
    from controller.app.sessions import session_config
    from controller.core.clock import SimClock

    add(tmp_path, "ann")
    store = Store(tmp_path)
    program = builtin_programs()["first session"]
    plan = plan_for(store, store.get_user("ann"), program, Config())
    err = io.StringIO()
    recorder = SessionRecorder(store, store.get_user("ann"), program, plan, source="real", err=err)
    clock, log = SimClock(), io.StringIO()
    script = [
        (1.0, ("start", True)),
        (1.2, ("start", False)),
        (10.0, lambda: store.db.execute("PRAGMA query_only=ON")),  # SQLite now refuses every write
        (15.0, ("return", True)),
        (15.2, ("return", False)),
        (40.0, ("start", True)),
        (40.2, ("start", False)),
    ]
    hw = ScriptedTable(clock, script)
    cfg = session_config(Config(), plan, program)
    cfg = replace(
        cfg, session=replace(cfg.session, cooldown_s=0.0)
    )  # only the store refuses the second START
    code = run_service(
        cfg,
        duration=45.0,
        log=JsonLog(log),
        make_hardware=lambda: hw,
        program=plan.steps,
        recorder=recorder,
        clock=clock,
    )
    assert code == 0
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    moves = [(e["t_s"], e["dest"]) for e in lines if e["event"] == "transition"]
    assert [d for _, d in moves] == ["idle", "ramp", "emergency_return", "idle"], moves
    assert abs(hw.table.physics.angle + 80.0) < 0.5
    notes = [(e["t_s"], e["message"]) for e in lines if e["event"] == "note"]
    refused = [(t, m) for t, m in notes if m.startswith("refused start")]
    assert len(refused) == 1 and refused[0][0] >= 40.0
    assert (
        f"history store unavailable: {tmp_path / 'invtable.db'}: "
        "attempt to write a readonly database; sessions need their record" in refused[0][1]
    )
    assert sum(m.startswith("sessions refused: history store unavailable") for _, m in notes) == 1
    assert recorder.failed and err.getvalue().count("STORE ERROR") == 1


def test_a_recorder_whose_database_fills_up_never_raises_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from sim.runner import Simulation
    from sim.scenario import Event, Scenario

    add(tmp_path, "ann")
    store = Store(tmp_path)
    user = store.get_user("ann")
    program = builtin_programs()["first session"]
    from dataclasses import replace

    # A long clip note: the session's first row needs new pages, which the page limit refuses.
    plan = replace(plan_for(store, user, program, Config()), clips=("x" * 20000,))
    sim = Simulation(
        Scenario(
            name="run",
            duration_s=1e9,
            seed=0,
            mass_kg=80,
            height_cm=175,
            config=Config(),
            events=(),
            program=plan.steps,
        )
    )
    recorder = SessionRecorder(store, user, program, plan, err=sys.stderr)
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count={pages}")  # a real SQLITE_FULL on the next growth
    store.db.execute("PRAGMA cache_size=1")
    sim.apply(Event(0.0, "set", "ankle_lock", True))
    for k in range(int(400 / 0.01)):
        if k == 100:
            sim.apply(Event(sim.now, "press", "start"))
        if k == 120:
            sim.apply(Event(sim.now, "release", "start"))
        row = sim.tick()
        recorder.poll(
            sim.result.transitions, sim.result.events, row.t_s, row.angle_deg, row.motor_cmd
        )  # never raises
        sim.advance()
        if k > 200 and row.state == "idle":
            break
    recorder.close()
    assert sim.result.rows[-1].state == "idle"  # the session ran to the end, upright
    err = capsys.readouterr().err
    assert (
        recorder.failed
        and str(tmp_path / "invtable.db") in recorder.failed
        and "full" in recorder.failed
    )
    assert "STORE ERROR" in err and err.count("STORE ERROR") == 1


def garbage_store(data: Path) -> None:
    data.mkdir(exist_ok=True)
    (data / "invtable.db").write_bytes(b"this is not a database at all\n" * 200)


def corrupted_store(data: Path) -> None:
    add(data, "ann")
    db = sqlite3.connect(data / "invtable.db")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    raw = bytearray((data / "invtable.db").read_bytes())
    raw[100:] = b"\xff" * (len(raw) - 100)  # the header survives, every page is garbage
    (data / "invtable.db").write_bytes(bytes(raw))


@pytest.mark.parametrize("breaker", [garbage_store, corrupted_store])
@pytest.mark.parametrize(
    "args",
    [
        ["user", "list"],
        ["history"],
        ["user", "show", "ann"],
        ["user", "add", "bob", "--height-cm", "175", "--weight-kg", "80", "--screening", "no"],
        ["session", "start", "--user", "ann", "--program", "first session"],
    ],
)
def test_a_broken_store_is_named_with_the_reason_never_a_traceback(
    tmp_path: Path, breaker: Callable[[Path], None], args: list[str]
) -> None:
    data = tmp_path / "d"
    breaker(data)
    before = (data / "invtable.db").read_bytes()
    res = run_cli(*args, "--data", data)
    no_traceback(res)
    assert res.code == 2, (res.code, res.stderr)
    assert f"{data / 'invtable.db'}: " in res.stderr
    assert "file is not a database" in res.stderr or "malformed" in res.stderr, res.stderr
    assert (data / "invtable.db").read_bytes() == before  # nothing written over the evidence


def _without_dac_override() -> None:
    """In the child, before exec: root gives up CAP_DAC_OVERRIDE (its licence to write
    anywhere), so the folder's missing write bits bind it like anyone else."""
    import ctypes

    PR_CAPBSET_DROP, CAP_DAC_OVERRIDE = 24, 1
    if ctypes.CDLL(None, use_errno=True).prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, 0, 0, 0) != 0:
        os._exit(99)


def run_as_reader_only(data: Path, *args: str) -> subprocess.CompletedProcess:
    """The CLI with ``data`` truly read-only for it: the folder and files lose their write bits
    (and root, who would ignore them, drops CAP_DAC_OVERRIDE first)."""
    cmd = [sys.executable, "-m", "controller", *args, "--data", str(data)]
    for p in [*data.iterdir(), data]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        res = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
            stdin=subprocess.DEVNULL,
            preexec_fn=_without_dac_override if os.geteuid() == 0 else None,
        )
        assert res.returncode != 99, "could not drop CAP_DAC_OVERRIDE"
        return res
    finally:
        for p in [data, *data.iterdir()]:
            p.chmod(0o755 if p.is_dir() else 0o644)


def test_a_read_only_store_still_reads_and_refuses_writes_by_name() -> None:
    data = Path(tempfile.mkdtemp(prefix="invtable-ro-"))
    try:
        add(data, "ann")
        db = sqlite3.connect(data / "invtable.db")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        before = (data / "invtable.db").read_bytes()
        res = run_as_reader_only(data, "user", "list")
        assert res.returncode == 0 and "ann:" in res.stdout, res.stderr
        res = run_as_reader_only(
            data,
            "user",
            "add",
            "bob",
            "--height-cm",
            "175",
            "--weight-kg",
            "80",
            "--screening",
            "no",
        )
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert str(data) in res.stderr and (
            "readonly" in res.stderr
            or "ermission denied" in res.stderr
            or "unable to open" in res.stderr
        ), res.stderr
        res = run_as_reader_only(
            data, "session", "start", "--user", "ann", "--program", "first session"
        )
        assert res.returncode == 2 and "Traceback" not in res.stderr and str(data) in res.stderr, (
            res.stderr
        )
        assert (data / "invtable.db").read_bytes() == before
    finally:
        shutil.rmtree(data, ignore_errors=True)


def test_a_full_disk_during_session_start_names_the_file_and_the_table_still_comes_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    add(tmp_path, "ann")
    import controller.app.history as history

    real_append = history.append_line
    calls = {"n": 0}

    def filling(path: Path, line: str) -> None:
        calls["n"] += 1
        if calls["n"] > 3:  # the disk fills once the session is under way
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_append(path, line)

    monkeypatch.setattr(history, "append_line", filling)
    code = cli.main(
        ["session", "start", "--user", "ann", "--program", "first session", "--data", str(tmp_path)]
    )
    out = capsys.readouterr()
    assert code == 1
    assert f"{tmp_path / 'audit.jsonl'}: No space left on device" in out.err
    assert "error: : " not in out.err and "Traceback" not in out.err
    assert "ended upright: yes" in out.out


def test_a_full_disk_message_names_the_file_for_a_plain_os_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    def full(_args: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(records, "show_history", full)
    assert cli.main(["history"]) == 2
    err = capsys.readouterr().err
    assert "error: : " not in err and "No space left on device" in err


def test_run_with_a_broken_store_still_brings_the_person_upright(tmp_path: Path) -> None:
    add(tmp_path, "ann")
    garbage_store(tmp_path)
    (tmp_path / "sim_table.json").write_text(
        '{"angle_deg": 20.0}'
    )  # a session left the table at 20 deg
    trace = tmp_path / "t.csv"
    res = run_cli(
        "run",
        "--user",
        "ann",
        "--program",
        "progressive",
        "--data",
        tmp_path,
        "--duration",
        "30",
        "--trace",
        trace,
        timeout=120,
    )
    no_traceback(res)
    assert res.code == 1  # the session asked for was refused, and says why
    assert f"{tmp_path / 'invtable.db'}: file is not a database" in res.stderr
    assert "WITHOUT the history" in res.stderr and "refused" in res.stderr
    rows = read_trace(trace)
    assert rows[0]["angle_deg"] == pytest.approx(20.0, abs=0.01) and rows[0]["ankle_locked"] == 0
    assert rows[-1]["state"] == "idle" and abs(rows[-1]["angle_deg"] + 80.0) < 0.5
    assert (
        json.loads((tmp_path / "sim_table.json").read_text())["angle_deg"] < -79.0
    )  # saved where it truly is


def test_run_in_a_read_only_data_folder_still_brings_the_person_upright() -> None:
    data = Path(tempfile.mkdtemp(prefix="invtable-ro-run-"))
    try:
        add(data, "ann")
        (data / "sim_table.json").write_text('{"angle_deg": 20.0}')
        trace = Path(tempfile.mkdtemp(prefix="invtable-ro-trace-")) / "t.csv"
        res = run_as_reader_only(
            data,
            "run",
            "--user",
            "ann",
            "--program",
            "first session",
            "--duration",
            "20",
            "--trace",
            str(trace),
        )
        assert "Traceback" not in res.stderr and res.returncode == 1, res.stderr
        assert "STORE ERROR" in res.stderr and str(data) in res.stderr and "refused" in res.stderr
        rows = read_trace(trace)
        assert rows[0]["angle_deg"] == pytest.approx(20.0, abs=0.01)
        assert rows[-1]["state"] == "idle" and abs(rows[-1]["angle_deg"] + 80.0) < 0.5
        shutil.rmtree(trace.parent, ignore_errors=True)
    finally:
        shutil.rmtree(data, ignore_errors=True)


class ScriptedPendant:
    """A person at the pendant in simulated time (what ``sim.keyboard`` gives on a terminal):
    each ``(at_s, action)`` once its time has come; an action is a world event, or a callable
    (the disk filling up) run at that instant on the control thread."""

    quit = False

    def __init__(self, script: list[tuple[float, object]]) -> None:
        self.script = sorted(script, key=lambda item: item[0])

    def poll(self, now: float) -> list:
        due = []
        while self.script and self.script[0][0] <= now + 1e-9:
            action = self.script.pop(0)[1]
            if callable(action):
                action()
            else:
                due.append(action)
        return due


def tap(at_s: float, button: str) -> list[tuple[float, object]]:
    from sim.scenario import Event

    return [
        (at_s, Event(at_s, "press", button)),
        (at_s + 0.2, Event(at_s + 0.2, "release", button)),
    ]


def run_in_sim_time(
    monkeypatch: pytest.MonkeyPatch, args: list[str], script: list[tuple[float, object]]
) -> tuple[int, RunResult]:
    """``invtable run`` through the real CLI (store, plan, recorder, table saver, exit code) with
    the bench's clock simulated and a scripted pendant: no wall-clock waits. Returns the exit
    code and the run's result (its transitions and events, refusals with their reasons)."""
    import functools

    import controller.app.simcmd as runsim
    from controller.core.clock import SimClock
    from sim.scenario import Scenario

    result = RunResult(
        Scenario(
            name="bench",
            duration_s=0.0,
            seed=0,
            mass_kg=80.0,
            height_cm=175.0,
            config=Config(),
            events=(),
        )
    )
    monkeypatch.setattr(
        runsim,
        "run_bench",
        functools.partial(
            runsim.run_bench, clock=SimClock(), pendant=ScriptedPendant(script), result=result
        ),
    )
    return cli.main(args), result


def state_at(rows: list[dict], t: float) -> str:
    return next(r["state"] for r in rows if r["t_s"] >= t - 1e-9)


@pytest.mark.parametrize("what_fails", ["database", "audit"])
def test_a_store_that_fails_mid_run_refuses_the_next_start_and_the_person_comes_upright(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, what_fails: str
) -> None:
    """Issue 13: `run --user --program`; the store becomes unwritable during the hold (SQLite
    refuses to write, or the audit log's disk is full). The session goes on and brings the
    person upright; the pendant's START later in that run is refused with the reason."""
    import controller.app.history as history
    from sim.scenario import Event

    data = tmp_path / "d"
    add(data, "ann")
    stores: list[Store] = []
    real_open, real_append = common.open_store, history.append_line
    broken = {"now": False}

    def opening(path: Path, write: bool = True) -> Store:
        stores.append(real_open(path, write))
        return stores[-1]

    def appending(path: Path, line: str) -> None:
        if broken["now"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_append(path, line)

    def break_the_store() -> None:
        broken["now"] = True
        if what_fails == "database":
            stores[-1].db.execute("PRAGMA query_only=ON")  # every write now fails in SQLite itself

    monkeypatch.setattr(common, "open_store", opening)
    if what_fails == "audit":
        monkeypatch.setattr(history, "append_line", appending)
    trace = tmp_path / "t.csv"
    script = [
        (0.5, Event(0.5, "set", "ankle_lock", True)),
        *tap(1.0, "start"),
        (40.0, break_the_store),
        *tap(170.0, "start"),
        *tap(175.0, "down"),
    ]
    code, result = run_in_sim_time(
        monkeypatch,
        [
            "run",
            "--user",
            "ann",
            "--program",
            "first session",
            "--data",
            str(data),
            "--duration",
            "180",
            "--trace",
            str(trace),
        ],
        script,
    )
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    assert code == 1  # documented: the store failed during the run (its record is incomplete)
    failing = data / ("invtable.db" if what_fails == "database" else "audit.jsonl")
    reason = "readonly" if what_fails == "database" else "No space left on device"
    assert out.err.count("STORE ERROR") == 1 and str(failing) in out.err and reason in out.err
    assert "new sessions are refused for the rest of this run" in out.err
    assert "the history store failed during this run" in out.err
    rows = read_trace(trace)
    # The session under way went on through the failure: hold, rest, and upright to idle.
    assert state_at(rows, 40.0) == "hold" and state_at(rows, 40.5) == "hold"
    dests = [t.dest for t in result.transitions if t.t_s > 40.0]
    assert dests[:3] == ["rest", "returning", "idle"], dests
    assert state_at(rows, 169.9) == "idle" and abs(state_at_angle(rows, 169.9) + 80.0) < 0.5
    # START later in that run: refused, with the reason, and nothing moves.
    messages = [e.message for e in result.events]
    refusals = [m for m in messages if m.startswith("refused start")]
    assert (
        len(refusals) == 1
        and str(failing) in refusals[0]
        and "sessions need their record" in refusals[0]
    )
    assert "history store unavailable" in refusals[0]
    assert sum(m.startswith("sessions refused: history store unavailable") for m in messages) == 1
    assert all(
        r["state"] == "idle" or r["state"] == "jogging" or r["state"] == "holding"
        for r in rows
        if r["t_s"] >= 169.9
    )
    assert not any(
        t.dest == "ramp" for t in result.transitions if t.t_s > 40.0
    )  # no second session
    assert any(
        t.dest == "jogging" and t.t_s >= 175.0 for t in result.transitions
    )  # a jog needs no record
    assert rows[-1]["angle_deg"] < -70.0
    stores[-1].db.execute("PRAGMA query_only=OFF")
    assert len(stores[-1].sessions()) == 1  # the refused START recorded nothing, began nothing


def state_at_angle(rows: list[dict], t: float) -> float:
    return next(r["angle_deg"] for r in rows if r["t_s"] >= t - 1e-9)


def test_a_run_whose_store_is_broken_from_the_outset_refuses_the_pendants_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """`run --user --program` with a garbage store: the controller runs without the history and
    the pendant's START is refused from the first tick (not run as a plain, unrecorded session)."""
    from sim.scenario import Event

    data = tmp_path / "d"
    add(data, "ann")
    garbage_store(data)
    trace = tmp_path / "t.csv"
    script = [(0.5, Event(0.5, "set", "ankle_lock", True)), *tap(1.0, "start")]
    code, result = run_in_sim_time(
        monkeypatch,
        [
            "run",
            "--user",
            "ann",
            "--program",
            "first session",
            "--data",
            str(data),
            "--duration",
            "10",
            "--trace",
            str(trace),
        ],
        script,
    )
    out = capsys.readouterr()
    assert code == 1 and "WITHOUT the history" in out.err and "Traceback" not in out.err
    refusals = [e.message for e in result.events if e.message.startswith("refused start")]
    assert refusals == [
        f"refused start: history store unavailable: {data / 'invtable.db'}: "
        "file is not a database; sessions need their record"
    ]
    assert {r["state"] for r in read_trace(trace)} <= {"boot", "idle"}


# ------------------------------------------------------------------ people, clearances, audit


def audit(data: Path) -> list[dict]:
    return [json.loads(line) for line in (data / "audit.jsonl").read_text().splitlines()]


def shown(data: Path, name: str) -> dict:
    res = run_cli("user", "show", name, "--json", "--data", data)
    assert res.code == 0, res.stderr
    return json.loads(res.stdout)


def test_a_new_yes_locks_a_cleared_profile_out_again_and_every_change_is_audited(
    tmp_path: Path,
) -> None:
    add(tmp_path, "bob", "high_blood_pressure")
    assert shown(tmp_path, "bob")["locked_out"]
    assert run_cli("user", "edit", "bob", "--cleared-by", "Dr X", "--data", tmp_path).code == 0
    s = shown(tmp_path, "bob")
    assert (
        not s["locked_out"]
        and s["cleared_by"] == "Dr X"
        and s["cleared_answers"] == ["high_blood_pressure"]
    )
    res = run_cli(
        "user",
        "edit",
        "bob",
        "--screening",
        "high_blood_pressure,heart_disease",
        "--data",
        tmp_path,
    )
    assert res.code == 0 and "LOCKED OUT" in res.stdout and "heart_disease" in res.stdout
    assert shown(tmp_path, "bob")["locked_out"]
    edits = [a for a in audit(tmp_path) if a["event"] == "user_edited"]
    assert edits[0]["changes"]["cleared_by"] == {"before": None, "after": "Dr X"}
    assert edits[1]["changes"]["screening_yes"] == {
        "before": ["high_blood_pressure"],
        "after": ["high_blood_pressure", "heart_disease"],
    }
    assert edits[1]["changes"]["locked_out"] == {"before": False, "after": True}
    assert run_cli("user", "edit", "bob", "--cleared-by", "Dr Y", "--data", tmp_path).code == 0
    assert not shown(tmp_path, "bob")["locked_out"]


def test_a_re_added_name_does_not_inherit_the_removed_persons_history(tmp_path: Path) -> None:
    add(tmp_path, "eve", "no", "--stage", "established")
    insert_session(tmp_path, "eve", source="real", peak=40.0, age_s=30 * 86400)
    old_id = shown(tmp_path, "eve")["id"]
    program = builtin_programs()["progressive"]
    store = Store(tmp_path, write=False)
    assert not any(
        "first session" in c
        for c in plan_for(store, store.get_user("eve"), program, Config()).clips
    )
    assert run_cli("user", "remove", "eve", "--data", tmp_path).code == 0
    add(tmp_path, "eve", "no", "--stage", "established")
    assert shown(tmp_path, "eve")["id"] != old_id
    store = Store(tmp_path, write=False)
    plan = plan_for(store, store.get_user("eve"), program, Config())
    assert max(t for t, _ in plan.steps) == 20.0 and any(
        "first session stays at 20" in c for c in plan.clips
    )
    res = run_cli("history", "--user", "eve", "--json", "--data", tmp_path)
    assert (
        json.loads(res.stdout) == []
    )  # the new eve has no sessions; the old one's stay in the full history
    assert len(json.loads(run_cli("history", "--json", "--data", tmp_path).stdout)) == 1


def test_simulated_sessions_count_toward_neither_the_duty_budget_nor_progression(
    tmp_path: Path,
) -> None:
    add(tmp_path, "ann", "no", "--stage", "established")
    for _ in range(2):
        insert_session(tmp_path, "ann", source="sim", peak=50.0, motor_on=150.0)
    store = Store(tmp_path, write=False)
    cfg = Config()
    check_duty(store, cfg)  # simulated motor time does not heat the real actuator
    with pytest.raises(InputError, match="duty budget"):
        check_duty(store, cfg, count_sim=True)
    user = store.get_user("ann")
    assert store.best(user) == (None, None) and store.best(user, count_sim=True)[0] == 50.0
    insert_session(tmp_path, "ann", source="real", motor_on=250.0)
    with pytest.raises(InputError, match="duty budget"):
        check_duty(Store(tmp_path, write=False), cfg)
    res = run_cli("history", "--data", tmp_path)
    assert res.stdout.count("[sim]") == 2 and res.stdout.count("[real]") == 1


def test_session_start_records_a_simulated_session(tmp_path: Path) -> None:
    add(tmp_path, "fay")
    assert (
        run_cli(
            "session", "start", "--user", "fay", "--program", "first session", "--data", tmp_path
        ).code
        == 0
    )
    rows = json.loads(run_cli("history", "--json", "--data", tmp_path).stdout)
    assert rows[0]["source"] == "sim" and rows[0]["user_id"] == shown(tmp_path, "fay")["id"]
    assert rows[0]["motor_on_s"] > 0


def test_one_table_one_controller(tmp_path: Path) -> None:
    add(tmp_path, "ann")
    with TableLock(tmp_path):
        res = run_cli(
            "session", "start", "--user", "ann", "--program", "first session", "--data", tmp_path
        )
        no_traceback(res)
        assert res.code == 2 and f"in use by another controller (pid {os.getpid()})" in res.stderr
        res = run_cli("run", "--data", tmp_path, "--duration", "1")
        assert res.code == 2 and f"pid {os.getpid()}" in res.stderr
        assert run_cli("history", "--data", tmp_path).code == 0  # readers need no lock
    assert (
        run_cli(
            "session", "start", "--user", "ann", "--program", "first session", "--data", tmp_path
        ).code
        == 0
    )


def test_readers_never_change_what_they_read(tmp_path: Path) -> None:
    add(tmp_path, "ann")
    insert_session(tmp_path, "ann", source="real", outcome=None)  # a session in progress
    db = sqlite3.connect(tmp_path / "invtable.db")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    before = (tmp_path / "invtable.db").read_bytes(), (tmp_path / "audit.jsonl").read_bytes()
    for args in (["history"], ["history", "--json"], ["user", "list"], ["user", "show", "ann"]):
        assert run_cli(*args, "--data", tmp_path).code == 0
    assert (
        (tmp_path / "invtable.db").read_bytes(),
        (tmp_path / "audit.jsonl").read_bytes(),
    ) == before
    rows = json.loads(run_cli("history", "--json", "--data", tmp_path).stdout)
    assert rows[0]["outcome"] is None
    assert "open: its controller is gone" in run_cli("history", "--data", tmp_path).stdout


OLD_SCHEMA = """
CREATE TABLE users (name TEXT PRIMARY KEY, height_cm REAL NOT NULL, weight_kg REAL NOT NULL,
    stage TEXT NOT NULL, max_angle_deg REAL NOT NULL, max_session_s REAL NOT NULL,
    screening_yes TEXT NOT NULL, cleared_by TEXT, cleared_at REAL, created_at REAL NOT NULL);
CREATE TABLE sessions (id INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL,
    program TEXT NOT NULL, started_at REAL NOT NULL, ended_at REAL, peak_deg REAL,
    past_horizontal_s REAL, hold_s REAL, motor_on_s REAL, outcome TEXT, clipped TEXT,
    events TEXT, state TEXT);
INSERT INTO users VALUES ('old', 175, 80, 'beginner', 60, 300, 'hernia', 'Dr Z', 1.0, 1.0);
INSERT INTO sessions (user, program, started_at, ended_at, peak_deg, outcome, motor_on_s,
    clipped, events) VALUES ('old', 'x', 2.0, 3.0, 20.0, 'completed', 30.0, '[]', '[]');
"""


def test_an_old_database_is_read_unchanged_and_migrated_by_a_writer(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "invtable.db")
    db.executescript(OLD_SCHEMA)
    db.close()
    before = (tmp_path / "invtable.db").read_bytes()
    rows = json.loads(run_cli("history", "--json", "--data", tmp_path).stdout)
    assert rows[0]["source"] == "unknown" and (tmp_path / "invtable.db").read_bytes() == before
    assert run_cli("user", "edit", "old", "--stage", "established", "--data", tmp_path).code == 0
    s = shown(tmp_path, "old")
    assert s["id"] and s["cleared_answers"] == ["hernia"] and not s["locked_out"]
    rows = json.loads(run_cli("history", "--json", "--data", tmp_path).stdout)
    assert rows[0]["user_id"] == s["id"] and rows[0]["source"] == "unknown"


@pytest.mark.parametrize(
    "name,fragment",
    [
        ("eve\nmallory", "U+000A"),
        ("eve\u202eevil", "U+202E"),
        ("x" * 65, "at most 64"),
        (" eve", "start or end with a space"),
    ],
)
def test_names_are_printable_labels_of_sane_length(
    tmp_path: Path, name: str, fragment: str
) -> None:
    res = run_cli(
        "user",
        "add",
        name,
        "--height-cm",
        "175",
        "--weight-kg",
        "80",
        "--screening",
        "no",
        "--data",
        tmp_path,
    )
    no_traceback(res)
    assert res.code == 2 and "name: must" in res.stderr and fragment in res.stderr
    assert not (tmp_path / "invtable.db").exists()


# ------------------------------------------------------------------ the questionnaire


def screen(data: Path, name: str, answers: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "controller", "user", "screen", name, "--data", str(data)],
        input=answers,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_the_screening_questionnaire_asks_each_question_with_its_reason(tmp_path: Path) -> None:
    from controller.app.terms import QUESTIONS

    add(tmp_path, "ann")
    res = screen(tmp_path, "ann", "n\nno\nmaybe\nn\n" + "n\n" * 7 + "YES\n")
    assert res.returncode == 0, res.stderr
    for question, reason in QUESTIONS.values():
        assert question in res.stdout and reason in res.stdout
    assert "please answer y or n" in res.stdout and "LOCKED OUT" in res.stdout
    s = shown(tmp_path, "ann")
    assert s["screening_yes"] == ["middle_ear_infection"] and s["locked_out"] and s["screened_at"]
    store = Store(tmp_path, write=False)
    answers = store.get_user("ann").screening_answers
    assert len(answers) == 11 and all(a["at"] > 0 for a in answers.values())
    assert answers["middle_ear_infection"]["yes"] and not answers["hernia"]["yes"]
    screened = [a for a in audit(tmp_path) if a["event"] == "user_screened"]
    assert screened and screened[0]["changes"]["screening_answers"]["after"] == answers


def test_a_questionnaire_cut_short_records_nothing(tmp_path: Path) -> None:
    add(tmp_path, "ann")
    before = shown(tmp_path, "ann")
    res = screen(tmp_path, "ann", "n\nn\n")
    assert (
        res.returncode == 2
        and "standard input: eye_condition: ended before every question" in res.stderr
    )
    assert shown(tmp_path, "ann") == before


def test_a_small_kill_9_campaign_loses_and_corrupts_nothing(tmp_path: Path) -> None:
    """Five random SIGKILLs of `session start` and `run` with readers alongside (the full
    campaign: `python -m tests.kill_campaign --kills 100`)."""
    from tests.kill_campaign import campaign

    figures = campaign(5, seed=2, data=tmp_path)
    assert figures["kills"] == 5, figures
    for key in (
        "corruptions",
        "completed_lost",
        "false_interruptions",
        "uncharged_kills",
        "refused",
    ):
        assert figures[key] == 0, figures
    assert figures["reader_calls"] > 0
