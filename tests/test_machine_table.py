"""The state machine as a table (issue 14): Enum states that read as today's names, guards
without side effects (``may_<trigger>()`` can be asked), refusals logged once by the press that
fired them, and one owner for what is latched."""

from __future__ import annotations

import json

from controller.core.config import Config
from controller.core.machine import STATE_NAMES, STATES, TRANSITIONS, TransitionRecord
from controller.core.monitor import Detection, Recovery, SafetyMonitor, Sensor
from controller.core.states import State
from tests.test_machine import UP, Driver, inputs


def test_states_are_str_enums_that_read_as_the_trace_names() -> None:
    assert State.IDLE == "idle" and f"{State.EMERGENCY_RETURN}" == "emergency_return"
    assert repr(State.HOLD) == "'hold'"  # messages quoting a state show the plain name
    assert json.dumps({"s": State.FAULT}) == '{"s": "fault"}'
    assert STATE_NAMES == [s.value for s, _ in STATES] == [s.value for s in State]
    assert Recovery.HOLD == "hold" and State.HOLD == "hold" and Recovery.HOLD is not State.HOLD


def test_the_controller_state_is_a_state_and_compares_with_the_plain_names() -> None:
    d = Driver()
    assert isinstance(d.ctrl.state, State) and d.ctrl.state == "idle"
    assert d.ctrl.state in {"idle"} and {"idle": 1}[d.ctrl.state] == 1
    d.tap("start")
    record = d.ctrl.transitions[-1]
    assert record == TransitionRecord(record.t_s, "idle", "ramp", "press_start")
    assert type(record.source) is str and type(record.dest) is str  # plain names in records


def test_every_transition_names_known_states() -> None:
    for t in TRANSITIONS:
        sources = t["source"] if isinstance(t["source"], list) else [t["source"]]
        assert all(isinstance(s, State) for s in sources + [t["dest"]]), t


def test_guards_have_no_side_effects_and_may_trigger_can_be_asked() -> None:
    d = Driver(ankle=False)
    before = list(d.ctrl.events)
    for _ in range(3):
        assert not d.ctrl.may("press_start")
        assert not d.ctrl.may("press_down")
        assert not d.ctrl.may_start_session
    assert d.ctrl.events == before  # asking logs nothing
    d.tap("start", ankle=False)
    refusals = [e.message for e in d.ctrl.events if e.message.startswith("refused")]
    assert refusals == ["refused start: ankle lock not confirmed"]  # the press logs it, once


def test_a_press_the_state_ignores_logs_nothing() -> None:
    d = Driver()
    n = len(d.ctrl.events)
    d.tap("stop")  # STOP means nothing at idle
    assert d.ctrl.state == "idle" and len(d.ctrl.events) == n


def test_up_in_estop_while_pressed_is_refused_with_its_reason() -> None:
    d = Driver(estop=True)
    assert d.ctrl.state == "estop"
    assert not d.ctrl.may("press_up") and not d.ctrl.may("press_return")
    d.tap("up", estop=True)
    assert d.ctrl.state == "estop"
    assert d.ctrl.events[-1].message == "e-stop still pressed: release it first"


def test_a_pause_resumes_the_phase_it_left_from_the_event_data() -> None:
    d = Driver()
    d.tap("start")
    for _ in range(100):
        d.tick()
    assert d.ctrl.state == "ramp"
    d.tap("stop")
    assert d.ctrl.state == "paused" and d.ctrl.session.paused_from is State.RAMP
    assert d.ctrl.may("press_start")
    d.tap("start")
    assert d.ctrl.state == "ramp" and d.ctrl.session.paused_from is None


def test_the_monitor_owns_what_is_latched_and_the_recovery_only_escalates() -> None:
    mon = SafetyMonitor(Config())
    assert mon.recovery is Recovery.REPORT
    mon.latch(Detection("sensor_dropout", "x", Recovery.LIMP_HOME, Sensor.PRIMARY))
    assert mon.distrusted == {Sensor.SECONDARY} and mon.recovery is Recovery.LIMP_HOME
    mon.latch(Detection("brake_creep", "x", Recovery.EMERGENCY_RETURN, brake_slips=True))
    assert mon.recovery is Recovery.LIMP_HOME and mon.brake_slips  # never less conservative
    assert not mon.driver_disobeys
    mon.latch(Detection("runaway", "no magic words here", Recovery.HOLD, driver_stuck_on=True))
    assert mon.driver_disobeys and mon.recovery is Recovery.HOLD
    assert mon.latched == {"sensor_dropout", "brake_creep", "runaway"}


def test_a_runaway_without_the_driver_flag_is_not_a_disobeying_driver() -> None:
    """The flag is carried explicitly: the reason's wording no longer decides it."""
    mon = SafetyMonitor(Config())
    mon.latch(Detection("runaway", "the driver is on", Recovery.HOLD))
    assert not mon.driver_disobeys


def test_a_detection_names_the_good_sensor_and_the_other_is_dropped() -> None:
    d = Driver()
    d.tap("start")
    for _ in range(200):
        d.tick()
    angle = d.ctrl.setpoint
    d.t += 0.01
    d.ctrl.update(d.t, inputs(angle)._replace(angle_secondary_deg=None))  # no reading
    assert d.ctrl.monitor.distrusted == {Sensor.SECONDARY} and d.ctrl.state == "limp_home"
    assert "sensor_dropout" in d.ctrl.monitor.latched and UP < angle


def test_every_guard_named_in_the_table_exists_on_the_controller() -> None:
    """transitions looks the guards and callbacks TRANSITIONS names by string up on its model,
    which forwards exactly GUARD_NAMES to the controller (fsm_model.py): a misspelt name would
    only show when its trigger fires (an AttributeError, then the internal-error fault)."""
    from controller.core.machine import GUARD_NAMES, Controller

    assert GUARD_NAMES and all(hasattr(Controller, name) for name in GUARD_NAMES)
    d = Driver()
    assert all(hasattr(d.ctrl.fsm, name) for name in GUARD_NAMES)
    assert not hasattr(d.ctrl.fsm, "motor_cmd")  # nothing else is forwarded
