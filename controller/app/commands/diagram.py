"""``invtable diagram``: the state machine as a mermaid diagram (docs/state-machine.md)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from controller.app.commands.common import EXIT_OK

if TYPE_CHECKING:
    from controller.app.commands.common import Subparsers


def register(sub: Subparsers) -> None:
    diagram = sub.add_parser("diagram", help="print the state machine as a mermaid diagram")
    diagram.add_argument(
        "--markdown", action="store_true", help="print the whole docs/state-machine.md"
    )
    diagram.set_defaults(handler=print_diagram)


def print_diagram(args: argparse.Namespace) -> int:
    from controller.app.diagram import markdown, mermaid

    sys.stdout.write(markdown() if args.markdown else mermaid())
    return EXIT_OK
