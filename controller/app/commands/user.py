"""``invtable user add|edit|screen|list|show|remove``: profiles within the table's limits and
the screening that locks a profile out of inversion until a physician's clearance."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

from controller.app.commands.common import (
    EXIT_INPUT,
    EXIT_OK,
    add_data_option,
    fail_input,
    no_user,
    store_of,
)
from controller.app.terms import HARD, SCREENING_KEYS, STAGES, USUAL
from controller.core.bounds import HEIGHT_CM, WEIGHT_KG
from controller.core.errors import InputError, Problem

if TYPE_CHECKING:
    from controller.app.commands.common import Subparsers
    from controller.app.history import Store, User

SCREENING_HELP = "'no' to every question, or the conditions answered yes: " + ", ".join(
    SCREENING_KEYS
)
# A profile's own limits (within the table's: the config's limits still apply).
MAX_ANGLE_DEG = (-70.0, 90.0)
MAX_SESSION_S = (10.0, 600.0)  # 600 s: the session time limit's hard cap
HEIGHT = f"{HEIGHT_CM[0]:g} .. {HEIGHT_CM[1]:g}"
WEIGHT = f"{WEIGHT_KG[0]:g} .. {WEIGHT_KG[1]:g}"
MAX_ANGLE = f"{MAX_ANGLE_DEG[0]:g} .. {MAX_ANGLE_DEG[1]:g}"
MAX_SESSION = f"{MAX_SESSION_S[0]:g} .. {MAX_SESSION_S[1]:g}"
NAME_HELP = "the profile's name"
# (option, User field, unit shown, help): the person's daily limits (controller/app/allowance.py)
LIMIT_OPTIONS = (
    ("--sessions-per-day", "sessions_per_day", "", "sessions a day"),
    ("--minutes-per-day", "past_s_per_day", "min", "minutes past horizontal a day"),
    ("--rest-min", "rest_s", "min", "minutes of rest between sessions"),
    ("--supervised-sessions", "supervised_sessions", "", "first sessions needing a supervisor"),
)


def register(sub: Subparsers) -> None:
    user = sub.add_parser("user", help="user profiles and screening")
    user_sub = user.add_subparsers(dest="user_command", required=True, metavar="SUBCOMMAND")

    add = user_sub.add_parser(
        "add", help="add a profile (height and weight within the table's limits)"
    )
    add.add_argument("name", help="the person's name, a label shown in records (1 .. 64 chars)")
    add.add_argument(
        "--height-cm",
        type=float,
        required=True,
        help=f"height in cm ({HEIGHT}, the table's limits)",
    )
    add.add_argument(
        "--weight-kg",
        type=float,
        required=True,
        help=f"weight in kg ({WEIGHT}, the table's limits)",
    )
    add.add_argument("--screening", required=True, metavar="no|KEY[,KEY]", help=SCREENING_HELP)
    add.add_argument(
        "--stage",
        choices=STAGES,
        default="beginner",
        help="beginners stay at 30 deg for their first two weeks (default: beginner)",
    )
    add.add_argument(
        "--max-angle-deg",
        type=float,
        default=60.0,
        help=f"the profile's own angle limit in deg ({MAX_ANGLE}; default 60)",
    )
    add.add_argument(
        "--max-session-s",
        type=float,
        default=300.0,
        help=f"the profile's own session time limit in s ({MAX_SESSION}; default 300)",
    )
    _limit_options(add)
    add.set_defaults(handler=add_user)

    edit = user_sub.add_parser(
        "edit", help="change a profile; --cleared-by records a physician's clearance"
    )
    edit.add_argument("name", help=NAME_HELP)
    edit.add_argument("--height-cm", type=float, help=f"new height in cm ({HEIGHT})")
    edit.add_argument("--weight-kg", type=float, help=f"new weight in kg ({WEIGHT})")
    edit.add_argument("--stage", choices=STAGES, help="new stage: beginner or established")
    edit.add_argument(
        "--max-angle-deg", type=float, help=f"new angle limit for the profile in deg ({MAX_ANGLE})"
    )
    edit.add_argument(
        "--max-session-s",
        type=float,
        help=f"new session time limit for the profile in s ({MAX_SESSION})",
    )
    edit.add_argument(
        "--screening",
        metavar="no|KEY[,KEY]",
        help="record new screening answers: " + SCREENING_HELP,
    )
    edit.add_argument(
        "--cleared-by",
        metavar="WHO",
        help="who cleared the profile for inversion (recorded with the time)",
    )
    _limit_options(edit)
    edit.add_argument(
        "--progression-cleared-by",
        metavar="WHO",
        help="who lifted the symptom lock on progression (recorded with the time; feedback "
        "from earlier sessions no longer holds it)",
    )
    edit.set_defaults(handler=edit_user)

    screen = user_sub.add_parser(
        "screen",
        help="the screening questionnaire, one question at a time (answers recorded with the time)",
    )
    screen.add_argument("name", help=NAME_HELP)
    screen.set_defaults(handler=screen_user)

    listing = user_sub.add_parser("list", help="list profiles")
    listing.set_defaults(handler=list_users)

    show = user_sub.add_parser("show", help="show a profile")
    show.add_argument("name", help=NAME_HELP)
    show.add_argument("--json", action="store_true", help="print the profile as JSON")
    show.set_defaults(handler=show_user)

    remove = user_sub.add_parser("remove", help="remove a profile (its history stays)")
    remove.add_argument("name", help=NAME_HELP)
    remove.set_defaults(handler=remove_user)

    for parser in (add, edit, screen, listing, show, remove):
        add_data_option(parser)


def _limit_options(parser: argparse.ArgumentParser) -> None:
    """The person's daily limits (issue 19); unset: the stage's defaults."""
    for option, key, unit, about in LIMIT_OPTIONS:
        lo, hi = USUAL[key]
        hard_lo, hard_hi = HARD[key]
        scale = 60.0 if unit == "min" else 1.0
        parser.add_argument(
            option,
            type=int if unit == "" else float,
            metavar="N",
            help=f"{about} ({lo / scale:g} .. {hi / scale:g}; {hard_lo / scale:g} .. "
            f"{hard_hi / scale:g} with --limits-cleared-by; default: the stage's)",
        )
    parser.add_argument(
        "--limits-cleared-by",
        metavar="WHO",
        help="who allows daily limits past the usual bounds (recorded with the time)",
    )


def _limit_values(
    args: argparse.Namespace, user: User | None
) -> tuple[dict[str, float | int], list[Problem]]:
    """The limits set on the command line (stored units: seconds), and what is wrong with
    them: out of the hard bounds, or looser than the usual ones without a clearance."""
    from controller.app.history import name_problem

    values: dict[str, float | int] = {}
    problems = []
    cleared = (args.limits_cleared_by or "").strip()
    if args.limits_cleared_by is not None:
        why = name_problem(cleared) if cleared else "must name who allows it"
        if why:
            problems.append(Problem("command line", "--limits-cleared-by", why))
    for option, key, unit, _about in LIMIT_OPTIONS:
        given = getattr(args, option[2:].replace("-", "_"))
        if given is None:
            continue
        scale = 60.0 if unit == "min" else 1.0
        value = given * scale
        lo, hi = USUAL[key]
        hard_lo, hard_hi = HARD[key]
        if not (hard_lo <= value <= hard_hi) or value != value:
            problems.append(
                Problem(
                    "command line",
                    option,
                    f"{given:g} is outside {hard_lo / scale:g} .. {hard_hi / scale:g}",
                )
            )
        elif not (lo <= value <= hi) and not cleared:
            problems.append(
                Problem(
                    "command line",
                    option,
                    f"{given:g} is past the usual {lo / scale:g} .. {hi / scale:g}: only a "
                    "clearance widens it (add --limits-cleared-by WHO)",
                )
            )
        values[key] = value
    return values, problems


def add_user(args: argparse.Namespace) -> int:
    from controller.app.history import User, name_problem
    from controller.core.clock import wall_time

    screening, problems = _screening(args.screening)
    problems += _profile_problems(
        args.height_cm, args.weight_kg, args.max_angle_deg, args.max_session_s
    )
    limits, more = _limit_values(args, None)
    problems += more
    why = name_problem(args.name)
    if why:
        problems.append(Problem("command line", "name", why))
    if problems:
        return fail_input(problems)
    store = store_of(args)
    if store.get_user(args.name):
        return fail_input(
            [Problem("command line", "name", f"user {args.name!r} already exists (use user edit)")]
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
            **_as_fields(limits, args.limits_cleared_by, now),
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


def list_users(args: argparse.Namespace) -> int:
    users = store_of(args, write=False).users()
    if not users:
        print("no profiles yet (add one: invtable user add NAME ...)")
    for u in users:
        print(
            f"{u.name}: {u.height_cm:g} cm, {u.weight_kg:g} kg, {u.stage}, "
            f"max {u.max_angle_deg:g} deg / {u.max_session_s:g} s"
            + (", LOCKED OUT (screening)" if u.locked_out else "")
        )
    return EXIT_OK


def show_user(args: argparse.Namespace) -> int:
    _store, user = _existing(args, write=False)
    d = user.as_dict()
    print(json.dumps(d, indent=2) if args.json else "\n".join(_profile_lines(d)))
    return EXIT_OK


def _when(t: float | None, missing: str = "never") -> str:
    """A wall time as the local date and time a person reads (epoch floats are for --json)."""
    import datetime as dt

    if t is None:
        return missing
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")


def _profile_lines(d: dict) -> list[str]:
    """``user show`` for people: dates as local date and time, no ``None``, lists in words."""
    yes = ", ".join(d["screening_yes"]) or "no to every question"
    if d["cleared_by"]:
        covered = ", ".join(d["cleared_answers"]) or "nothing answered yes"
        cleared = f"by {d['cleared_by']} on {_when(d['cleared_at'])} (covers: {covered})"
    elif d["screening_yes"]:
        cleared = "no physician's clearance recorded"
    else:
        cleared = "none recorded (none needed: no screening answer was yes)"
    return [
        f"name:          {d['name']}",
        f"height:        {d['height_cm']:g} cm",
        f"weight:        {d['weight_kg']:g} kg",
        f"stage:         {d['stage']}",
        f"max angle:     {d['max_angle_deg']:g} deg",
        f"max session:   {d['max_session_s']:g} s",
        f"screening:     {yes} (answered {_when(d['screened_at'], 'not yet')})",
        f"clearance:     {cleared}",
        "inversion:     "
        + ("LOCKED OUT past horizontal (screening)" if d["locked_out"] else "allowed"),
        f"created:       {_when(d['created_at'])}",
        f"id:            {d['id']}",
    ]


def remove_user(args: argparse.Namespace) -> int:
    store, user = _existing(args, write=True)
    store.remove_user(user)
    print(
        f"removed {user.name} (the session history stays; a new profile of that name starts afresh)"
    )
    return EXIT_OK


def edit_user(args: argparse.Namespace) -> int:
    from controller.app.history import name_problem
    from controller.core.clock import wall_time

    store, user = _existing(args, write=True)
    problems = _profile_problems(
        args.height_cm, args.weight_kg, args.max_angle_deg, args.max_session_s
    )
    screening = user.screening_yes
    if args.screening is not None:
        screening, more = _screening(args.screening)
        problems += more
    for option, who in (
        ("--cleared-by", args.cleared_by),
        ("--progression-cleared-by", args.progression_cleared_by),
    ):
        if who is not None:
            why = name_problem(who.strip()) if who.strip() else "must name who gave the clearance"
            if why:
                problems.append(Problem("command line", option, why))
    limits, more = _limit_values(args, user)
    problems += more
    if problems:
        return fail_input(problems)
    not_options = {"command", "user_command", "handler", "name", "data"}
    if all(v is None for k, v in vars(args).items() if k not in not_options):
        print(
            f"nothing changed for {user.name}: give at least one option "
            "(invtable user edit --help)",
            file=sys.stderr,
        )
        return EXIT_INPUT
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
    changed = replace(changed, **_as_fields(limits, args.limits_cleared_by, now))
    if args.progression_cleared_by:
        changed = replace(
            changed,
            progression_cleared_by=args.progression_cleared_by.strip(),
            progression_cleared_at=now,
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


def screen_user(args: argparse.Namespace) -> int:
    """The questionnaire: one plain-language question per contraindication, each answer
    recorded with its time. Nothing is saved unless every question is answered."""
    from controller.app.terms import QUESTIONS
    from controller.core.clock import wall_time

    store, user = _existing(args, write=True)
    print(
        f"Screening for {user.name}: answer y (yes) or n (no). Any yes locks inversion past "
        "horizontal until a physician's clearance is recorded."
    )
    answers: dict[str, dict] = {}
    for i, key in enumerate(SCREENING_KEYS, 1):
        question, reason = QUESTIONS[key]
        print(f"\n{i}/{len(SCREENING_KEYS)}. {question}\n   Why we ask: {reason}")
        for _attempt in range(5):
            print("   [y/n] ", end="", flush=True)
            line = sys.stdin.readline()
            if not line:
                return fail_input(
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
            return fail_input(
                [Problem("standard input", key, "no y/n answer after 5 tries; nothing recorded")]
            )
    yes = tuple(k for k in SCREENING_KEYS if answers[k]["yes"])
    changed = replace(user, screening_yes=yes, screening_answers=answers, screened_at=wall_time())
    store.update_user(user, changed, why="user_screened")
    print(
        f"\nrecorded: {', '.join(yes) or 'no to every question'}"
        + (
            f". LOCKED OUT of inversion past horizontal ({', '.join(changed.uncleared)}) until a "
            "physician's clearance is recorded: invtable user edit NAME --cleared-by WHO"
            if changed.locked_out
            else ""
        )
    )
    return EXIT_OK


def _existing(args: argparse.Namespace, *, write: bool) -> tuple[Store, User]:
    """The store and the profile named on the command line (InputError: exit 2 if none)."""
    store = store_of(args, write=write)
    user = store.get_user(args.name)
    if user is None:
        raise InputError([no_user(args.name, "name")])
    return store, user


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
    if max_angle is not None and not MAX_ANGLE_DEG[0] <= max_angle <= MAX_ANGLE_DEG[1]:
        out.append(
            Problem("command line", "--max-angle-deg", f"{max_angle:g} is outside {MAX_ANGLE}")
        )
    if max_session is not None and not MAX_SESSION_S[0] <= max_session <= MAX_SESSION_S[1]:
        out.append(
            Problem(
                "command line",
                "--max-session-s",
                f"{max_session:g} is outside {MAX_SESSION} (the hard cap)",
            )
        )
    return out


def _as_fields(limits: dict[str, float | int], cleared_by: str | None, now: float) -> dict:
    """The User fields the limits set (with the clearance, when one was given)."""
    fields: dict = dict(limits)
    if "sessions_per_day" in fields:
        fields["sessions_per_day"] = int(fields["sessions_per_day"])
    if "supervised_sessions" in fields:
        fields["supervised_sessions"] = int(fields["supervised_sessions"])
    if cleared_by and cleared_by.strip():
        fields["limits_cleared_by"] = cleared_by.strip()
        fields["limits_cleared_at"] = now
    return fields


def _answers(yes: tuple[str, ...], at: float) -> dict[str, dict]:
    return {k: {"yes": k in yes, "at": round(at, 3)} for k in SCREENING_KEYS}
