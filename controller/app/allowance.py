"""A person's allowance of sessions (issue 19), pure functions of (ledger, now, limits).

Three rules from the product's brief that limit the person, not the motor:

- **overuse**: at most ``sessions_per_day`` sessions and ``past_s_per_day`` seconds past
  horizontal per calendar day (local time), and at least ``rest_s`` between the end of one
  session and the start of the next (guidance favours several short sessions over one long
  one: docs/user-guide.md cites it);
- **supervision**: until ``supervised_sessions`` sessions have completed, a session needs a
  named supervisor;
- **listening to the body**: a symptom reported after a session holds progression at the
  last comfortable step; eye pressure or a headache after two sessions in a row locks
  progression until a clearance. Missing feedback is not "none": it neither releases a
  hold nor breaks a run of symptoms.

The ledger is a list of the person's sessions (``Store.ledger``: dicts with started_at,
ended_at, progress_at, past_horizontal_s, peak_deg, hold_s, outcome, supervisor, feedback),
oldest first, from one source: simulated sessions never consume a real allowance. ``now``
is calendar time (``controller.core.clock.wall_time``, injected by the caller).
Every session that began counts toward the day, whatever its outcome (a session cut short
was still a session head-down); only completed sessions count as supervised experience.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

Ledger = Sequence[dict[str, Any]]

COMFORTABLE = frozenset({"none", "back_pain_better"})
LOCKING = frozenset({"eye_pressure", "headache"})  # twice in a row: progression locked


@dataclass(frozen=True, slots=True)
class Limits:
    sessions_per_day: int
    past_s_per_day: float
    rest_s: float
    supervised_sessions: int


# The defaults by stage (docs/user-guide.md cites the guidance): beginners 1-2 minutes a
# session, twice a day; established users 5-15 minutes once or twice a day (a third, short
# one allowed), never one long session.
DEFAULTS = {
    "beginner": Limits(
        sessions_per_day=2, past_s_per_day=6 * 60.0, rest_s=2 * 3600.0, supervised_sessions=3
    ),
    "established": Limits(
        sessions_per_day=3, past_s_per_day=20 * 60.0, rest_s=3600.0, supervised_sessions=3
    ),
}


def limits_of(user: Any) -> Limits:
    """The profile's limits: its own values where set, else its stage's defaults."""
    base = DEFAULTS.get(user.stage, DEFAULTS["beginner"])
    return Limits(
        sessions_per_day=(
            base.sessions_per_day if user.sessions_per_day is None else int(user.sessions_per_day)
        ),
        past_s_per_day=(
            base.past_s_per_day if user.past_s_per_day is None else float(user.past_s_per_day)
        ),
        rest_s=base.rest_s if user.rest_s is None else float(user.rest_s),
        supervised_sessions=(
            base.supervised_sessions
            if user.supervised_sessions is None
            else int(user.supervised_sessions)
        ),
    )


def ledger_sources(source: str, *, count_sim: bool = False) -> tuple[str, ...]:
    """Which recorded sessions a session from ``source`` is judged by: the simulator's own
    on the simulator; on the table the real ones (and old ones of unknown source: the
    allowance errs on the person's side), simulated ones too only with ``count_sim``."""
    if source == "sim":
        return ("sim",)
    return ("real", "unknown") + (("sim",) if count_sim else ())


def day_bounds(now: float) -> tuple[float, float]:
    """The local calendar day holding ``now``: (its midnight, the next midnight)."""
    day = dt.datetime.fromtimestamp(now).date()
    start = dt.datetime.combine(day, dt.time())
    return start.timestamp(), (start + dt.timedelta(days=1)).timestamp()


def when(t: float) -> str:
    """A time a person reads: local, to the minute (rounded up: never earlier than true)."""
    return dt.datetime.fromtimestamp(t + 59.999).strftime("%Y-%m-%d %H:%M")


def _end(entry: dict[str, Any]) -> float:
    return float(entry.get("ended_at") or entry.get("progress_at") or entry["started_at"])


def today(ledger: Ledger, now: float) -> list[dict[str, Any]]:
    start, _ = day_bounds(now)
    return [e for e in ledger if e["started_at"] >= start]


def day_totals(ledger: Ledger, now: float) -> tuple[int, float]:
    """Sessions begun and seconds past horizontal on ``now``'s calendar day."""
    rows = today(ledger, now)
    return len(rows), sum(float(e.get("past_horizontal_s") or 0.0) for e in rows)


def past_left_s(ledger: Ledger, now: float, limits: Limits) -> float:
    """Seconds past horizontal left today (the next session's holds are shortened to fit)."""
    return max(0.0, limits.past_s_per_day - day_totals(ledger, now)[1])


def supervised_done(ledger: Ledger) -> int:
    return sum(1 for e in ledger if e.get("outcome") == "completed")


def needs_supervisor(ledger: Ledger, limits: Limits) -> bool:
    return supervised_done(ledger) < limits.supervised_sessions


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a session may start now: the reasons it may not, and when the daily rules
    next allow one (None when only a supervisor is missing, or nothing is)."""

    reasons: tuple[str, ...]
    next_at: float | None

    @property
    def allowed(self) -> bool:
        return not self.reasons

    def message(self) -> str:
        """What a refused START says: why, and when the next session is allowed."""
        text = "; ".join(self.reasons)
        if self.next_at is not None:
            text += f"; next session allowed at {when(self.next_at)} (local time)"
        return text


def check_start(
    ledger: Ledger, now: float, limits: Limits, *, supervisor: str | None = None
) -> Verdict:
    """May a session start at ``now``? Every rule that refuses says so (all of them, so a
    person learns everything that stands in the way at once)."""
    reasons: list[str] = []
    waits: list[float] = []
    if needs_supervisor(ledger, limits) and not supervisor:
        reasons.append(
            f"supervised initial sessions: the first {limits.supervised_sessions} sessions need "
            f"a supervisor present ({supervised_done(ledger)} completed): name them with "
            "--supervised-by NAME"
        )
    _, midnight = day_bounds(now)
    count, past = day_totals(ledger, now)
    if count >= limits.sessions_per_day:
        reasons.append(f"daily limit: {count} of {limits.sessions_per_day} sessions today")
        waits.append(midnight)
    if past >= limits.past_s_per_day:
        reasons.append(
            f"daily limit: {past / 60.0:.1f} of {limits.past_s_per_day / 60.0:g} minutes past "
            "horizontal today"
        )
        waits.append(midnight)
    if ledger:
        # A last session "in the future" (the clock was set back) counts as ended now.
        last = min(max(_end(e) for e in ledger), now)
        ready = last + limits.rest_s
        if now < ready:
            reasons.append(
                f"rest: at least {limits.rest_s / 60.0:g} minutes between sessions (the last "
                f"ended at {dt.datetime.fromtimestamp(last).strftime('%H:%M')})"
            )
            waits.append(ready)
    # Every timed rule must be met: the latest of their times.
    return Verdict(tuple(reasons), max(waits) if waits else None)


def feelings_of(entry: dict[str, Any]) -> tuple[str, ...]:
    """The recorded feedback of a session; () when none was given (which is not "none")."""
    return tuple(x for x in (entry.get("feedback") or "").split(",") if x)


@dataclass(frozen=True, slots=True)
class Symptoms:
    """What the feedback says about progression."""

    held: str | None  # why progression holds at the last comfortable step (None: it may step)
    locked: bool  # eye pressure / headache twice in a row: held until a clearance
    lock_sessions: tuple[int, ...]  # the sessions that locked it
    step: tuple[float | None, float | None]  # the last comfortable step: (peak deg, hold s)


def symptom_state(ledger: Ledger, cleared_at: float | None = None) -> Symptoms:
    """Hold and lock from the feedback given. A clearance (``cleared_at``) disregards the
    feedback of sessions begun before it. Sessions without feedback are skipped: they neither
    release a hold nor break a run of symptoms."""
    given = [
        e
        for e in ledger
        if feelings_of(e) and (cleared_at is None or e["started_at"] >= cleared_at)
    ]
    streak: list[int] = []
    lock: tuple[int, ...] = ()
    for e in given:
        streak = streak + [int(e["id"])] if set(feelings_of(e)) & LOCKING else []
        if len(streak) >= 2:
            lock = tuple(streak[-2:])
            break
    step: tuple[float | None, float | None] = (None, None)
    for e in reversed(ledger):
        felt = feelings_of(e)
        if e.get("outcome") == "completed" and felt and set(felt) <= COMFORTABLE:
            step = (e.get("peak_deg"), e.get("hold_s"))
            break
    if lock:
        ids = ", ".join(f"#{i}" for i in lock)
        return Symptoms(
            f"eye pressure or headache after sessions {ids} in a row: progression locked at the "
            "last comfortable step until a clearance (user edit NAME --progression-cleared-by WHO)",
            True,
            lock,
            step,
        )
    if given and not set(feelings_of(given[-1])) <= COMFORTABLE:
        last = given[-1]
        return Symptoms(
            f"{', '.join(feelings_of(last)).replace('_', ' ')} after session #{last['id']}: "
            "progression holds at the last comfortable step",
            False,
            (),
            step,
        )
    return Symptoms(None, False, (), step)


def daily_totals(ledger: Iterable[dict[str, Any]]) -> dict[str, tuple[int, float]]:
    """Per local calendar day: (sessions, seconds past horizontal), oldest day first."""
    out: dict[str, tuple[int, float]] = {}
    for e in ledger:
        day = dt.datetime.fromtimestamp(e["started_at"]).strftime("%Y-%m-%d")
        n, s = out.get(day, (0, 0.0))
        out[day] = (n + 1, s + float(e.get("past_horizontal_s") or 0.0))
    return out
