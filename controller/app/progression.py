"""Progression rules (DESIGN section 2), pure: what a session may ask of this user today.

- never more than +10 deg above the user's best completed session (none yet: 20 deg, the
  first-session angle);
- total hold time at most +2 minutes over the best completed session (none yet: 2 minutes);
- beginners capped at 30 deg for their first two weeks;
- the profile's own max angle and max session time, and the table's limits;
- a profile with a "yes" in its screening and no recorded clearance never passes
  horizontal;
- a symptom after a session holds progression at the last comfortable step (no +10 deg,
  no +2 minutes: ``held``, from ``controller.app.allowance.symptom_state``);
- the holds fit what is left of the person's minutes past horizontal today.
A program that asks for more is clipped, and every clip is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

ANGLE_STEP_DEG = 10.0
FIRST_SESSION_DEG = 20.0
TIME_STEP_S = 120.0
FIRST_SESSION_HOLD_S = 120.0
BEGINNER_CAP_DEG = 30.0
BEGINNER_DAYS = 14


@dataclass(frozen=True, slots=True)
class Plan:
    steps: tuple[tuple[float, float], ...]
    max_duration_s: float
    clips: tuple[str, ...]


def plan_session(
    steps: list[tuple[float, float]],
    *,
    profile_max_deg: float,
    profile_max_session_s: float,
    table_max_deg: float,
    table_max_session_s: float,
    best_peak_deg: float | None,
    best_hold_s: float | None,
    beginner: bool,
    days_since_first: float | None,
    locked_out: bool,
    overhead_s: float = 0.0,
    held: str | None = None,
    past_left_s: float | None = None,
) -> Plan:
    """``overhead_s``: the session's time outside its holds (travel and the final rest);
    holds are shortened so the whole session fits its time limit rather than being cut by it.
    ``held``: why progression holds (then ``best_*`` are the last comfortable step, not
    stepped up). ``past_left_s``: the seconds past horizontal left today."""
    clips: list[str] = []
    cap, why = min(profile_max_deg, table_max_deg), "the profile's max angle"
    step_deg = 0.0 if held else ANGLE_STEP_DEG
    progression = (best_peak_deg + step_deg) if best_peak_deg is not None else FIRST_SESSION_DEG
    if progression < cap:
        cap, why = (
            progression,
            (
                held
                if held
                else "+10 deg over the best completed session"
                if best_peak_deg is not None
                else "a first session stays at 20 deg"
            ),
        )
    if (
        beginner
        and (days_since_first is None or days_since_first < BEGINNER_DAYS)
        and BEGINNER_CAP_DEG < cap
    ):
        cap, why = BEGINNER_CAP_DEG, "beginners stay at 30 deg for their first two weeks"
    if locked_out and cap > 0.0:
        cap, why = 0.0, "screening: not past horizontal until a physician's clearance is recorded"
    out = []
    for i, (target, hold) in enumerate(steps):
        if target > cap:
            clips.append(f"step {i + 1}: {_deg(target)} deg clipped to {_deg(cap)} deg ({why})")
            target = cap
        out.append((target, hold))
    total = sum(h for _, h in out)
    max_duration = min(profile_max_session_s, table_max_session_s)
    step_s = 0.0 if held else TIME_STEP_S
    allowed = (best_hold_s + step_s) if best_hold_s is not None else FIRST_SESSION_HOLD_S
    why = held or "at most +2 minutes over the best completed session"
    fits = 0.9 * max_duration - overhead_s
    if fits < allowed:
        allowed, why = max(0.0, fits), f"the whole session must fit its {max_duration:g} s limit"
    if past_left_s is not None and past_left_s - overhead_s < allowed:
        allowed = max(0.0, past_left_s - overhead_s)
        why = f"the daily minutes past horizontal: {past_left_s:.0f} s left today"
    if total > allowed:
        scale = allowed / total if total > 0 else 0.0
        out = [(t, h * scale) for t, h in out]
        clips.append(f"hold time {total:g} s shortened to {allowed:.0f} s ({why})")
    return Plan(tuple(out), max_duration, tuple(clips))


def _deg(value: float) -> str:
    """An angle for people: two decimals at most, no ``-0``: a cap of 19.9885 + 10 reads
    29.99, not 29.9885."""
    return f"{round(value, 2) + 0.0:g}"
