"""``invtable session start``, ``invtable history`` and ``invtable report``: a user's program
on the simulated table, and the sessions the history holds."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller.app.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    add_data_option,
    check_outputs,
    config_option,
    data_dir,
    fail_input,
    finish_run,
    no_user,
    plot_problem,
    profiles_problems,
    program_problems,
    recover,
    store_of,
    supervisor_problems,
)
from controller.app.terms import FEELINGS
from controller.core.config import load_config
from controller.core.errors import InputError, Problem

if TYPE_CHECKING:
    from controller.app.commands.common import Subparsers
    from controller.app.history import Store


def register(sub: Subparsers) -> None:
    session = sub.add_parser("session", help="run a user's program")
    session_sub = session.add_subparsers(
        dest="session_command", required=True, metavar="SUBCOMMAND"
    )
    start = session_sub.add_parser(
        "start", help="run USER's PROGRAM on the simulated table, record it in the history"
    )
    start.add_argument("--user", required=True, help="whose session (a profile: invtable user add)")
    start.add_argument(
        "--program",
        required=True,
        help="the program to run (invtable program list), planned by the progression rules",
    )
    config_option(start, "the table's config: limits, motion, duty budget (default: built-in)")
    start.add_argument(
        "--speed", type=float, default=0.0, help="times real time (default 0: as fast as possible)"
    )
    start.add_argument(
        "--seed", type=int, default=0, help="the simulation's random seed (default 0)"
    )
    start.add_argument("--trace", type=Path, metavar="OUT.csv", help="write the session's trace")
    start.add_argument(
        "--count-sim",
        action="store_true",
        help="let simulated sessions count toward progression and the duty budget",
    )
    start.add_argument(
        "--supervised-by",
        metavar="NAME",
        help="who is present to supervise (needed for a profile's first sessions; recorded)",
    )
    add_data_option(start)
    start.set_defaults(handler=start_session)

    feedback = session_sub.add_parser(
        "feedback", help="record how USER felt after a session (symptoms hold progression)"
    )
    feedback.add_argument("--user", required=True, help="whose session")
    feedback.add_argument(
        "--felt",
        required=True,
        metavar="none|SYMPTOM[,SYMPTOM]",
        help="'none', or the symptoms felt: " + ", ".join(FEELINGS[1:]),
    )
    feedback.add_argument(
        "--session",
        type=int,
        metavar="ID",
        help="which session (default: the person's last ended session)",
    )
    add_data_option(feedback)
    feedback.set_defaults(handler=session_feedback)

    history = sub.add_parser("history", help="the session history")
    history.add_argument("--user", help="only this person's sessions (default: everyone's)")
    history.add_argument("--json", action="store_true", help="print the sessions as JSON")
    add_data_option(history)
    history.set_defaults(handler=show_history)

    report = sub.add_parser(
        "report",
        help="plot a user's progress over days to months (peak angle per session, minutes per "
        "day), or one past session (--session ID)",
    )
    which = report.add_mutually_exclusive_group(required=True)
    which.add_argument("--user", help="whose progress")
    which.add_argument(
        "--session", type=int, metavar="ID", help="plot this session (its # in invtable history)"
    )
    report.add_argument(
        "--out", type=Path, required=True, metavar="report.png", help="the PNG to write"
    )
    add_data_option(report)
    report.set_defaults(handler=plot_report)


def start_session(args: argparse.Namespace) -> int:
    from controller.app.programs import load_programs
    from controller.app.sessions import check_duty, clean_table_temp_files, refuse_unless_allowed
    from controller.app.sessions import start_session as run_session
    from controller.app.tablelock import TableLock

    problems: list[Problem] = []
    config = None
    if args.speed < 0:
        problems.append(Problem("command line", "--speed", "must be >= 0"))
    problems += check_outputs({"--trace": args.trace}, [args.config] if args.config else [])
    problems += supervisor_problems(args.supervised_by, args.user)
    try:
        config = load_config(args.config)
    except InputError as exc:
        problems += exc.problems
    data = data_dir(args)
    programs = load_programs(data)
    problems += program_problems(programs, args.program)
    missing = profiles_problems(data)
    if missing:
        return fail_input(problems + missing)
    with TableLock(data):  # one table, one controller
        store = store_of(args)
        user = store.get_user(args.user)
        if user is None:
            problems.append(no_user(args.user))
        if problems:
            return fail_input(problems)
        assert user is not None and config is not None
        recover(store)
        clean_table_temp_files(data)
        check_duty(
            store, config, count_sim=args.count_sim
        )  # refused before anything is said or run
        refuse_unless_allowed(
            store, user, source="sim", supervisor=args.supervised_by, count_sim=args.count_sim
        )
        print(
            f"invtable session: {user.name}, program '{args.program}' (simulated table)"
            + (" (LOCKED OUT: stays at or below horizontal)" if user.locked_out else "")
        )
        from controller.app.progressbar import sim_progress

        with sim_progress(f"{user.name}: {args.program}", config.session.max_duration_s) as bar:
            result, outcome, _clips, failed = run_session(
                store,
                user,
                programs[args.program],
                config,
                speed=args.speed,
                seed=args.seed,
                count_sim=args.count_sim,
                trace=args.trace,
                progress=bar if args.speed > 0 else None,
                supervisor=args.supervised_by,
            )
    outcome_line = f"  outcome: {outcome or 'not started (START was refused: see the events)'}"
    code = finish_run(result, trace=args.trace, notes=(outcome_line,))  # streamed by the session
    if failed:
        print(
            f"invtable: error: the history could not be written ({failed}); the session ran and "
            "the table returned upright, but its record is incomplete",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return code


def _sessions_of(store: Store, name: str | None) -> list[dict[str, Any]]:
    """Sessions, all or one person's: a current profile's own (by id, a name is only a label),
    else whoever bore that name (a removed person's history stays readable)."""
    if name is None:
        return store.sessions()
    user = store.get_user(name)
    rows = store.sessions(name)
    return [r for r in rows if r.get("user_id") == user.uid] if user is not None else rows


def show_history(args: argparse.Namespace) -> int:
    store = store_of(args, write=False)
    rows = _sessions_of(store, args.user)
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    import datetime as _dt

    from controller.app.allowance_view import session_note
    from controller.app.tablelock import holder_pid

    holder = holder_pid(data_dir(args))
    open_as = (
        f"running (controller pid {holder})"
        if holder
        else "open: its controller is gone (recorded as interrupted when the table next starts)"
    )
    for r in rows:
        when = _dt.datetime.fromtimestamp(r["started_at"]).strftime("%Y-%m-%d %H:%M")
        peak = "-" if r["peak_deg"] is None else f"{round(r['peak_deg'], 1) + 0.0:.1f}"
        print(
            f"#{r['id']} {when} {r['user']} [{r.get('source') or 'unknown'}]: {r['program']}, "
            f"peak {peak} deg, {(r['past_horizontal_s'] or 0):.0f} s past horizontal, "
            f"{r['outcome'] or open_as}"
            + (f" (clipped: {'; '.join(r['clipped'])})" if r["clipped"] else "")
            + session_note(r)
        )
    if not rows:
        print("no sessions yet")
    _print_allowances(store, rows, args.user)
    return EXIT_OK


def _print_allowances(store: Store, rows: list[dict[str, Any]], name: str | None) -> None:
    """Daily totals against the limits, supervisors and symptoms of the people shown."""
    from controller.app.allowance_view import person_lines
    from controller.core.clock import wall_time

    people = [store.get_user(name)] if name else store.users()
    ids = {r.get("user_id") for r in rows}
    for user in people:
        if user is not None and (name or user.uid in ids):
            print("\n".join(person_lines(store, user, wall_time())))


def session_feedback(args: argparse.Namespace) -> int:
    """How the person felt after a session: 'none' or the symptoms, recorded once."""
    felt = tuple(f.strip() for f in args.felt.split(",") if f.strip())
    bad = [f for f in felt if f not in FEELINGS]
    problems = []
    if bad or not felt:
        problems.append(
            Problem(
                "command line",
                "--felt",
                f"unknown answer(s) {', '.join(bad) or '(none)'}; say 'none' or list the "
                f"symptoms: {', '.join(FEELINGS[1:])}",
            )
        )
    elif "none" in felt and len(felt) > 1:
        problems.append(Problem("command line", "--felt", "'none' goes alone"))
    problems += profiles_problems(data_dir(args))  # never creates a store to write into
    if problems:
        return fail_input(problems)
    store = store_of(args)
    user = store.get_user(args.user)
    if user is None:
        return fail_input([no_user(args.user)])
    own = [r for r in store.sessions(user.name) if r.get("user_id") == user.uid]
    if args.session is None:  # the session just done (not an older one while one is open)
        if not own:
            return fail_input(
                [Problem("command line", "--user", f"{user.name} has no session yet")]
            )
        row = own[-1]
    else:
        found = [r for r in own if r["id"] == args.session]
        if not found:
            return fail_input(
                [Problem("command line", "--session", f"no session {args.session} of {user.name}")]
            )
        row = found[0]
    if row["outcome"] is None:
        return fail_input(
            [
                Problem(
                    "command line",
                    "--session",
                    f"session {row['id']} has not ended (a session a crash left open is "
                    "recorded as interrupted when the table next starts)",
                )
            ]
        )
    if row.get("feedback"):
        return fail_input(
            [
                Problem(
                    "command line",
                    "--session",
                    f"session {row['id']} already has feedback ({row['feedback']}): it is "
                    "evidence and is not changed",
                )
            ]
        )
    store.record_feedback(row["id"], user, tuple(dict.fromkeys(felt)))
    print(f"recorded for session {row['id']} of {user.name}: {', '.join(felt)}")
    from controller.app.allowance_view import person_lines
    from controller.core.clock import wall_time

    for line in person_lines(store, user, wall_time()):
        if "progression:" in line:
            print(line.strip())
    return EXIT_OK


def plot_report(args: argparse.Namespace) -> int:
    problems = check_outputs({"--out": args.out}, []) + plot_problem("--out", args.out)
    store = store_of(args, write=False)
    if args.session is not None:
        found = [r for r in store.sessions() if r["id"] == args.session]
        if not found:
            problems.append(
                Problem(
                    "command line", "--session", f"no session #{args.session} (invtable history)"
                )
            )
        if problems:
            return fail_input(problems)
        from sim.plot import plot_session

        title = plot_session(found[0], args.out)
        print(f"  report: {args.out}: {title}")
        return EXIT_OK
    rows = _sessions_of(store, args.user)
    if store.get_user(args.user) is None and not rows:
        problems.append(no_user(args.user))
    if problems:
        return fail_input(problems)
    from sim.plot import plot_progress

    user = store.get_user(args.user)
    marks = []
    if user is not None and user.screening_yes and user.screened_at:
        marks.append((user.screened_at, "locked out (screening)", False))
    if user is not None and user.cleared_by and user.cleared_at:
        marks.append((user.cleared_at, f"cleared by {user.cleared_by}", True))
    title = plot_progress(rows, args.user, args.out, marks)
    print(f"  report: {args.out}: {title}")
    _print_allowances(store, rows, args.user)
    return EXIT_OK
