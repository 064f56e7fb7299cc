"""Config validation: defaults, every bound, unknown keys, types, and file errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from controller.config import Config, NUMERIC_BOUNDS, build_config, load_config
from controller.errors import InputError
from tests.conftest import run_cli


def problems(layers) -> list[str]:
    with pytest.raises(InputError) as exc:
        build_config(layers)
    return [str(p) for p in exc.value.problems]


def test_defaults_match_design_table() -> None:
    cfg = build_config([])
    assert cfg == Config()
    assert (cfg.limits.upright_deg, cfg.limits.max_angle_deg) == (-80.0, 60.0)
    assert (cfg.motion.max_speed_dps, cfg.motion.max_accel_dps2) == (4.0, 4.0)
    assert (cfg.motion.emergency_speed_dps, cfg.motion.emergency_accel_dps2, cfg.motion.jog_max_s) == (8.0, 8.0, 30.0)
    s = cfg.session
    assert (s.target_deg, s.hold_s, s.max_duration_s, s.rest_deg, s.rest_s) == (20.0, 60.0, 300.0, 0.0, 20.0)


# Keys whose edge values push a dependent default out of range need companions.
COMPANIONS = {
    "limits.max_angle_deg": {"session": {"target_deg": -75.0, "rest_deg": -78.0}},
    "motion.max_speed_dps": {"motion": {"emergency_speed_dps": 10.5}},
    "motion.max_accel_dps2": {"motion": {"emergency_accel_dps2": 21.0}},
    "motion.duty_window_s": {"motion": {"duty_on_s": 50.0}},
    "session.max_duration_s": {"session": {"hold_s": 5.0}},
    "session.target_deg": {"session": {"rest_deg": -80.0}},
}


def merge(a: dict, b: dict) -> dict:
    out = {k: dict(v) for k, v in a.items()}
    for k, v in b.items():
        out.setdefault(k, {}).update(v)
    return out


@pytest.mark.parametrize("key,bad,good", [
    ("limits.upright_deg", -91, -90), ("limits.upright_deg", -44, -45),
    ("limits.max_angle_deg", -71, -70), ("limits.max_angle_deg", 91, 90),
    ("motion.max_speed_dps", 0.4, 0.5), ("motion.max_speed_dps", 10.5, 10),
    ("motion.max_accel_dps2", 0.4, 0.5), ("motion.max_accel_dps2", 21, 20),
    ("motion.emergency_speed_dps", 3.9, 4), ("motion.emergency_speed_dps", 15.1, 15),
    ("motion.emergency_accel_dps2", 3.9, 4), ("motion.emergency_accel_dps2", 31, 30),
    ("motion.jog_max_s", 0.5, 1), ("motion.jog_max_s", 61, 60),
    ("motion.duty_window_s", 59, 60), ("motion.duty_window_s", 7201, 7200),
    ("motion.duty_on_s", 9, 10), ("motion.duty_on_s", 1201, 1200),
    ("session.max_duration_s", 9, 10), ("session.max_duration_s", 601, 600),
    ("session.target_deg", 61, 60), ("session.target_deg", -81, -80),
    ("session.hold_s", 301, 300), ("session.hold_s", -1, 0),
    ("session.rest_deg", 21, 20), ("session.rest_deg", -81, -80),
    ("session.rest_s", 301, 300), ("session.rest_s", -0.1, 0),
    ("session.cooldown_s", 1801, 1800), ("session.cooldown_s", -1, 0),
    ("hardware.motor_stall_current_a", 0.9, 1), ("hardware.motor_stall_current_a", 201, 200),
    ("hardware.motor_no_load_speed_dps", 9.9, 10), ("hardware.motor_no_load_speed_dps", 101, 100),
])
def test_each_bound_is_enforced_at_its_edge(key: str, bad: float, good: float) -> None:
    table, name = key.split(".")
    base = COMPANIONS.get(key, {})
    found = problems([("c.toml", "", merge(base, {table: {name: bad}}))])
    assert found[0].startswith(f"c.toml: {key}: {float(bad):g} is outside the allowed range ")
    cfg = build_config([("c.toml", "", merge(base, {table: {name: good}}))])
    assert getattr(getattr(cfg, table), name) == good


def test_every_bounded_key_is_covered_by_the_edge_test() -> None:
    covered = {k for k, _, _ in test_each_bound_is_enforced_at_its_edge.pytestmark[0].args[1]}
    assert covered == set(NUMERIC_BOUNDS)


def test_600_s_is_a_hard_cap() -> None:
    assert any("session.max_duration_s" in p for p in problems([("c", "", {"session": {"max_duration_s": 1200}})]))


def test_unknown_table_and_key_are_rejected_with_their_names() -> None:
    found = problems([("c.toml", "", {"sesion": {"x": 1}, "session": {"target": 30}})])
    assert found[0].startswith("c.toml: sesion: unknown table")
    assert found[1].startswith("c.toml: session.target: unknown key")


def test_every_problem_is_reported_not_just_the_first() -> None:
    found = problems([("c.toml", "", {"motion": {"max_speed_dps": "fast", "jog_max_s": 0},
                                      "session": {"rest_s": float("nan")}})])
    assert len(found) == 3
    assert "c.toml: motion.max_speed_dps: must be a number, got 'fast'" in found
    assert any(p.startswith("c.toml: session.rest_s: must be a finite number") for p in found)


def test_booleans_are_not_numbers() -> None:
    assert problems([("c", "", {"motion": {"max_speed_dps": True}})]) == [
        "c: motion.max_speed_dps: must be a number, got True"]


def test_dependent_bound_names_the_file_that_set_the_value() -> None:
    # The config file lowers max_angle; the scenario's target then exceeds it: the scenario is at fault.
    found = problems([("cfg.toml", "", {"limits": {"max_angle_deg": 30}}),
                      ("scen.toml", "config.", {"session": {"target_deg": 40}})])
    assert found == ["scen.toml: config.session.target_deg: 40 is outside the allowed range -80 .. 30"]


def test_a_default_invalidated_by_another_key_points_at_the_file() -> None:
    assert problems([("c.toml", "", {"limits": {"max_angle_deg": 10}})]) == [
        "c.toml: session.target_deg: the default 20 is outside the allowed range -80 .. 10 (set it explicitly)"]


def test_unknown_backend() -> None:
    assert problems([("c", "", {"hardware": {"backend": "can"}})])[0].startswith("c: hardware.backend: unknown backend 'can'")


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[limits\nupright_deg = -80\n")
    with pytest.raises(InputError, match=r"bad\.toml: invalid TOML"):
        load_config(bad)


def test_config_check_cli(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text("[session]\ntarget_deg = 30.0\n")
    res = run_cli("config", "check", good)
    assert res.code == 0 and "session.target_deg = 30.0" in res.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text("[session]\ntarget_deg = 95.0\nfoo = 1\n")
    res = run_cli("config", "check", bad)
    assert res.code == 2
    assert f"{bad}: session.foo: unknown key" in res.stderr
    assert f"{bad}: session.target_deg: 95 is outside the allowed range" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("gpio,key,reason", [
    ({"motor_pwm": 28}, "hardware.gpio.motor_pwm", "not a BCM GPIO number"),
    ({"motor_pwm": -1}, "hardware.gpio.motor_pwm", "not a BCM GPIO number"),
    ({"motor_pwm": 12.5}, "hardware.gpio.motor_pwm", "whole BCM GPIO number"),
    ({"motor_pwm": True}, "hardware.gpio.motor_pwm", "whole BCM GPIO number"),
    ({"buzzer": 10}, "hardware.gpio.buzzer", "reserved (SPI0 MOSI)"),
    ({"buzzer": 17}, "hardware.gpio.estop_a", "already used by hardware.gpio.buzzer"),
    ({"adc_chip": "ADS1115"}, "hardware.gpio.adc_chip", "unknown ADC"),
    ({"current_channel": 0}, "hardware.gpio.current_channel", "already used by hardware.gpio.primary_channel"),
    ({"dir_high_is_inversion": 1}, "hardware.gpio.dir_high_is_inversion", "true or false"),
    ({"primary_deg_at_95pct": -100.0}, "hardware.gpio.primary_deg_at_95pct", "at least 20 deg"),
    ({"pwm_frequency_hz": 50}, "hardware.gpio.pwm_frequency_hz", "outside 100 .. 40000"),
    ({"motor_pwn": 12}, "hardware.gpio.motor_pwn", "unknown key"),
])
def test_the_pin_map_is_validated(gpio: dict, key: str, reason: str) -> None:
    found = problems([("c.toml", "", {"hardware": {"gpio": gpio}})])
    assert any(p.startswith(f"c.toml: {key}: ") and reason in p for p in found), found


def test_a_pin_map_round_trips_through_the_config() -> None:
    cfg = build_config([("c.toml", "", {"hardware": {"backend": "gpio", "gpio": {"motor_pwm": 7, "adc_chip": "MCP3008"}}})])
    assert cfg.hardware.backend == "gpio" and cfg.hardware.gpio.motor_pwm == 7
    assert cfg.hardware.gpio.adc_chip == "MCP3008" and cfg.hardware.gpio.motor_dir == 5
