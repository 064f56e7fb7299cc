"""Fuzzing the three kinds of file a person hands us (scenario, config, program): whatever
the bytes, the parsers either accept them or raise an InputError whose every problem names
the file (and the key, where there is one); nothing else escapes, nothing hangs. A sample
goes through the real CLI: exit 2, no traceback."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.app.programs import parse_program
from controller.core.config import load_config, read_toml
from controller.core.errors import InputError
from sim.scenario import parse_scenario
from tests.conftest import examples, run_cli

KEYS = [
    "scenario",
    "name",
    "duration_s",
    "seed",
    "user",
    "mass_kg",
    "height_cm",
    "config",
    "limits",
    "motion",
    "session",
    "hardware",
    "gpio",
    "serial",
    "upright_deg",
    "max_angle_deg",
    "target_deg",
    "hold_s",
    "max_speed_dps",
    "events",
    "at_s",
    "do",
    "input",
    "value",
    "fault",
    "expect",
    "ended_upright",
    "program",
    "steps",
    "rest_deg",
    "rest_s",
    "primary_deg_at_5pct",
    "baudrate",
    "url",
    "backend",
    "x",
]

scalars = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20),
    st.integers().map(lambda n: n * 10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 0.0, 30.0, -80.0]),
    st.booleans(),
    st.text(max_size=20),
    st.sampled_from(["set", "tap", "fault", "start", "ankle_lock", "max"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=20,
)
documents = st.dictionaries(
    st.sampled_from(KEYS),
    st.one_of(values, st.dictionaries(st.sampled_from(KEYS), values, max_size=6)),
    max_size=6,
)


def toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return (
            "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
        )
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    assert isinstance(v, dict)
    return "{" + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + "}"


def toml_text(doc: dict) -> str:
    lines = []
    for k, v in doc.items():
        if isinstance(v, dict):
            lines.append(f"[{k}]")
            lines += [f"{kk} = {toml_value(vv)}" for kk, vv in v.items()]
        else:
            lines.insert(0, f"{k} = {toml_value(v)}")
    return "\n".join(lines) + "\n"


GOOD = {
    "scenario": '[scenario]\nname = "x"\nduration_s = 5.0\n'
    '[[events]]\nat_s = 1.0\ndo = "tap"\ninput = "start"\n',
    "config": "[limits]\nmax_angle_deg = 45.0\n[motion]\nmax_speed_dps = 3.0\n",
    "program": '[program]\nname = "p"\nsteps = [[20.0, 30.0], ["max", 10.0]]\nrest_s = 10.0\n',
}
hostile = st.sampled_from(
    [
        "x = " + "[" * 3000 + "]" * 3000,
        "x = " + "{a = " * 400 + "1" + "}" * 400,
        "x = " + "9" * 400,
        "x = " + "9" * 5000,
        "\ufeff" + GOOD["config"],
        "x = nan\n",
        "[a]\nb = 1e999\n",
        "\x00\x01\x02",
        "[[[[",
    ]
)


@st.composite
def files(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["doc", "mutated", "hostile"]))
    if kind == "doc":
        return toml_text(draw(documents)).encode()
    if kind == "hostile":
        return draw(hostile).encode("utf-8", "surrogatepass")
    base = bytearray(GOOD[draw(st.sampled_from(sorted(GOOD)))].encode())
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(base)))
        base[pos : pos + draw(st.integers(0, 3))] = draw(st.binary(max_size=4))
    return bytes(base)


def check(parse: Callable[[Path], object], path: Path) -> None:
    try:
        parse(path)
    except InputError as exc:
        assert exc.problems
        for p in exc.problems:
            assert p.source == str(path) and p.reason, p


PARSERS = {
    "scenario": parse_scenario,
    "config": load_config,
    "program": lambda path: parse_program(read_toml(path), str(path)),
}


@settings(
    max_examples=examples(150),
    deadline=5000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=files(), kind=st.sampled_from(sorted(PARSERS)))
def test_any_file_is_accepted_or_refused_by_name(tmp_path: Path, data: bytes, kind: str) -> None:
    path = tmp_path / f"{kind}.toml"
    path.write_bytes(data)
    check(PARSERS[kind], path)


def test_hostile_files_through_the_cli_exit_2_without_a_traceback(tmp_path: Path) -> None:
    cases = {
        "deep.toml": "x = " + "[" * 3000 + "]" * 3000,
        "int.toml": "[limits]\nupright_deg = " + "9" * 400,
        "nan.toml": "[limits]\nupright_deg = nan\n",
        "cal.toml": "[hardware.gpio]\nprimary_deg_at_5pct = -1e308\nprimary_deg_at_95pct = 1e308\n",
        "fault.toml": '[scenario]\nname = "x"\nduration_s = 5.0\n'
        '[[events]]\nat_s = 1.0\ndo = "fault"\nfault = []\n',
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        for args in (["sim", path], ["config", "check", path]):
            res = run_cli(*args)
            assert res.code == 2 and "Traceback" not in res.stderr and f"{path}" in res.stderr, (
                name,
                res.stderr,
            )
    res = run_cli("sim", "/dev/zero", timeout=30)
    assert res.code == 2 and "/dev/zero: is not a regular file" in res.stderr
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (5 * 1024 * 1024))
    res = run_cli("config", "check", big)
    assert res.code == 2 and "is larger than 4 MB" in res.stderr
    bom = tmp_path / "bom.toml"
    bom.write_bytes(b"\xef\xbb\xbf[limits]\nmax_angle_deg = 45.0\n")
    assert run_cli("config", "check", bom).code == 0
    res = run_cli("config", "check", tmp_path / "int.toml")
    assert "limits.upright_deg: integer too large" in res.stderr
    res = run_cli("config", "check", tmp_path / "cal.toml")
    assert "hardware.gpio.primary_deg_at_5pct: -1e+308 is outside -360 .. 360 deg" in res.stderr
    res = run_cli("sim", tmp_path / "fault.toml")
    assert "events[0].fault: unknown fault []" in res.stderr


def test_clamp_motor_refuses_nan_and_the_controller_latches_a_fault() -> None:
    import pytest

    from controller.core.config import Config
    from controller.core.limits import NonFiniteCommand, clamp_motor
    from sim.runner import Simulation
    from sim.scenario import Event, Scenario

    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(NonFiniteCommand):
            clamp_motor(bad)
    assert clamp_motor(2.0) == 1.0 and clamp_motor(-0.5) == -0.5
    sim = Simulation(
        Scenario(
            name="nan",
            duration_s=1e9,
            seed=0,
            mass_kg=80,
            height_cm=178,
            config=Config(),
            events=(),
        )
    )
    sim.apply(Event(0.0, "set", "ankle_lock", True))
    moving = None
    for k in range(6000):
        if k == 100:
            sim.apply(Event(sim.now, "press", "start"))
        if k == 120:
            sim.apply(Event(sim.now, "release", "start"))
        row = sim.tick()
        sim.advance()
        if (
            row.state == "ramp" and row.angle_deg > -60.0 and moving is None
        ):  # well under way, the loop driving
            moving = k
            sim.controller.loop.load = math.nan  # a corrupt value upstream of the motor command
        if moving is not None and k > moving + 5:
            break
    assert moving is not None
    assert (
        row.state == "fault"
        and row.motor_cmd == 0.0
        and all(not math.isnan(r.motor_cmd) for r in sim.result.rows)
    )
    assert any(
        "NonFiniteCommand" in e.message or "not a finite number" in e.message
        for e in sim.result.events
    )
