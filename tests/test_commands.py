"""The other commands end to end: demo, run (headless, SIGTERM), diagram, realtime sim."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

from tests.conftest import ROOT, SCENARIOS, read_trace, run_cli, write_scenario


def test_demo_writes_trace_summary_and_plot(tmp_path: Path) -> None:
    res = run_cli("demo", "--speed", "0", "--out", tmp_path / "demo")
    assert res.code == 0, res.stderr
    out = tmp_path / "demo"
    assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["passed"] and summary["ended_upright"] and summary["final_state"] == "idle"
    assert set(summary) >= {
        "scenario",
        "passed",
        "violations",
        "max_angle_deg",
        "min_angle_deg",
        "max_speed_dps",
        "time_past_horizontal_s",
        "final_state",
        "final_angle_deg",
        "ended_upright",
        "transitions",
    }
    assert [t["to"] for t in summary["transitions"]] == [
        "idle",
        "ramp",
        "hold",
        "rest",
        "returning",
        "idle",
    ]
    assert len(read_trace(out / "trace.csv")) > 10_000
    assert "trace:" in res.stdout and "plot:" in res.stdout
    assert "t=" in res.stdout  # progress lines when not a terminal


def test_run_headless_for_a_duration_then_stops_safely(tmp_path: Path) -> None:
    trace = tmp_path / "run.csv"
    res = run_cli("run", "--duration", "1.0", "--trace", trace)
    assert res.code == 0, res.stderr
    assert "motor off, brake on" in res.stdout
    rows = read_trace(trace)
    assert rows[-1]["state"] == "idle" and rows[-1]["motor_cmd"] == 0.0 and rows[-1]["brake"] == 1


def test_run_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller", "run"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    try:
        first_line = proc.stdout.readline()  # printed once the loop is about to start
        assert "headless" in first_line
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "motor off, brake on" in out


def test_realtime_sim_is_paced_by_the_wall_clock(tmp_path: Path) -> None:
    path = write_scenario(tmp_path / "s.toml", '[scenario]\nname = "rt"\nduration_s = 1.5\n')
    start = time.monotonic()
    res = run_cli("sim", path, "--realtime")
    assert res.code == 0, res.stderr
    assert (
        time.monotonic() - start >= 1.5
    )  # never faster than real time (a lower bound, not a benchmark)


def test_sim_plot_option(tmp_path: Path) -> None:
    res = run_cli("sim", SCENARIOS / "jog.toml", "--plot", tmp_path / "p.png")
    assert res.code == 0 and (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_diagram_prints_mermaid() -> None:
    res = run_cli("diagram")
    assert res.code == 0
    assert "stateDiagram-v2" in res.stdout and "ramp --> hold: arrived" in res.stdout


def test_bench_runs_and_reports_every_figure_and_target() -> None:
    """A smoke test of `invtable bench --quick --json`: it measures and reports; nothing is
    asserted about the numbers (timings are never asserted on a shared machine)."""
    import json

    res = run_cli("bench", "--quick", "--json", timeout=300)
    assert res.code == 0, res.stderr
    figures = json.loads(res.stdout)
    for key in (
        "jitter",
        "loop_timing_methods",
        "estop_sim_us",
        "estop_gpio_mock",
        "serial",
        "simulator",
        "emergency_return",
        "run",
        "supervised",
        "run_gpio_mock",
        "simulator_process",
        "campaign",
        "targets",
    ):
        assert key in figures, key
    assert figures["estop_gpio_mock"]["estop_to_pwm0_us"]["n"] == 200
    assert len(figures["targets"]) == 12
    # Every target's figure is a measurement or says it is not one: never a pass without it.
    for name, (value, met) in figures["targets"].items():
        assert (value == "not measured") == (met is None), name
    assert figures["run_gpio_mock"]["backend"] == "gpio-mock"
    # The simulator's speed is also reported by CPU time, measured (in process and as a child).
    for key in ("simulator", "simulator_process"):
        sim = figures[key]
        assert 0 < sim["cpu_seconds_best"] and sim["realtime_factor_by_cpu"] > 0, key
    assert "loop_cpu_percent_estimate" not in figures["run"]
    assert "measuring" in res.stderr  # progress feedback on a long command


def test_bench_target_without_a_figure_is_not_measured_never_met(mocker) -> None:
    """Issue 17: a figure that could not be measured (no /proc here, a process that never said
    ready) is reported as such, and its target is neither met nor silently passed."""
    from controller.app import bench

    assert bench.target(None, 2.0) == ("not measured", None)
    assert bench.target(float("nan"), 2.0) == ("not measured", None)
    assert bench.target(1.0, 2.0) == (1.0, True) and bench.target(3.0, 2.0) == (3.0, False)
    assert bench.target(1200.0, 1000.0, below=False) == (1200.0, True)
    mocker.patch.object(bench, "proc_cpu_s", return_value=None)
    r = bench.run_process(0.6)
    assert r["loop_cpu_percent"] is None and r["ready_s"] is not None
    assert bench.target(r["loop_cpu_percent"], 2.0)[1] is None


def test_bench_reads_a_process_cpu_time_from_proc() -> None:
    import os

    from controller.app import bench

    spent = bench.proc_cpu_s(os.getpid())
    assert spent is not None and spent > 0.0  # this test process has run for a while


def test_run_refuses_a_serial_board_flashed_for_other_limits(
    tmp_path: Path, mocker, capsys
) -> None:
    """Issue 12: the host compares the board's limits (HELLO_ACK) with its config; `run` then
    exits 2 naming the port and the numbers, and never starts the loop."""
    from controller.app import cli

    cfg = tmp_path / "serial.toml"
    cfg.write_text('[hardware]\nbackend = "serial"\n[hardware.serial]\nurl = "/dev/ttyNOPE"\n')
    board = mocker.MagicMock(refused="max_angle_deg 90.00 on the board, 60.00 in the config")
    table = mocker.patch("hal.serial.backend.SerialTable", return_value=board)
    service = mocker.patch("controller.app.service.run_service")
    code = cli.main(["run", "--config", str(cfg)])
    err = capsys.readouterr().err
    assert code == 2 and service.call_count == 0 and board.close.call_count == 1
    assert (
        "/dev/ttyNOPE: hardware.serial: motion board refused: max_angle_deg 90.00 on the board"
        in err
    )
    expected = table.call_args.kwargs["expected"]
    assert (expected.max_angle_deg, expected.upright_deg) == (60.0, -80.0)


Leaf = tuple[tuple[str, ...], argparse.ArgumentParser]


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[Leaf]:
    """(command path, parser) for every runnable command: `sim`, `user add`, ..."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
    for action in subs:
        for name, child in action.choices.items():
            yield from _leaves(child, (*path, name))


def test_each_command_registers_its_handler_and_describes_every_option() -> None:
    """Issue 14: a command is registered once, with its handler beside its options, and
    `invtable CMD --help` explains every option and argument."""
    from controller.app.cli import build_parser

    parser = build_parser()
    leaves = dict(_leaves(parser))
    assert {" ".join(path) for path in leaves} == {
        "demo",
        "sim",
        "plot",
        "run",
        "io",
        "install-service",
        "user add",
        "user edit",
        "user screen",
        "user list",
        "user show",
        "user remove",
        "program list",
        "session start",
        "session feedback",
        "history",
        "report",
        "bench",
        "campaign",
        "config check",
        "diagram",
    }
    for path, leaf in [((), parser), *leaves.items()]:
        if path:
            assert callable(leaf.get_default("handler")), path
        undescribed = [a.dest for a in leaf._actions if not a.help and a.dest != "command"]
        assert not undescribed, (path, undescribed)


def test_version_prints_the_installed_package_version() -> None:
    from importlib.metadata import version

    res = run_cli("--version")
    assert res.code == 0, res.stderr
    assert res.stdout.strip() == f"invtable {version('invtable')}"
