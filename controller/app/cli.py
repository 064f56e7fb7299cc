"""``invtable``: the command line (DESIGN section 5, a CONTRACT).

Exit codes: 0 ran and passed; 1 ran but a safety invariant was violated or an
expectation unmet (each listed on stderr); 2 invalid input (file, key and reason on
stderr, no traceback) and nothing was run or written; 3 an internal error.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from importlib import resources
from pathlib import Path
from typing import Sequence

from controller.app.history import SCREENING_KEYS
from controller.core.config import load_config
from controller.core.errors import InputError, Problem, StoreError

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_INTERNAL = 0, 1, 2, 3
BACKENDS = ("sim", "gpio-mock", "serial")


def build_parser() -> argparse.ArgumentParser:
    # argparse already exits 2 on bad arguments, with the usage and the reason.
    p = argparse.ArgumentParser(
        prog="invtable", description="Motorized inversion table controller and simulator."
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

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

    sim = sub.add_parser("sim", help="run one scenario headless and check it")
    sim.add_argument("scenario", type=Path, metavar="SCENARIO.toml")
    sim.add_argument("--backend", choices=BACKENDS, default="sim")
    sim.add_argument("--config", type=Path, metavar="CONFIG.toml")
    sim.add_argument("--trace", type=Path, metavar="OUT.csv")
    sim.add_argument("--summary", type=Path, metavar="OUT.json")
    sim.add_argument("--plot", type=Path, metavar="OUT.png")
    sim.add_argument("--realtime", action="store_true", help="pace the simulation to real time")

    run = sub.add_parser(
        "run",
        help="the controller service (backend from the config; 'sim' = bench test with a keyboard pendant)",
    )
    run.add_argument("--config", type=Path, metavar="CONFIG.toml")
    run.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help="stop after S seconds (default: until quit or SIGTERM)",
    )
    run.add_argument("--trace", type=Path, metavar="OUT.csv", help="write the trace on exit")
    run.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="profiles and history (default $INVTABLE_DATA); sim backend: resume the simulated "
        "table where a session left it (a crash, a kill)",
    )
    run.add_argument(
        "--user", help="the pendant's START runs this user's program (needs --program)"
    )
    run.add_argument("--program", help="the program START runs, planned by the progression rules")
    run.add_argument(
        "--count-sim",
        action="store_true",
        help="let simulated sessions count toward progression and the duty budget (bench tests)",
    )
    run.add_argument(
        "--clear-board",
        action="store_true",
        help="serial backend: clear the motion board's latched shutdown at start (after checking the table)",
    )

    io = sub.add_parser(
        "io", help="bring-up on the Pi: show every input live; pulse one output with the relay open"
    )
    io.add_argument("--config", type=Path, metavar="CONFIG.toml")
    io.add_argument(
        "--duration",
        type=float,
        default=0.0,
        metavar="S",
        help="stop after S seconds (default: until Ctrl-C)",
    )
    io.add_argument(
        "--pulse",
        metavar="OUTPUT",
        help="pulse one output at 1 Hz: "
        + ", ".join(["buzzer", "heartbeat", "motor_pwm", "motor_dir"])
        + " (the supply relay stays open)",
    )

    inst = sub.add_parser(
        "install-service",
        help="install the systemd unit, the invtable user and /etc/invtable/config.toml",
    )
    inst.add_argument(
        "--root",
        type=Path,
        default=Path("/"),
        help="write under this folder instead of / (changes nothing else)",
    )

    def data_opt(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--data",
            type=Path,
            metavar="DIR",
            help="profiles, history and programs (default $INVTABLE_DATA or ~/.local/share/invtable)",
        )

    user = sub.add_parser("user", help="user profiles and screening")
    user_sub = user.add_subparsers(dest="user_command", required=True, metavar="SUBCOMMAND")
    u_add = user_sub.add_parser(
        "add", help="add a profile (height and weight within the table's limits)"
    )
    u_add.add_argument("name")
    u_add.add_argument("--height-cm", type=float, required=True)
    u_add.add_argument("--weight-kg", type=float, required=True)
    u_add.add_argument(
        "--screening",
        required=True,
        metavar="no|KEY[,KEY]",
        help="'no' to every question, or the conditions answered yes: " + ", ".join(SCREENING_KEYS),
    )
    u_add.add_argument("--stage", choices=("beginner", "established"), default="beginner")
    u_add.add_argument("--max-angle-deg", type=float, default=60.0)
    u_add.add_argument("--max-session-s", type=float, default=300.0)
    u_edit = user_sub.add_parser(
        "edit", help="change a profile; --cleared-by records a physician's clearance"
    )
    u_edit.add_argument("name")
    u_edit.add_argument("--height-cm", type=float)
    u_edit.add_argument("--weight-kg", type=float)
    u_edit.add_argument("--stage", choices=("beginner", "established"))
    u_edit.add_argument("--max-angle-deg", type=float)
    u_edit.add_argument("--max-session-s", type=float)
    u_edit.add_argument("--screening", metavar="no|KEY[,KEY]")
    u_edit.add_argument(
        "--cleared-by",
        metavar="WHO",
        help="who cleared the profile for inversion (recorded with the time)",
    )
    u_screen = user_sub.add_parser(
        "screen",
        help="the screening questionnaire, one question at a time (answers recorded with the time)",
    )
    u_screen.add_argument("name")
    u_list = user_sub.add_parser("list", help="list profiles")
    u_show = user_sub.add_parser("show", help="show a profile")
    u_show.add_argument("name")
    u_show.add_argument("--json", action="store_true")
    u_rm = user_sub.add_parser("remove", help="remove a profile (its history stays)")
    u_rm.add_argument("name")
    for p_ in (u_add, u_edit, u_screen, u_list, u_show, u_rm):
        data_opt(p_)

    prog = sub.add_parser("program", help="therapy programs")
    prog_sub = prog.add_subparsers(dest="program_command", required=True, metavar="SUBCOMMAND")
    data_opt(prog_sub.add_parser("list", help="list the built-in and your programs"))

    sess = sub.add_parser("session", help="run a user's program")
    sess_sub = sess.add_subparsers(dest="session_command", required=True, metavar="SUBCOMMAND")
    s_start = sess_sub.add_parser(
        "start", help="run USER's PROGRAM on the simulated table, record it in the history"
    )
    s_start.add_argument("--user", required=True)
    s_start.add_argument("--program", required=True)
    s_start.add_argument("--config", type=Path, metavar="CONFIG.toml")
    s_start.add_argument(
        "--speed", type=float, default=0.0, help="times real time (default 0: as fast as possible)"
    )
    s_start.add_argument("--seed", type=int, default=0)
    s_start.add_argument("--trace", type=Path, metavar="OUT.csv")
    s_start.add_argument(
        "--count-sim",
        action="store_true",
        help="let simulated sessions count toward progression and the duty budget",
    )
    data_opt(s_start)

    hist = sub.add_parser("history", help="the session history")
    hist.add_argument("--user")
    hist.add_argument("--json", action="store_true")
    data_opt(hist)
    rep = sub.add_parser(
        "report", help="plot a user's progress over weeks (peak angle and minutes per session)"
    )
    rep.add_argument("--user", required=True)
    rep.add_argument("--out", type=Path, required=True, metavar="report.png")
    data_opt(rep)

    bench = sub.add_parser("bench", help="measure the performance figures (docs/performance.md)")
    bench.add_argument("--json", action="store_true", help="print the figures as JSON")
    bench.add_argument(
        "--quick", action="store_true", help="short runs: a smoke test, not figures to publish"
    )
    bench.add_argument(
        "--long",
        action="store_true",
        help="10 minutes of loop timing (the 'no missed tick' target)",
    )

    cfg = sub.add_parser("config", help="configuration tools")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    check = cfg_sub.add_parser("check", help="validate a config file")
    check.add_argument("file", type=Path, metavar="CONFIG.toml")

    diagram = sub.add_parser("diagram", help="print the state machine as a mermaid diagram")
    diagram.add_argument(
        "--markdown", action="store_true", help="print the whole docs/state-machine.md"
    )
    return p


def _fail_input(problems: list[Problem]) -> int:
    for problem in problems:
        print(f"invtable: error: {problem}", file=sys.stderr)
    return EXIT_INPUT


def _check_outputs(outputs: dict[str, Path | None], inputs: list[Path]) -> list[Problem]:
    """Refuse before running: missing folders, and outputs that would overwrite an input."""
    problems = []
    resolved_inputs = {p.resolve() for p in inputs}
    for option, path in outputs.items():
        if path is None:
            continue
        if path.resolve() in resolved_inputs:
            problems.append(
                Problem(
                    "command line", option, f"{path} is an input file; refusing to overwrite it"
                )
            )
            continue
        parent = path.parent if str(path.parent) else Path(".")
        if path.is_dir():
            problems.append(Problem("command line", option, f"{path} is a directory"))
        elif not parent.is_dir():
            problems.append(Problem("command line", option, f"folder {parent} does not exist"))
        elif not os.access(parent, os.W_OK):
            problems.append(Problem("command line", option, f"folder {parent} is not writable"))
    return problems


def _plot_problem(option: str, path: Path | None) -> list[Problem]:
    from sim.plot import plot_available

    if path is not None and not plot_available():
        return [
            Problem(
                "command line", option, "plotting needs matplotlib: pip install 'invtable[plot]'"
            )
        ]
    return []


def _report(result, stream=None) -> None:  # noqa: ANN001
    stream = stream or sys.stdout
    s = result.summary
    print(f"scenario: {s['scenario']}  ->  {'PASSED' if s['passed'] else 'FAILED'}", file=stream)
    print(
        f"  final state {s['final_state']} at {s['final_angle_deg']:.1f} deg "
        f"(ended upright: {'yes' if s['ended_upright'] else 'no'})",
        file=stream,
    )
    print(
        f"  angle range {s['min_angle_deg']:.1f} .. {s['max_angle_deg']:.1f} deg, max speed "
        f"{s['max_speed_dps']:.2f} deg/s, {s['time_past_horizontal_s']:.1f} s past horizontal",
        file=stream,
    )
    print(
        f"  {len(s['transitions'])} transitions: "
        + " -> ".join([s["transitions"][0]["from"]] + [t["to"] for t in s["transitions"]])
        if s["transitions"]
        else "  no transitions",
        file=stream,
    )


def _write_outputs(result, trace: Path | None, summary: Path | None, plot: Path | None) -> None:  # noqa: ANN001
    from sim.runner import write_summary, write_trace

    if trace:
        write_trace(result, trace)
        print(f"  trace:   {trace}")
    if summary:
        write_summary(result, summary)
        print(f"  summary: {summary}")
    if plot:
        from sim.plot import plot_run

        plot_run(result, plot)
        print(f"  plot:    {plot}")


def cmd_sim(args: argparse.Namespace) -> int:
    from sim.runner import run_scenario
    from sim.scenario import parse_scenario

    inputs = [args.scenario] + ([args.config] if args.config else [])
    problems = _check_outputs(
        {"--trace": args.trace, "--summary": args.summary, "--plot": args.plot}, inputs
    )
    problems += _plot_problem("--plot", args.plot)
    try:
        scenario = parse_scenario(args.scenario, args.config)
    except InputError as exc:
        problems = exc.problems + problems
    if problems:
        return _fail_input(problems)
    if args.realtime:
        from controller.app.view import LiveView

        view = LiveView(f"invtable sim {args.scenario.name} (real time)", stream=sys.stderr)
        with view:
            result = run_scenario(
                scenario, realtime=True, on_progress=view.update, backend=args.backend
            )
    else:
        result = run_scenario(scenario, backend=args.backend)
    _report(result)
    _write_outputs(result, args.trace, args.summary, args.plot)
    for line in result.summary["violations"]:
        print(f"invtable: violation: {line}", file=sys.stderr)
    return EXIT_OK if result.passed else EXIT_FAILED


def cmd_demo(args: argparse.Namespace) -> int:
    from controller.app.view import LiveView
    from controller.core.clock import ScaledClock, SimClock
    from controller.core.config import read_toml
    from sim.plot import plot_available
    from sim.runner import run_scenario
    from sim.scenario import scenario_from_dict

    if args.speed < 0:
        return _fail_input([Problem("command line", "--speed", "must be >= 0")])
    out: Path = args.out
    if out.exists() and not out.is_dir():
        return _fail_input([Problem("command line", "--out", f"{out} exists and is not a folder")])
    problems = (
        []
        if plot_available()
        else [
            Problem(
                "command line",
                "demo",
                "the demo draws a plot and needs matplotlib: pip install 'invtable[plot]'",
            )
        ]
    )
    if problems:
        return _fail_input(problems)
    out.mkdir(parents=True, exist_ok=True)
    source = resources.files("sim").joinpath("scenarios/first_session.toml")
    with resources.as_file(source) as path:
        scenario = scenario_from_dict(read_toml(path), "first_session.toml (embedded)")

    clock = ScaledClock(args.speed) if args.speed > 0 else SimClock()
    print(
        f"invtable demo: '{scenario.name}' on the simulator "
        f"({scenario.duration_s:g} s simulated, {'%gx real time' % args.speed if args.speed else 'full speed'})"
    )
    with LiveView("invtable demo - simulated table") as view:
        result = run_scenario(scenario, clock=clock, on_progress=view.update, progress_every=5)
    _report(result)
    _write_outputs(result, out / "trace.csv", out / "summary.json", out / "plot.png")
    for line in result.summary["violations"]:
        print(f"invtable: violation: {line}", file=sys.stderr)
    return EXIT_OK if result.passed else EXIT_FAILED


def cmd_run(args: argparse.Namespace) -> int:
    problems = []
    try:
        config = load_config(args.config)
    except InputError as exc:
        problems += exc.problems
        config = None
    if args.duration is not None and not args.duration > 0:
        problems.append(Problem("command line", "--duration", "must be > 0"))
    problems += _check_outputs({"--trace": args.trace}, [args.config] if args.config else [])
    if (args.user is None) != (args.program is None):
        problems.append(
            Problem(
                "command line",
                "--user" if args.user is None else "--program",
                "--user and --program go together",
            )
        )
    if problems:
        return _fail_input(problems)
    assert config is not None
    from controller.app.tablelock import TableLock

    lock, store_failed = None, None
    if _explicit_data(args) or args.user is not None:
        # One table, one controller. A store we cannot write never stops the controller:
        # the person must come back whatever the records can do.
        from controller.app.history import default_data_dir

        try:
            lock = TableLock(args.data or default_data_dir()).acquire()
        except StoreError as exc:
            store_failed = str(exc)
    try:
        session = None
        if store_failed is None and (args.user is not None or args.data is not None):
            try:
                session = _selected_session(args, config)
            except StoreError as exc:
                store_failed = str(exc)
        if store_failed is not None:
            print(f"invtable: STORE ERROR: {store_failed}", file=sys.stderr)
            print(
                "invtable: the controller runs WITHOUT the history: sessions that need it are refused "
                "(no --user/--program); the table still returns the person upright",
                file=sys.stderr,
                flush=True,
            )
            if args.user is not None:
                # The pendant's START is refused too: in place of the person's planned, recorded
                # session it would run the config's plain one for them, unplanned and unrecorded.
                from controller.app.sessions import NoHistory

                session = (config, (), NoHistory(store_failed), None)
        code = _run_controller(args, config, session)
    finally:
        if lock is not None:
            lock.release()
    if store_failed is not None and args.user is not None:
        print(
            f"invtable: the session for {args.user!r} was refused: the history store is unavailable "
            f"({store_failed})",
            file=sys.stderr,
        )
        return max(code, EXIT_FAILED)
    failed = getattr(session[2], "failed", None) if session is not None else None
    if failed is not None:
        # The store failed during the run: a record is incomplete and START was refused from then on.
        print(
            f"invtable: the history store failed during this run ({failed}): its record is incomplete "
            "and new sessions were refused from then on",
            file=sys.stderr,
        )
        return max(code, EXIT_FAILED)
    return code


def _explicit_data(args: argparse.Namespace) -> bool:
    """A data directory was chosen (--data, $INVTABLE_DATA, systemd's StateDirectory): the table it
    records is locked. Without one (a bench run on a laptop) there is no table identity to lock."""
    return args.data is not None or "INVTABLE_DATA" in os.environ or "STATE_DIRECTORY" in os.environ


def _run_controller(args: argparse.Namespace, config, session) -> int:  # noqa: ANN001
    program: tuple = ()
    recorder = None
    user = None
    if session is not None and session[0] is not None:
        config, program, recorder, user = session
    if config.hardware.backend == "gpio":
        problem = _gpio_problem(args.config)
        if problem:
            return _fail_input([problem])
        from controller.app.service import run_service

        return run_service(config, duration=args.duration, program=program, recorder=recorder)
    if config.hardware.backend == "serial":
        from controller.app.service import run_service
        from hal.serial.backend import BoardLimits, SerialTable

        ser = config.hardware.serial
        # The board must enforce the limits this config names (Klipper checks its MCU's config
        # the same way): a board flashed for other limits is refused before anything moves.
        board = SerialTable(
            ser.url, baudrate=ser.baudrate, expected=BoardLimits.from_config(config)
        )
        if board.refused:
            board.close()
            return _fail_input(
                [Problem(ser.url, "hardware.serial", f"motion board refused: {board.refused}")]
            )
        if args.clear_board:
            board.clear_board()
        return run_service(
            config,
            duration=args.duration,
            make_hardware=lambda: board,
            program=program,
            recorder=recorder,
        )
    from controller.app.simcmd import run_bench

    start_angle = None
    if args.data is not None:
        from controller.app.sessions import (
            TableStateSaver,
            clean_table_temp_files,
            saved_table_angle,
        )

        start_angle = saved_table_angle(args.data)
        clean_table_temp_files(args.data)
        recorder = TableStateSaver(
            args.data, recorder
        )  # every command that moves the table saves it
    person = {} if user is None else {"mass_kg": user.weight_kg, "height_cm": user.height_cm}
    return run_bench(
        config,
        duration=args.duration,
        trace=args.trace,
        start_angle_deg=start_angle,
        program=program,
        recorder=recorder,
        **person,
    )


def _selected_session(args: argparse.Namespace, config):  # noqa: ANN001, ANN202
    """(config, steps, recorder, user) for `run --user --program` (the caller holds the table
    lock: open sessions a crash left are recovered here). InputError for bad choices,
    StoreError when the history cannot be used."""
    from controller.app.history import default_data_dir
    from controller.app.programs import load_programs
    from controller.app.sessions import SessionRecorder, check_duty, plan_for, session_config

    data = args.data or default_data_dir()
    if args.user is None:
        if (data / "invtable.db").exists():
            _recover(_open_store(data))
        return None
    if not (data / "invtable.db").exists():
        raise InputError([Problem(str(data), "--user", "no profiles here yet (invtable user add)")])
    programs = load_programs(data)
    if args.program not in programs:
        raise InputError(
            [
                Problem(
                    "command line",
                    "--program",
                    f"no program {args.program!r} (known: {', '.join(programs)})",
                )
            ]
        )
    store = _open_store(data)
    _recover(store)
    user = store.get_user(args.user)
    if user is None:
        raise InputError(
            [Problem("command line", "--user", f"no user {args.user!r} (invtable user list)")]
        )
    check_duty(store, config, count_sim=args.count_sim)
    program = programs[args.program]
    plan = plan_for(store, user, program, config, count_sim=args.count_sim)
    for clip in plan.clips:
        print(f"  clipped: {clip}")
    source = "sim" if config.hardware.backend == "sim" else "real"
    return (
        session_config(config, plan, program),
        plan.steps,
        SessionRecorder(store, user, program, plan, source=source),
        user,
    )


def _open_store(data: Path, write: bool = True):  # noqa: ANN201
    from controller.app.history import Store

    return Store(data, write=write)


def _recover(store) -> None:  # noqa: ANN001
    """Under the table lock only: sessions a crash left open are marked interrupted and charged."""
    for sid in store.recover_interrupted():
        print(
            f"  session {sid} had been interrupted (crash, kill or power loss): recorded as interrupted "
            "and charged its motor time"
        )


def _gpio_problem(config_path: Path | None) -> Problem | None:
    """None when gpiozero finds a pin factory (lgpio on a Pi); otherwise say why, plainly."""
    import warnings

    from gpiozero import BadPinFactory, Device

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gpiozero warns once per factory it falls back from
        try:
            Device.ensure_pin_factory()
        except BadPinFactory:
            return Problem(
                str(config_path or "config"),
                "hardware.backend",
                'backend "gpio" needs a Raspberry Pi with lgpio (pip install "invtable[pi]", or '
                "apt install python3-lgpio); gpiozero found no GPIO here. On a laptop use "
                'backend = "sim", or `invtable sim --backend gpio-mock` for the pin-level path',
            )
    return None


def cmd_io(args: argparse.Namespace) -> int:
    from controller.app.iotool import PULSABLE, REFUSED, run_io

    problems = []
    try:
        config = load_config(args.config)
    except InputError as exc:
        problems += exc.problems
    if args.pulse in REFUSED:
        problems.append(Problem("command line", "--pulse", f"{args.pulse}: {REFUSED[args.pulse]}"))
    elif args.pulse is not None and args.pulse not in PULSABLE:
        problems.append(
            Problem(
                "command line",
                "--pulse",
                f"unknown output {args.pulse!r} (pulsable: {', '.join(PULSABLE)})",
            )
        )
    if args.duration < 0:
        problems.append(Problem("command line", "--duration", "must be >= 0"))
    if problems:
        return _fail_input(problems)
    problem = _gpio_problem(args.config)
    if problem:
        return _fail_input([problem])
    from hal.gpio.backend import GpioTable

    with GpioTable(config.hardware.gpio) as hw:
        return run_io(hw, duration=args.duration, pulse=args.pulse)


def _store(args: argparse.Namespace, *, write: bool = True):  # noqa: ANN202
    """The history; readers pass write=False and never change what they read."""
    from controller.app.history import default_data_dir

    return _open_store(args.data or default_data_dir(), write=write)


def _screening(value: str) -> tuple[tuple[str, ...], list[Problem]]:
    if value.strip().lower() == "no":
        return (), []
    keys = tuple(k.strip() for k in value.split(",") if k.strip())
    bad = [k for k in keys if k not in SCREENING_KEYS]
    if bad or not keys:
        return (), [
            Problem(
                "command line",
                "--screening",
                f"unknown condition(s) {', '.join(bad) or '(none)'}; "
                f"answer 'no' or list those answered yes: {', '.join(SCREENING_KEYS)}",
            )
        ]
    return keys, []


def _profile_problems(
    height: float | None, weight: float | None, max_angle: float | None, max_session: float | None
) -> list[Problem]:
    from controller.core.bounds import HEIGHT_CM, WEIGHT_KG

    out = []
    if height is not None and not HEIGHT_CM[0] <= height <= HEIGHT_CM[1]:
        out.append(
            Problem(
                "command line",
                "--height-cm",
                f"{height:g} is outside the table's {HEIGHT_CM[0]:g} .. {HEIGHT_CM[1]:g} cm",
            )
        )
    if weight is not None and not WEIGHT_KG[0] <= weight <= WEIGHT_KG[1]:
        out.append(
            Problem(
                "command line",
                "--weight-kg",
                f"{weight:g} is outside the table's {WEIGHT_KG[0]:g} .. {WEIGHT_KG[1]:g} kg",
            )
        )
    if max_angle is not None and not -70.0 <= max_angle <= 90.0:
        out.append(
            Problem("command line", "--max-angle-deg", f"{max_angle:g} is outside -70 .. 90")
        )
    if max_session is not None and not 10.0 <= max_session <= 600.0:
        out.append(
            Problem(
                "command line",
                "--max-session-s",
                f"{max_session:g} is outside 10 .. 600 (the hard cap)",
            )
        )
    return out


def _answers(yes: tuple[str, ...], at: float) -> dict[str, dict]:
    return {k: {"yes": k in yes, "at": round(at, 3)} for k in SCREENING_KEYS}


def cmd_user(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from controller.app.history import User, name_problem
    from controller.core.clock import wall_time

    c = args.user_command
    if c == "add":
        screening, problems = _screening(args.screening)
        problems += _profile_problems(
            args.height_cm, args.weight_kg, args.max_angle_deg, args.max_session_s
        )
        why = name_problem(args.name)
        if why:
            problems.append(Problem("command line", "name", why))
        if problems:
            return _fail_input(problems)
        store = _store(args)
        if store.get_user(args.name):
            return _fail_input(
                [
                    Problem(
                        "command line", "name", f"user {args.name!r} already exists (use user edit)"
                    )
                ]
            )
        now = wall_time()
        user = store.add_user(
            User(
                args.name,
                args.height_cm,
                args.weight_kg,
                args.stage,
                args.max_angle_deg,
                args.max_session_s,
                screening,
                None,
                None,
                now,
                screened_at=now,
                screening_answers=_answers(screening, now),
            )
        )
        print(
            f"added {user.name}"
            + (
                f": LOCKED OUT of inversion past horizontal (screening: {', '.join(screening)}); "
                "record a physician's clearance with `invtable user edit NAME --cleared-by WHO`"
                if user.locked_out
                else ""
            )
        )
        return EXIT_OK
    store = _store(args, write=c in ("edit", "remove", "screen"))
    if c == "list":
        for u in store.users():
            print(
                f"{u.name}: {u.height_cm:g} cm, {u.weight_kg:g} kg, {u.stage}, max {u.max_angle_deg:g} deg / "
                f"{u.max_session_s:g} s" + (", LOCKED OUT (screening)" if u.locked_out else "")
            )
        return EXIT_OK
    user = store.get_user(args.name)
    if user is None:
        return _fail_input(
            [Problem("command line", "name", f"no user {args.name!r} (invtable user list)")]
        )
    if c == "show":
        d = user.as_dict()
        print(
            json.dumps(d, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in d.items())
        )
        return EXIT_OK
    if c == "remove":
        store.remove_user(user)
        print(
            f"removed {user.name} (the session history stays; a new profile of that name starts afresh)"
        )
        return EXIT_OK
    if c == "screen":
        return _screen(store, user)
    problems = _profile_problems(
        args.height_cm, args.weight_kg, args.max_angle_deg, args.max_session_s
    )
    screening = user.screening_yes
    if args.screening is not None:
        screening, more = _screening(args.screening)
        problems += more
    if args.cleared_by is not None:
        why = (
            name_problem(args.cleared_by.strip())
            if args.cleared_by.strip()
            else "must name who gave the clearance"
        )
        if why:
            problems.append(Problem("command line", "--cleared-by", why))
    if problems:
        return _fail_input(problems)
    now = wall_time()
    changed = replace(
        user,
        height_cm=args.height_cm or user.height_cm,
        weight_kg=args.weight_kg or user.weight_kg,
        stage=args.stage or user.stage,
        max_angle_deg=user.max_angle_deg if args.max_angle_deg is None else args.max_angle_deg,
        max_session_s=args.max_session_s or user.max_session_s,
        screening_yes=screening,
    )
    if args.screening is not None:
        changed = replace(changed, screened_at=now, screening_answers=_answers(screening, now))
    if args.cleared_by:  # a clearance covers exactly the answers it was given over
        changed = replace(
            changed, cleared_by=args.cleared_by.strip(), cleared_at=now, cleared_answers=screening
        )
    store.update_user(user, changed)
    print(
        f"updated {changed.name}"
        + (
            f" (LOCKED OUT: screening {', '.join(changed.uncleared)} not covered by a clearance)"
            if changed.locked_out
            else ""
        )
    )
    return EXIT_OK


def _screen(store, user) -> int:  # noqa: ANN001
    """The questionnaire: one plain-language question per contraindication, each answer
    recorded with its time. Nothing is saved unless every question is answered."""
    from dataclasses import replace

    from controller.app.history import QUESTIONS
    from controller.core.clock import wall_time

    print(
        f"Screening for {user.name}: answer y (yes) or n (no). Any yes locks inversion past horizontal "
        "until a physician's clearance is recorded."
    )
    answers: dict[str, dict] = {}
    for i, key in enumerate(SCREENING_KEYS, 1):
        question, reason = QUESTIONS[key]
        print(f"\n{i}/{len(SCREENING_KEYS)}. {question}\n   Why we ask: {reason}")
        for _attempt in range(5):
            print("   [y/n] ", end="", flush=True)
            line = sys.stdin.readline()
            if not line:
                return _fail_input(
                    [
                        Problem(
                            "standard input",
                            key,
                            "ended before every question was answered; nothing recorded",
                        )
                    ]
                )
            reply = line.strip().lower()
            if reply in ("y", "yes", "n", "no"):
                answers[key] = {"yes": reply.startswith("y"), "at": round(wall_time(), 3)}
                break
            print("   please answer y or n")
        else:
            return _fail_input(
                [Problem("standard input", key, "no y/n answer after 5 tries; nothing recorded")]
            )
    yes = tuple(k for k in SCREENING_KEYS if answers[k]["yes"])
    changed = replace(user, screening_yes=yes, screening_answers=answers, screened_at=wall_time())
    store.update_user(user, changed, why="user_screened")
    print(
        f"\nrecorded: {', '.join(yes) or 'no to every question'}"
        + (
            f". LOCKED OUT of inversion past horizontal ({', '.join(changed.uncleared)}) until a physician's "
            "clearance is recorded: invtable user edit NAME --cleared-by WHO"
            if changed.locked_out
            else ""
        )
    )
    return EXIT_OK


def cmd_program(args: argparse.Namespace) -> int:
    from controller.app.history import default_data_dir
    from controller.app.programs import load_programs

    for p in load_programs(args.data or default_data_dir()).values():
        steps = ", ".join(
            f"{t if isinstance(t, str) else f'{t:g}'} deg {h:g} s" for t, h in p.steps
        )
        print(
            f"{p.name}: {p.description} [{steps}; rest {p.rest_deg:g} deg {p.rest_s:g} s]  ({p.source})"
        )
    return EXIT_OK


def cmd_session(args: argparse.Namespace) -> int:
    from controller.app.history import default_data_dir
    from controller.app.programs import load_programs
    from controller.app.sessions import clean_table_temp_files, start_session
    from controller.app.tablelock import TableLock

    problems = []
    if args.speed < 0:
        problems.append(Problem("command line", "--speed", "must be >= 0"))
    problems += _check_outputs({"--trace": args.trace}, [args.config] if args.config else [])
    try:
        config = load_config(args.config)
    except InputError as exc:
        problems += exc.problems
    data = args.data or default_data_dir()
    programs = load_programs(data)
    if args.program not in programs:
        problems.append(
            Problem(
                "command line",
                "--program",
                f"no program {args.program!r} (known: {', '.join(programs)})",
            )
        )
    if not (data / "invtable.db").exists():
        problems.append(Problem(str(data), "--user", "no profiles here yet (invtable user add)"))
        return _fail_input(problems)
    with TableLock(data):  # one table, one controller
        store = _store(args)
        user = store.get_user(args.user)
        if user is None:
            problems.append(
                Problem("command line", "--user", f"no user {args.user!r} (invtable user list)")
            )
        if problems:
            return _fail_input(problems)
        _recover(store)
        clean_table_temp_files(data)
        from controller.app.sessions import check_duty

        check_duty(
            store, config, count_sim=args.count_sim
        )  # refused before anything is said or run
        print(
            f"invtable session: {user.name}, program '{args.program}' (simulated table)"
            + (" (LOCKED OUT: stays at or below horizontal)" if user.locked_out else "")
        )
        result, outcome, clips, failed = start_session(
            store,
            user,
            programs[args.program],
            config,
            speed=args.speed,
            seed=args.seed,
            count_sim=args.count_sim,
        )
    _report(result)
    print(f"  outcome: {outcome or 'not started (START was refused: see the events)'}")
    if args.trace:
        _write_outputs(result, args.trace, None, None)
    for line in result.summary["violations"]:
        print(f"invtable: violation: {line}", file=sys.stderr)
    if failed:
        print(
            f"invtable: error: the history could not be written ({failed}); the session ran and the table "
            "returned upright, but its record is incomplete",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK if not result.violations else EXIT_FAILED


def _sessions_of(store, name: str | None) -> list[dict]:  # noqa: ANN001
    """Sessions, all or one person's: a current profile's own (by id, a name is only a label),
    else whoever bore that name (a removed person's history stays readable)."""
    if name is None:
        return store.sessions()
    user = store.get_user(name)
    rows = store.sessions(name)
    return [r for r in rows if r.get("user_id") == user.uid] if user is not None else rows


def cmd_history(args: argparse.Namespace) -> int:
    store = _store(args, write=False)
    rows = _sessions_of(store, args.user)
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    import datetime as _dt

    from controller.app.history import default_data_dir
    from controller.app.tablelock import holder_pid

    holder = holder_pid(args.data or default_data_dir())
    open_as = (
        f"running (controller pid {holder})"
        if holder
        else "open: its controller is gone (recorded as interrupted when the table next starts)"
    )
    for r in rows:
        when = _dt.datetime.fromtimestamp(r["started_at"]).strftime("%Y-%m-%d %H:%M")
        peak = "-" if r["peak_deg"] is None else f"{r['peak_deg']:.1f}"
        print(
            f"#{r['id']} {when} {r['user']} [{r.get('source') or 'unknown'}]: {r['program']}, peak {peak} deg, "
            f"{(r['past_horizontal_s'] or 0):.0f} s past horizontal, {r['outcome'] or open_as}"
            + (f" (clipped: {'; '.join(r['clipped'])})" if r["clipped"] else "")
        )
    if not rows:
        print("no sessions yet")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    problems = _check_outputs({"--out": args.out}, []) + _plot_problem("--out", args.out)
    store = _store(args, write=False)
    rows = _sessions_of(store, args.user)
    if store.get_user(args.user) is None and not rows:
        problems.append(
            Problem("command line", "--user", f"no user {args.user!r} (invtable user list)")
        )
    if problems:
        return _fail_input(problems)
    from sim.plot import plot_progress

    plot_progress(rows, args.user, args.out)
    print(f"  report: {args.out}")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from controller.app.bench import main as bench_main

    return bench_main(
        (["--json"] if args.json else [])
        + (["--quick"] if args.quick else [])
        + (["--long"] if args.long else [])
    )


def cmd_install_service(args: argparse.Namespace) -> int:
    from controller.app.install import default_executable, install

    return install(args.root, default_executable())


def cmd_config_check(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.file)
    except InputError as exc:
        return _fail_input(exc.problems)
    print(f"{args.file}: OK")
    from controller.core.config import config_values

    for key, value in config_values(config).items():
        print(f"  {key} = {json.dumps(value)}")
    return EXIT_OK


def cmd_diagram(args: argparse.Namespace) -> int:
    from controller.app.diagram import markdown, mermaid

    sys.stdout.write(markdown() if args.markdown else mermaid())
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {
        "sim": cmd_sim,
        "demo": cmd_demo,
        "run": cmd_run,
        "diagram": cmd_diagram,
        "config": cmd_config_check,
        "io": cmd_io,
        "install-service": cmd_install_service,
        "bench": cmd_bench,
        "user": cmd_user,
        "program": cmd_program,
        "session": cmd_session,
        "history": cmd_history,
        "report": cmd_report,
    }
    try:
        return handlers[args.command](args)
    except InputError as exc:
        return _fail_input(exc.problems)
    except StoreError as exc:
        print(f"invtable: error: history store {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("invtable: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        return EXIT_OK
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"invtable: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_INPUT
    except Exception:  # noqa: BLE001 - a bug: say so clearly, with the traceback for the report
        import traceback

        traceback.print_exc()
        print(
            "invtable: internal error (a bug; please report it with the traceback above)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
