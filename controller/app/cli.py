"""``invtable``: the command line (DESIGN section 5, a CONTRACT).

Exit codes: 0 ran and passed; 1 ran but a safety invariant was violated or an
expectation unmet (each listed on stderr); 2 invalid input (file, key and reason on
stderr, no traceback) and nothing was run or written; 3 an internal error.

The commands live in ``controller.app.commands``, one module per group, each registering
its options and its handler; this module builds the parser from them and turns every
error into its exit code.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any, Sequence

from controller.app.commands import GROUPS
from controller.app.commands.common import EXIT_INPUT, EXIT_INTERNAL, EXIT_OK, fail_input
from controller.core.errors import InputError, StoreError


def package_version() -> str:
    from importlib import metadata  # here, not at start: it costs every command ~20 ms

    try:
        return metadata.version("invtable")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


class _VersionAction(argparse._VersionAction):
    """``--version``, the installed version looked up only when asked for."""

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.version = f"invtable {package_version()}"
        super().__call__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    # argparse already exits 2 on bad arguments, with the usage and the reason.
    parser = argparse.ArgumentParser(
        prog="invtable", description="Motorized inversion table controller and simulator."
    )
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    old_term = None
    try:
        if (
            args.command in STREAMING_COMMANDS
            and threading.current_thread() is threading.main_thread()
        ):
            old_term = signal.signal(signal.SIGTERM, _unwind_on_sigterm)
        code: int = args.handler(args)
        return code
    except InputError as exc:
        return fail_input(exc.problems)
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
    except Exception:  # a bug: say so clearly, with the traceback for the report
        import traceback

        traceback.print_exc()
        print(
            "invtable: internal error (a bug; please report it with the traceback above)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)


# Commands whose trace streams to a temporary file during the run (sim.trace.TraceWriter).
STREAMING_COMMANDS = ("sim", "demo", "session", "campaign")  # campaign: its worker pool ends too


def _unwind_on_sigterm(signum: int, _frame: object) -> None:
    """SIGTERM (``kill``, a CI job's timeout) ends a streaming command as Ctrl-C does: the
    exception unwinds through the trace writer, which deletes its temporary file (a day's
    trace is over a gigabyte), instead of the process dying with it left behind."""
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
