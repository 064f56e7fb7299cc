"""Errors for bad input: every problem names its file, its key and the reason.

The CLI turns an InputError into exit code 2 and one line per problem on stderr,
never a traceback (DESIGN section 5).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    source: str  # file name, or "defaults" / "command line"
    key: str  # dotted key such as "session.target_deg" or "events[2].input"; "" for the whole file
    reason: str

    def __str__(self) -> str:
        where = f"{self.source}: {self.key}" if self.key else self.source
        return f"{where}: {self.reason}"


class InputError(ValueError):
    """Invalid user input. Carries every problem found, not only the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class StoreError(Exception):
    """The history store (SQLite database or audit log) cannot be opened or written.

    Never on the path back to upright: the controller logs it, refuses new sessions that
    need the history, and still returns the person. ``str()`` names the file and the reason.
    """

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")
