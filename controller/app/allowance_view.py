"""What ``history`` and ``report`` say about a person's allowance: daily totals against the
limits, supervisors and symptoms (the rules themselves are in ``controller.app.allowance``)."""

from __future__ import annotations

from typing import Any

from controller.app import allowance
from controller.app.history import Store, User

DAYS_SHOWN = 14  # the daily totals of the last days with sessions
LEDGERS = (("real", ("real", "unknown")), ("simulated", ("sim",)))


def session_note(row: dict[str, Any]) -> str:
    """A session's supervisor and feedback, for its history line (missing feedback says so)."""
    felt = allowance.feelings_of(row)
    parts = []
    if row.get("supervisor"):
        parts.append(f"supervised by {row['supervisor']}")
    if row.get("outcome") is not None:
        marks = "" if set(felt) <= allowance.COMFORTABLE else " (SYMPTOM)"
        parts.append(
            f"felt: {', '.join(felt).replace('_', ' ')}{marks}" if felt else "felt: not given"
        )
    return (", " + ", ".join(parts)) if parts else ""


def limits_line(user: User) -> str:
    lim = allowance.limits_of(user)
    own = any(
        v is not None
        for v in (user.sessions_per_day, user.past_s_per_day, user.rest_s, user.supervised_sessions)
    )
    return (
        f"limits: {lim.sessions_per_day} sessions and {lim.past_s_per_day / 60.0:g} minutes past "
        f"horizontal a day, {lim.rest_s / 60.0:g} minutes rest between sessions, the first "
        f"{lim.supervised_sessions} sessions supervised"
        + ("" if own else f" ({user.stage} defaults)")
        + (
            f"; widened with the clearance of {user.limits_cleared_by}"
            if user.limits_cleared_by
            else ""
        )
    )


def person_lines(store: Store, user: User, now: float) -> list[str]:
    """The person's limits, then for each ledger with sessions (real, simulated): the daily
    totals against the limits, whether a session may start now, and the symptom rule."""
    lim = allowance.limits_of(user)
    lines = [f"{user.name}: {limits_line(user)}"]
    for label, sources in LEDGERS:
        ledger = store.ledger(user, sources)
        if not ledger:
            continue
        lines.append(
            f"  {label} sessions, daily totals (of {lim.sessions_per_day} sessions, "
            f"{lim.past_s_per_day / 60.0:g} min past horizontal):"
        )
        totals = list(allowance.daily_totals(ledger).items())[-DAYS_SHOWN:]
        for day, (n, past) in totals:
            over = n > lim.sessions_per_day or past > lim.past_s_per_day + 0.5
            lines.append(
                f"    {day}: {n} of {lim.sessions_per_day} sessions, {past / 60.0:.1f} of "
                f"{lim.past_s_per_day / 60.0:g} min past horizontal" + (" (OVER)" if over else "")
            )
        supervisors = sorted({e["supervisor"] for e in ledger if e.get("supervisor")})
        lines.append(
            f"    supervised: {allowance.supervised_done(ledger)} completed of the first "
            f"{lim.supervised_sessions} needing a supervisor"
            + (f" (supervisors: {', '.join(supervisors)})" if supervisors else "")
        )
        verdict = allowance.check_start(ledger, now, lim, supervisor="(given)")
        lines.append(
            "    next session: "
            + ("allowed now" if verdict.allowed else f"refused now: {verdict.message()}")
            + (" (with a supervisor)" if allowance.needs_supervisor(ledger, lim) else "")
        )
        symptoms = allowance.symptom_state(ledger, user.progression_cleared_at)
        missing = sum(1 for e in ledger if e.get("outcome") and not allowance.feelings_of(e))
        lines.append(
            "    progression: "
            + (
                f"LOCKED: {symptoms.held}"
                if symptoms.locked
                else f"HELD: {symptoms.held}"
                if symptoms.held
                else "steps up on completed sessions"
            )
            + (f" (sessions without feedback: {missing})" if missing else "")
        )
    if user.progression_cleared_by:
        lines.append(f"  symptom lock cleared by {user.progression_cleared_by}")
    return lines
