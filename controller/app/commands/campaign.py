"""``invtable campaign``: thousands of random sessions, judged, failures shrunk to scenarios.

The engine is ``sim.campaign`` (generation, judging, shrinking: pure simulation); this module
parses the command line, picks the executor, shows the progress and writes the result.
Exit 0: no session failed; 1: some did (each shrunk to ``DIR/failures/*.toml``); 2: bad
arguments (nothing run).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller.app.commands.common import EXIT_FAILED, EXIT_OK, fail_input
from controller.core.errors import Problem

if TYPE_CHECKING:
    from controller.app.commands.common import Subparsers

BACKENDS = ("sim", "gpio-mock", "serial")
EXECUTORS = ("local", "dask", "ray")
MAX_RUNS = 10_000_000
PROGRESS_EVERY = 100  # sessions between two DIR/progress.json (a long campaign, watched or cut)


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "campaign",
        help="run N random sessions in parallel; failures are shrunk to scenario files",
        description="Random sessions from a seed (people, configs, programs, presses, e-stops, "
        "power cuts, late ticks, faults), each judged by the invariants, the 'nobody "
        "stranded' rule and no crash; every failure shrunk to a scenario for 'invtable sim'. "
        "Exit 0: none failed; 1: some failed; 2: bad arguments.",
    )
    p.add_argument("--runs", type=int, metavar="N", help="how many sessions (indices 0..N-1)")
    p.add_argument("--seed", type=int, required=True, metavar="S", help="the campaign's seed")
    p.add_argument(
        "--index",
        type=int,
        metavar="I",
        help="run only session I of the campaign (it is rebuilt alone from seed and index)",
    )
    p.add_argument("--jobs", type=int, metavar="J", help="worker processes (default: one per core)")
    p.add_argument("--backend", choices=BACKENDS, default="sim", help="the hardware path")
    p.add_argument(
        "--faults",
        default="all",
        metavar="all|none|LIST",
        help="faults to draw from: all (every catalogue fault of the backend), none, or a "
        "comma-separated list of names",
    )
    p.add_argument(
        "--max-faults", type=int, default=2, metavar="K", help="faults at once, at most (0-4)"
    )
    p.add_argument(
        "--timing",
        choices=("ideal", "realistic"),
        default="ideal",
        help="realistic: tick jitter, current lag and late ticks in every session",
    )
    p.add_argument(
        "--out", type=Path, default=Path("out/campaign"), metavar="DIR", help="result folder"
    )
    p.add_argument(
        "--executor",
        nargs="+",
        default=["local"],
        metavar=("NAME", "ADDRESS"),
        help="local (a process pool, default), or dask [ADDRESS] (a Dask scheduler such as "
        "tcp://host:8786; none: a local Dask cluster); needs the cluster extra",
    )
    p.add_argument(
        "--shrink-per-key",
        type=int,
        default=5,
        metavar="M",
        help="shrink the first M failures of each kind (the others keep their whole scenario)",
    )
    p.add_argument(
        "--shrink-budget",
        type=int,
        default=60,
        metavar="R",
        help="simulated runs spent shrinking one failure, at most",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run_campaign)


def _problems(args: argparse.Namespace) -> tuple[list[Problem], Any]:
    from sim.campaign.generate import Options, default_faults
    from sim.faults import FAULTS

    problems: list[Problem] = []

    def bad(option: str, reason: str) -> None:
        problems.append(Problem("command line", option, reason))

    if args.index is None and args.runs is None:
        bad("--runs", "required (or --index I for one session)")
    if args.runs is not None and not 1 <= args.runs <= MAX_RUNS:
        bad("--runs", f"must be 1 .. {MAX_RUNS}, got {args.runs}")
    if args.index is not None and args.index < 0:
        bad("--index", f"must be >= 0, got {args.index}")
    if args.jobs is not None and not 1 <= args.jobs <= 1024:
        bad("--jobs", f"must be 1 .. 1024, got {args.jobs}")
    if not 0 <= args.max_faults <= 4:
        bad("--max-faults", f"must be 0 .. 4, got {args.max_faults}")
    if args.shrink_per_key < 0:
        bad("--shrink-per-key", f"must be >= 0, got {args.shrink_per_key}")
    if args.shrink_budget < 0:
        bad("--shrink-budget", f"must be >= 0, got {args.shrink_budget}")
    faults: tuple[str, ...] = ()
    if args.faults == "all":
        faults = default_faults(args.backend)
    elif args.faults != "none":
        names = [n.strip() for n in args.faults.split(",") if n.strip()]
        unknown = [n for n in names if n not in FAULTS]
        if unknown or not names:
            bad(
                "--faults",
                f"unknown fault(s) {', '.join(unknown) or repr(args.faults)} "
                f"(all, none, or names from: {', '.join(FAULTS)})",
            )
        faults = tuple(dict.fromkeys(names))
    name, *rest = args.executor
    if name not in EXECUTORS or len(rest) > 1:
        bad("--executor", f"must be local, or dask [ADDRESS]; got {' '.join(args.executor)!r}")
    elif name == "ray":
        bad("--executor", "ray is not supported: the cluster executor is Dask (docs/campaigns.md)")
    elif name == "local" and rest:
        bad("--executor", "local takes no address")
    elif name == "dask":
        from sim.campaign.cluster import available

        if not available():
            bad("--executor", "dask needs the cluster extra: pip install 'invtable[cluster]'")
    out: Path = args.out
    if out.exists() and not out.is_dir():
        bad("--out", f"{out} exists and is not a folder")
    elif not out.exists() and not (out.parent if str(out.parent) else Path(".")).is_dir():
        bad("--out", f"folder {out.parent} does not exist")
    options = Options(
        seed=args.seed,
        backend=args.backend,
        faults=faults,
        max_faults=args.max_faults,
        timing=args.timing,
    )
    return problems, options


def _banner(sessions: int, workers: int, executor: str) -> str:
    """What runs the campaign: how many sessions on what, and whether the simulator runs
    compiled (``make fast``, about 2.7 times the sessions per second) or pure Python."""
    from controller.core import fastload

    code = (
        "compiled modules (make fast)"
        if fastload.status["compiled"]
        else "pure Python (`make fast` compiles the simulator: about 2.7x the sessions per s, "
        "docs/performance.md)"
    )
    if executor == "dask":  # each worker runs what its own machine has: this is the client's
        return (
            f"campaign: {sessions} session(s) on a Dask cluster; this machine's simulator: {code}"
        )
    return f"campaign: {sessions} session(s) on {workers} process(es); simulator: {code}"


def run_campaign(args: argparse.Namespace) -> int:
    from controller.core import clock as stopwatch
    from sim.campaign.engine import (
        Campaign,
        LocalPool,
        Sequential,
        judge_job,
        shrink_job,
        summary_text,
        to_shrink,
        write_progress,
        write_results,
    )

    problems, options = _problems(args)
    if problems:
        return fail_input(problems)
    indices = [args.index] if args.index is not None else list(range(args.runs))
    workers = args.jobs or os.cpu_count() or 1
    workers = max(1, min(workers, len(indices)))
    name, *rest = args.executor
    executor: Any
    if name == "dask":
        from sim.campaign.cluster import DaskCluster

        executor = DaskCluster(rest[0] if rest else None, args.jobs or os.cpu_count() or 1)
    elif workers == 1:
        executor = Sequential()
    else:
        executor = LocalPool(workers)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.quiet:
        print(_banner(len(indices), workers, name), file=sys.stderr)
    campaign = Campaign(options, len(indices))
    start = stopwatch.perf_counter()
    with executor, _Progress(args.quiet) as progress:
        progress.phase("sessions", len(indices))
        for record in executor.map_unordered(judge_job, [(options, i) for i in indices]):
            campaign.add(record)
            progress.advance(campaign)
            if len(campaign.records) % PROGRESS_EVERY == 0:
                write_progress(args.out, campaign, stopwatch.perf_counter() - start)
        chosen = to_shrink(campaign.records, args.shrink_per_key)
        if chosen and args.shrink_budget:
            progress.phase("shrinking failures", len(chosen))
            jobs = [(options, r, args.shrink_budget) for r in chosen]
            for shrunk in executor.map_unordered(shrink_job, jobs):
                campaign.update(shrunk)
                progress.advance(campaign)
    result = write_results(args.out, campaign, stopwatch.perf_counter() - start)
    print(summary_text(result), end="")
    print(f"results: {args.out / 'campaign.json'}, {args.out / 'summary.txt'}")
    return EXIT_FAILED if result["failures"] else EXIT_OK


class _Progress:
    """A rich progress bar on stderr with the running tally (nothing with ``--quiet``)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.task: Any = None

    def __enter__(self) -> _Progress:
        if not self.quiet:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[tally]}"),
                console=Console(file=sys.stderr),
            )
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.quiet:
            self.bar.__exit__(None, None, None)

    def phase(self, name: str, total: int) -> None:
        if not self.quiet:
            self.task = self.bar.add_task(name, total=total, tally="")

    def advance(self, campaign: Any) -> None:
        if self.quiet:
            return
        tally = ", ".join(f"{k} {v}" for k, v in sorted(campaign.outcomes.items()))
        self.bar.update(self.task, advance=1, tally=tally)
