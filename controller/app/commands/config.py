"""``invtable config check``: validate a config file and print the values in effect."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from controller.app.commands.common import EXIT_OK, fail_input
from controller.core.config import config_values, load_config
from controller.core.errors import InputError

if TYPE_CHECKING:
    from controller.app.commands.common import Subparsers


def register(sub: Subparsers) -> None:
    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    check = config_sub.add_parser("check", help="validate a config file")
    check.add_argument("file", type=Path, metavar="CONFIG.toml", help="the config file to check")
    check.set_defaults(handler=check_config)


def check_config(args: argparse.Namespace) -> int:
    from controller.app.supervisor.config import load_supervision

    problems = []
    try:
        config = load_config(args.file)
    except InputError as exc:
        problems += exc.problems
    try:
        load_supervision(args.file)  # the [web] and [mqtt] tables the application reads
    except InputError as exc:
        problems += [p for p in exc.problems if p not in problems]
    if problems:
        return fail_input(problems)
    print(f"{args.file}: OK")
    for key, value in config_values(config).items():
        print(f"  {key} = {json.dumps(value)}")
    return EXIT_OK
