"""Issue 16: the bench tester's tools tell the why. Each test drives the real CLI (a
subprocess, or ``cli.main`` with capsys where a scripted pendant stands in for a terminal)
and checks the text a person reads."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from controller.app import cli
from controller.core.config import Config
from sim.runner import RunResult
from tests.conftest import ROOT, SCENARIOS, read_trace, run_cli

PNG = b"\x89PNG\r\n\x1a\n"


def keep_for_docs(png: Path, name: str) -> None:
    """INVTABLE_WRITE_DOCS=1: copy a rendered PNG to docs/img/ (the pictures the README and
    the user guide show are the ones these tests draw)."""
    if os.environ.get("INVTABLE_WRITE_DOCS"):
        import shutil

        (ROOT / "docs" / "img").mkdir(exist_ok=True)
        shutil.copyfile(png, ROOT / "docs" / "img" / name)


def scenario_file(tmp_path: Path, body: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


# ------------------------------------------------------------------ invtable sim: the why


def test_sim_lists_refusals_with_their_reason_after_the_verdict() -> None:
    res = run_cli("sim", SCENARIOS / "interlock_refused.toml")
    assert res.code == 0, res.stderr
    out = res.stdout
    verdict = out.index("PASSED")
    assert out.index("2 refusal(s), first at t=1.00 s: refused start: ankle lock") > verdict
    assert re.search(r"t=\s+1\.00 s  REFUSED refused start: ankle lock not confirmed", out)
    assert re.search(r"t=\s+2\.00 s  REFUSED refused jog down: ankle lock not confirmed", out)
    assert "clean: no fault latched" not in out


def test_a_pass_with_a_latched_fault_does_not_read_like_a_clean_one() -> None:
    clean = run_cli("sim", SCENARIOS / "first_session.toml")
    faulty = run_cli("sim", SCENARIOS / "fault_sensor_stuck.toml")
    assert clean.code == faulty.code == 0
    assert "clean: no fault latched, nothing refused, no e-stop, ended upright" in clean.stdout
    assert "fault latched:" not in clean.stdout
    assert "fault latched: sensor_disagree at t=20.24 s" in faulty.stdout
    assert "clean:" not in faulty.stdout
    assert re.search(r"t=\s+20\.00 s  SIM\s+injected fault angle_sensor_stuck", faulty.stdout)
    assert re.search(r"t=\s+20\.24 s  FAULT\s+fault: sensor_disagree: primary", faulty.stdout)


def test_link_loss_on_sim_is_reported_as_not_applicable(tmp_path: Path) -> None:
    path = scenario_file(
        tmp_path,
        """
        [scenario]
        name = "link loss on sim"
        duration_s = 3.0
        [[events]]
        at_s = 1.0
        do = "fault"
        fault = "link_loss"
        """,
    )
    res = run_cli("sim", path)
    assert res.code == 0, res.stderr
    assert (
        "  not applicable: injected fault link_loss: not applicable on backend sim "
        "(there is no serial link)" in res.stdout
    )


def test_a_failure_names_the_first_violation_and_quiet_and_json_suit_scripts(
    tmp_path: Path,
) -> None:
    path = scenario_file(
        tmp_path,
        """
        [scenario]
        name = "expects too little"
        duration_s = 40.0
        [[events]]
        at_s = 0.5
        do = "set"
        input = "ankle_lock"
        value = true
        [[events]]
        at_s = 1.0
        do = "tap"
        input = "start"
        [expect]
        max_angle_deg = -60.0
        """,
    )
    res = run_cli("sim", path)
    assert res.code == 1
    assert "FAILED" in res.stdout
    assert "  first violation: expect.max_angle_deg = -60, but the angle reached" in res.stdout
    quiet = run_cli("sim", path, "--quiet")
    assert quiet.code == 1 and quiet.stdout == ""
    assert "invtable: violation: expect.max_angle_deg = -60" in quiet.stderr
    ok = run_cli("sim", SCENARIOS / "interlock_refused.toml", "-q")
    assert ok.code == 0 and ok.stdout == "" and ok.stderr == ""
    summary = tmp_path / "summary.json"
    as_json = run_cli("sim", SCENARIOS / "interlock_refused.toml", "--json", "--summary", summary)
    assert as_json.code == 0
    printed = json.loads(as_json.stdout)  # stdout is nothing but the summary JSON
    assert printed == json.loads(summary.read_text())
    assert printed["passed"] is True
    assert {"t_s": 1.0, "message": "refused start: ankle lock not confirmed"} in printed["events"]
    both = run_cli("sim", path, "--json", "--quiet")
    assert both.code == 2 and "not allowed with argument" in both.stderr


def test_a_violation_line_carries_its_trace_time() -> None:
    from controller.app.explain import headline

    lines = headline(
        {
            "passed": False,
            "events": [],
            "violations": ["speed: at t=12.34 s: speed 9.00 deg/s over the 8.00 deg/s limit"],
        }
    )
    assert lines == [
        "  first violation: speed: at t=12.34 s: speed 9.00 deg/s over the 8.00 deg/s limit"
    ]


def test_every_option_has_help_and_version_is_printed() -> None:
    from controller.app.cli import build_parser

    def walk(parser: argparse.ArgumentParser, path: str) -> list[str]:
        missing = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    missing += walk(sub, f"{path} {name}")
            elif not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{path} {action.option_strings or action.dest}")
        return missing

    assert walk(build_parser(), "invtable") == []
    res = run_cli("--version")
    assert res.code == 0 and re.fullmatch(r"invtable \d+\.\d+\.\d+\S*\n", res.stdout)
    helped = run_cli("sim", "--help")
    for option in ("--quiet", "--json", "--realtime", "--backend", "--trace", "--plot"):
        assert option in helped.stdout


# ------------------------------------------------------------------ raw output


def test_user_list_show_and_edit_read_as_text(tmp_path: Path) -> None:
    empty = run_cli("user", "list", "--data", tmp_path)
    assert empty.code == 0 and "no profiles yet" in empty.stdout
    added = run_cli(
        "user",
        *("add", "ann", "--height-cm", "170", "--weight-kg", "70"),
        *("--screening", "eye_condition", "--data", tmp_path),
    )
    assert added.code == 0, added.stderr
    shown = run_cli("user", "show", "ann", "--data", tmp_path)
    assert shown.code == 0
    assert "None" not in shown.stdout
    assert not re.search(r"\d{9,}\.\d", shown.stdout), shown.stdout  # no epoch floats
    assert re.search(r"created:\s+\d{4}-\d\d-\d\d \d\d:\d\d", shown.stdout)
    assert "screening:     eye_condition (answered " in shown.stdout
    assert "no physician's clearance recorded" in shown.stdout
    assert "LOCKED OUT" in shown.stdout
    as_json = json.loads(run_cli("user", "show", "ann", "--json", "--data", tmp_path).stdout)
    assert isinstance(as_json["created_at"], float)  # --json keeps the machine form
    noop = run_cli("user", "edit", "ann", "--data", tmp_path)
    assert noop.code == 2
    assert "nothing changed for ann" in noop.stderr and "updated" not in noop.stdout
    cleared = run_cli("user", "edit", "ann", "--cleared-by", "Dr Who", "--data", tmp_path)
    assert cleared.code == 0 and "updated ann" in cleared.stdout
    shown = run_cli("user", "show", "ann", "--data", tmp_path).stdout
    assert re.search(r"clearance:\s+by Dr Who on \d{4}-\d\d-\d\d \d\d:\d\d", shown)
    assert "inversion:     allowed" in shown


# Issue 19's rules: a first session needs a named supervisor, and a second one the same
# day waits for the rest between sessions (the test clock moves it 3 h on).
SUPERVISED = ("--supervised-by", "Sam")
DAY0 = time.mktime((2026, 3, 2, 9, 0, 0, 0, 0, -1))  # 09:00 local time


def test_clips_are_rounded_and_no_negative_zero_peak(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INVTABLE_TEST_WALL_TIME", str(DAY0))
    for name, screening in (("ann", "no"), ("lou", "eye_condition")):
        res = run_cli(
            "user",
            *("add", name, "--height-cm", "170", "--weight-kg", "70"),
            *("--screening", screening, "--data", tmp_path),
        )
        assert res.code == 0
    first = run_cli(
        *("session", "start", "--user", "ann", "--program", "first session"),
        *("--count-sim", "--data", tmp_path, *SUPERVISED),
    )
    assert first.code == 0, first.stderr
    monkeypatch.setenv("INVTABLE_TEST_WALL_TIME", str(DAY0 + 3 * 3600.0))
    second = run_cli(
        *("session", "start", "--user", "ann", "--program", "intermittent"),
        *("--count-sim", "--data", tmp_path, *SUPERVISED),
    )
    assert second.code == 0, second.stderr
    clips = re.findall(r"clipped: step \d: 30 deg clipped to (\S+) deg", second.stdout)
    assert clips and all(re.fullmatch(r"-?\d+(\.\d{1,2})?", c) for c in clips), second.stdout
    locked = run_cli(
        *("session", "start", "--user", "lou", "--program", "first session"),
        *("--count-sim", "--data", tmp_path, *SUPERVISED),
    )
    assert locked.code == 0 and "clipped to 0 deg (screening" in locked.stdout
    hist = run_cli("history", "--data", tmp_path)
    assert "-0.0" not in hist.stdout
    rows = json.loads(run_cli("history", "--json", "--data", tmp_path).stdout)
    lou = next(r for r in rows if r["user"] == "lou")
    line = next(x for x in hist.stdout.splitlines() if f"#{lou['id']} " in x)
    assert re.search(r"peak -?\d+\.\d deg", line) and round(lou["peak_deg"], 1) <= 0.0


# ------------------------------------------------------------------ errors a user can act on


def test_run_with_a_missing_serial_port_names_it_and_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "serial.toml"
    config.write_text('[hardware]\nbackend = "serial"\n[hardware.serial]\nurl = "/dev/ttyNOPE7"\n')
    res = run_cli("run", "--config", config, "--duration", "1")
    assert res.code == 2
    assert "hardware.serial.url: cannot open the serial port /dev/ttyNOPE7" in res.stderr
    assert "estop" not in res.stdout and "transition" not in res.stdout
    assert "Traceback" not in res.stderr


def test_io_on_gpiozero_mock_pins_runs_or_says_why(tmp_path: Path) -> None:
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock"}
    env.pop("GPIOZERO_MOCK_PIN_CLASS", None)

    def io(extra_env: dict[str, str]) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "controller", "io", "--duration", "0.25"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**env, **extra_env},
            timeout=60,
            stdin=subprocess.DEVNULL,
        )

    plain = io({})
    assert plain.returncode == 0, plain.stderr
    assert "Traceback" not in plain.stderr and "PinPWMUnsupported" not in plain.stderr
    assert "primary_deg=no reading" in plain.stdout and "None" not in plain.stdout
    no_pwm = io({"GPIOZERO_MOCK_PIN_CLASS": "mockpin"})
    assert no_pwm.returncode == 2
    assert "cannot do PWM" in no_pwm.stderr and "Traceback" not in no_pwm.stderr


# ------------------------------------------------------------------ run: headless and the view


def test_headless_run_logs_transitions_and_events_as_lines() -> None:
    res = run_cli("run", "--duration", "1.5")
    assert res.code == 0, res.stderr
    assert re.search(r"t=\s+0\.30 s  boot -> idle \(selftest_passed\)", res.stdout)
    assert re.search(r"t=\s+0\.30 s  note: self-test passed", res.stdout)
    assert not any(line.startswith("{") for line in res.stdout.splitlines())  # no JSON lines


class QuitPendant:
    """The keyboard pendant's quit protocol in simulated time: ``"q"`` and ``"y"`` as keys,
    other actions as world events."""

    def __init__(self, script: list[tuple[float, object]]) -> None:
        self.script = sorted(script, key=lambda item: item[0])
        self.quit = self.quit_asked = self.asking = False
        self.answer: str | None = None
        self.asked_at: float | None = None

    def poll(self, now: float) -> list:
        due = []
        if self.asking and self.asked_at is None:
            self.asked_at = now
        while self.script and self.script[0][0] <= now + 1e-9:
            action = self.script.pop(0)[1]
            if action == "q":
                if self.asking:
                    self.quit = True
                else:
                    self.quit_asked = True
            elif action == "y":
                self.answer = "y" if self.asking else None
            else:
                due.append(action)
        return due


def run_with_keys(
    monkeypatch: pytest.MonkeyPatch, keys: list[tuple[float, object]], *args: str
) -> tuple[int, RunResult, QuitPendant]:
    import controller.app.simcmd as runsim
    from controller.core.clock import SimClock
    from sim.scenario import Event, Scenario

    start = [
        (0.5, Event(0.5, "set", "ankle_lock", True)),
        (1.0, Event(1.0, "press", "start")),
        (1.2, Event(1.2, "release", "start")),
    ]
    pendant = QuitPendant(start + keys)
    result = RunResult(Scenario("bench", 0.0, 0, 80.0, 178.0, Config(), ()))
    monkeypatch.setattr(
        runsim,
        "run_bench",
        functools.partial(runsim.run_bench, clock=SimClock(), pendant=pendant, result=result),
    )
    return cli.main(["run", "--duration", "200", *args]), result, pendant


def test_quit_off_upright_asks_then_returns_the_person_before_quitting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    code, result, pendant = run_with_keys(monkeypatch, [(15.0, "q"), (16.0, "y")])
    out = capsys.readouterr().out
    assert code == 0
    assert pendant.asked_at is not None and 15.0 <= pendant.asked_at < 15.1  # it asked first
    returned = [t for t in result.transitions if t.trigger == "press_return"]
    assert returned and 16.0 <= returned[0].t_s < 16.1, result.transitions
    stopped = float(re.search(r"stopped at t=([\d.]+) s in state idle", out).group(1))
    assert 20.0 < stopped < 60.0  # after the way back, long before --duration
    assert "LEFT OFF UPRIGHT" not in out
    assert result.rows[-1][1] == "idle" and result.rows[-1][2] < -79.0


def test_quit_twice_leaves_the_simulated_person_and_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    code, result, _ = run_with_keys(monkeypatch, [(15.0, "q"), (16.0, "q")])
    out = capsys.readouterr().out
    assert code == 0
    assert re.search(r"stopped at t=16\.0\d s in state ramp", out), out
    assert re.search(r"the simulated person is LEFT OFF UPRIGHT at -?\d+\.\d deg", out)
    assert "Nothing was saved (no --data)" in out
    assert not [t for t in result.transitions if t.trigger == "press_return"]
    code, _, _ = run_with_keys(monkeypatch, [(15.0, "q"), (16.0, "q")], "--data", str(tmp_path))
    out = capsys.readouterr().out
    assert f"`invtable run --data {tmp_path}` resumes from this angle" in out


def test_the_live_view_shows_the_situation_and_ages_the_last_event() -> None:
    from rich.console import Console

    from controller.app.view import render
    from sim.runner import Progress

    p = Progress(
        t_s=130.0,
        duration_s=0.0,
        state="idle",
        angle_deg=-80.0,
        setpoint_deg=-80.0,
        session_s=0.0,
        max_session_s=300.0,
        target_deg=30.0,
        brake=True,
        alarm=False,
        last_event="e-stop: motor off, brake on (latched; RETURN or hold UP after release)",
        ankle_locked=False,
        estop_in=False,
        last_event_t=100.0,
        state_since_t=120.0,
        interlocks=("ankle lock not confirmed",),
    )
    console = Console(record=True, width=140)
    console.print(render(p, "bench", subtitle="ann, program 'intermittent'"))
    text = console.export_text()
    assert "ann, program 'intermittent'" in text
    assert "30 s ago: e-stop: motor off" in text and "(before idle)" in text
    assert "START refused: ankle lock not confirmed" in text
    assert "alarm off" in text
    live = dataclasses.replace(
        p,
        state="hold",
        session_s=100.0,
        alarm=True,
        step="step 2/3: 30 deg, hold 25 s (12 s left)",
        state_since_t=90.0,
    )
    console = Console(record=True, width=140)
    console.print(render(live, "bench"))
    text = console.export_text()
    assert "100.0 s, 200.0 s left of the 300 s limit" in text
    assert "step 2/3: 30 deg, hold 25 s (12 s left)" in text
    assert "ALARM SOUNDING" in text and "(before" not in text


def test_session_start_at_real_time_speed_shows_a_progress_bar(tmp_path: Path) -> None:
    import pty

    res = run_cli(
        "user",
        *("add", "ann", "--height-cm", "170", "--weight-kg", "70"),
        *("--screening", "no", "--data", tmp_path),
    )
    assert res.code == 0
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller", "session", "start", "--user", "ann"]
        + ["--program", "first session", "--speed", "100", "--data", str(tmp_path)]
        + list(SUPERVISED),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=slave,
        stdin=subprocess.DEVNULL,
    )
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    out, _ = proc.communicate(timeout=120)
    os.close(master)
    assert proc.returncode == 0
    assert b"ann: first session" in seen and re.search(rb"\d+/\d+ s", seen)
    assert b"\xe2\x94\x81" in seen  # the bar's line characters
    assert b"PASSED" in out and b"\x1b[" not in out  # stdout stays plain text


# ------------------------------------------------------------------ plots and reports


@pytest.fixture()
def plot_extra() -> None:
    pytest.importorskip("matplotlib")


def test_sim_plot_and_invtable_plot_draw_the_applied_limit_and_markers(
    tmp_path: Path, plot_extra: None
) -> None:
    from sim.plot import read_trace as read_rows
    from sim.plot import series_with_limits

    trace, png = tmp_path / "brake.csv", tmp_path / "brake.png"
    scenario = SCENARIOS / "fault_brake_failed.toml"
    res = run_cli("sim", scenario, "--trace", trace, "--plot", png, "-q")
    assert res.code == 0, res.stderr
    assert png.read_bytes()[:8] == PNG
    alone = run_cli("plot", trace)
    assert alone.code == 0, alone.stderr
    assert (tmp_path / "brake.png").read_bytes()[:8] == PNG
    assert re.search(r"marked:  t=\s+45\.\d\d s  fault  brake_creep", alone.stdout)
    assert "press" not in alone.stdout  # a trace alone cannot know the presses
    full = run_cli("plot", trace, "--scenario", scenario, "--out", tmp_path / "full.png")
    assert full.code == 0, full.stderr
    assert re.search(r"t=\s+1\.00 s  press  start", full.stdout)
    assert re.search(r"t=\s+45\.00 s  fault  inject brake_failed", full.stdout)
    keep_for_docs(tmp_path / "full.png", "plot-fault-brake.png")
    series = series_with_limits(read_rows(trace), Config(), 45.0)
    after = [p for p in series.points() if 46.0 < p[0] < 60.0]
    assert after and all(p[5] == Config().motion.emergency_speed_dps for p in after)
    assert max(abs(p[3]) for p in after) > Config().motion.max_speed_dps + 1.0


def test_the_plotted_limit_is_the_one_applied_after_a_fault(
    tmp_path: Path, plot_extra: None
) -> None:
    """A stuck sensor at 20 s: the switch to limp home moves the table faster than the
    ramp's 4 deg/s for a moment, within the emergency speed the check allows after a fault.
    The trace's profile limit would draw that as a breach; the plotted limit does not."""
    from sim.plot import STATE_COLOURS, series_with_limits
    from sim.plot import read_trace as read_rows

    trace, png = tmp_path / "stuck.csv", tmp_path / "stuck.png"
    res = run_cli("sim", SCENARIOS / "fault_sensor_stuck.toml", "--trace", trace, "--plot", png)
    assert res.code == 0, res.stderr
    keep_for_docs(png, "plot-sensor-stuck.png")
    rows = read_trace(trace)
    over_profile = [r for r in rows if abs(r["velocity_dps"]) > r["speed_limit_dps"] + 0.05]
    assert over_profile and all(r["t_s"] >= 20.0 for r in over_profile)
    series = series_with_limits(read_rows(trace), Config(), 20.0)
    points = series.points()
    # Decimated past 4096 rows, but each bucket keeps its fastest point: no breach hides.
    assert max(abs(p[3]) for p in points) == max(abs(r["velocity_dps"]) for r in rows)
    assert all(abs(p[3]) <= p[5] + 0.05 for p in points)
    before = [p for p in points if 2.0 < p[0] < 19.0 and p[1] == "ramp"]
    assert before and all(p[5] == Config().motion.max_speed_dps for p in before)
    # Distinct colours for the states the issue found confusable.
    assert STATE_COLOURS["estop"] != STATE_COLOURS["fault"]
    assert STATE_COLOURS["limp_home"] != STATE_COLOURS["boot"]


def test_invtable_plot_refuses_what_is_not_a_trace(tmp_path: Path, plot_extra: None) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    res = run_cli("plot", bad)
    assert res.code == 2 and "bad.csv: trace: not an invtable trace: missing column" in res.stderr
    missing = run_cli("plot", tmp_path / "nope.csv")
    assert missing.code == 2 and "nope.csv: TRACE.csv: no such file" in missing.stderr
    assert "Traceback" not in res.stderr + missing.stderr


def long_history(data: Path, n: int = 40, days: int = 90) -> None:
    """``n`` sessions spread over ``days`` (two on some days), some ended early, written
    through the store and then dated into the past."""
    from controller.app.history import Store

    store = Store(data)
    user = store.get_user("ann")
    assert user is not None
    now = user.created_at
    ids = []
    for i in range(n):
        sid = store.begin_session(user, ("first session", "intermittent")[i % 2], [], "sim")
        early = i % 7 == 3
        peak = min(20.0 + i, 60.0) - (15.0 if early else 0.0)
        store.end_session(
            sid, "user_stop" if early else "completed", peak, 60.0 + 4 * i, 60.0, 30.0, []
        )
        ids.append(sid)
    store.close()
    db = sqlite3.connect(data / "invtable.db")
    for i, sid in enumerate(ids):
        day = days * i / n
        started = now - (days - day) * 86400.0 + (3600.0 if i % 5 == 0 else 0.0)
        db.execute("UPDATE sessions SET started_at=? WHERE id=?", (started, sid))
    db.commit()
    db.close()


def test_the_report_reads_for_an_empty_a_short_and_a_long_history(
    tmp_path: Path, plot_extra: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sim.plot import minutes_per_day

    data = tmp_path / "d"
    res = run_cli(
        "user",
        *("add", "ann", "--height-cm", "170", "--weight-kg", "70"),
        *("--screening", "no", "--data", data),
    )
    assert res.code == 0
    empty = run_cli("report", "--user", "ann", "--out", tmp_path / "empty.png", "--data", data)
    assert empty.code == 0 and "ann: no sessions recorded yet" in empty.stdout
    assert (tmp_path / "empty.png").read_bytes()[:8] == PNG
    for k, program in enumerate(("first session", "intermittent")):
        monkeypatch.setenv("INVTABLE_TEST_WALL_TIME", str(DAY0 + k * 3 * 3600.0))
        ran = run_cli(
            *("session", "start", "--user", "ann", "--program", program),
            *("--count-sim", "--data", data, *SUPERVISED),
        )
        assert ran.code == 0, ran.stderr
    short = run_cli("report", "--user", "ann", "--out", tmp_path / "short.png", "--data", data)
    assert short.code == 0
    assert "ann: 2 session(s) on 1 day(s); programs: first session, intermittent" in short.stdout
    one = run_cli("report", "--session", "2", "--out", tmp_path / "s2.png", "--data", data)
    assert one.code == 0
    assert re.search(
        r"session #2  ann, program 'intermittent', \d{4}-\d\d-\d\d \d\d:\d\d; "
        r"outcome completed, peak 30\.0 deg, \d+ s past horizontal",
        one.stdout,
    ), one.stdout
    nosuch = run_cli("report", "--session", "99", "--out", tmp_path / "x.png", "--data", data)
    assert nosuch.code == 2 and "--session: no session #99" in nosuch.stderr
    long_history(data)
    # A screening "yes" 96 days ago, a physician's clearance 92 days ago (before the first
    # session, 90 days ago): both marked.
    for edit in (["--screening", "eye_condition"], ["--cleared-by", "Dr Who"]):
        assert run_cli("user", "edit", "ann", *edit, "--data", data).code == 0
    db = sqlite3.connect(data / "invtable.db")
    now = db.execute("SELECT cleared_at FROM users WHERE name='ann'").fetchone()[0]
    db.execute(
        "UPDATE users SET screened_at=?, cleared_at=? WHERE name='ann'",
        (now - 96 * 86400.0, now - 92 * 86400.0),
    )
    db.commit()
    db.close()
    long = run_cli("report", "--user", "ann", "--out", tmp_path / "long.png", "--data", data)
    assert long.code == 0
    days = re.search(r"ann: 42 session\(s\) on (\d+) day\(s\)", long.stdout)
    assert days and 30 < int(days.group(1)) < 42, long.stdout  # same-day sessions share a day
    sessions = json.loads(run_cli("history", "--json", "--data", data).stdout)
    per_day = minutes_per_day(sessions)
    assert len(per_day) == int(days.group(1))
    assert sum(per_day.values()) == pytest.approx(
        sum(s["past_horizontal_s"] for s in sessions) / 60.0
    )
    for name in ("short.png", "long.png", "s2.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG
    for name, doc in (
        ("empty.png", "report-empty.png"),
        ("short.png", "report-short.png"),
        ("long.png", "report-long.png"),
        ("s2.png", "report-session.png"),
    ):
        keep_for_docs(tmp_path / name, doc)
