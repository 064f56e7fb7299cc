"""Property-based: random timed sequences of presses, ankle-lock changes and e-stops thrown
at the real controller plus simulator; the safety invariants must hold in every run.

The invariant checker (sim/checks.py) evaluates the TRUE physics every tick: envelope,
overshoot, speed and acceleration limits, session time limit, no motion toward inversion
without the ankle lock, e-stop outputs and stillness, brake hold on power loss.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.runner import run_scenario
from sim.scenario import scenario_from_dict
from tests.conftest import examples

BUTTONS = ["start", "stop", "up", "down", "return"]

button_event = st.fixed_dictionaries(
    {
        "at_s": st.floats(0.0, 55.0).map(lambda x: round(x, 2)),
        "do": st.sampled_from(["tap", "press", "release"]),
        "input": st.sampled_from(BUTTONS),
    }
)
latch_event = st.fixed_dictionaries(
    {
        "at_s": st.floats(0.0, 55.0).map(lambda x: round(x, 2)),
        "do": st.just("set"),
        "input": st.sampled_from(["ankle_lock", "ankle_lock", "estop"]),
        "value": st.booleans(),
    }
)
power_event = st.fixed_dictionaries(
    {
        "at_s": st.floats(0.0, 55.0).map(lambda x: round(x, 2)),
        "do": st.just("power"),
        "value": st.booleans(),
    }
)
users = st.sampled_from([(80.0, 178.0), (136.0, 198.0), (136.0, 147.0), (40.0, 147.0)])
sessions = st.fixed_dictionaries(
    {
        "target_deg": st.sampled_from([-40.0, 20.0, 45.0, 60.0]),
        "hold_s": st.sampled_from([0.0, 5.0, 20.0]),
        "max_duration_s": st.sampled_from([20.0, 40.0, 300.0]),
        "rest_s": st.sampled_from([0.0, 3.0]),
        "rest_deg": st.just(-45.0),
    }
)


def scenario(events: list[dict], user: tuple[float, float], session: dict, seed: int) -> dict:
    lock_first = [{"at_s": 0.0, "do": "set", "input": "ankle_lock", "value": True}]
    return {
        "scenario": {"name": "property", "duration_s": 60.0, "seed": seed},
        "user": {"mass_kg": user[0], "height_cm": user[1]},
        "config": {"session": session},
        "events": lock_first + events,
    }


@settings(max_examples=examples(40), suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.one_of(button_event, button_event, latch_event), max_size=25),
    users,
    sessions,
    st.integers(0, 2**16),
)
def test_random_inputs_never_break_an_invariant(
    events: list[dict], user: tuple[float, float], session: dict, seed: int
) -> None:
    result = run_scenario(scenario_from_dict(scenario(events, user, session, seed), "property"))
    assert result.violations == [], (result.violations, result.summary["transitions"])


@settings(max_examples=examples(15), suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.one_of(button_event, latch_event, power_event), max_size=20),
    users,
    st.integers(0, 2**16),
)
def test_random_power_cuts_never_break_an_invariant(
    events: list[dict], user: tuple[float, float], seed: int
) -> None:
    session = {
        "target_deg": 45.0,
        "hold_s": 20.0,
        "max_duration_s": 300.0,
        "rest_s": 3.0,
        "rest_deg": 0.0,
    }
    result = run_scenario(scenario_from_dict(scenario(events, user, session, seed), "property"))
    assert result.violations == [], (result.violations, result.summary["transitions"])


@settings(max_examples=examples(20), suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(button_event, max_size=30), users, st.integers(0, 2**16))
def test_whatever_the_buttons_do_the_table_is_upright_after_return_and_time(
    events: list[dict], user: tuple[float, float], seed: int
) -> None:
    """With the lock kept and no e-stop, a RETURN always ends upright within its time."""
    session = {
        "target_deg": 60.0,
        "hold_s": 20.0,
        "max_duration_s": 40.0,
        "rest_s": 3.0,
        "rest_deg": 0.0,
    }
    events = [e for e in events if e["at_s"] < 40.0]
    # A held button is not a press: let go of everything, then press RETURN.
    events += [{"at_s": 40.5, "do": "release", "input": b} for b in BUTTONS]
    events.append({"at_s": 41.0, "do": "tap", "input": "return"})
    data = scenario(events, user, session, seed)
    data["scenario"]["duration_s"] = 70.0
    result = run_scenario(scenario_from_dict(data, "property"))
    assert result.violations == []
    assert result.summary["ended_upright"] and result.summary["final_state"] == "idle", (
        result.summary["transitions"]
    )
