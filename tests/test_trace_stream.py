"""Traces stream (issue 13): memory does not grow with a scenario's length.

The CLI runs with ``keep_rows=False``: every row streams to the trace file (a temporary
file renamed into place at the end), the summary and the invariant checks are folded in
row by row, the plot gets a bounded decimated copy, and only the last ``TAIL_ROWS`` rows
stay in memory. These tests prove the streamed outputs are the very bytes the whole-list
code wrote, that a failed or interrupted run leaves neither a partial trace nor a
temporary file, and, through the real CLI, that a long scenario's peak memory does not
grow with its length.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import deque
from pathlib import Path

import pytest

from sim.runner import Progress, RunResult, run_scenario, write_trace
from sim.scenario import parse_scenario
from sim.trace import PLOT_BUCKETS, TAIL_ROWS, PlotSeries, TraceRow, TraceWriter, format_row
from tests.conftest import ROOT, SCENARIOS, run_cli, write_scenario

# Scenarios between them with every kind of row: power cut (no sensor reading, no goal),
# a hung controller, faults, a timed run with late ticks, a long idle tail (> TAIL_ROWS rows).
STREAM_CASES = (
    "first_session",
    "controller_hang",
    "way_back_estop_power_cycle",
    "fault_sensor_stuck",
)


def _long_scenario(path: Path, duration_s: float) -> Path:
    """The first session, then the table idle upright until ``duration_s``."""
    text = (
        (SCENARIOS / "first_session.toml")
        .read_text()
        .replace("duration_s = 150.0", f"duration_s = {duration_s}")
    )
    assert f"duration_s = {duration_s}" in text
    return write_scenario(path, text)


@pytest.mark.parametrize("name", STREAM_CASES)
def test_a_streamed_run_writes_the_same_trace_and_summary_as_a_kept_one(
    name: str, tmp_path: Path
) -> None:
    scenario = parse_scenario(SCENARIOS / f"{name}.toml")
    kept = run_scenario(scenario)
    write_trace(kept, tmp_path / "kept.csv")
    streamed = run_scenario(
        scenario, keep_rows=False, trace=tmp_path / "streamed.csv", plot_series=True
    )
    assert (tmp_path / "streamed.csv").read_bytes() == (tmp_path / "kept.csv").read_bytes()
    assert json.dumps(streamed.summary) == json.dumps(kept.summary)
    assert streamed.violations == kept.violations and streamed.unmet == kept.unmet
    # Only the tail is kept, and it is the tail.
    assert isinstance(streamed.rows, deque) and len(streamed.rows) == min(TAIL_ROWS, len(kept.rows))
    assert list(streamed.rows) == kept.rows[-len(streamed.rows) :]
    assert streamed.stats.rows == len(kept.rows) and not streamed.rows_complete
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "kept.csv",
        "streamed.csv",
    ]  # no temporary file left


def test_a_timed_run_streams_the_same_bytes(tmp_path: Path) -> None:
    """Jitter and stalls: late ticks (late_ms, late_ticks, max_late_ms) survive streaming."""
    path = write_scenario(
        tmp_path / "timed.toml",
        (SCENARIOS / "first_session.toml").read_text()
        + """
[timing]
tick_jitter_ms = 3.0
current_lag_ticks = 2

[[events]]
at_s = 30.0
do = "stall"
duration_s = 0.15
""",
    )
    scenario = parse_scenario(path)
    kept = run_scenario(scenario)
    write_trace(kept, tmp_path / "kept.csv")
    streamed = run_scenario(scenario, keep_rows=False, trace=tmp_path / "streamed.csv")
    assert kept.summary["late_ticks"] > 0
    assert (tmp_path / "streamed.csv").read_bytes() == (tmp_path / "kept.csv").read_bytes()
    assert json.dumps(streamed.summary) == json.dumps(kept.summary)


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, RuntimeError])
def test_an_interrupted_run_leaves_the_target_untouched_and_no_temporary_file(
    interrupt: type, tmp_path: Path
) -> None:
    target = tmp_path / "trace.csv"
    target.write_text("an older trace\n")
    scenario = parse_scenario(SCENARIOS / "first_session.toml")
    seen = []

    def stop_midway(p: Progress) -> None:
        seen.append(p.t_s)
        assert any(
            f.name.startswith(".trace.csv.") for f in tmp_path.iterdir()
        )  # streaming meanwhile
        if p.t_s >= 60.0:  # well past the first FLUSH_LINES rows: some were on disk already
            raise interrupt("stop")

    with pytest.raises(interrupt):
        run_scenario(scenario, keep_rows=False, trace=target, on_progress=stop_midway)
    assert seen[-1] >= 60.0
    assert target.read_text() == "an older trace\n"
    assert [f.name for f in tmp_path.iterdir()] == ["trace.csv"]


def test_trace_writer_aborts_on_an_exception_and_commits_once() -> None:
    """The context manager commits on a clean exit only; commit and abort are idempotent."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "t.csv"
        with pytest.raises(ValueError):
            with TraceWriter(target) as w:
                w.write((0.0, "boot") + (0.0,) * 17 + (0.0,))
                raise ValueError("boom")
        assert list(Path(tmp).iterdir()) == []
        with TraceWriter(target) as w:
            w.write(
                (
                    0.0,
                    "boot",
                    1.0,
                    2.0,
                    None,
                    3.0,
                    0.0,
                    1,
                    None,
                    0.0,
                    0.0,
                    0.0,
                    0,
                    0,
                    1,
                    1,
                    0.0,
                    0.0,
                    "",
                    0.0,
                )
            )
        w.commit()
        w.abort()  # after a commit: nothing to undo
        assert [p.name for p in Path(tmp).iterdir()] == ["t.csv"]
        assert (
            target.read_text().splitlines()[1]
            == "0.0000,boot,1.0000,2.0000,,3.0000,0.0000,1,,0.0000,0.0000,"
            "0.0000,0,0,1,1,0.0000,0.0000,,0.0000"
        )
        assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_write_trace_refuses_a_run_that_kept_only_its_tail(tmp_path: Path) -> None:
    result = run_scenario(parse_scenario(SCENARIOS / "jog.toml"), keep_rows=False)
    with pytest.raises(ValueError, match="stream its trace"):
        write_trace(result, tmp_path / "t.csv")
    assert list(tmp_path.iterdir()) == []


def test_a_run_stopped_before_its_first_tick_summarizes_as_before() -> None:
    from sim.runner import summarize
    from sim.scenario import scenario_from_dict

    s = summarize(
        RunResult(scenario_from_dict({"scenario": {"name": "x", "duration_s": 1.0}}, "x"))
    )
    # The whole-list code: no rows gave an int 0 past horizontal and 0.0 for the speed and lateness.
    assert s["time_past_horizontal_s"] == 0 and isinstance(s["time_past_horizontal_s"], int)
    assert s["max_speed_dps"] == 0.0 and s["late_ticks"] == 0 and s["max_late_ms"] == 0.0
    assert s["max_angle_deg"] == s["min_angle_deg"] == s["final_angle_deg"] == -80.0


def test_plot_series_is_bounded_keeps_the_peaks_and_the_exact_state_changes() -> None:
    """A day of rows in a few thousand points, without losing a peak or a state change."""
    n = 200_000
    rows = []
    for k in range(n):
        t = k * 0.01
        state = "hold" if 50_000 <= k < 50_007 else "idle"
        angle = 70.0 if k == 123_457 else -80.0 + (k % 1000) * 1e-3
        vel = -9.5 if k == 77_777 else 0.0
        rows.append(
            TraceRow(
                t,
                state,
                angle,
                vel,
                None,
                angle,
                0.0,
                1,
                None,
                0.0,
                4.0,
                4.0,
                0,
                0,
                1,
                1,
                0.0,
                0.0,
                "",
                0.0,
            )  # fmt: skip
        )
    series = PlotSeries.of(rows)
    points = series.points()
    assert len(points) <= 5 * PLOT_BUCKETS + series.stride
    assert len(series.buckets) <= PLOT_BUCKETS and series.stride > 1
    assert [p[0] for p in points] == sorted(p[0] for p in points)
    assert max(p[2] for p in points) == 70.0 and min(p[3] for p in points) == -9.5
    assert points[0][0] == 0.0 and points[-1][0] == rows[-1].t_s
    assert series.states == [(0.0, "idle"), (500.0, "hold"), (500.07, "idle")]
    assert series.last_t == rows[-1].t_s
    # A short run keeps every row.
    short = PlotSeries.of(rows[:1000]).points()
    assert short == [
        (r.t_s, r.state, r.angle_deg, r.velocity_dps, r.setpoint_deg, r.speed_limit_dps)
        for r in rows[:1000]
    ]


def test_the_demo_and_sim_plot_come_from_the_bounded_series(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from sim.plot import plot_run

    scenario = parse_scenario(SCENARIOS / "first_session.toml")
    streamed = run_scenario(scenario, keep_rows=False, plot_series=True)
    plot_run(streamed, tmp_path / "streamed.png")
    assert (tmp_path / "streamed.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="plot_series=True"):
        plot_run(run_scenario(scenario, keep_rows=False), tmp_path / "none.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["streamed.png"]


def test_format_row_matches_the_general_formatter_for_odd_rows() -> None:
    """A None outside the two optional columns takes the per-value path, same format."""
    row = (
        1.0,
        "hung",
        2.0,
        3.0,
        None,
        4.0,
        None,
        1,
        None,
        0.0,
        0.0,
        0.0,
        0,
        0,
        1,
        1,
        0.0,
        0.0,
        "",
        0.5,
    )
    assert (
        format_row(row)
        == "1.0000,hung,2.0000,3.0000,,4.0000,,1,,0.0000,0.0000,0.0000,0,0,1,1,0.0000,0.0000,,"
        "0.5000\r\n"
    )


# ---------------------------------------------------------------- through the real CLI

_PEAK_RSS = """
import resource, subprocess, sys
proc = subprocess.run(
    sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
)
sys.stderr.write(proc.stderr.decode())
print(proc.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _peak_rss_kb(*args: str | Path) -> tuple[int, int]:
    """(exit code, peak RSS in kB) of one ``invtable`` run: a fresh wrapper process waits for
    it alone, so RUSAGE_CHILDREN is that run's own high-water mark (no other child counts)."""
    proc = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, sys.executable, "-m", "controller", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    code, kb = proc.stdout.split()
    return int(code), int(kb)


def test_a_long_scenario_through_the_cli_keeps_bounded_memory(tmp_path: Path) -> None:
    """Issue 13: 30 simulated minutes peak within a few MB of the 150 s session alone, trace,
    summary and plot included. The whole-list code kept about 35 kB per simulated second
    (the trace rows): about 60 MB more here, far past the bound; the streaming code keeps
    the last minute of rows and a bounded plot series whatever the length. The figures are
    memory, not time: nothing here depends on how fast the machine is."""
    short, long = (
        _long_scenario(tmp_path / "short.toml", 150.0),
        _long_scenario(tmp_path / "long.toml", 1800.0),
    )
    peaks = {}
    for name, path in (("short", short), ("long", long)):
        out = tmp_path / name
        out.mkdir()
        code, peaks[name] = _peak_rss_kb(
            "sim",
            path,
            "--trace",
            out / "t.csv",
            "--summary",
            out / "s.json",
            "--plot",
            out / "p.png",
        )
        assert code == 0
        assert sorted(p.name for p in out.iterdir()) == [
            "p.png",
            "s.json",
            "t.csv",
        ]  # no temporary file left
    with open(tmp_path / "long" / "t.csv", "rb") as fh:
        assert sum(1 for _ in fh) == 180_002  # every row streamed: the header and 180001 ticks
    summary = json.loads((tmp_path / "long" / "s.json").read_text())
    assert summary["passed"] and summary["final_state"] == "idle"
    growth_mb = (peaks["long"] - peaks["short"]) / 1024
    assert growth_mb < 20.0, (
        f"peak RSS grew by {growth_mb:.1f} MB from a 150 s to a 1800 s scenario: {peaks}"
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_through_the_cli_leaves_no_partial_trace(
    sig: int, tmp_path: Path
) -> None:
    """Interrupted while streaming a long trace: exit 130, no trace, no temporary file."""
    scenario = _long_scenario(tmp_path / "long.toml", 86400.0)
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller", "sim", str(scenario), "--trace", str(out / "t.csv")],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        # Wait (by what is on disk, not by the clock) until rows stream to the temporary file.
        while not any(
            f.name.startswith(".t.csv.") and f.stat().st_size > 100_000 for f in out.iterdir()
        ):
            try:
                proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                continue  # still running: look again
            pytest.fail(f"the run ended before it streamed: {proc.communicate()}")
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "invtable: interrupted" in err and "Traceback" not in err
    assert list(out.iterdir()) == []


def test_bad_input_still_writes_nothing(tmp_path: Path) -> None:
    res = run_cli(
        "sim",
        write_scenario(tmp_path / "bad.toml", "[scenario]\nname = 1\n"),
        "--trace",
        tmp_path / "t.csv",
    )
    assert res.code == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]
