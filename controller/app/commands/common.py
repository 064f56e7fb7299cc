"""What the commands share: exit codes, refusing bad input before anything runs, the report
printed after a run, the history store and the look-ups in it.

Heavy modules (the simulator, the store, plotting) are imported where they are used, so
``invtable --help`` and the commands that do not need them start quickly.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Callable

from controller.core.errors import Problem

if TYPE_CHECKING:
    from controller.app.history import Store
    from controller.app.programs import Program
    from sim.runner import RunResult

    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

Handler = Callable[[argparse.Namespace], int]

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


def fail_input(problems: list[Problem]) -> int:
    """Every problem on stderr, one line each; exit 2 (nothing was run or written)."""
    for problem in problems:
        print(f"invtable: error: {problem}", file=sys.stderr)
    return EXIT_INPUT


def check_outputs(outputs: dict[str, Path | None], inputs: list[Path]) -> list[Problem]:
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


def plot_problem(option: str, path: Path | None) -> list[Problem]:
    if path is None:
        return []  # (sim.plot is imported only when a plot is asked for)
    from sim.plot import plot_available

    if not plot_available():
        return [
            Problem(
                "command line", option, "plotting needs matplotlib: pip install 'invtable[plot]'"
            )
        ]
    return []


def print_summary(result: RunResult, stream: IO[str] | None = None) -> None:
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
    from controller.app.explain import event_lines, headline

    for line in headline(s):  # the why: faults latched, refusals, notes, the first violation
        print(line, file=stream)
    lines = event_lines(s)
    if lines:
        print(f"  events ({len(s['events'])}):", file=stream)
        for line in lines:
            print(line, file=stream)


def write_outputs(
    result: RunResult,
    trace: Path | None,
    summary: Path | None,
    plot: Path | None,
    say: bool = True,
) -> None:
    """Say where the outputs are (unless ``say`` is False) and write those not written yet:
    the trace was streamed to ``trace`` while the run went (``run_scenario(trace=...)``),
    the summary and the plot come from what the run folded in row by row."""
    from sim.runner import write_summary

    if trace and say:
        print(f"  trace:   {trace}")
    if summary:
        write_summary(result, summary)
        if say:
            print(f"  summary: {summary}")
    if plot:
        from sim.plot import plot_run

        plot_run(result, plot)
        if say:
            print(f"  plot:    {plot}")


def finish_run(
    result: RunResult,
    *,
    trace: Path | None = None,
    summary: Path | None = None,
    plot: Path | None = None,
    notes: tuple[str, ...] = (),
    output: str = "text",
) -> int:
    """The end of every command that ran the simulated table: the summary (then ``notes``),
    the files asked for, each violation or unmet expectation on stderr; exit 0 when the run
    passed (no invariant violated, every expectation met), else 1. ``output`` "quiet" prints
    nothing on stdout, "json" only the summary JSON (for scripts)."""
    if output == "json":
        import json

        print(json.dumps(result.summary, indent=2))
    elif output == "text":
        print_summary(result)
        for note in notes:
            print(note)
    write_outputs(result, trace, summary, plot, say=output == "text")
    for line in result.summary["violations"]:
        print(f"invtable: violation: {line}", file=sys.stderr)
    return EXIT_OK if result.passed else EXIT_FAILED


def add_data_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="profiles, history and programs (default $INVTABLE_DATA or ~/.local/share/invtable)",
    )


def data_dir(args: argparse.Namespace) -> Path:
    """``--data``, else the default (``$INVTABLE_DATA``, systemd's state folder, or home)."""
    from controller.app.history import default_data_dir

    return args.data or default_data_dir()


def open_store(data: Path, write: bool = True) -> Store:
    from controller.app.history import Store

    return Store(data, write=write)


def store_of(args: argparse.Namespace, *, write: bool = True) -> Store:
    """The history; readers pass write=False and never change what they read."""
    return open_store(data_dir(args), write=write)


def recover(store: Store) -> None:
    """Under the table lock only: sessions a crash left open are marked interrupted and charged."""
    for sid in store.recover_interrupted():
        print(
            f"  session {sid} had been interrupted (crash, kill or power loss): recorded as "
            "interrupted and charged its motor time"
        )


def no_user(name: str, key: str = "--user") -> Problem:
    return Problem("command line", key, f"no user {name!r} (invtable user list)")


def profiles_problems(data: Path) -> list[Problem]:
    """No database in the data folder yet: nobody to run a session for."""
    from controller.app.history import DB_NAME

    if (data / DB_NAME).exists():
        return []
    return [Problem(str(data), "--user", "no profiles here yet (invtable user add)")]


def supervisor_problems(name: str | None, user: str | None) -> list[Problem]:
    """``--supervised-by``: a printable name (recorded with the session), with ``--user``."""
    from controller.app.history import name_problem

    if name is None:
        return []
    if user is None:
        return [Problem("command line", "--supervised-by", "goes with --user (whose session)")]
    why = name_problem(name)
    return [Problem("command line", "--supervised-by", why)] if why else []


def program_problems(programs: dict[str, Program], name: str) -> list[Problem]:
    if name in programs:
        return []
    return [
        Problem(
            "command line",
            "--program",
            f"no program {name!r} (known: {', '.join(programs)})",
        )
    ]


def gpio_problem(config_path: Path | None) -> Problem | None:
    """None when gpiozero finds a pin factory (lgpio on a Pi); otherwise say why, plainly."""
    import warnings

    from gpiozero import BadPinFactory, Device

    if (
        os.environ.get("GPIOZERO_PIN_FACTORY", "").lower() == "mock"
        and "GPIOZERO_MOCK_PIN_CLASS" not in os.environ
        and Device.pin_factory is None
    ):
        # gpiozero's plain mock pins cannot do PWM (the motor drive): use its PWM-capable ones.
        from gpiozero.pins.mock import MockFactory, MockPWMPin

        Device.pin_factory = MockFactory(pin_class=MockPWMPin)
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


def config_option(parser: argparse.ArgumentParser, about: str) -> None:
    parser.add_argument("--config", type=Path, metavar="CONFIG.toml", help=about)
