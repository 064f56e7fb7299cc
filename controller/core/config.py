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

from controller.core.capability import capability_problems
from controller.core.errors import InputError, Problem
from hal.gpio.config import Gpio, check_gpio
from hal.serial.config import Serial, check_serial

BACKENDS = ("sim", "gpio", "serial")


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
    # The actuator's duty cycle: at most duty_on_s of motor-on time in any duty_window_s.
    # Table actuators are often rated ~10 % (2 min in 20); 240 s in 1200 s (20 %) lets every
    # built-in program run once from cold (the longest, oscillation, drives ~150 s).
    duty_on_s: float = 240.0
    duty_window_s: float = 1200.0


@dataclass(frozen=True, slots=True)
class Session:
    target_deg: float = 20.0
    hold_s: float = 60.0
    max_duration_s: float = 300.0
    rest_deg: float = 0.0
    rest_s: float = 20.0
    cooldown_s: float = (
        120.0  # upright rest after a forced return before the table tilts down again
    )


@dataclass(frozen=True, slots=True)
class Hardware:
    backend: str = "sim"
    # The gearmotor's data sheet figures (at the output shaft, full duty): the safety
    # monitor predicts the current a command can draw from them, so a driver that
    # ignores its command shows up in the very next current sample.
    motor_stall_current_a: float = 20.0
    motor_no_load_speed_dps: float = 20.0
    # Output torque at full duty, stalled: with the no-load speed it bounds what the limits
    # may ask (controller/core/capability.py: every allowed user, everywhere in the envelope).
    motor_stall_torque_nm: float = 700.0
    gpio: Gpio = field(default_factory=Gpio)
    serial: Serial = field(default_factory=Serial)


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
    "motion.duty_window_s": lambda v: (60.0, 7200.0),
    "motion.duty_on_s": lambda v: (10.0, v["motion.duty_window_s"]),
    "session.max_duration_s": lambda v: (10.0, 600.0),
    "session.target_deg": lambda v: (v["limits.upright_deg"], v["limits.max_angle_deg"]),
    "session.hold_s": lambda v: (0.0, v["session.max_duration_s"]),
    "session.rest_deg": lambda v: (v["limits.upright_deg"], v["session.target_deg"]),
    "session.rest_s": lambda v: (0.0, 300.0),
    "session.cooldown_s": lambda v: (0.0, 1800.0),
    "hardware.motor_stall_current_a": lambda v: (1.0, 200.0),
    # Must be well above the emergency speed, or the drive could never reach it.
    "hardware.motor_no_load_speed_dps": lambda v: (1.25 * v["motion.emergency_speed_dps"], 100.0),
    "hardware.motor_stall_torque_nm": lambda v: (100.0, 20000.0),
}
# The keys the motor capability check reads (it runs once all of them are within their bounds).
CAPABILITY_KEYS = (
    "limits.upright_deg",
    "limits.max_angle_deg",
    "motion.max_speed_dps",
    "motion.max_accel_dps2",
    "motion.emergency_speed_dps",
    "motion.emergency_accel_dps2",
    "hardware.motor_stall_torque_nm",
    "hardware.motor_no_load_speed_dps",
)
# Order matters: a bound may only use keys validated before it.
KEY_ORDER = list(NUMERIC_BOUNDS)
SECTIONS: dict[str, type] = {
    "limits": Limits,
    "motion": Motion,
    "session": Session,
    "hardware": Hardware,
    "hardware.gpio": Gpio,
    "hardware.serial": Serial,
}
SUBTABLES = {"hardware": ("gpio", "serial")}  # tables nested in a table
# Tables a config file may hold for the application (the supervisor's page and MQTT bridge):
# the core neither reads nor rejects them; controller/app/supervisor/config.py validates them.
# Only in a config file: a scenario's [config] table has no use for them.
APP_TABLES = ("web", "mqtt")


def _plain_fields(cls: type) -> list[str]:
    return [f.name for f in fields(cls) if f.name not in SUBTABLES.get(_section_of(cls), ())]


def _section_of(cls: type) -> str:
    return next(name for name, c in SECTIONS.items() if c is cls)


def default_values() -> dict[str, Any]:
    """The defaults as a flat ``{"table.key": value}`` mapping."""
    return config_values(Config())


def config_values(cfg: Config) -> dict[str, Any]:
    """A config as a flat ``{"table.key": value}`` mapping, in declaration order."""
    out: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        obj: Any = cfg
        for part in name.split("."):
            obj = getattr(obj, part)
        for key in _plain_fields(cls):
            out[f"{name}.{key}"] = getattr(obj, key)
    return out


def flatten(
    data: Mapping[str, Any], source: str, prefix: str = ""
) -> tuple[dict[str, Any], list[Problem]]:
    """Turn ``{"session": {"target_deg": 30}}`` into ``{"session.target_deg": 30}``.

    Unknown tables and keys become problems named with ``prefix`` (for a scenario's
    ``[config]`` table the prefix is ``config.``) so the message points at the line.
    """
    known = default_values()
    flat: dict[str, Any] = {}
    problems: list[Problem] = []
    tables = [(table, body) for table, body in data.items()]
    top = [name for name in SECTIONS if "." not in name]
    while tables:
        table, body = tables.pop(0)
        if table in APP_TABLES and not prefix:
            continue
        if table not in SECTIONS:
            problems.append(
                Problem(source, f"{prefix}{table}", f"unknown table (known: {', '.join(top)})")
            )
            continue
        if not isinstance(body, Mapping):
            problems.append(Problem(source, f"{prefix}{table}", "must be a table"))
            continue
        for key, value in body.items():
            dotted = f"{table}.{key}"
            if key in SUBTABLES.get(table, ()):
                tables.append((dotted, value))
                continue
            if dotted not in known:
                names = ", ".join(k.split(".", 1)[1] for k in known if k.startswith(table + "."))
                problems.append(
                    Problem(
                        source, f"{prefix}{dotted}", f"unknown key (known in [{table}]: {names})"
                    )
                )
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
    out_of_bounds: set[str] = set()
    for key in KEY_ORDER:
        low, high = NUMERIC_BOUNDS[key](values)
        if not low <= values[key] <= high:
            report(key, f"{values[key]:g} is outside the allowed range {low:g} .. {high:g}")
            out_of_bounds.add(key)
    if not out_of_bounds & set(CAPABILITY_KEYS) and not any(
        p.key.endswith(CAPABILITY_KEYS) for p in problems
    ):
        # Within every bound, but can the motor do it for the heaviest user? (issue 11, repro 4)
        for key, reason in capability_problems(*(values[k] for k in CAPABILITY_KEYS)):
            report(key, reason)
    backend = values["hardware.backend"]
    if backend not in BACKENDS:
        report(
            "hardware.backend", f"unknown backend {backend!r} (available: {', '.join(BACKENDS)})"
        )
    check_gpio(values, report)
    check_serial(values, report)
    if problems:
        raise InputError(problems)
    built: dict[str, Any] = {}
    for name in sorted(SECTIONS, key=lambda n: -n.count(".")):  # nested tables first
        cls = SECTIONS[name]
        kwargs = {key: values[f"{name}.{key}"] for key in _plain_fields(cls)}
        for sub in SUBTABLES.get(name, ()):
            kwargs[sub] = built[f"{name}.{sub}"]
        built[name] = cls(**kwargs)
    return Config(**{name: built[name] for name in SECTIONS if "." not in name})


# Input limits for every TOML file we read (configs, scenarios, programs): generous for any
# real file, small enough that a hostile one is refused before it costs memory or a crash.
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 32  # tables/arrays nested deeper than this are refused
MAX_INT = 2**53  # larger integers cannot be exact floats (and 400 digits overflow)
BOM = b"\xef\xbb\xbf"


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file, turning every problem into an InputError naming the file (and the key):
    I/O and syntax errors, a file that is not a regular file or is larger than MAX_FILE_BYTES,
    nesting deeper than MAX_DEPTH, integers beyond MAX_INT. A UTF-8 byte order mark is accepted."""
    name = str(path)
    try:
        import os
        import stat

        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(name)
        if not stat.S_ISREG(mode):
            raise InputError(
                [Problem(name, "", "is not a regular file (a device, pipe or socket)")]
            )
        with open(path, "rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise InputError([Problem(name, "", "file not found")]) from None
    except IsADirectoryError:
        raise InputError([Problem(name, "", "is a directory, expected a TOML file")]) from None
    except PermissionError:
        raise InputError([Problem(name, "", "permission denied")]) from None
    except OSError as exc:
        raise InputError([Problem(name, "", f"cannot be read ({exc.strerror or exc})")]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise InputError(
            [
                Problem(
                    name,
                    "",
                    f"is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; "
                    "not a config, scenario or program file",
                )
            ]
        )
    if raw.startswith(BOM):
        raw = raw[len(BOM) :]
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise InputError(
            [Problem(name, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})")]
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError([Problem(name, "", f"invalid TOML: {exc}")]) from None
    except RecursionError:
        raise InputError(
            [Problem(name, "", f"nested too deeply (more than {MAX_DEPTH} levels)")]
        ) from None
    except ValueError as exc:  # an integer of more than 4300 digits
        reason = (
            "an integer of thousands of digits"
            if "integer string conversion" in str(exc)
            else str(exc)
        )
        raise InputError([Problem(name, "", f"invalid TOML: {reason}")]) from None
    problems = _shape_problems(data, name)
    if problems:
        raise InputError(problems)
    return data


def _shape_problems(data: dict[str, Any], source: str) -> list[Problem]:
    """Depth and integer size, walked without recursion (the walk must not be the crash)."""
    problems: list[Problem] = []
    stack: list[tuple[str, Any, int]] = [("", data, 0)]
    while stack and len(problems) < 20:
        key, value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                where = key if len(key) <= 80 else key[:77] + "..."
                problems.append(
                    Problem(source, where, f"nested too deeply (more than {MAX_DEPTH} levels)")
                )
                continue
            items = (
                value.items()
                if isinstance(value, dict)
                else ((f"[{i}]", v) for i, v in enumerate(value))
            )
            for k, v in items:
                child = (
                    (f"{key}.{k}" if key else str(k)) if isinstance(value, dict) else f"{key}{k}"
                )
                stack.append((child, v, depth + 1))
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            digits = len(str(abs(value))) if value.bit_length() < 10000 else "thousands of"
            problems.append(
                Problem(source, key, f"integer too large ({digits} digits; at most {MAX_INT})")
            )
    return problems


def load_config(
    path: Path | None,
    overrides: Mapping[str, Any] | None = None,
    overrides_source: str = "",
    overrides_prefix: str = "config.",
) -> Config:
    """Defaults, then the config file (if any), then overrides (a scenario's ``[config]``)."""
    layers: list[tuple[str, str, Mapping[str, Any]]] = []
    if path is not None:
        layers.append((str(path), "", read_toml(path)))
    if overrides:
        layers.append((overrides_source, overrides_prefix, overrides))
    return build_config(layers)
