"""Plots for people: a run (or any trace CSV), a past session, a user's progress.

A run's plot shows the true angle and the setpoint over time on coloured state bands (one
clearly different colour per state, with a legend), the speed against the limit the
invariant checker actually applied (the emergency speed after a fault included), and a
marker at each press, fault, power cut and stall, so a reader sees at a glance what
happened and why.

matplotlib is an optional extra (``pip install 'invtable[plot]'``): it pulls in numpy,
too heavy to force onto every Pi. ``plot_available()`` lets the CLI refuse ``--plot``
up front, before running anything, when it is missing.
"""

from __future__ import annotations

import csv
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from controller.core.config import Config
from sim.runner import RunResult, atomic_write
from sim.trace import TRACE_COLUMNS, PlotSeries, TraceRow

if TYPE_CHECKING:
    from matplotlib.axes import Axes

# One hue per state, chosen to be told apart at a glance (and from the red/grey lines):
# e-stop red and fault purple, limp home brown and boot grey, the session states greens.
STATE_COLOURS = {
    "boot": "#d0d0d0",
    "idle": "#ffffff",
    "jogging": "#9ecae1",
    "holding": "#bcbddc",
    "ramp": "#c7e9c0",
    "hold": "#74c476",
    "rest": "#fee391",
    "paused": "#f7b6d2",
    "returning": "#80deea",
    "emergency_return": "#fd8d3c",
    "limp_home": "#a1887f",
    "supervised_return": "#dbdb8d",
    "estop": "#e31a1c",
    "fault": "#9c27b0",
    "power_off": "#424242",
    "hung": "#000000",
}
BAND_ALPHA = 0.35

# Marker kinds: colour and the symbol drawn on the top edge.
MARKERS = {
    "press": ("#1f77b4", "v", "button press"),
    "input": ("#17becf", "D", "ankle lock / e-stop input"),
    "fault": ("#9c27b0", "X", "fault (injected or latched)"),
    "power": ("#424242", "s", "power cut / restored"),
    "stall": ("#ff7f0e", "P", "late loop (stall)"),
}
MAX_LABELS = 30  # beyond this the markers keep their symbol but lose their text


@dataclass(frozen=True, slots=True)
class Marker:
    t_s: float
    kind: str  # a key of MARKERS
    label: str


def plot_available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def markers_of_run(result: RunResult) -> list[Marker]:
    """What to mark on a run's plot: the scenario's presses, inputs, injected faults, power
    changes and stalls, and each fault the controller latched (its code)."""
    out = []
    for ev in result.scenario.events:
        if ev.do in ("press", "tap"):
            out.append(Marker(ev.at_s, "press", ev.target))
        elif ev.do == "set":
            name = "ankle lock" if ev.target == "ankle_lock" else "e-stop"
            word = (
                ("locked" if ev.value else "open")
                if ev.target == "ankle_lock"
                else ("pressed" if ev.value else "released")
            )
            out.append(Marker(ev.at_s, "input", f"{name} {word}"))
        elif ev.do == "fault":
            out.append(Marker(ev.at_s, "fault", f"inject {ev.target}"))
        elif ev.do == "power":
            out.append(Marker(ev.at_s, "power", "power on" if ev.value else "power cut"))
        elif ev.do == "stall":
            out.append(Marker(ev.at_s, "stall", f"stall {ev.duration_s * 1000:.0f} ms"))
    for e in result.events:
        if e.message.startswith("fault:"):
            code = e.message[len("fault:") :].strip().split(":", 1)[0]
            out.append(Marker(e.t_s, "fault", code))
    return sorted(out, key=lambda m: m.t_s)


def plot_run(result: RunResult, path: Path) -> None:
    """Draw a run from its bounded plot series (``result.series``, collected while it ran
    with ``plot_series=True``), or from its rows when it kept them all.

    Either way the figure comes from a ``PlotSeries``: every row for runs up to
    ``PLOT_BUCKETS`` ticks, a decimated copy that keeps each bucket's extremes beyond
    that, so a day-long run plots in bounded memory with its peaks and exact state bands."""
    series = result.series
    cfg = result.scenario.config
    if series is None:
        if not result.rows_complete:
            raise ValueError(
                "this run kept neither its rows nor a plot series: run it with plot_series=True"
            )
        first_fault = min(
            (ev.at_s for ev in result.scenario.events if ev.do == "fault"), default=None
        )
        series = series_with_limits(result.rows, cfg, first_fault)
    title = f"{result.scenario.name}: {'PASSED' if result.passed else 'FAILED'}"
    draw(series, markers_of_run(result), cfg, title, Path(path))


def series_with_limits(
    rows: Iterable[TraceRow],
    config: Config,
    first_fault_t: float | None,
    markers: list[Marker] | None = None,
) -> PlotSeries:
    """A plot series whose speed limit is the one the invariant checker applies, replayed
    over ``rows`` in one pass (bounded memory, whatever the trace's length): the emergency
    speed from ``first_fault_t`` on, or, when that is None, from the first latched fault
    the rows show. ``markers``, when given, receives what a trace alone shows: latched
    faults (the ``faults`` column), power cuts and restores (``powered``), late loops over
    100 ms (``late_ms``); presses are not in a trace (pass the scenario for those)."""
    from sim.checks import InvariantChecker, Row

    checker = InvariantChecker(config)
    series = PlotSeries()
    faults_before, powered_before, late_before = "", 1, False
    for r in rows:
        if r.faults != faults_before:
            new = set(r.faults.split(";")) - set(faults_before.split(";")) - {""}
            for code in sorted(new):
                if markers is not None:
                    markers.append(Marker(r.t_s, "fault", code))
                first_fault_t = r.t_s if first_fault_t is None else first_fault_t
            faults_before = r.faults
        if markers is not None:
            if r.powered != powered_before:
                markers.append(Marker(r.t_s, "power", "power on" if r.powered else "power cut"))
            if r.late_ms > 100.0 and not late_before:  # once per stall, not per late tick
                markers.append(Marker(r.t_s, "stall", f"late {r.late_ms:.0f} ms"))
        powered_before, late_before = r.powered, r.late_ms > 100.0
        if first_fault_t is not None and r.t_s >= first_fault_t - 1e-9:
            checker.fault_injected = True
        checker.feed(
            Row(
                r.t_s,
                r.state,
                r.angle_deg,
                r.velocity_dps,
                r.setpoint_vel_dps,
                r.goal_deg,
                r.goal_deg is not None,
                r.speed_limit_dps,
                r.accel_limit_dps2,
                r.motor_cmd,
                bool(r.brake),
                bool(r.estop_in),
                bool(r.ankle_locked),
                bool(r.powered),
            )
        )
        series.feed(r, checker.allowed_speed)
    return series


def read_trace(path: Path) -> Iterator[TraceRow]:
    """The rows of a trace CSV (DESIGN section 7) as the runner makes them, one at a time.
    ValueError names the line that does not parse."""
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise ValueError("empty file (no header line)")
        missing = [c for c in TRACE_COLUMNS if c not in header]
        if missing:
            raise ValueError(f"not an invtable trace: missing column(s) {', '.join(missing)}")
        idx = [header.index(c) for c in TRACE_COLUMNS]
        text = {"state", "faults"}
        int_columns = {"brake", "alarm", "estop_in", "ankle_locked", "powered"}
        optional = {"sensor_deg", "goal_deg"}
        for line_no, raw in enumerate(reader, 2):
            if not raw:
                continue
            try:
                row: list[Any] = []
                for col, i in zip(TRACE_COLUMNS, idx, strict=True):
                    v = raw[i]
                    if col in text:
                        row.append(v)
                    elif v == "" and col in optional:
                        row.append(None)
                    else:
                        row.append(float(v) if col not in int_columns else int(float(v)))
            except (ValueError, IndexError) as exc:
                raise ValueError(f"line {line_no}: {exc}") from None
            yield TraceRow(*row)


def plot_trace(
    trace: Path, path: Path, config: Config, *, scenario: Any = None, title: str = ""
) -> list[Marker]:
    """Plot an existing trace CSV (``invtable plot``). With the ``scenario`` that made it,
    its presses and injected faults are marked and the emergency limit starts at the
    injection, as in the run's own check; without, at the first latched fault."""
    markers: list[Marker] = []
    first_fault = None
    if scenario is not None:
        injected = [ev.at_s for ev in scenario.events if ev.do == "fault"]
        first_fault = min(injected, default=None)
    series = series_with_limits(read_trace(trace), config, first_fault, markers)
    if series.last_t is None:
        raise ValueError("the trace has a header but no rows")
    if scenario is not None:
        from_scenario = markers_of_run(RunResult(scenario))
        markers += [m for m in from_scenario if m.kind != "fault" or "inject" in m.label]
    markers.sort(key=lambda m: m.t_s)
    name = f"{scenario.name} ({trace.name})" if scenario is not None else trace.name
    return draw(series, markers, config, title or name, path)


def draw(
    series: PlotSeries, markers: list[Marker], cfg: Config, title: str, path: Path
) -> list[Marker]:
    """The run's figure: angle and setpoint on state bands, speed against the applied limit,
    markers on both axes; written atomically to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    points = series.points()
    t = [p[0] for p in points]
    fig, (ax, axv) = plt.subplots(
        2, 1, figsize=(13, 7.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.6]}
    )
    seen: dict[str, str] = {}
    last_t = series.last_t or 0.0
    for i, (start_t, state) in enumerate(series.states):
        end_t = series.states[i + 1][0] if i + 1 < len(series.states) else last_t
        colour = STATE_COLOURS.get(state, "#eeeeee")
        for a in (ax, axv):
            a.axvspan(start_t, end_t, color=colour, alpha=BAND_ALPHA, lw=0)
        seen.setdefault(state, colour)
    ax.plot(t, [p[2] for p in points], color="black", lw=2.2, label="true angle", zorder=3)
    # On top of the true angle, thinner and dashed: both stay visible where they agree.
    ax.plot(
        t,
        [p[4] for p in points],
        color="#0057e7",
        lw=1.3,
        ls=(0, (4, 2)),
        label="setpoint",
        zorder=4,
    )
    ax.axhline(cfg.limits.max_angle_deg, color="red", lw=1.0, ls=":", label="max angle")
    ax.axhline(cfg.limits.upright_deg, color="dimgrey", lw=1.0, ls=":", label="upright")
    ax.axhline(0.0, color="grey", lw=0.5)
    ax.set_ylabel("angle (deg, 0 = horizontal, +90 = head down)")
    ax.set_title(title)
    speed = [abs(p[3]) for p in points]
    axv.plot(t, speed, color="black", lw=1.0, label="true speed")
    axv.plot(t, [p[5] for p in points], color="red", lw=1.1, label="speed limit applied", zorder=4)
    axv.set_ylabel("speed (deg/s)")
    axv.set_xlabel("time (s)")
    axv.set_ylim(0.0, max([cfg.motion.emergency_speed_dps, *speed, 1.0]) * 1.15)
    _draw_markers(ax, axv, markers)
    used = sorted({m.kind for m in markers}, key=list(MARKERS).index)
    handles = ax.get_legend_handles_labels()[0]
    handles += [
        Line2D([], [], color=MARKERS[k][0], marker=MARKERS[k][1], ls="", label=MARKERS[k][2])
        for k in used
    ]
    state_handles = [
        Patch(facecolor=c, edgecolor="grey", alpha=max(BAND_ALPHA, 0.6), label=s)
        for s, c in seen.items()
    ]
    # Legends outside the axes, on the right: they never hide the start of a run.
    ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False
    )
    axv.legend(
        handles=axv.get_legend_handles_labels()[0] + state_handles,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.25),
        fontsize=8,
        frameon=False,
        title="speed / state",
        title_fontsize=8,
    )
    fig.tight_layout()
    atomic_write(Path(path), lambda fh: fig.savefig(fh, format="png", dpi=100), mode="wb")
    plt.close(fig)
    return markers


def _draw_markers(ax: Any, axv: Any, markers: list[Marker]) -> None:
    top = ax.get_xaxis_transform()  # x in data, y in axes fraction
    label = len(markers) <= MAX_LABELS
    for i, m in enumerate(markers):
        colour, symbol, _ = MARKERS[m.kind]
        for a in (ax, axv):
            a.axvline(m.t_s, color=colour, lw=0.7, ls="--", alpha=0.7, zorder=2)
        ax.plot([m.t_s], [1.0], marker=symbol, color=colour, transform=top, clip_on=False, ms=7)
        if label:
            ax.text(
                m.t_s,
                0.97 - 0.12 * (i % 3),
                f" {m.label}",
                transform=top,
                rotation=0,
                fontsize=7,
                color=colour,
                va="top",
                ha="left",
                bbox={"facecolor": "white", "alpha": 0.7, "lw": 0, "pad": 0.5},
            )


def plot_session(session: dict, path: Path) -> str:
    """A past session from the history (``invtable report --session ID``): the states it
    went through on a time line (from its recorded transitions), its peak angle, time past
    horizontal, outcome, program and clips. The history keeps no angle trace: that is what
    ``session start --trace`` and ``invtable plot`` are for."""
    import datetime as dt

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    events = session.get("events") or []
    fig, ax = plt.subplots(figsize=(11, 3.6))
    seen: dict[str, str] = {}
    if events:
        t0 = events[0]["t_s"]
        for i, e in enumerate(events):
            start = e["t_s"] - t0
            end = (events[i + 1]["t_s"] - t0) if i + 1 < len(events) else start
            colour = STATE_COLOURS.get(e["to"], "#eeeeee")
            ax.barh(0, max(end - start, 0.5), left=start, color=colour, edgecolor="grey")
            if end - start > 0 or i + 1 == len(events):
                ax.text(start, 0.45, e["to"], rotation=30, fontsize=8, va="bottom")
            seen.setdefault(e["to"], colour)
        ax.set_xlabel("time since the session began (s)")
    else:
        ax.text(0.5, 0.5, "no transitions recorded", ha="center", transform=ax.transAxes)
        ax.set_xticks([])
    ax.set_yticks([])
    ax.set_ylim(-0.6, 1.6)
    when = dt.datetime.fromtimestamp(session["started_at"]).strftime("%Y-%m-%d %H:%M")
    peak = session.get("peak_deg")
    peak_s = "-" if peak is None else f"{round(peak, 1) + 0.0:.1f} deg"
    title = (
        f"session #{session['id']}  {session['user']}, program '{session['program']}', {when}\n"
        f"outcome {session.get('outcome') or 'open/interrupted'}, peak {peak_s}, "
        f"{(session.get('past_horizontal_s') or 0):.0f} s past horizontal"
    )
    ax.set_title(title, fontsize=10)
    clipped = list(dict.fromkeys(session.get("clipped") or []))  # each reason once
    if clipped:
        import textwrap

        text = textwrap.fill("clipped: " + "; ".join(clipped), 170, max_lines=3)
        fig.text(0.01, 0.01, text, fontsize=7, va="bottom")
    if seen:
        ax.legend(
            handles=[Patch(facecolor=c, edgecolor="grey", label=s) for s, c in seen.items()],
            loc="upper right",
            fontsize=7,
            ncol=4,
        )
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    atomic_write(Path(path), lambda fh: fig.savefig(fh, format="png", dpi=100), mode="wb")
    plt.close(fig)
    return title.replace("\n", "; ")


def plot_progress(
    sessions: list[dict], user: str, path: Path, marks: Iterable[tuple[float, str, bool]] = ()
) -> str:
    """Progress over days to months: minutes past horizontal per day (bars one day wide),
    the peak angle of each session labelled with its program, early ends in red, and
    ``marks`` (wall time, text, True for a clearance / False for a lock-out) as dashed
    lines. An empty history says so in words instead of drawing empty axes. Returns the
    figure's title (what it shows, in one line)."""
    import datetime as dt

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    done = sorted(
        (s for s in sessions if s.get("peak_deg") is not None), key=lambda s: s["started_at"]
    )
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    if not done:
        for a in (a1, a2):
            a.set_xticks([])
            a.set_yticks([])
        title = f"{user}: no sessions recorded yet"
        a1.set_title(title)
        a1.text(
            0.5,
            0.5,
            "no sessions yet: run one with `invtable session start`",
            ha="center",
            va="center",
            transform=a1.transAxes,
        )
        fig.tight_layout()
        atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100), mode="wb")
        plt.close(fig)
        return title
    when = [dt.datetime.fromtimestamp(s["started_at"]) for s in done]
    completed = [s.get("outcome") == "completed" for s in done]
    colours = ["tab:green" if c else "tab:red" for c in completed]
    peaks = [round(s["peak_deg"], 1) + 0.0 for s in done]
    a1.plot(when, peaks, color="grey", lw=0.8, zorder=1)
    a1.scatter(when, peaks, c=colours, zorder=2, s=28)
    if len(done) <= 25:
        for w, p, s in zip(when, peaks, done, strict=True):
            a1.annotate(
                s.get("program") or "?",
                (w, p),
                textcoords="offset points",
                xytext=(0, 7),
                fontsize=7,
                ha="center",
                rotation=20,
            )
    a1.axhline(0.0, color="grey", lw=0.5)
    a1.set_ylabel("peak angle (deg)")
    programs = sorted({s.get("program") or "?" for s in done})
    title = (
        f"{user}: {len(done)} session(s) on {len({w.date() for w in when})} day(s); "
        f"programs: {', '.join(programs)}"
    )
    a1.set_title(title)
    _mark_symptoms(a1, done, when)
    a1.legend(
        handles=[
            Line2D([], [], marker="o", ls="", color="tab:green", label="completed"),
            Line2D([], [], marker="o", ls="", color="tab:red", label="ended early"),
        ],
        loc="lower right",
        fontsize=8,
    )
    per_day = minutes_per_day(done)
    days = sorted(per_day)
    a2.bar(
        [dt.datetime.combine(d, dt.time(0)) for d in days],
        [per_day[d] for d in days],
        width=0.9,  # a day wide, from its midnight: the day's sessions (above) fall inside
        align="edge",
        color="tab:blue",
    )
    a2.set_ylabel("minutes past horizontal\nper day")
    a2.set_xlabel("date")
    stamps = list(when)
    for k, (t_mark, text, cleared) in enumerate(marks):
        x = dt.datetime.fromtimestamp(t_mark)
        stamps.append(x)
        colour = "tab:green" if cleared else "tab:red"
        for a in (a1, a2):
            a.axvline(x, color=colour, ls="--", lw=1)
        a1.annotate(
            f" {text}",
            (x, 1.0 - 0.07 * (k % 2)),  # staggered: marks days apart do not overprint
            xycoords=("data", "axes fraction"),
            color=colour,
            fontsize=8,
            va="top",
        )
    first, last = min(stamps).date(), max(stamps).date()
    pad = dt.timedelta(days=max(1, (last - first).days // 20 + 1))
    a2.set_xlim(
        dt.datetime.combine(first - pad, dt.time(0)), dt.datetime.combine(last + pad, dt.time(0))
    )
    span_days = (last - first).days + 2 * pad.days
    if span_days <= 45:  # whole days as ticks: no hours on a time axis of days
        a2.xaxis.set_major_locator(mdates.DayLocator(interval=max(1, span_days // 10)))
        a2.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
    else:
        locator = mdates.AutoDateLocator(minticks=3, maxticks=10)
        a2.xaxis.set_major_locator(locator)
        a2.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100), mode="wb")
    plt.close(fig)
    return title


def minutes_per_day(sessions: list[dict]) -> dict[Any, float]:
    """Minutes past horizontal per local calendar day (the report's bars): sessions of the
    same day add up into one bar, never drawn over each other."""
    import datetime as dt

    out: dict[Any, float] = {}
    for s in sessions:
        day = dt.datetime.fromtimestamp(s["started_at"]).date()
        out[day] = out.get(day, 0.0) + (s.get("past_horizontal_s") or 0) / 60.0
    return out


def _mark_symptoms(ax: "Axes", done: list[dict], when: list) -> None:
    """Issue 19: the sessions after which a symptom was reported, marked and named."""
    comfortable = {"none", "back_pain_better"}
    for s, w in zip(done, when, strict=True):
        felt = [f for f in (s.get("feedback") or "").split(",") if f]
        if felt and not set(felt) <= comfortable:
            ax.scatter([w], [s["peak_deg"]], marker="x", s=80, color="tab:orange", zorder=3)
            ax.annotate(", ".join(felt).replace("_", " "), (w, s["peak_deg"]), fontsize=7)
