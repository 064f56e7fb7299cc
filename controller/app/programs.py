"""Therapy programs as data: validated TOML files (``controller/app/programs/`` built in, and a
``programs/`` folder in the data directory that users can extend).

A program is a list of steps ``[target_deg, hold_s]`` (a target may be ``"max"``: the
profile's own limit) and a finish: every session ends with a gentle return that rests at
``rest_deg`` (near horizontal) for ``rest_s`` before upright ("come up slowly").
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from controller.core.bounds import MAX_PROGRAM_STEPS, finite_number
from controller.core.config import read_toml
from controller.core.errors import InputError, Problem


@dataclass(frozen=True, slots=True)
class Program:
    name: str
    description: str
    steps: tuple[tuple[float | str, float], ...]  # (target_deg or "max", hold_s)
    rest_deg: float
    rest_s: float
    source: str

    def resolved(self, max_deg: float) -> list[tuple[float, float]]:
        return [(max_deg if t == "max" else float(t), h) for t, h in self.steps]


def parse_program(data: dict, source: str) -> Program:
    problems: list[Problem] = []

    def bad(key: str, reason: str) -> None:
        problems.append(Problem(source, key, reason))

    unknown = set(data) - {"program"}
    for key in sorted(unknown):
        bad(key, "unknown table (known: program)")
    body = data.get("program")
    if not isinstance(body, dict):
        raise InputError([Problem(source, "program", "missing [program] table")])
    for key in sorted(set(body) - {"name", "description", "steps", "rest_deg", "rest_s"}):
        bad(f"program.{key}", "unknown key (known: description, name, rest_deg, rest_s, steps)")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        bad("program.name", "must be a non-empty string")
        name = ""  # not used: the problem is raised below
    description = body.get("description", "")
    if not isinstance(description, str):
        bad("program.description", "must be a string")
    steps: list[tuple[float | str, float]] = []
    raw = body.get("steps")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_PROGRAM_STEPS:
        bad(
            "program.steps",
            f'must be a list of 1 .. {MAX_PROGRAM_STEPS} [target_deg or "max", hold_s] pairs',
        )
    else:
        for i, step in enumerate(raw):
            parsed = _step(step)
            if parsed is None:
                bad(
                    f"program.steps[{i}]",
                    f'must be [target_deg in -90 .. 90 or "max", hold_s in 0 .. 600], got {step!r}',
                )
            else:
                steps.append(parsed)
    rest_deg, rest_s = body.get("rest_deg", 0.0), body.get("rest_s", 20.0)
    if not finite_number(rest_deg) or not -90.0 <= rest_deg <= 30.0:
        bad(
            "program.rest_deg", f"must be a number in -90 .. 30 (near horizontal), got {rest_deg!r}"
        )
    if not finite_number(rest_s) or not 0.0 <= rest_s <= 300.0:
        bad("program.rest_s", f"must be a number in 0 .. 300, got {rest_s!r}")
    if problems:
        raise InputError(problems)
    assert isinstance(name, str)  # checked above
    return Program(name.strip(), description, tuple(steps), float(rest_deg), float(rest_s), source)


def _step(step: object) -> tuple[float | str, float] | None:
    """One ``[target_deg or "max", hold_s]`` pair, or None when it is not one."""
    if not isinstance(step, list) or len(step) != 2:
        return None
    target, hold = step
    if not finite_number(hold) or not 0.0 <= hold <= 600.0:
        return None
    if target == "max":
        return "max", float(hold)
    if finite_number(target) and -90.0 <= target <= 90.0:
        return float(target), float(hold)
    return None


def builtin_programs() -> dict[str, Program]:
    out = {}
    folder = resources.files("controller.app").joinpath("programs")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            with resources.as_file(entry) as path:
                p = parse_program(read_toml(path), f"{entry.name} (built in)")
            out[p.name] = p
    return out


def load_programs(data_dir: Path | None) -> dict[str, Program]:
    """Built-in programs, then the user's (a user's program of the same name replaces it)."""
    programs = builtin_programs()
    if data_dir is not None and (data_dir / "programs").is_dir():
        for path in sorted((data_dir / "programs").glob("*.toml")):
            p = parse_program(read_toml(path), str(path))
            programs[p.name] = p
    return programs
