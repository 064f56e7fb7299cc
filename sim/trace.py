"""The trace as a stream: its CSV format, a writer fed one row at a time, and the bounded
copies a run may keep in memory instead of every row.

A run produces one row per 10 ms tick: about 300 bytes each in memory, 8.6 million rows
for a day (``duration_s = 86400``, about 2.7 GB). Nothing here keeps them all:

- ``TraceWriter`` formats each row as it comes and appends it to a temporary file next to
  the target, renamed over the target only when the run ends well (a failure or Ctrl-C
  leaves no partial trace and no temporary file);
- ``PlotSeries`` keeps a decimated copy for ``--plot`` that never exceeds a fixed number of
  points (each bucket keeps its extremes, so peaks stay visible however long the run);
- ``TAIL_ROWS`` bounds the rows a streaming run keeps (the last minute).

The CSV format is a CONTRACT (DESIGN section 7): the bytes are exactly those the whole-list
writer produced (same header, same ``%.4f`` formatting, ``\\r\\n`` line ends).
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterable, NamedTuple


class TraceRow(NamedTuple):
    """One control tick as the trace records it: the fields are the trace CSV's columns, in
    order (the first eight are the CONTRACT of DESIGN section 7, the rest extensions).
    Built in one place (``sim.runner.Simulation._record``); read by name everywhere."""

    t_s: float
    state: str
    angle_deg: float  # the true angle (the physics), not what the sensors say
    velocity_dps: float
    sensor_deg: float | None  # the primary sensor's reading; empty when there is none
    setpoint_deg: float
    motor_cmd: float
    brake: int  # 1 = the brake is engaged
    goal_deg: float | None  # the motion's goal; empty when nothing tracks one
    setpoint_vel_dps: float
    speed_limit_dps: float
    accel_limit_dps2: float
    alarm: int
    estop_in: int
    ankle_locked: int
    powered: int
    session_s: float
    motor_current_a: float
    faults: str  # the latched faults, ';'-separated
    # how late this control tick started versus its ideal 10 ms slot ([timing], stalls)
    late_ms: float


TRACE_COLUMNS: tuple[str, ...] = TraceRow._fields
LATE_I = TRACE_COLUMNS.index("late_ms")

# A streaming run (the CLI) keeps only the last TAIL_ROWS rows in memory: one minute of
# 10 ms ticks, about 2 MB whatever the run's length. Why any at all: a live view, a session
# recorder or a caller looking at how a run ended reads the last rows (``rows[-1]``), never
# the whole run; the summary, the invariant checks, the trace file and the plot are all fed
# row by row and need none of them.
TAIL_ROWS = 6_000

# ``PlotSeries`` keeps at most this many buckets (it halves them by merging pairs when
# full, so it holds between half and all of them). The plot is 11 in at 110 dpi, about
# 1200 pixels across: 2048 or more buckets, each keeping its extremes, are more than one
# per pixel column, so the decimation cannot be seen; runs up to 4096 ticks (41 s) are
# plotted from every row.
PLOT_BUCKETS = 4_096

FLUSH_LINES = 4_096  # formatted lines buffered before one write to the file


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


# One %-format per row (every value formatted in C). The columns that may be empty (no
# sensor reading, no goal) pick one of four formats; a None anywhere else takes the
# per-value path. Strings in a row never hold a comma or a quote.
_TEXT_COLUMNS = {"state", "faults", "brake", "alarm", "estop_in", "ankle_locked", "powered"}
_OPTIONAL = (TRACE_COLUMNS.index("sensor_deg"), TRACE_COLUMNS.index("goal_deg"))


def _row_format(empty: tuple[int, ...]) -> str:
    return (
        ",".join(
            "" if i in empty else "%s" if c in _TEXT_COLUMNS else "%.4f"
            for i, c in enumerate(TRACE_COLUMNS)
        )
        + "\r\n"
    )


_FORMATS = {
    (a, b): _row_format(tuple(i for i, e in zip(_OPTIONAL, (a, b), strict=True) if e))
    for a in (False, True)
    for b in (False, True)
}


def _header() -> str:
    """The header line exactly as ``csv.writer`` writes it (the format the contract froze)."""
    buf = io.StringIO(newline="")
    csv.writer(buf).writerow(TRACE_COLUMNS)
    return buf.getvalue()


TRACE_HEADER = _header()


_S_I, _G_I = _OPTIONAL  # sensor_deg before goal_deg


def format_row(row: TraceRow) -> str:
    """One trace row as its CSV line (with its ``\\r\\n``). Empty optional columns are cut
    out by slicing, not by a per-value loop: this runs once per tick (an idle table has no
    goal on most of them)."""
    s, g = _S_I, _G_I
    s_none, g_none = row[s] is None, row[g] is None
    if s_none:
        values = row[:s] + row[s + 1 : g] + row[g + 1 :] if g_none else row[:s] + row[s + 1 :]
    elif g_none:
        values = row[:g] + row[g + 1 :]
    else:
        values = row
    try:
        return _FORMATS[s_none, g_none] % values
    except TypeError:  # a None elsewhere: the general path
        return ",".join(_fmt(v) for v in row) + "\r\n"


def _open_temp(path: Path, mode: str) -> tuple[IO, str]:
    """A new temporary file in ``path``'s folder (so the final rename stays on one file
    system and is atomic), with the permissions a plain ``open`` would have given."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal permissions
        return os.fdopen(fd, mode, newline="" if "b" not in mode else None), tmp
    except BaseException:
        os.close(fd)
        _unlink(tmp)
        raise


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def atomic_write(path: Path, write: Callable[[IO[Any]], None], mode: str = "w") -> None:
    """Write via a temporary file in the same folder, then rename: never a half-written file."""
    path = Path(path)
    fh, tmp = _open_temp(path, mode)
    try:
        with fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise


class TraceWriter:
    """The trace CSV written while the run produces it, so no run keeps its rows for it.

    Rows go to a temporary file next to ``path`` (``.NAME.XXXX``) in blocks of
    ``FLUSH_LINES``; ``commit()`` renames it over ``path`` at the end, ``abort()`` deletes
    it. As a context manager it commits on a clean exit and aborts on any exception,
    Ctrl-C (``KeyboardInterrupt``) and ``SystemExit`` included: the target is either the
    whole trace or untouched, exactly as with the whole-list writer it replaces.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fh, self._tmp = _open_temp(self.path, "w")
        self._lines: list[str] = []
        self._open = True
        try:
            self._fh.write(TRACE_HEADER)
        except BaseException:
            self.abort()
            raise

    def write(self, row: TraceRow) -> None:
        """Append one row (buffered: written to the file every ``FLUSH_LINES`` rows)."""
        lines = self._lines
        lines.append(format_row(row))
        if len(lines) >= FLUSH_LINES:
            self._fh.write("".join(lines))
            lines.clear()

    def write_all(self, rows: Iterable[TraceRow]) -> None:
        for row in rows:
            self.write(row)

    def commit(self) -> None:
        """Write what is buffered and move the file into place (once). On any failure the
        temporary file is removed and the target left as it was."""
        if not self._open:
            return
        self._open = False
        try:
            with self._fh:
                self._fh.write("".join(self._lines))
                self._lines.clear()
            os.replace(self._tmp, self.path)
        except BaseException:
            _unlink(self._tmp)
            raise

    def abort(self) -> None:
        """Drop the partial trace: close and delete the temporary file; the target is untouched."""
        if not self._open:
            return
        self._open = False
        self._lines.clear()
        try:
            self._fh.close()
        except OSError:
            pass
        _unlink(self._tmp)

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


# A plotted point: (t_s, state, angle_deg, velocity_dps, setpoint_deg, speed_limit_dps).
Point = tuple[float, str, float, float, float, float]


def _reduce(points: list[Point]) -> tuple[Point, ...]:
    """A bucket's representatives, in time order: its first and last points and those with the
    highest and lowest angle and the highest speed (so no peak disappears from the plot)."""
    if len(points) <= 2:
        return tuple(points)
    keep = {0, len(points) - 1}
    keep.add(max(range(len(points)), key=lambda i: points[i][2]))
    keep.add(min(range(len(points)), key=lambda i: points[i][2]))
    keep.add(max(range(len(points)), key=lambda i: abs(points[i][3])))
    return tuple(points[i] for i in sorted(keep))


class PlotSeries:
    """A decimated copy of the trace for the plot, bounded however long the run.

    Why not every row: a day of ticks is 8.6 million rows, too many to keep or to draw.
    Why not re-read the trace file: there may be none (``--plot`` without ``--trace``),
    and reading it back would load every row again. Rows are grouped in buckets of
    ``stride`` consecutive rows; each bucket keeps at most five points (its first, last,
    highest, lowest angle and fastest). When ``max_buckets`` are full, neighbours merge
    and the stride doubles. State changes are kept exactly (the coloured bands), one entry
    per change. Runs up to ``max_buckets`` rows keep every row.
    """

    def __init__(self, max_buckets: int = PLOT_BUCKETS) -> None:
        self.max_buckets = max_buckets
        self.stride = 1
        self.buckets: list[tuple[Point, ...]] = []
        self._open: list[Point] = []
        self.states: list[tuple[float, str]] = []  # (t_s where a state begins, state)
        self.last_t: float | None = None

    def feed(self, row: TraceRow) -> None:
        t, state = row.t_s, row.state
        if not self.states or self.states[-1][1] != state:
            self.states.append((t, state))
        self.last_t = t
        self._open.append(
            (t, state, row.angle_deg, row.velocity_dps, row.setpoint_deg, row.speed_limit_dps)
        )
        if len(self._open) >= self.stride:
            self.buckets.append(_reduce(self._open))
            self._open = []
            if len(self.buckets) >= self.max_buckets:
                b = self.buckets
                self.buckets = [
                    _reduce(list(b[i] + b[i + 1])) if i + 1 < len(b) else b[i]
                    for i in range(0, len(b), 2)
                ]
                self.stride *= 2

    def points(self) -> list[Point]:
        """Every kept point, in time order."""
        out = [p for bucket in self.buckets for p in bucket]
        if self._open:
            out.extend(_reduce(self._open))
        return out

    @classmethod
    def of(cls, rows: Iterable[TraceRow], max_buckets: int = PLOT_BUCKETS) -> PlotSeries:
        series = cls(max_buckets)
        for row in rows:
            series.feed(row)
        return series
