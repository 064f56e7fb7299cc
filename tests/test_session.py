"""The session's bookkeeping (controller/core/session.py), time passed in."""

from __future__ import annotations

from controller.core.session import Jog, Session
from controller.core.states import State


def test_the_clock_starts_once_and_a_pause_gives_no_time_back() -> None:
    s = Session([(30.0, 60.0)])
    assert s.elapsed(5.0) == 0.0
    s.start_clock(10.0)
    s.start_clock(20.0)  # a second departure (a step, a resume) keeps the first start
    assert s.elapsed(25.0) == 15.0
    s.end()
    assert s.left_upright_t is None and s.elapsed(30.0) == 0.0


def test_steps_run_in_order_and_say_when_the_program_is_done() -> None:
    s = Session([(20.0, 30.0), (35.0, 60.0)])
    assert (s.target_deg, s.hold_s) == (20.0, 30.0)
    assert s.next_step() and (s.target_deg, s.hold_s) == (35.0, 60.0)
    assert not s.next_step() and s.step_i == 1


def test_a_pause_in_a_hold_keeps_what_is_left_and_the_resume_uses_it_once() -> None:
    s = Session([(30.0, 60.0)])
    s.start_phase(100.0, 60.0)
    assert not s.phase_over(159.9) and s.phase_over(160.0)
    s.pause(State.HOLD, 140.0)
    assert s.paused_from is State.HOLD and s.phase_remaining == 20.0
    s.start_phase(500.0, 60.0)  # resumed much later: 20 s left, not 60
    assert s.phase_end_t == 520.0 and s.phase_remaining is None
    s.start_phase(600.0, 60.0)  # the next phase has its full length again
    assert s.phase_end_t == 660.0


def test_a_pause_before_the_rest_settled_keeps_nothing() -> None:
    s = Session([(30.0, 60.0)])
    s.pause(State.REST, 10.0)  # rest_timing False: the rest has not started counting
    assert s.phase_remaining is None
    s.rest_timing = True
    s.start_phase(10.0, 30.0)
    s.pause(State.REST, 25.0)
    assert s.phase_remaining == 15.0


def test_a_jog_names_the_button_that_must_stay_held() -> None:
    assert Jog(direction=1).button == "down" and Jog(direction=-1).button == "up"
