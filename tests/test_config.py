"""Config validation: defaults, every bound, unknown keys, types, and file errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.core.config import NUMERIC_BOUNDS, Config, build_config, load_config
from controller.core.errors import InputError
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
    assert (
        cfg.motion.emergency_speed_dps,
        cfg.motion.emergency_accel_dps2,
        cfg.motion.jog_max_s,
    ) == (8.0, 8.0, 30.0)
    s = cfg.session
    assert (s.target_deg, s.hold_s, s.max_duration_s, s.rest_deg, s.rest_s) == (
        20.0,
        60.0,
        300.0,
        0.0,
        20.0,
    )


# Keys whose edge values push a dependent default out of range need companions.
COMPANIONS = {
    "limits.max_angle_deg": {"session": {"target_deg": -75.0, "rest_deg": -78.0}},
    # Emergency speeds above ~10 deg/s need a faster gearmotor than the default for a 136 kg user
    # (controller/core/capability.py): the edges are tested with a motor that can do them.
    "motion.max_speed_dps": {
        "motion": {"emergency_speed_dps": 10.5},
        "hardware": {"motor_no_load_speed_dps": 40.0},
    },
    "motion.emergency_speed_dps": {"hardware": {"motor_no_load_speed_dps": 40.0}},
    "hardware.motor_no_load_speed_dps": {"hardware": {"motor_stall_torque_nm": 5000.0}},
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


@pytest.mark.parametrize(
    "key,bad,good",
    [
        ("limits.upright_deg", -91, -90),
        ("limits.upright_deg", -44, -45),
        ("limits.max_angle_deg", -71, -70),
        ("limits.max_angle_deg", 91, 90),
        ("motion.max_speed_dps", 0.4, 0.5),
        ("motion.max_speed_dps", 10.5, 10),
        ("motion.max_accel_dps2", 0.4, 0.5),
        ("motion.max_accel_dps2", 21, 20),
        ("motion.emergency_speed_dps", 3.9, 4),
        ("motion.emergency_speed_dps", 15.1, 15),
        ("motion.emergency_accel_dps2", 3.9, 4),
        ("motion.emergency_accel_dps2", 31, 30),
        ("motion.jog_max_s", 0.5, 1),
        ("motion.jog_max_s", 61, 60),
        ("motion.duty_window_s", 59, 60),
        ("motion.duty_window_s", 7201, 7200),
        ("motion.duty_on_s", 9, 10),
        ("motion.duty_on_s", 1201, 1200),
        ("session.max_duration_s", 9, 10),
        ("session.max_duration_s", 601, 600),
        ("session.target_deg", 61, 60),
        ("session.target_deg", -81, -80),
        ("session.hold_s", 301, 300),
        ("session.hold_s", -1, 0),
        ("session.rest_deg", 21, 20),
        ("session.rest_deg", -81, -80),
        ("session.rest_s", 301, 300),
        ("session.rest_s", -0.1, 0),
        ("session.cooldown_s", 1801, 1800),
        ("session.cooldown_s", -1, 0),
        ("hardware.motor_stall_current_a", 0.9, 1),
        ("hardware.motor_stall_current_a", 201, 200),
        ("hardware.motor_no_load_speed_dps", 9.9, 10),
        ("hardware.motor_no_load_speed_dps", 101, 100),
        # (the low edge, 100 N m, is within the bound but too weak for any user: see the
        # capability tests)
        ("hardware.motor_stall_torque_nm", 20001, 20000),
    ],
)
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
    assert any(
        "session.max_duration_s" in p
        for p in problems([("c", "", {"session": {"max_duration_s": 1200}})])
    )


def test_unknown_table_and_key_are_rejected_with_their_names() -> None:
    found = problems([("c.toml", "", {"sesion": {"x": 1}, "session": {"target": 30}})])
    assert found[0].startswith("c.toml: sesion: unknown table")
    assert found[1].startswith("c.toml: session.target: unknown key")


def test_every_problem_is_reported_not_just_the_first() -> None:
    found = problems(
        [
            (
                "c.toml",
                "",
                {
                    "motion": {"max_speed_dps": "fast", "jog_max_s": 0},
                    "session": {"rest_s": float("nan")},
                },
            )
        ]
    )
    assert len(found) == 3
    assert "c.toml: motion.max_speed_dps: must be a number, got 'fast'" in found
    assert any(p.startswith("c.toml: session.rest_s: must be a finite number") for p in found)


def test_booleans_are_not_numbers() -> None:
    assert problems([("c", "", {"motion": {"max_speed_dps": True}})]) == [
        "c: motion.max_speed_dps: must be a number, got True"
    ]


def test_dependent_bound_names_the_file_that_set_the_value() -> None:
    # The config file lowers max_angle; the scenario's target then exceeds it: the scenario is
    # at fault.
    found = problems(
        [
            ("cfg.toml", "", {"limits": {"max_angle_deg": 30}}),
            ("scen.toml", "config.", {"session": {"target_deg": 40}}),
        ]
    )
    assert found == [
        "scen.toml: config.session.target_deg: 40 is outside the allowed range -80 .. 30"
    ]


def test_a_default_invalidated_by_another_key_points_at_the_file() -> None:
    assert problems([("c.toml", "", {"limits": {"max_angle_deg": 10}})]) == [
        "c.toml: session.target_deg: the default 20 is outside the allowed range -80 .. 10 "
        "(set it explicitly)"
    ]


def test_unknown_backend() -> None:
    assert problems([("c", "", {"hardware": {"backend": "can"}})])[0].startswith(
        "c: hardware.backend: unknown backend 'can'"
    )


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


@pytest.mark.parametrize(
    "gpio,key,reason",
    [
        ({"motor_pwm": 28}, "hardware.gpio.motor_pwm", "not a BCM GPIO number"),
        ({"motor_pwm": -1}, "hardware.gpio.motor_pwm", "not a BCM GPIO number"),
        ({"motor_pwm": 12.5}, "hardware.gpio.motor_pwm", "whole BCM GPIO number"),
        ({"motor_pwm": True}, "hardware.gpio.motor_pwm", "whole BCM GPIO number"),
        ({"buzzer": 10}, "hardware.gpio.buzzer", "reserved (SPI0 MOSI)"),
        ({"buzzer": 17}, "hardware.gpio.estop_a", "already used by hardware.gpio.buzzer"),
        ({"adc_chip": "ADS1115"}, "hardware.gpio.adc_chip", "unknown ADC"),
        (
            {"current_channel": 0},
            "hardware.gpio.current_channel",
            "already used by hardware.gpio.primary_channel",
        ),
        ({"dir_high_is_inversion": 1}, "hardware.gpio.dir_high_is_inversion", "true or false"),
        ({"primary_deg_at_95pct": -100.0}, "hardware.gpio.primary_deg_at_95pct", "at least 20 deg"),
        ({"pwm_frequency_hz": 50}, "hardware.gpio.pwm_frequency_hz", "outside 100 .. 40000"),
        ({"motor_pwn": 12}, "hardware.gpio.motor_pwn", "unknown key"),
    ],
)
def test_the_pin_map_is_validated(gpio: dict, key: str, reason: str) -> None:
    found = problems([("c.toml", "", {"hardware": {"gpio": gpio}})])
    assert any(p.startswith(f"c.toml: {key}: ") and reason in p for p in found), found


def test_a_pin_map_round_trips_through_the_config() -> None:
    cfg = build_config(
        [
            (
                "c.toml",
                "",
                {"hardware": {"backend": "gpio", "gpio": {"motor_pwm": 7, "adc_chip": "MCP3008"}}},
            )
        ]
    )
    assert cfg.hardware.backend == "gpio" and cfg.hardware.gpio.motor_pwm == 7
    assert cfg.hardware.gpio.adc_chip == "MCP3008" and cfg.hardware.gpio.motor_dir == 5


# ----- motor capability (issue 11, repro 4): limits the gearmotor cannot meet are refused


def test_capability_model_is_the_simulators() -> None:
    """The check's documented assumptions are the simulator's physics, number for number."""
    from controller.core.capability import TableModel, gravity_torque, inertia
    from sim.physics import TableParams, TablePhysics

    m, p = TableModel(), TableParams()
    for name in (
        "pivot_from_feet_m",
        "com_fraction",
        "com_height_m",
        "frame_inertia",
        "reflected_inertia",
        "viscous",
        "coulomb",
    ):
        assert getattr(m, name) == getattr(p, name), name
    cfg = Config()
    assert (cfg.hardware.motor_stall_torque_nm, cfg.hardware.motor_no_load_speed_dps) == (
        p.stall_torque,
        p.no_load_speed_dps,
    )
    for mass, height in ((136.0, 198.0), (136.0, 147.0), (40.0, 170.0)):
        ph = TablePhysics(p, mass, height, 0.0)
        assert abs(inertia(mass, height) - ph._inertia) < 1e-9
        for angle in (-80.0, 0.0, 40.8, 90.0):
            assert abs(gravity_torque(mass, height, angle) - ph.gravity_torque(angle)) < 1e-9


def test_capability_numbers_agree_with_the_physics() -> None:
    """At full duty the simulated 136 kg, 198 cm user is lifted at the speed the model says
    (12.4 deg/s near 41 deg): the check is neither optimistic nor far too strict."""
    from controller.core.capability import RAD, TableModel, gravity_torque
    from sim.physics import TableParams, TablePhysics

    p, m = TableParams(), TableModel()
    ph = TablePhysics(p, 136.0, 198.0, 41.5)
    ph.advance(0.5, 0.001, -1.0, True, False)
    against = gravity_torque(136.0, 198.0, ph.angle)
    predicted = (p.stall_torque - against - m.coulomb) / (
        p.stall_torque / p.no_load_speed_dps + m.viscous * RAD
    )
    assert 12.0 < predicted < 12.8
    assert abs(-ph.vel - predicted) < 0.2, (ph.vel, predicted)


@pytest.mark.parametrize("max_angle", [60.0, 90.0])
def test_an_emergency_return_the_motor_cannot_make_is_refused(max_angle: float) -> None:
    found = problems(
        [
            (
                "c.toml",
                "",
                {"limits": {"max_angle_deg": max_angle}, "motion": {"emergency_speed_dps": 15.0}},
            )
        ]
    )
    assert len(found) == 1, found
    msg = found[0]
    assert msg.startswith(
        "c.toml: motion.emergency_speed_dps: 15 is more than the configured gearmotor can do: "
        "15 deg/s toward upright"
    ), msg
    for fragment in (
        "136 kg, 198 cm user at 40.8 deg",
        "needs 278 N m",
        "gives 105 N m",
        "hardware.motor_stall_torque_nm 700",
        "hardware.motor_no_load_speed_dps 20",
        "10.4 deg/s",
    ):
        assert fragment in msg, msg


def test_the_fastest_accepted_emergency_return_for_the_default_motor() -> None:
    """10 deg/s at 8 deg/s^2 is feasible (the stranded_4* scenarios run it); 10.5 is not."""
    assert build_config(
        [("c", "", {"limits": {"max_angle_deg": 90.0}, "motion": {"emergency_speed_dps": 10.0}})]
    )
    assert any(
        "motion.emergency_speed_dps" in p
        for p in problems([("c", "", {"motion": {"emergency_speed_dps": 10.5}})])
    )


def test_a_motor_too_weak_for_the_defaults_is_refused_naming_the_default() -> None:
    found = problems([("c.toml", "", {"hardware": {"motor_stall_torque_nm": 100.0}})])
    assert found and all(p.startswith("c.toml: motion.") for p in found), found
    assert len(found) == 2, found
    assert found[0].startswith(
        "c.toml: motion.emergency_speed_dps: the default 8 is more than the configured "
        "gearmotor can do: 8 deg/s toward upright"
    ), found
    assert found[1].startswith(
        "c.toml: motion.max_speed_dps: the default 4 is more than the configured "
        "gearmotor can do: 4 deg/s toward upright"
    ), found
    assert all(p.endswith("(set it explicitly)") and "N m" in p for p in found), found


def test_the_normal_profile_is_checked_toward_inversion_too() -> None:
    """A short heavy user pulls toward upright (most near -40 deg): driving down needs torque
    too."""
    from controller.core.capability import worst_shortfall

    short = worst_shortfall(4.0, 4.0, False, -80.0, 60.0, 250.0, 20.0)
    assert short is not None and short.height_cm == 147.0 and abs(short.angle_deg + 40.3) < 0.1
    assert worst_shortfall(4.0, 4.0, False, -80.0, 60.0, 700.0, 20.0) is None


def test_an_out_of_bound_key_is_reported_without_a_capability_guess() -> None:
    found = problems([("c.toml", "", {"motion": {"emergency_speed_dps": 40.0}})])
    assert found == [
        "c.toml: motion.emergency_speed_dps: 40 is outside the allowed range 4 .. 15",
        "c.toml: hardware.motor_no_load_speed_dps: the default 20 is outside the allowed range "
        "50 .. 100 (set it explicitly)",
    ], found


def test_config_check_cli_refuses_an_infeasible_motor_with_the_numbers(tmp_path: Path) -> None:
    cfg = tmp_path / "fast.toml"
    cfg.write_text("[motion]\nemergency_speed_dps = 15.0\n")
    res = run_cli("config", "check", cfg)
    assert res.code == 2 and "Traceback" not in res.stderr
    assert (
        f"{cfg}: motion.emergency_speed_dps: 15 is more than the configured gearmotor can do"
        in res.stderr
    )
    assert "needs 278 N m" in res.stderr and "gives 105 N m" in res.stderr
