"""``invtable demo`` and ``invtable sim``: the simulated table, headless or with a live view."""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from controller.app.commands.common import (
    check_outputs,
    config_option,
    fail_input,
    finish_run,
    plot_problem,
)
from controller.core.errors import InputError, Problem

if TYPE_CHECKING:
    from controller.app.commands.common import Subparsers

BACKENDS = ("sim", "gpio-mock", "serial")


def register(sub: Subparsers) -> None:
    demo = sub.add_parser(
        "demo",
        help="a first-time session on the simulator with a live view, summary, trace and plot",
    )
    demo.add_argument(
        "--out",
        type=Path,
        default=Path("out/demo"),
        help="folder for trace.csv, summary.json, plot.png (default: out/demo)",
    )
    demo.add_argument(
        "--speed",
        type=float,
        default=10.0,
        help="times faster than real time (default 10; 0 = as fast as possible)",
    )
    demo.set_defaults(handler=run_demo)

    sim = sub.add_parser("sim", help="run one scenario headless and check it")
    sim.add_argument(
        "scenario", type=Path, metavar="SCENARIO.toml", help="the scenario file to run and check"
    )
    sim.add_argument(
        "--backend",
        choices=BACKENDS,
        default="sim",
        help="the hardware path under test: sim (the simulated HAL in-process, default), "
        "gpio-mock (the gpiozero backend on mock pins), serial (the serial backend to a "
        "virtual motion board running the firmware)",
    )
    sim.add_argument(
        "--board",
        choices=("cpython", "micropython"),
        default="cpython",
        help="with --backend serial: the motion board's firmware runs under cpython "
        "(in-process, the faster, default) or in the real micropython interpreter (the unix "
        "port, stepped in lockstep: docs/firmware.md)",
    )
    config_option(sim, "a config file, under the scenario's [config] overrides")
    sim.add_argument(
        "--trace",
        type=Path,
        metavar="OUT.csv",
        help="one row per control tick, streamed while it runs (memory stays bounded), renamed "
        "into place at the end",
    )
    sim.add_argument("--summary", type=Path, metavar="OUT.json", help="write the summary JSON")
    sim.add_argument(
        "--plot",
        type=Path,
        metavar="OUT.png",
        help="plot the angle, setpoint and speed over time (needs the plot extra)",
    )
    sim.add_argument(
        "--realtime",
        action="store_true",
        help="pace the simulation to real time (a live view shows its progress on stderr)",
    )
    quiet = sim.add_mutually_exclusive_group()
    quiet.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="print nothing on stdout: the exit code says it (violations still go to stderr)",
    )
    quiet.add_argument(
        "--json",
        action="store_true",
        help="print only the summary JSON (DESIGN section 8, with its events) on stdout",
    )
    sim.set_defaults(handler=run_sim)

    plot = sub.add_parser(
        "plot", help="plot an existing trace CSV: angle, setpoint, speed limit, states, markers"
    )
    plot.add_argument("trace", type=Path, metavar="TRACE.csv", help="the trace to plot")
    plot.add_argument(
        "--out",
        type=Path,
        metavar="OUT.png",
        help="the PNG to write (default: the trace's name with .png)",
    )
    plot.add_argument(
        "--scenario",
        type=Path,
        metavar="SCENARIO.toml",
        help="the scenario that made the trace: marks its presses and injected faults and "
        "takes its config (a trace alone shows latched faults, power cuts and late loops)",
    )
    config_option(plot, "the config the trace ran with (limits and speeds drawn; default built-in)")
    plot.set_defaults(handler=plot_trace_file)


def run_sim(args: argparse.Namespace) -> int:
    from sim.runner import run_scenario
    from sim.scenario import parse_scenario

    inputs = [args.scenario] + ([args.config] if args.config else [])
    problems = check_outputs(
        {"--trace": args.trace, "--summary": args.summary, "--plot": args.plot}, inputs
    )
    problems += plot_problem("--plot", args.plot)
    if args.board != "cpython" and args.backend != "serial":
        problems.append(
            Problem(
                "command line", "--board", "only applies with --backend serial (a motion board)"
            )
        )
    try:
        scenario = parse_scenario(args.scenario, args.config)
    except InputError as exc:
        problems = exc.problems + problems
    if problems:
        return fail_input(problems)
    # Memory bounded whatever duration_s: the trace streams to its file, the plot gets a
    # decimated copy, and only the last rows stay (sim.trace.TAIL_ROWS).
    streaming = {"keep_rows": False, "trace": args.trace, "plot_series": args.plot is not None}
    if args.realtime:
        from controller.app.view import LiveView

        view = LiveView(f"invtable sim {args.scenario.name} (real time)", stream=sys.stderr)
        with view:
            result = run_scenario(
                scenario,
                realtime=True,
                on_progress=view.update,
                backend=args.backend,
                board=args.board,
                **streaming,
            )
    else:
        result = run_scenario(scenario, backend=args.backend, board=args.board, **streaming)
    output = "json" if args.json else "quiet" if args.quiet else "text"
    return finish_run(result, trace=args.trace, summary=args.summary, plot=args.plot, output=output)


def run_demo(args: argparse.Namespace) -> int:
    from controller.app.view import LiveView
    from controller.core.clock import ScaledClock, SimClock
    from controller.core.config import read_toml
    from sim.plot import plot_available
    from sim.runner import run_scenario
    from sim.scenario import scenario_from_dict

    if args.speed < 0:
        return fail_input([Problem("command line", "--speed", "must be >= 0")])
    out: Path = args.out
    if out.exists() and not out.is_dir():
        return fail_input([Problem("command line", "--out", f"{out} exists and is not a folder")])
    if not plot_available():
        return fail_input(
            [
                Problem(
                    "command line",
                    "demo",
                    "the demo draws a plot and needs matplotlib: pip install 'invtable[plot]'",
                )
            ]
        )
    out.mkdir(parents=True, exist_ok=True)
    source = resources.files("sim").joinpath("scenarios/first_session.toml")
    with resources.as_file(source) as path:
        scenario = scenario_from_dict(read_toml(path), "first_session.toml (embedded)")

    clock = ScaledClock(args.speed) if args.speed > 0 else SimClock()
    pace = f"{args.speed:g}x real time" if args.speed else "full speed"
    print(
        f"invtable demo: '{scenario.name}' on the simulator "
        f"({scenario.duration_s:g} s simulated, {pace})"
    )
    with LiveView("invtable demo - simulated table") as view:
        result = run_scenario(
            scenario,
            clock=clock,
            on_progress=view.update,
            progress_every=5,
            keep_rows=False,
            trace=out / "trace.csv",
            plot_series=True,
        )
    return finish_run(
        result, trace=out / "trace.csv", summary=out / "summary.json", plot=out / "plot.png"
    )


def plot_trace_file(args: argparse.Namespace) -> int:
    """``invtable plot TRACE.csv``: the run's figure from its trace (bounded memory)."""
    from controller.core.config import load_config
    from sim.plot import plot_trace
    from sim.scenario import parse_scenario

    out: Path = args.out or args.trace.with_suffix(".png")
    problems = check_outputs({"--out": out}, [args.trace]) + plot_problem("--out", out)
    if not args.trace.is_file():
        problems.insert(0, Problem(str(args.trace), "TRACE.csv", "no such file"))
    scenario, config = None, None
    try:
        if args.scenario is not None:
            scenario = parse_scenario(args.scenario, args.config)
            config = scenario.config
        else:
            config = load_config(args.config)
    except InputError as exc:
        problems += exc.problems
    if problems:
        return fail_input(problems)
    assert config is not None
    try:
        markers = plot_trace(args.trace, out, config, scenario=scenario)
    except (ValueError, UnicodeDecodeError) as exc:
        return fail_input([Problem(str(args.trace), "trace", str(exc))])
    print(f"  plot:    {out}")
    for m in markers[:20]:
        print(f"  marked:  t={m.t_s:8.2f} s  {m.kind:<5}  {m.label}")
    if len(markers) > 20:
        print(f"  ... and {len(markers) - 20} more markers")
    return 0
