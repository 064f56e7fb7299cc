"""Plot a run: true angle and setpoint over time with the state as coloured bands.

matplotlib is an optional extra (``pip install 'invtable[plot]'``): it pulls in numpy,
too heavy to force onto every Pi. ``plot_available()`` lets the CLI refuse ``--plot``
up front, before running anything, when it is missing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from sim.runner import RunResult, atomic_write
from sim.trace import PlotSeries

if TYPE_CHECKING:
    from matplotlib.axes import Axes

STATE_COLOURS = {
    "boot": "#dddddd",
    "idle": "#ffffff",
    "jogging": "#cfe8ff",
    "holding": "#e6e6fa",
    "ramp": "#d8f5d0",
    "hold": "#b8e6a8",
    "rest": "#fff3c4",
    "paused": "#f0e0ff",
    "returning": "#c8f0f0",
    "emergency_return": "#ffcc80",
    "estop": "#ff9c9c",
    "fault": "#ff6b6b",
    "power_off": "#999999",
    "hung": "#777777",
}


def plot_available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def plot_run(result: RunResult, path: Path) -> None:
    """Draw a run from its bounded plot series (``result.series``, collected while it ran
    with ``plot_series=True``), or from its rows when it kept them all.

    Either way the figure comes from a ``PlotSeries``: every row for runs up to
    ``PLOT_BUCKETS`` ticks, a decimated copy that keeps each bucket's extremes beyond
    that, so a day-long run plots in bounded memory with its peaks and exact state bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    series = result.series
    if series is None:
        if not result.rows_complete:
            raise ValueError(
                "this run kept neither its rows nor a plot series: run it with plot_series=True"
            )
        series = PlotSeries.of(result.rows)
    points = series.points()
    t = [p[0] for p in points]
    cfg = result.scenario.config
    fig, (ax, axv) = plt.subplots(
        2, 1, figsize=(11, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    # State bands, from the exact state changes.
    seen: dict[str, str] = {}
    for i, (start_t, state) in enumerate(series.states):
        end_t = series.states[i + 1][0] if i + 1 < len(series.states) else series.last_t
        colour = STATE_COLOURS.get(state, "#eeeeee")
        for a in (ax, axv):
            a.axvspan(start_t, end_t, color=colour, alpha=0.6, lw=0)
        seen.setdefault(state, colour)
    ax.plot(t, [p[4] for p in points], color="#1f77b4", lw=1.0, ls="--", label="setpoint")
    ax.plot(t, [p[2] for p in points], color="black", lw=1.4, label="true angle")
    ax.axhline(cfg.limits.max_angle_deg, color="red", lw=0.8, ls=":", label="max angle")
    ax.axhline(cfg.limits.upright_deg, color="grey", lw=0.8, ls=":", label="upright")
    ax.axhline(0.0, color="grey", lw=0.5)
    ax.set_ylabel("angle (deg, +90 = head down)")
    ax.set_title(f"{result.scenario.name}: {'PASSED' if result.passed else 'FAILED'}")
    handles, _ = ax.get_legend_handles_labels()
    handles += [Patch(color=c, label=s) for s, c in seen.items()]
    ax.legend(handles=handles, loc="upper right", fontsize=7, ncol=2)
    axv.plot(t, [p[3] for p in points], color="black", lw=1.0, label="true speed")
    axv.plot(t, [p[5] for p in points], color="red", lw=0.8, ls=":", label="speed limit")
    axv.plot(t, [-p[5] for p in points], color="red", lw=0.8, ls=":")
    axv.set_ylabel("deg/s")
    axv.set_xlabel("time (s)")
    axv.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    atomic_write(Path(path), lambda fh: fig.savefig(fh, format="png", dpi=110), mode="wb")
    plt.close(fig)


def plot_progress(sessions: list[dict], user: str, path: Path) -> None:
    """Progress over weeks: peak angle and minutes past horizontal per session."""
    import datetime as dt

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sim.runner import atomic_write

    done = [s for s in sessions if s["peak_deg"] is not None]
    when = [dt.datetime.fromtimestamp(s["started_at"]) for s in done]
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    colors = ["tab:green" if s["outcome"] == "completed" else "tab:red" for s in done]
    a1.scatter(when, [s["peak_deg"] for s in done], c=colors)
    a1.plot(when, [s["peak_deg"] for s in done], color="grey", lw=0.8)
    a1.set_ylabel("peak angle (deg)")
    a1.set_title(f"{user}: {len(done)} sessions (green: completed, red: ended early)")
    _mark_symptoms(a1, done, when)
    a2.bar(when, [(s["past_horizontal_s"] or 0.0) / 60.0 for s in done], width=0.02, color=colors)
    a2.set_ylabel("minutes past horizontal")
    a2.set_xlabel("date")
    fig.autofmt_xdate()
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100), mode="wb")
    plt.close(fig)


def _mark_symptoms(ax: "Axes", done: list[dict], when: list) -> None:
    """Issue 19: the sessions after which a symptom was reported, marked and named."""
    comfortable = {"none", "back_pain_better"}
    for s, w in zip(done, when, strict=True):
        felt = [f for f in (s.get("feedback") or "").split(",") if f]
        if felt and not set(felt) <= comfortable:
            ax.scatter([w], [s["peak_deg"]], marker="x", s=80, color="tab:orange", zorder=3)
            ax.annotate(", ".join(felt).replace("_", " "), (w, s["peak_deg"]), fontsize=7)
