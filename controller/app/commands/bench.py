"""``invtable bench``: the performance figures (docs/performance.md)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from controller.app.commands.common import Subparsers


def register(sub: Subparsers) -> None:
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
    bench.set_defaults(handler=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    from controller.app.bench import main as bench_main
    from controller.app.progressbar import working

    with working("invtable bench: measuring"):
        return bench_main(
            (["--json"] if args.json else [])
            + (["--quick"] if args.quick else [])
            + (["--long"] if args.long else [])
        )
