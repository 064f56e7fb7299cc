"""Configuration: the DESIGN section 2 defaults, validated against their bounds.

Every problem is collected (not just the first) and reported with the file and the
dotted key, so a builder fixes a config in one round. Unknown tables and keys are
rejected: a typo such as ``max_angel_deg`` must never silently fall back to a default.
Bounds that depend on other keys (``max_angle_deg`` >= ``upright_deg`` + 10, ...) are
checked against the merged values, and the message names the file that set the value.
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping

from controller.errors import InputError, Problem

BACKENDS = ("sim",)  # gpio and serial arrive with their issues


@dataclass(frozen=True, slots=True)
class Limits:
    upright_deg: float = -80.0
    max_angle_deg: float = 60.0


@dataclass(frozen=True, slots=True)
class Motion:
    max_speed_dps: float = 4.0
    max_accel_dps2: float = 4.0
    emergency_speed_dps: float = 8.0
    emergency_accel_dps2: float = 8.0
    jog_max_s: float = 30.0


@dataclass(frozen=True, slots=True)
class Session:
    target_deg: float = 20.0
    hold_s: float = 60.0
    max_duration_s: float = 300.0
    rest_deg: float = 0.0
    rest_s: float = 20.0


@dataclass(frozen=True, slots=True)
class Hardware:
    backend: str = "sim"
    # The gearmotor's data sheet figures (at the output shaft, full duty): the safety
    # monitor predicts the current a command can draw from them, so a driver that
    # ignores its command shows up in the very next current sample.
    motor_stall_current_a: float = 20.0
    motor_no_load_speed_dps: float = 20.0


@dataclass(frozen=True, slots=True)
class Config:
    limits: Limits = field(default_factory=Limits)
    motion: Motion = field(default_factory=Motion)
    session: Session = field(default_factory=Session)
    hardware: Hardware = field(default_factory=Hardware)


# Bounds: (low, high) as functions of the already-merged values `v` (dotted key -> value).
Bound = Callable[[Mapping[str, Any]], tuple[float, float]]
NUMERIC_BOUNDS: dict[str, Bound] = {
    "limits.upright_deg": lambda v: (-90.0, -45.0),
    "limits.max_angle_deg": lambda v: (v["limits.upright_deg"] + 10.0, 90.0),
    "motion.max_speed_dps": lambda v: (0.5, 10.0),
    "motion.max_accel_dps2": lambda v: (0.5, 20.0),
    "motion.emergency_speed_dps": lambda v: (v["motion.max_speed_dps"], 15.0),
    "motion.emergency_accel_dps2": lambda v: (v["motion.max_accel_dps2"], 30.0),
    "motion.jog_max_s": lambda v: (1.0, 60.0),
    "session.max_duration_s": lambda v: (10.0, 600.0),
    "session.target_deg": lambda v: (v["limits.upright_deg"], v["limits.max_angle_deg"]),
    "session.hold_s": lambda v: (0.0, v["session.max_duration_s"]),
    "session.rest_deg": lambda v: (v["limits.upright_deg"], v["session.target_deg"]),
    "session.rest_s": lambda v: (0.0, 300.0),
    "hardware.motor_stall_current_a": lambda v: (1.0, 200.0),
    # Must be well above the emergency speed, or the drive could never reach it.
    "hardware.motor_no_load_speed_dps": lambda v: (1.25 * v["motion.emergency_speed_dps"], 100.0),
}
# Order matters: a bound may only use keys validated before it.
KEY_ORDER = list(NUMERIC_BOUNDS)
SECTIONS: dict[str, type] = {"limits": Limits, "motion": Motion, "session": Session, "hardware": Hardware}


def default_values() -> dict[str, Any]:
    """The defaults as a flat ``{"table.key": value}`` mapping."""
    cfg = Config()
    return {
        f"{name}.{f.name}": getattr(getattr(cfg, name), f.name)
        for name in SECTIONS
        for f in fields(SECTIONS[name])
    }


def flatten(data: Mapping[str, Any], source: str, prefix: str = "") -> tuple[dict[str, Any], list[Problem]]:
    """Turn ``{"session": {"target_deg": 30}}`` into ``{"session.target_deg": 30}``.

    Unknown tables and keys become problems named with ``prefix`` (for a scenario's
    ``[config]`` table the prefix is ``config.``) so the message points at the line.
    """
    known = default_values()
    flat: dict[str, Any] = {}
    problems: list[Problem] = []
    for table, body in data.items():
        if table not in SECTIONS:
            problems.append(Problem(source, f"{prefix}{table}", f"unknown table (known: {', '.join(SECTIONS)})"))
            continue
        if not isinstance(body, Mapping):
            problems.append(Problem(source, f"{prefix}{table}", "must be a table"))
            continue
        for key, value in body.items():
            dotted = f"{table}.{key}"
            if dotted not in known:
                names = ", ".join(k.split(".", 1)[1] for k in known if k.startswith(table + "."))
                problems.append(Problem(source, f"{prefix}{dotted}", f"unknown key (known in [{table}]: {names})"))
                continue
            flat[dotted] = value
    return flat, problems


def build_config(layers: list[tuple[str, str, Mapping[str, Any]]]) -> Config:
    """Merge layers over the defaults, validate, and return a Config.

    ``layers`` is a list of ``(source_name, key_prefix, nested_mapping)``; later layers
    override earlier ones. Raises InputError listing every problem found.
    """
    values = default_values()
    origin: dict[str, tuple[str, str]] = {k: ("defaults", "") for k in values}
    problems: list[Problem] = []
    for source, prefix, data in layers:
        flat, layer_problems = flatten(data, source, prefix)
        problems += layer_problems
        for key, value in flat.items():
            values[key] = value
            origin[key] = (source, prefix)

    def report(key: str, reason: str) -> None:
        source, prefix = origin[key]
        if source == "defaults" and layers:
            # A default made invalid by another key: point at the file being checked.
            source, prefix = layers[-1][0], layers[-1][1]
            reason = f"the default {reason} (set it explicitly)"
        problems.append(Problem(source, prefix + key, reason))

    # Types first, so bound checks only ever see numbers.
    for key in KEY_ORDER:
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            report(key, f"must be a number, got {value!r}")
            values[key] = default_values()[key]
        elif not math.isfinite(value):
            report(key, f"must be a finite number, got {value!r}")
            values[key] = default_values()[key]
        else:
            values[key] = float(value)
    for key in KEY_ORDER:
        low, high = NUMERIC_BOUNDS[key](values)
        if not low <= values[key] <= high:
            report(key, f"{values[key]:g} is outside the allowed range {low:g} .. {high:g}")
    backend = values["hardware.backend"]
    if backend not in BACKENDS:
        report("hardware.backend", f"unknown backend {backend!r} (available: {', '.join(BACKENDS)})")
    if problems:
        raise InputError(problems)
    kwargs: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        kwargs[name] = cls(**{f.name: values[f"{name}.{f.name}"] for f in fields(cls)})
    return Config(**kwargs)


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file, turning I/O and syntax errors into an InputError naming the file."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise InputError([Problem(str(path), "", "file not found")]) from None
    except IsADirectoryError:
        raise InputError([Problem(str(path), "", "is a directory, expected a TOML file")]) from None
    except PermissionError:
        raise InputError([Problem(str(path), "", "permission denied")]) from None
    except UnicodeDecodeError as exc:
        raise InputError([Problem(str(path), "", f"not UTF-8 text ({exc.reason})")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError([Problem(str(path), "", f"invalid TOML: {exc}")]) from None


def load_config(path: Path | None, overrides: Mapping[str, Any] | None = None,
                overrides_source: str = "", overrides_prefix: str = "config.") -> Config:
    """Defaults, then the config file (if any), then overrides (a scenario's ``[config]``)."""
    layers: list[tuple[str, str, Mapping[str, Any]]] = []
    if path is not None:
        layers.append((str(path), "", read_toml(path)))
    if overrides:
        layers.append((overrides_source, overrides_prefix, overrides))
    return build_config(layers)
