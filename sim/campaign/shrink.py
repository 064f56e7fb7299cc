"""Shrinking a failed session to a minimal scenario that still fails the same way.

Greedy, deterministic, within a budget of runs (each candidate is one simulated run):

1. fewer events: remove chunks of the event list (halves, quarters, ... single events),
   keeping each removal after which the session still fails with the same key (the outcome
   and, for a violation, the invariant's kind);
2. an earlier end: the first candidate ends just after the violation (when there is one),
   then a bisection between the last event and the end;
3. a simpler person and setup: the default user, then each configuration key, the program,
   the timing and the start angle back to their defaults;
4. the events pass again when 2 or 3 made progress, while the budget lasts.

"The same key" and not "the same message": a shrunk session fails at another moment with
other figures, but for the same reason. The result is the last failing candidate (the
recovery appended when the verdict needed it), ready for ``invtable sim``.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable

from sim.campaign.judge import Verdict, judge

DEFAULT_BUDGET = 120


class Shrinker:
    def __init__(
        self,
        failing: Verdict,
        session: dict[str, Any],
        backend: str = "sim",
        budget: int = DEFAULT_BUDGET,
        judge_fn: Callable[[dict[str, Any], str], Verdict] = judge,
    ) -> None:
        self.key = failing.key
        self.best_session = copy.deepcopy(session)
        self.best = failing
        self.backend = backend
        self.budget = budget
        self.runs = 0
        self.judge = judge_fn

    def attempt(self, candidate: dict[str, Any]) -> bool:
        """Judge ``candidate``; keep it when it fails the same way."""
        if self.runs >= self.budget:
            return False
        self.runs += 1
        verdict = self.judge(candidate, self.backend)
        if verdict.key == self.key:
            self.best_session, self.best = candidate, verdict
            return True
        return False

    def events_pass(self) -> bool:
        progress = False
        n = len(self.best_session.get("events", []))
        chunk = max(1, n // 2)
        while chunk >= 1 and self.runs < self.budget:
            i = 0
            while i < len(self.best_session["events"]) and self.runs < self.budget:
                candidate = copy.deepcopy(self.best_session)
                del candidate["events"][i : i + chunk]
                if self.attempt(candidate):
                    progress = True  # the next chunk now sits at i
                else:
                    i += chunk
            chunk //= 2
        return progress

    def end_pass(self) -> bool:
        progress = False
        events = self.best_session.get("events", [])
        last = max((float(e["at_s"]) for e in events), default=0.0)
        lo = float(math.ceil(last + 1.0))
        hi = float(self.best_session["scenario"]["duration_s"])
        when = _violation_time(self.best.reason)
        if when is not None and lo < math.ceil(when + 1.0) < hi:
            if self.attempt(_ended(self.best_session, math.ceil(when + 1.0))):
                hi, progress = float(self.best_session["scenario"]["duration_s"]), True
        while hi - lo > 2.0 and self.runs < self.budget:
            mid = float(math.ceil((lo + hi) / 2))
            if self.attempt(_ended(self.best_session, mid)):
                hi, progress = mid, True
            else:
                lo = mid
        return progress

    def simplify_pass(self) -> bool:
        progress = False
        for path in _simplifications(self.best_session):
            candidate = copy.deepcopy(self.best_session)
            _remove(candidate, path)
            if self.attempt(candidate):
                progress = True
        return progress

    def run(self) -> tuple[dict[str, Any], Verdict]:
        self.events_pass()
        for _ in range(3):
            changed = self.end_pass()
            changed = self.simplify_pass() or changed
            if not changed or self.runs >= self.budget:
                break
            if not self.events_pass():
                break
        return self.best_session, self.best


def shrink(
    failing: Verdict,
    session: dict[str, Any],
    backend: str = "sim",
    budget: int = DEFAULT_BUDGET,
    judge_fn: Callable[[dict[str, Any], str], Verdict] = judge,
) -> tuple[dict[str, Any], Verdict, int]:
    """(the smallest failing session found, its verdict, the runs spent)."""
    s = Shrinker(failing, session, backend, budget, judge_fn)
    smallest, verdict = s.run()
    return smallest, verdict, s.runs


def _violation_time(reason: str) -> float | None:
    marker = "at t="
    i = reason.find(marker)
    if i < 0:
        return None
    try:
        return float(reason[i + len(marker) :].split(" ", 1)[0])
    except ValueError:
        return None


def _ended(session: dict[str, Any], end: float) -> dict[str, Any]:
    out = copy.deepcopy(session)
    out["scenario"]["duration_s"] = end
    out["events"] = [e for e in out.get("events", []) if float(e["at_s"]) <= end]
    return out


def _simplifications(session: dict[str, Any]) -> list[tuple[str, ...]]:
    """What can go back to its default, simplest first: the person, then the setup."""
    paths: list[tuple[str, ...]] = []
    if "user" in session:
        paths.append(("user",))
        paths += [("user", k) for k in session["user"]]
    for key in ("program", "timing"):
        if key in session:
            paths.append((key,))
    if "start_angle_deg" in session["scenario"]:
        paths.append(("scenario", "start_angle_deg"))
    for table, body in session.get("config", {}).items():
        paths += [("config", table, k) for k in body]
    return paths


def _remove(data: dict[str, Any], path: tuple[str, ...]) -> None:
    node: Any = data
    for part in path[:-1]:
        node = node.get(part, {})
    node.pop(path[-1], None)
    if len(path) == 3 and not data["config"].get(path[1], True):
        del data["config"][path[1]]
