"""Bad input: exit 2, file + key + reason on stderr, no traceback, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SCENARIOS, CliResult, run_cli

GOOD_HEAD = '[scenario]\nname = "x"\nduration_s = 5.0\n'


def expect_input_error(res: CliResult, *fragments: str) -> None:
    assert res.code == 2, (res.code, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    for fragment in fragments:
        assert fragment in res.stderr, res.stderr


@pytest.mark.parametrize(
    "body,fragments",
    [
        (GOOD_HEAD + "[bogus]\n", ["bogus: unknown table"]),
        (
            GOOD_HEAD.replace("duration_s = 5.0", "duration_s = -1"),
            ["scenario.duration_s: must be a number"],
        ),
        ('[scenario]\nname = "x"\n', ["scenario.duration_s: missing"]),
        (GOOD_HEAD + "speed = 3\n", ["scenario.speed: unknown key"]),
        (GOOD_HEAD + "[user]\nmass_kg = 200.0\n", ["user.mass_kg: must be a number in 40 .. 136"]),
        (
            GOOD_HEAD + "[config.session]\ntarget_deg = 120.0\n",
            ["config.session.target_deg: 120 is outside"],
        ),
        (GOOD_HEAD + "[config.motion]\nturbo = true\n", ["config.motion.turbo: unknown key"]),
        (
            GOOD_HEAD + '[[events]]\nat_s = 1.0\ndo = "press"\ninput = "launch"\n',
            ["events[0].input: unknown button 'launch'"],
        ),
        (
            GOOD_HEAD + '[[events]]\nat_s = 1.0\ndo = "set"\ninput = "door"\nvalue = true\n',
            ["events[0].input: unknown latching input 'door'"],
        ),
        (
            GOOD_HEAD + '[[events]]\nat_s = 1.0\ndo = "fault"\nfault = "gremlins"\n',
            ["events[0].fault: unknown fault 'gremlins'"],
        ),
        (
            GOOD_HEAD + "[program]\nsteps = [[120.0, 10.0]]\n",
            ["program.steps[0]: must be [target_deg within"],
        ),
        (GOOD_HEAD + "[program]\nsteps = []\n", ["program.steps: must be a list of 1 .. 100"]),
        (GOOD_HEAD + "[program]\nloops = 3\n", ["program.loops: unknown key"]),
        (
            GOOD_HEAD + '[[events]]\nat_s = 1.0\ndo = "dance"\n',
            ["events[0].do: unknown action 'dance'"],
        ),
        (
            GOOD_HEAD + '[[events]]\nat_s = 9.0\ndo = "tap"\ninput = "start"\n',
            ["events[0].at_s: 9 is after the end"],
        ),
        (
            GOOD_HEAD + '[[events]]\nat_s = 1.0\ndo = "set"\ninput = "estop"\nvalue = "yes"\n',
            ["events[0].value: must be true or false"],
        ),
        (
            GOOD_HEAD + '[[events]]\nat_s = 1.0\ndo = "tap"\ninput = "start"\nvalue = 1\n',
            ["events[0].value: unknown key for do = 'tap'"],
        ),
        (
            GOOD_HEAD + '[expect]\nfinal_state = "upside_down"\n',
            ["expect.final_state: unknown state"],
        ),
        (GOOD_HEAD + "[expect]\nhappy = true\n", ["expect.happy: unknown expectation"]),
        ("[scenario\n", ["invalid TOML"]),
    ],
)
def test_bad_scenarios_exit_2_naming_file_and_key(
    tmp_path: Path, body: str, fragments: list[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body)
    trace = tmp_path / "trace.csv"
    res = run_cli("sim", path, "--trace", trace)
    expect_input_error(
        res, *[f"{path}: {f}" if not f.startswith("invalid") else f for f in fragments]
    )
    assert not trace.exists()  # nothing run, nothing written


def test_several_problems_are_all_listed(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        GOOD_HEAD + "[user]\nheight_cm = 250.0\n[config.motion]\nmax_speed_dps = 50.0\n"
        '[[events]]\nat_s = 1.0\ndo = "tap"\ninput = "launch"\n'
    )
    res = run_cli("sim", path)
    expect_input_error(
        res,
        "user.height_cm",
        "config.motion.max_speed_dps",
        "events[0].input",
        # and the default it invalidates (emergency speed must be >= max speed):
        "config.motion.emergency_speed_dps: the default 8 is outside the allowed range 50 .. 15",
    )
    assert res.stderr.count("invtable: error:") == 4


def test_bad_config_file_next_to_a_good_scenario(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.toml"
    cfg.write_text("[limits]\nmax_angle_deg = 120\n")
    expect_input_error(
        run_cli("sim", SCENARIOS / "jog.toml", "--config", cfg),
        f"{cfg}: limits.max_angle_deg: 120 is outside the allowed range",
    )


def test_missing_files(tmp_path: Path) -> None:
    expect_input_error(run_cli("sim", tmp_path / "nope.toml"), "nope.toml: file not found")
    expect_input_error(run_cli("config", "check", tmp_path), "is a directory")


def test_output_problems_are_refused_before_running(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text((SCENARIOS / "jog.toml").read_text())
    before = scenario.read_text()
    expect_input_error(
        run_cli("sim", scenario, "--trace", scenario), "--trace:", "is an input file"
    )
    assert scenario.read_text() == before  # nothing lost
    expect_input_error(
        run_cli("sim", scenario, "--summary", tmp_path / "no" / "s.json"), "--summary: folder"
    )
    expect_input_error(run_cli("sim", scenario, "--plot", tmp_path), "--plot:", "is a directory")


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["sim"], "the following arguments are required"),
        (["sim", "x.toml", "--backend", "can-bus"], "invalid choice"),
        (["fly"], "invalid choice"),
        (["run", "--duration", "abc"], "invalid float value"),
        (["demo", "--speed", "-1"], "--speed: must be >= 0"),
    ],
)
def test_bad_arguments(args: list[str], fragment: str) -> None:
    expect_input_error(run_cli(*args), fragment)


def test_an_unknown_backend_is_refused_with_the_choices() -> None:
    res = run_cli("sim", SCENARIOS / "jog.toml", "--backend", "can-bus")
    expect_input_error(res, "--backend", "invalid choice: 'can-bus'", "gpio-mock", "serial")
