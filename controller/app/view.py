"""Live terminal view (rich): angle, phase, session clock and progress.

Used by ``invtable demo`` and by ``invtable run`` with the keyboard pendant. When the
output is not a terminal (CI, logs) it falls back to one plain progress line every few
seconds so long runs still show they are alive.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from sim.runner import Progress

STATE_STYLE = {
    "estop": "bold white on red",
    "fault": "bold white on red",
    "emergency_return": "bold black on dark_orange",
    "idle": "bold green",
}


def render(p: Progress, title: str, keys: str = "", subtitle: str = "", prompt: str = "") -> Panel:
    table = Table.grid(padding=(0, 2))
    table.add_column(justify="right", style="bold")
    table.add_column()
    if subtitle:
        table.add_row("who", subtitle)
    table.add_row("state", Text(p.state, style=STATE_STYLE.get(p.state, "bold cyan")))
    if p.step:
        table.add_row("step", p.step)
    # Angle bar from -90 (upright side) to +90 (head down).
    width = 40
    pos = int(round((p.angle_deg + 90.0) / 180.0 * width))
    bar = "".join("|" if i == width // 2 else ("#" if i == pos else "-") for i in range(width + 1))
    table.add_row("angle", f"{p.angle_deg:7.1f} deg  [{bar}]  setpoint {p.setpoint_deg:6.1f}")
    table.add_row("target", f"{p.target_deg:7.1f} deg")
    if p.session_s > 0.0:
        left = max(0.0, p.max_session_s - p.session_s)
        table.add_row(
            "off upright",
            f"{p.session_s:6.1f} s, {left:5.1f} s left of the {p.max_session_s:g} s limit",
        )
    else:
        table.add_row("off upright", f"no (limit {p.max_session_s:g} s once it leaves upright)")
    table.add_row(
        "",
        ProgressBar(total=p.max_session_s, completed=min(p.session_s, p.max_session_s), width=42),
    )
    table.add_row(
        "brake",
        Text("ON" if p.brake else "off")
        + (
            Text("   ALARM SOUNDING", style="bold white on red")
            if p.alarm
            else Text("   alarm off")
        ),
    )
    table.add_row(
        "inputs",
        Text.assemble(
            ("ankle lock ", ""),
            ("LOCKED" if p.ankle_locked else "OPEN", "green" if p.ankle_locked else "bold yellow"),
            ("   e-stop ", ""),
            ("PRESSED" if p.estop_in else "released", "bold red" if p.estop_in else "green"),
        ),
    )
    table.add_row(
        "interlocks",
        Text("all clear (ankle lock, e-stop, self-test, sensors)", style="green")
        if not p.interlocks
        else Text("not clear, START refused: " + "; ".join(p.interlocks)[:90], style="yellow"),
    )
    if 0.0 < p.duration_s < float("inf"):
        table.add_row("sim time", f"{p.t_s:6.1f} / {p.duration_s:g} s")
        table.add_row("", ProgressBar(total=p.duration_s, completed=p.t_s, width=42))
    else:
        table.add_row("time", f"{p.t_s:6.1f} s")
    table.add_row("last event", last_event_text(p))
    parts: list[Any] = [table]
    if prompt:
        parts.append(Text(prompt, style="bold black on yellow"))
    if keys:
        parts.append(Text(keys, style="dim"))
    return Panel(Group(*parts), title=title, border_style="blue")


def last_event_text(p: Progress) -> Text:
    """The last event with its age; one from before the current state began is shown dim as
    history (an "e-stop latched" must not read as current once the table is back in idle)."""
    if not p.last_event:
        return Text("none yet", style="dim")
    age = "" if p.last_event_t is None else f"{max(0.0, p.t_s - p.last_event_t):.0f} s ago: "
    text = age + p.last_event[:80]
    if p.last_event_t is not None and p.last_event_t < p.state_since_t - 1e-9:
        return Text(f"{text}  (before {p.state})", style="dim")
    return Text(text)


class LiveView:
    """Context manager: ``update(progress)`` redraws (or prints a line when not a TTY)."""

    def __init__(
        self,
        title: str,
        stream: TextIO | None = None,
        keys: str = "",
        plain_every_s: float = 10.0,
        subtitle: str = "",
    ) -> None:
        self.subtitle = subtitle  # who and what: the user and the program, when known
        self.prompt = ""  # a question shown under the view (quit while off upright)
        self.stream = stream or sys.stdout
        self.console = Console(file=self.stream)
        self.title = title
        self.keys = keys
        self.interactive = self.console.is_terminal
        self.plain_every_s = plain_every_s
        self._next_plain = 0.0
        self._live: Live | None = None

    def __enter__(self) -> "LiveView":
        if self.interactive:
            self._live = Live(console=self.console, refresh_per_second=12, transient=False)
            self._live.__enter__()
        return self

    def update(self, p: Progress) -> None:
        if self._live is not None:
            self._live.update(render(p, self.title, self.keys, self.subtitle, self.prompt))
        elif p.t_s >= self._next_plain:
            self._next_plain = p.t_s + self.plain_every_s
            print(
                f"  t={p.t_s:6.1f} s  {p.state:<17} angle {p.angle_deg:6.1f} deg  "
                f"session {p.session_s:5.1f} s",
                file=self.stream,
                flush=True,
            )

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
