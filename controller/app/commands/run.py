"""``invtable run``: the controller on the table the config names (the service on the Pi, the
motion board over serial, or the simulator in real time with a keyboard pendant)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from controller.app.commands.common import (
    EXIT_FAILED,
    check_outputs,
    config_option,
    data_dir,
    fail_input,
    gpio_problem,
    no_user,
    profiles_problems,
    program_problems,
    recover,
    store_of,
    supervisor_problems,
)
from controller.core.config import load_config
from controller.core.errors import InputError, Problem, StoreError

if TYPE_CHECKING:
    from controller.app.commands.common import Subparsers
    from controller.app.history import User
    from controller.core.config import Config


def register(sub: Subparsers) -> None:
    run = sub.add_parser(
        "run",
        help="the controller service (backend from the config; "
        "'sim' = bench test with a keyboard pendant)",
    )
    config_option(run, "the config file; hardware.backend picks the table (default: sim)")
    run.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help="stop after S seconds (default: until quit or SIGTERM)",
    )
    run.add_argument(
        "--trace",
        type=Path,
        metavar="OUT.csv",
        help="simulator backend: stream the whole run's trace, renamed into place on exit",
    )
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
        "--supervised-by",
        metavar="NAME",
        help="who is present to supervise (needed for a profile's first sessions; recorded)",
    )
    run.add_argument(
        "--count-sim",
        action="store_true",
        help="let simulated sessions count toward progression and the duty budget (bench tests)",
    )
    run.add_argument(
        "--clear-board",
        action="store_true",
        help="serial backend: clear the motion board's latched shutdown at start "
        "(after checking the table)",
    )
    run.add_argument(
        "--web",
        metavar="HOST:PORT",
        help="serve the supervisor page (docs/supervision.md) on this address; a port alone "
        "listens on 127.0.0.1 only (default: [web] listen in the config, else no page)",
    )
    run.add_argument(
        "--mqtt",
        metavar="HOST[:PORT]",
        help="publish the table to this MQTT broker with Home Assistant discovery "
        "(default: [mqtt] in the config, else none)",
    )
    run.set_defaults(handler=run_controller)


class Session(NamedTuple):
    """What ``run --user --program`` runs: the planned session's config and steps, the
    recorder of its history (or ``NoHistory`` when the store failed), and the person."""

    config: Config
    program: tuple[tuple[float, float], ...]
    recorder: Any
    user: User | None


def run_controller(args: argparse.Namespace) -> int:
    from controller.app.supervisor.config import load_supervision

    problems = []
    config = None
    try:
        config = load_config(args.config)
    except InputError as exc:
        problems += exc.problems
    try:
        args.supervision = load_supervision(args.config, args.web, args.mqtt)
    except InputError as exc:
        problems += exc.problems
    if args.duration is not None and not args.duration > 0:
        problems.append(Problem("command line", "--duration", "must be > 0"))
    problems += check_outputs({"--trace": args.trace}, [args.config] if args.config else [])
    if (args.user is None) != (args.program is None):
        problems.append(
            Problem(
                "command line",
                "--user" if args.user is None else "--program",
                "--user and --program go together",
            )
        )
    problems += supervisor_problems(args.supervised_by, args.user)
    if problems:
        return fail_input(problems)
    assert config is not None
    from controller.app.tablelock import TableLock

    lock, store_failed = None, None
    if _explicit_data(args) or args.user is not None:
        # One table, one controller. A store we cannot write never stops the controller:
        # the person must come back whatever the records can do.
        try:
            lock = TableLock(data_dir(args)).acquire()
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
                "invtable: the controller runs WITHOUT the history: sessions that need it are "
                "refused (no --user/--program); the table still returns the person upright",
                file=sys.stderr,
                flush=True,
            )
            if args.user is not None:
                # The pendant's START is refused too: in place of the person's planned, recorded
                # session it would run the config's plain one for them, unplanned and unrecorded.
                from controller.app.sessions import NoHistory

                session = Session(config, (), NoHistory(store_failed), None)
        code = _run(args, config, session)
    finally:
        if lock is not None:
            lock.release()
    if store_failed is not None and args.user is not None:
        print(
            f"invtable: the session for {args.user!r} was refused: the history store is "
            f"unavailable ({store_failed})",
            file=sys.stderr,
        )
        return max(code, EXIT_FAILED)
    failed = getattr(session.recorder, "failed", None) if session is not None else None
    if failed is not None:
        # The store failed during the run: a record is incomplete, START refused from then on.
        print(
            f"invtable: the history store failed during this run ({failed}): its record is "
            "incomplete and new sessions were refused from then on",
            file=sys.stderr,
        )
        return max(code, EXIT_FAILED)
    return code


def _explicit_data(args: argparse.Namespace) -> bool:
    """A data directory was chosen (--data, $INVTABLE_DATA, systemd's StateDirectory): the table it
    records is locked. Without one (a bench run on a laptop) there is no table identity to lock."""
    return args.data is not None or "INVTABLE_DATA" in os.environ or "STATE_DIRECTORY" in os.environ


def _run(args: argparse.Namespace, config: Config, session: Session | None) -> int:
    """The run with its supervisor (the page, MQTT) around it, started before the control loop
    (an address that cannot be used is refused before anything moves) and stopped after it."""
    supervision = args.supervision
    if supervision.web is None and supervision.mqtt is None:
        return _run_table(args, config, session, None)
    from controller.app.service import JsonLog
    from controller.app.supervisor.runtime import Supervisor

    store = getattr(session.recorder if session is not None else None, "store", None)
    supervisor = Supervisor(
        supervision,
        data_dir(args),
        JsonLog(sys.stdout),  # this run's stdout (not the one at import: tests swap it)
        args.user,
        args.program,
        audit=store.audit if store is not None else None,  # who pressed, in the history too
    )
    failed = supervisor.start()
    for reason in failed:
        # Never a reason not to run: the person on the table must come back upright.
        print(f"invtable: SUPERVISION ERROR: {reason}", file=sys.stderr, flush=True)
    if failed:
        print(
            "invtable: the controller runs without what could not start; nobody is "
            "watching remotely",
            file=sys.stderr,
            flush=True,
        )
    try:
        code = _run_table(args, config, session, supervisor)
    finally:
        supervisor.close()
    return max(code, EXIT_FAILED) if failed else code


def _run_table(
    args: argparse.Namespace, config: Config, session: Session | None, supervisor: Any
) -> int:
    program: tuple[tuple[float, float], ...] = ()
    recorder: Any = None
    user = None
    if session is not None:
        config, program, recorder, user = session
    if config.hardware.backend == "gpio":
        problem = gpio_problem(args.config)
        if problem:
            return fail_input([problem])
        from controller.app.service import run_service

        return run_service(
            config,
            duration=args.duration,
            program=program,
            recorder=recorder,
            supervisor=supervisor,
        )
    if config.hardware.backend == "serial":
        from controller.app.service import run_service
        from hal.serial.backend import BoardLimits, SerialTable

        ser = config.hardware.serial
        # The board must enforce the limits this config names (Klipper checks its MCU's config
        # the same way): a board flashed for other limits is refused before anything moves.
        board = SerialTable(
            ser.url, baudrate=ser.baudrate, expected=BoardLimits.from_config(config)
        )
        if not board.port_open:  # nothing to control: say which port, before any transition
            board.close()
            return fail_input(
                [
                    Problem(
                        str(args.config or "config"),
                        "hardware.serial.url",
                        f"cannot open the serial port {ser.url}: {board.open_error}",
                    )
                ]
            )
        if board.refused:
            board.close()
            return fail_input(
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
            supervisor=supervisor,
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
        # every command that moves the table saves it
        recorder = TableStateSaver(args.data, recorder)
    person: dict[str, Any] = (
        {} if user is None else {"mass_kg": user.weight_kg, "height_cm": user.height_cm}
    )
    return run_bench(
        config,
        duration=args.duration,
        trace=args.trace,
        start_angle_deg=start_angle,
        program=program,
        recorder=recorder,
        who="" if user is None else f"{user.name}, program '{args.program}'",
        resume_hint=""
        if args.data is None
        else f"`invtable run --data {args.data}` resumes from this angle (it was saved): "
        "RETURN or held UP brings them up.",
        supervisor=supervisor,
        **person,
    )


def _selected_session(args: argparse.Namespace, config: Config) -> Session | None:
    """The session for `run --user --program` (the caller holds the table lock: open sessions
    a crash left are recovered here). InputError for bad choices, StoreError when the history
    cannot be used."""
    from controller.app.programs import load_programs
    from controller.app.sessions import (
        AllowanceGate,
        SessionRecorder,
        check_duty,
        plan_for,
        session_config,
    )

    data = data_dir(args)
    if args.user is None:
        if not profiles_problems(data):
            recover(store_of(args))
        return None
    problems = profiles_problems(data)
    if problems:
        raise InputError(problems)
    programs = load_programs(data)
    problems = program_problems(programs, args.program)
    if problems:
        raise InputError(problems)
    store = store_of(args)
    recover(store)
    user = store.get_user(args.user)
    if user is None:
        raise InputError([no_user(args.user)])
    check_duty(store, config, count_sim=args.count_sim)
    program = programs[args.program]
    source = "sim" if config.hardware.backend == "sim" else "real"
    plan = plan_for(store, user, program, config, count_sim=args.count_sim, source=source)
    for clip in plan.clips:
        print(f"  clipped: {clip}")
    # The daily rules and supervision are judged when START is pressed, on the control thread.
    gate = AllowanceGate(
        store, user, source=source, supervisor=args.supervised_by, count_sim=args.count_sim
    )
    if not gate.verdict.allowed:
        print(f"  START will be refused: {gate.verdict.message()}")
    recorder = SessionRecorder(
        store, user, program, plan, source=source, supervisor=args.supervised_by, gate=gate
    )
    return Session(session_config(config, plan, program), plan.steps, recorder, user)
