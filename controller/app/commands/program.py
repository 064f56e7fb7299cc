"""``invtable program list``: the therapy programs, built in and the user's own."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from controller.app.commands.common import EXIT_OK, add_data_option, data_dir

if TYPE_CHECKING:
    from controller.app.commands.common import Subparsers


def register(sub: Subparsers) -> None:
    program = sub.add_parser("program", help="therapy programs")
    program_sub = program.add_subparsers(
        dest="program_command", required=True, metavar="SUBCOMMAND"
    )
    listing = program_sub.add_parser("list", help="list the built-in and your programs")
    add_data_option(listing)
    listing.set_defaults(handler=list_programs)


def list_programs(args: argparse.Namespace) -> int:
    from controller.app.programs import load_programs

    for p in load_programs(data_dir(args)).values():
        steps = ", ".join(
            f"{t if isinstance(t, str) else f'{t:g}'} deg {h:g} s" for t, h in p.steps
        )
        print(
            f"{p.name}: {p.description} [{steps}; rest {p.rest_deg:g} deg {p.rest_s:g} s]  "
            f"({p.source})"
        )
    return EXIT_OK
