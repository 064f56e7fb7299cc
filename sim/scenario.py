"""Scenario files (DESIGN section 6, a CONTRACT): parse and validate, collecting every problem.

A scenario is data: what the simulated person does and when, and what must be true at
the end. Unknown tables, keys, inputs, faults or ``do`` values are invalid input, named
with their position (``events[3].input``) so the builder can find the line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.core.bounds import HEIGHT_CM, MAX_PROGRAM_STEPS, WEIGHT_KG, finite_number
from controller.core.config import Config, load_config, read_toml
from controller.core.errors import InputError, Problem
from hal.interfaces import BUTTONS
from sim.faults import FAULTS
from sim.timing import BOARD_CLOCKS, IDEAL, Timing

TAP_S = 0.2
LATCHING_INPUTS = ("ankle_lock", "estop")
DO_VALUES = ("set", "tap", "press", "release", "fault", "clear_fault", "power", "stall")
MAX_STALL_S = 5.0
# [timing] keys (DESIGN section 6): kind and bounds.
TIMING_BOUNDS: dict[str, tuple[float, float]] = {
    "tick_jitter_ms": (0.0, 20.0),
    "current_lag_ticks": (0, 5),
    "link_latency_ms": (0.0, 50.0),
}
MAX_DURATION_S = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Event:
    at_s: float
    do: str
    target: str = ""  # input, button or fault name
    value: bool = True
    index: int = 0  # position in the file, for messages and stable ordering
    duration_s: float = 0.0  # stall: how late the controller's loop is


@dataclass(frozen=True, slots=True)
class Expect:
    ended_upright: bool | None = None
    max_angle_deg: float | None = None
    min_angle_deg: float | None = None
    max_speed_dps: float | None = None
    final_state: str | None = None
    visited: tuple[str, ...] = ()
    not_visited: tuple[str, ...] = ()
    max_time_past_horizontal_s: float | None = None


EXPECT_KEYS = {
    "ended_upright": "bool",
    "max_angle_deg": "number",
    "min_angle_deg": "number",
    "max_speed_dps": "number",
    "final_state": "state",
    "visited": "states",
    "not_visited": "states",
    "max_time_past_horizontal_s": "number",
}


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    duration_s: float
    seed: int
    mass_kg: float
    height_cm: float
    config: Config
    events: tuple[Event, ...]
    expect: Expect = field(default_factory=Expect)
    source: str = ""
    start_angle_deg: float | None = None  # None = at upright
    # Session steps (target_deg, hold_s); () = the config's.
    program: tuple[tuple[float, float], ...] = ()
    timing: Timing = IDEAL  # real-time imperfections ([timing]); IDEAL = 10 ms lockstep ticks


def parse_scenario(path: Path, config_path: Path | None = None) -> Scenario:
    data = read_toml(path)
    return scenario_from_dict(data, str(path), config_path)


def scenario_from_dict(
    data: dict[str, Any], source: str, config_path: Path | None = None
) -> Scenario:
    # Local: keeps sim importable without the machine.
    from controller.core.machine import STATE_NAMES

    STATE_NAMES = STATE_NAMES + ["power_off", "hung"]  # trace names for "no controller running"

    problems: list[Problem] = []

    def bad(key: str, reason: str) -> None:
        problems.append(Problem(source, key, reason))

    known_tables = {"scenario", "user", "config", "events", "expect", "program", "timing"}
    for key in data:
        if key not in known_tables:
            bad(key, f"unknown table (known: {', '.join(sorted(known_tables))})")

    def table(name: str) -> dict[str, Any]:
        body = data.get(name, {})
        if not isinstance(body, dict):
            bad(name, "must be a table")
            return {}
        return body

    def check_keys(name: str, body: dict[str, Any], allowed: set[str]) -> None:
        for key in body:
            if key not in allowed:
                bad(f"{name}.{key}", f"unknown key (known: {', '.join(sorted(allowed))})")

    sc = table("scenario")
    check_keys("scenario", sc, {"name", "duration_s", "seed", "start_angle_deg"})
    name = sc.get("name", Path(source).stem)
    if not isinstance(name, str) or not name.strip():
        bad("scenario.name", "must be a non-empty string")
        name = Path(source).stem
    duration = sc.get("duration_s")
    if duration is None:
        bad("scenario.duration_s", "missing (simulated seconds to run)")
        duration = 0.0
    elif not finite_number(duration) or not 0.0 < duration <= MAX_DURATION_S:
        bad("scenario.duration_s", f"must be a number in (0, {MAX_DURATION_S:g}], got {duration!r}")
        duration = 0.0
    seed = sc.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        bad("scenario.seed", f"must be an integer, got {seed!r}")
        seed = 0
    start_angle = sc.get("start_angle_deg")
    if start_angle is not None and (
        not finite_number(start_angle) or not -90.0 <= start_angle <= 90.0
    ):
        bad("scenario.start_angle_deg", f"must be a number in -90 .. 90, got {start_angle!r}")
        start_angle = None

    user = table("user")
    check_keys("user", user, {"mass_kg", "height_cm"})
    mass = user.get("mass_kg", 80.0)
    if not finite_number(mass) or not WEIGHT_KG[0] <= mass <= WEIGHT_KG[1]:
        bad(
            "user.mass_kg",
            f"must be a number in {WEIGHT_KG[0]:g} .. {WEIGHT_KG[1]:g} (the table's user limits), "
            f"got {mass!r}",
        )
        mass = 80.0
    height = user.get("height_cm", 178.0)
    if not finite_number(height) or not HEIGHT_CM[0] <= height <= HEIGHT_CM[1]:
        bad(
            "user.height_cm",
            f"must be a number in {HEIGHT_CM[0]:g} .. {HEIGHT_CM[1]:g} (the table's user limits), "
            f"got {height!r}",
        )
        height = 178.0

    config: Config | None = None
    overrides = table("config")
    try:
        config = load_config(config_path, overrides, overrides_source=source)
    except InputError as exc:
        problems += exc.problems

    events: list[Event] = []
    raw_events = data.get("events", [])
    if not isinstance(raw_events, list):
        bad("events", "must be an array of tables ([[events]])")
        raw_events = []
    for i, ev in enumerate(raw_events):
        where = f"events[{i}]"
        if not isinstance(ev, dict):
            bad(where, "must be a table")
            continue
        at = ev.get("at_s")
        if not finite_number(at) or at < 0.0:
            bad(f"{where}.at_s", f"must be a number >= 0, got {at!r}")
            continue
        if duration and at > duration:
            bad(f"{where}.at_s", f"{at:g} is after the end of the scenario ({duration:g} s)")
        do = ev.get("do")
        if do not in DO_VALUES:
            bad(f"{where}.do", f"unknown action {do!r} (known: {', '.join(DO_VALUES)})")
            continue
        allowed = {"at_s", "do"}
        if do == "set":
            allowed |= {"input", "value"}
            inp, value = ev.get("input"), ev.get("value")
            if inp not in LATCHING_INPUTS:
                bad(
                    f"{where}.input",
                    f"unknown latching input {inp!r} (known: {', '.join(LATCHING_INPUTS)})",
                )
            elif not isinstance(value, bool):
                bad(f"{where}.value", f"must be true or false, got {value!r}")
            else:
                events.append(Event(float(at), "set", inp, value, i))
        elif do in ("tap", "press", "release"):
            allowed |= {"input"}
            inp = ev.get("input")
            if inp not in BUTTONS:
                bad(f"{where}.input", f"unknown button {inp!r} (known: {', '.join(BUTTONS)})")
            elif do == "tap":
                events.append(Event(float(at), "press", inp, True, i))
                events.append(Event(float(at) + TAP_S, "release", inp, True, i))
            else:
                events.append(Event(float(at), do, inp, True, i))
        elif do in ("fault", "clear_fault"):
            allowed |= {"fault"}
            name_ = ev.get("fault")
            if not isinstance(name_, str) or name_ not in FAULTS:  # fault = [] is no name
                bad(
                    f"{where}.fault",
                    f"unknown fault {name_!r} (known: {', '.join(FAULTS) or 'none yet'})",
                )
            else:
                events.append(Event(float(at), do, name_, True, i))
        elif do == "power":
            allowed |= {"value"}
            value = ev.get("value")
            if not isinstance(value, bool):
                bad(f"{where}.value", f"must be true (restore) or false (cut), got {value!r}")
            else:
                events.append(Event(float(at), "power", "", value, i))
        elif do == "stall":
            allowed |= {"duration_s"}
            d = ev.get("duration_s")
            if not finite_number(d) or not 0.0 < d <= MAX_STALL_S:
                bad(
                    f"{where}.duration_s",
                    f"must be a number in (0, {MAX_STALL_S:g}] (seconds the control "
                    f"loop is late), got {d!r}",
                )
            else:
                events.append(Event(float(at), "stall", "", True, i, float(d)))
        for key in ev:
            if key not in allowed:
                bad(
                    f"{where}.{key}",
                    f"unknown key for do = {do!r} (known: {', '.join(sorted(allowed))})",
                )

    exp = table("expect")
    expect_kwargs: dict[str, Any] = {}
    for key, value in exp.items():
        kind = EXPECT_KEYS.get(key)
        where = f"expect.{key}"
        if kind is None:
            bad(where, f"unknown expectation (known: {', '.join(EXPECT_KEYS)})")
        elif kind == "bool" and not isinstance(value, bool):
            bad(where, f"must be true or false, got {value!r}")
        elif kind == "number" and not finite_number(value):
            bad(where, f"must be a number, got {value!r}")
        elif kind == "state" and value not in STATE_NAMES:
            bad(where, f"unknown state {value!r} (known: {', '.join(STATE_NAMES)})")
        elif kind == "states" and (
            not isinstance(value, list) or any(v not in STATE_NAMES for v in value)
        ):
            bad(where, f"must be a list of state names ({', '.join(STATE_NAMES)}), got {value!r}")
        else:
            expect_kwargs[key] = (
                tuple(value) if kind == "states" else (float(value) if kind == "number" else value)
            )

    program = table("program")
    check_keys("program", program, {"steps"})
    steps: list[tuple[float, float]] = []
    if "steps" in program:
        raw = program["steps"]
        if not isinstance(raw, list) or not raw or len(raw) > MAX_PROGRAM_STEPS:
            bad(
                "program.steps",
                f"must be a list of 1 .. {MAX_PROGRAM_STEPS} [target_deg, hold_s] pairs",
            )
        else:
            for i, step in enumerate(raw):
                ok = (
                    isinstance(step, list)
                    and len(step) == 2
                    and all(finite_number(v) for v in step)
                    and step[1] >= 0.0
                )
                if ok and config is not None:
                    ok = config.limits.upright_deg <= step[0] <= config.limits.max_angle_deg
                if not ok:
                    bad(
                        f"program.steps[{i}]",
                        "must be [target_deg within upright_deg .. max_angle_deg, "
                        f"hold_s >= 0], got {step!r}",
                    )
                else:
                    steps.append((float(step[0]), float(step[1])))

    timing = _timing(table("timing"), bad)

    if problems:
        raise InputError(problems)
    assert config is not None
    events.sort(key=lambda e: (e.at_s, e.index))
    return Scenario(
        name=name,
        duration_s=float(duration),
        seed=seed,
        mass_kg=float(mass),
        height_cm=float(height),
        config=config,
        events=tuple(events),
        expect=Expect(**expect_kwargs),
        source=source,
        start_angle_deg=None if start_angle is None else float(start_angle),
        program=tuple(steps),
        timing=timing,
    )


def _timing(body: dict[str, Any], bad: Any) -> Timing:
    """``[timing]`` -> ``Timing``; every bad key or value reported through ``bad`` (exit 2)."""
    kwargs: dict[str, Any] = {}
    allowed = set(TIMING_BOUNDS) | {"board_clock"}
    for key, value in body.items():
        where = f"timing.{key}"
        if key not in allowed:
            bad(where, f"unknown key (known: {', '.join(sorted(allowed))})")
        elif key == "board_clock":
            if value not in BOARD_CLOCKS:
                bad(
                    where,
                    f"must be one of {', '.join(repr(c) for c in BOARD_CLOCKS)}, got {value!r}",
                )
            else:
                kwargs[key] = value
        else:
            lo, hi = TIMING_BOUNDS[key]
            if key == "current_lag_ticks":
                if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                    bad(where, f"must be an integer in {lo} .. {hi} (control ticks), got {value!r}")
                else:
                    kwargs[key] = value
            elif not finite_number(value) or not lo <= value <= hi:
                bad(where, f"must be a number in {lo:g} .. {hi:g} (milliseconds), got {value!r}")
            else:
                kwargs[key] = float(value)
    return Timing(**kwargs) if kwargs else IDEAL
