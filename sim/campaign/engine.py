"""A campaign: N sessions judged in parallel, failures shrunk, one deterministic result.

``run_one(options, index)`` is the whole work of one session (generate, judge, shrink when it
failed) and a pure function of its arguments: any executor may run the indices in any order,
in any process, on any machine. ``Campaign`` folds the records in index order, so the result
(``campaign.json`` and the failure files) is the same for one process, a pool, or a Dask
cluster; only ``wall_s`` differs.

Executors: ``sequential`` (in this process), ``local`` (a process pool, one per core by
default) and ``dask`` (a ``distributed`` cluster, an optional extra: ``sim.campaign.dask``).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import tomli_w

from sim.campaign.generate import Options, faults_of, generate
from sim.campaign.judge import FAILURES, Verdict, judge
from sim.campaign.shrink import DEFAULT_BUDGET, shrink

FORMAT = 1  # campaign.json's own version


@dataclass(frozen=True, slots=True)
class Record:
    """What one session gave: all a campaign needs, small enough to send between processes.

    A failure carries the scenario that failed (``scenario``): the generated session, with
    the recovery appended when the verdict needed it. ``shrink_record`` later replaces it by
    the minimal one."""

    index: int
    outcome: str
    reason: str
    key: str
    faults: tuple[str, ...]
    simulated_s: float
    events: int  # events in the generated session
    scenario: dict[str, Any] | None = None  # failures: the scenario that fails
    shrunk: bool = False
    shrunk_events: int = 0
    shrunk_reason: str = ""
    shrink_runs: int = 0

    @property
    def failed(self) -> bool:
        return self.outcome in FAILURES


def run_one(
    options: Options,
    index: int,
    judge_fn: Callable[[dict[str, Any], str], Verdict] = judge,
) -> Record:
    """Generate and judge the session ``index`` (a pure function of its arguments)."""
    session = generate(options, index)
    verdict = judge_fn(session, options.backend)
    return Record(
        index,
        verdict.outcome,
        verdict.reason,
        verdict.key,
        tuple(faults_of(session)),
        verdict.simulated_s,
        len(session["events"]),
        verdict.scenario if verdict.failed else None,
        shrunk_events=len(session["events"]),
    )


def shrink_record(
    options: Options,
    record: Record,
    budget: int = DEFAULT_BUDGET,
    judge_fn: Callable[[dict[str, Any], str], Verdict] = judge,
) -> Record:
    """The failed session ``record.index`` shrunk (generated and judged again: pure)."""
    session = generate(options, record.index)
    verdict = judge_fn(session, options.backend)
    small, small_verdict, runs = shrink(verdict, session, options.backend, budget, judge_fn)
    if small_verdict.scenario.get("config") == {}:
        small_verdict.scenario.pop("config")
    return replace(
        record,
        scenario=small_verdict.scenario,
        shrunk=True,
        shrunk_events=len(small.get("events", [])),
        shrunk_reason=small_verdict.reason,
        shrink_runs=runs,
    )


def to_shrink(records: Iterable[Record], per_key: int) -> list[Record]:
    """The failures worth shrinking: the first ``per_key`` (by index) of each failure key.

    Why not all: a systematic defect fails thousands of sessions the same way, and a dozen
    minimal scenarios say as much as a thousand at a hundredth of the cost. The others keep
    their generated scenario (it fails the same way under ``invtable sim``, only longer).
    Chosen by index, so the choice is the same whatever the executor."""
    seen: Counter[str] = Counter()
    out = []
    for r in sorted(records, key=lambda r: r.index):
        if r.failed and seen[r.key] < per_key:
            seen[r.key] += 1
            out.append(r)
    return out


def failure_name(seed: int, index: int) -> str:
    return f"failures/seed{seed}-{index:06d}.toml"


@dataclass
class Campaign:
    """The tally, folded record by record; ``result()`` sorts by index (order-free)."""

    options: Options
    runs: int
    records: list[Record] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)

    def add(self, record: Record) -> None:
        self.records.append(record)
        self.outcomes[record.outcome] += 1

    def update(self, shrunk: Record) -> None:
        """Replace a failure's record by its shrunk one."""
        self.records = [shrunk if r.index == shrunk.index else r for r in self.records]

    @property
    def failed(self) -> int:
        return sum(self.outcomes[o] for o in FAILURES)

    def result(self, wall_s: float) -> dict[str, Any]:
        records = sorted(self.records, key=lambda r: r.index)
        by_fault: dict[str, Counter[str]] = {}
        for r in records:
            for fault in r.faults or ("(none)",):
                by_fault.setdefault(fault, Counter())[r.outcome] += 1
        simulated = 0.0
        for r in records:  # in index order: the same float sum whatever the executor
            simulated += r.simulated_s
        return {
            "format": FORMAT,
            "runs": len(records),
            "seed": self.options.seed,
            "backend": self.options.backend,
            "faults": list(self.options.faults),
            "max_faults": self.options.max_faults,
            "timing": self.options.timing,
            "simulated_s": round(simulated, 1),
            "wall_s": round(wall_s, 2),
            "outcomes": dict(sorted(Counter(r.outcome for r in records).items())),
            # Failures by what failed: the outcome and, for a violation, the invariant.
            "failure_kinds": dict(sorted(Counter(r.key for r in records if r.failed).items())),
            "by_fault": {f: dict(sorted(c.items())) for f, c in sorted(by_fault.items())},
            "failures": [
                {
                    "index": r.index,
                    "outcome": r.outcome,
                    "reason": r.reason,
                    "faults": list(r.faults),
                    "scenario": failure_name(self.options.seed, r.index),
                    "events": r.events,
                    "shrunk": r.shrunk,
                    "shrunk_events": r.shrunk_events,
                    "shrunk_reason": r.shrunk_reason,
                    "shrink_runs": r.shrink_runs,
                }
                for r in records
                if r.failed
            ],
        }


def write_results(out: Path, campaign: Campaign, wall_s: float) -> dict[str, Any]:
    """``out/campaign.json``, ``out/summary.txt`` and ``out/failures/*.toml``."""
    result = campaign.result(wall_s)
    failures = out / "failures"
    failures.mkdir(parents=True, exist_ok=True)
    for stale in failures.glob(f"seed{campaign.options.seed}-*.toml"):
        stale.unlink()  # a rerun in the same folder: only this campaign's files remain
    for r in sorted(campaign.records, key=lambda r: r.index):
        if r.failed and r.scenario is not None:
            scenario = json.loads(json.dumps(r.scenario))
            scenario["scenario"]["name"] = (
                f"campaign seed {campaign.options.seed} index {r.index}"
                f"{' (shrunk)' if r.shrunk else ''}: {r.outcome}"
            )
            body = tomli_w.dumps(scenario)
            how = (
                f"shrunk from {r.events} events to {r.shrunk_events}"
                if r.shrunk
                else "not shrunk (enough sessions failed the same way already)"
            )
            header = (
                f"# invtable campaign --seed {campaign.options.seed}: session {r.index}, {how}."
                f"\n# Found: {r.reason}\n"
                + (f"# Shrunk: {r.shrunk_reason}\n" if r.shrunk else "")
                + f"# Rerun: invtable sim THIS_FILE --backend {campaign.options.backend}\n"
            )
            (out / failure_name(campaign.options.seed, r.index)).write_text(header + body)
    tmp = out / "campaign.json.tmp"
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp, out / "campaign.json")
    (out / "summary.txt").write_text(summary_text(result))
    return result


def write_progress(out: Path, campaign: Campaign, wall_s: float) -> None:
    """``out/progress.json``: the tally so far (sessions judged, outcomes, failure kinds), for
    a long campaign watched from another terminal or cut short."""
    done = campaign.records
    simulated = 0.0
    for r in done:
        simulated += r.simulated_s
    tmp = out / "progress.json.tmp"
    tmp.write_text(
        json.dumps(
            {
                "runs": campaign.runs,
                "done": len(done),
                "simulated_s": round(simulated, 1),
                "wall_s": round(wall_s, 1),
                "outcomes": dict(sorted(campaign.outcomes.items())),
                "failure_kinds": dict(sorted(Counter(r.key for r in done if r.failed).items())),
            },
            indent=1,
        )
        + "\n"
    )
    os.replace(tmp, out / "progress.json")


def summary_text(result: dict[str, Any]) -> str:
    """The readable summary (also printed at the end of the command)."""
    rate = result["simulated_s"] / result["wall_s"] if result["wall_s"] else 0.0
    lines = [
        f"campaign seed {result['seed']}: {result['runs']} sessions on backend "
        f"{result['backend']} (timing {result['timing']}, up to {result['max_faults']} faults)",
        f"  {result['simulated_s']:.0f} simulated s in {result['wall_s']:.1f} wall s "
        f"({rate:.0f} simulated s per wall s)",
        "  outcomes: " + ", ".join(f"{k} {v}" for k, v in result["outcomes"].items()),
    ]
    if result["failure_kinds"]:
        lines.append(
            "  failures by kind: "
            + ", ".join(f"{k} {v}" for k, v in result["failure_kinds"].items())
        )
    if result["failures"]:
        lines.append(f"  FAILED: {len(result['failures'])} sessions:")
        for f in result["failures"]:
            lines.append(
                f"    #{f['index']} {f['reason']}\n      -> {f['scenario']} "
                f"({f['events']} -> {f['shrunk_events']} events): {f['shrunk_reason']}"
            )
    else:
        lines.append("  no failure")
    lines.append("  by fault (outcome counts):")
    for fault, counts in result["by_fault"].items():
        lines.append(f"    {fault:24s} " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- executors
def judge_job(job: tuple[Options, int]) -> Record:
    return run_one(*job)


def shrink_job(job: tuple[Options, Record, int]) -> Record:
    return shrink_record(*job)


class Sequential:
    """In this process, one after the other (``--jobs 1``)."""

    workers = 1

    def __enter__(self) -> Sequential:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def map_unordered(self, fn: Callable[[Any], Record], jobs: list[Any]) -> Iterator[Record]:
        for job in jobs:
            yield fn(job)


class LocalPool:
    """A process per core (spawn: no state shared with this process, its threads or locks)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def __enter__(self) -> LocalPool:
        import multiprocessing

        self.pool = multiprocessing.get_context("spawn").Pool(self.workers)
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.terminate()
        self.pool.join()

    def map_unordered(self, fn: Callable[[Any], Record], jobs: list[Any]) -> Iterator[Record]:
        chunk = max(1, min(8, len(jobs) // (self.workers * 16)))
        yield from self.pool.imap_unordered(fn, jobs, chunksize=chunk)
