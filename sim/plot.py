"""Plot a run: true angle and setpoint over time with the state as coloured bands.

matplotlib is an optional extra (``pip install 'invtable[plot]'``): it pulls in numpy,
too heavy to force onto every Pi. ``plot_available()`` lets the CLI refuse ``--plot``
up front, before running anything, when it is missing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from sim.runner import RunResult, atomic_write

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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    rows = result.rows
    t = [r[0] for r in rows]
    cfg = result.scenario.config
    fig, (ax, axv) = plt.subplots(
        2, 1, figsize=(11, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    # State bands.
    seen: dict[str, str] = {}
    start = 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or rows[i][1] != rows[start][1]:
            state = rows[start][1]
            colour = STATE_COLOURS.get(state, "#eeeeee")
            end_t = rows[i][0] if i < len(rows) else rows[-1][0]
            for a in (ax, axv):
                a.axvspan(rows[start][0], end_t, color=colour, alpha=0.6, lw=0)
            seen.setdefault(state, colour)
            start = i
    ax.plot(t, [r[5] for r in rows], color="#1f77b4", lw=1.0, ls="--", label="setpoint")
    ax.plot(t, [r[2] for r in rows], color="black", lw=1.4, label="true angle")
    ax.axhline(cfg.limits.max_angle_deg, color="red", lw=0.8, ls=":", label="max angle")
    ax.axhline(cfg.limits.upright_deg, color="grey", lw=0.8, ls=":", label="upright")
    ax.axhline(0.0, color="grey", lw=0.5)
    ax.set_ylabel("angle (deg, +90 = head down)")
    ax.set_title(f"{result.scenario.name}: {'PASSED' if result.passed else 'FAILED'}")
    handles, _ = ax.get_legend_handles_labels()
    handles += [Patch(color=c, label=s) for s, c in seen.items()]
    ax.legend(handles=handles, loc="upper right", fontsize=7, ncol=2)
    axv.plot(t, [r[3] for r in rows], color="black", lw=1.0, label="true speed")
    axv.plot(t, [r[10] for r in rows], color="red", lw=0.8, ls=":", label="speed limit")
    axv.plot(t, [-r[10] for r in rows], color="red", lw=0.8, ls=":")
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
    a2.bar(when, [(s["past_horizontal_s"] or 0.0) / 60.0 for s in done], width=0.02, color=colors)
    a2.set_ylabel("minutes past horizontal")
    a2.set_xlabel("date")
    fig.autofmt_xdate()
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100), mode="wb")
    plt.close(fig)
