"""Progress bars (rich) for work that takes more than a couple of seconds: a session run at
real-time speed, a scenario paced to real time, the benchmark.

On stderr, so stdout stays the command's result; transient, so a finished bar leaves no
trace; and nothing at all when stderr is not a terminal (logs, CI, pipes).
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


@contextmanager
def sim_progress(
    description: str, total_s: float, stream: TextIO | None = None
) -> Iterator[Callable[[Any], None]]:
    """Yields ``update(progress)`` for a run's ``on_progress`` (``sim.runner.Progress``): the
    bar follows simulated time out of ``total_s``, with the state and the angle."""
    console = Console(file=stream or sys.stderr)
    if not console.is_terminal:
        yield lambda _p: None
        return
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} s"),
        TextColumn("{task.fields[what]}"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        refresh_per_second=4,
        redirect_stdout=_same_terminal(),
        redirect_stderr=False,
    )
    task = bar.add_task(description, total=total_s, what="")
    started = False

    def update(p: Any) -> None:
        nonlocal started
        if not started:  # shown from the first tick: what is printed before stays above it
            bar.start()
            started = True
        total = p.duration_s if 0.0 < p.duration_s < float("inf") else total_s
        bar.update(
            task, total=total, completed=min(p.t_s, total), what=f"{p.state} {p.angle_deg:6.1f} deg"
        )

    try:
        yield update
    finally:
        if started:
            bar.stop()


@contextmanager
def working(description: str, stream: TextIO | None = None) -> Iterator[None]:
    """A spinner with the elapsed time for work whose steps are not counted (the benchmark).
    It redraws once a second only, so it costs the measured loops next to nothing."""
    console = Console(file=stream or sys.stderr)
    if not console.is_terminal:
        yield
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        refresh_per_second=1,
        redirect_stdout=_same_terminal(),
        redirect_stderr=False,
    ) as bar:
        bar.add_task(description, total=None)
        yield


def _same_terminal() -> bool:
    """Print lines above the bar only when stdout is the terminal too: a redirected stdout
    (``invtable bench --json > figures.json``) must get its text, never the bar's stream."""
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False
