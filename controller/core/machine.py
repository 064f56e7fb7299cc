"""The table controller: one ``transitions`` state machine with this object as its model.

Design rules (DESIGN sections 3-4; the structure in docs/architecture.md, "The tick"):

- ``update(now, inputs) -> outputs`` is the whole interface. Time is passed in, so the
  same code runs in simulated time and in real time. Only the control thread calls it.
- ``TRANSITIONS`` is the diagram (``invtable diagram``). Its guards are read-only
  properties; the press that fires a trigger logs why they refused it (``_refusal``).
- ``auto_transitions=False`` (the generated ``to_<state>()`` would bypass every guard),
  ``queued=True``, no ``Timeout`` extension: deadlines are numbers checked in ``update``.
- Every trigger goes through ``_fire`` which records the transition with its time.
- ``_tick`` runs the rules in their order of precedence (e-stop, sensor faults, ankle lock,
  buttons, the latched recovery, the session time limit), then the state's own handler from
  one table (``_enter_``, ``_during_``, ``_exit_<state>``).
- Every fault goes through ``_on_fault``: the monitor latches it, ``_apply_recovery`` is the
  one place a recovery acts on the state machine.
- Collaborators with their own tests: ``Motion`` (profile, position loop), ``BrakeTest``,
  ``LimpHome``, ``Supervised``; the ``SafetyMonitor`` owns what is latched.
- Any exception inside a tick stops the motor, engages the brake and latches ``fault``;
  the loop keeps running so the alarm and the heartbeat stay alive.
- A way back from every state (issue 11): a held ``fault`` is a pause, left by holding UP
  or RETURN (``supervised_return``, controller/core/recovery.py); ``idle`` is entered only at a
  verified upright; motion toward upright is never refused by a limit check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Final, Sequence

from transitions import EventData, Machine

from controller.core.brake_test import BrakeTest, Outcome
from controller.core.config import Config
from controller.core.duty import DutyBudget
from controller.core.fsm_model import MachineModel
from controller.core.limits import clamp, has_left_upright, is_upright, sensors_agree
from controller.core.limp_home import LimpHome
from controller.core.limp_home import Step as LimpStep
from controller.core.monitor import (
    LIVE_CURRENT_A,
    OVERTRAVEL_REAL_DEG,
    SENSOR_AGREE_DEG,
    Detection,
    Recovery,
    SafetyMonitor,
    Sensor,
    make_snapshot,
)
from controller.core.motion import SETTLE_DEG, Motion, Pace
from controller.core.motor_loop import DRIVE_GAP_S, PositionLoop
from controller.core.profile import TrapezoidProfile
from controller.core.recovery import (
    SUPERVISED_ACCEL_DPS2,
    SUPERVISED_DUTY_MAX,
    SUPERVISED_SPEED_DPS,
    single_out,
)
from controller.core.session import Jog, Session
from controller.core.states import State
from controller.core.supervised import Supervised
from hal.interfaces import SAFE_OUTPUTS, Inputs, Outputs

SELFTEST_S = 0.3  # boot self-test sampling time (motor off, brake on)
SENSOR_AGREE_BOOT_DEG = 2.0  # the two angle sensors must agree this closely at boot

# (name, description) -- the description feeds the generated state diagram.
STATES: list[tuple[State, str]] = [
    (State.BOOT, "self-test on the brake: sensor checks, then the brake test"),
    (State.IDLE, "a verified upright and ready"),
    (State.JOGGING, "hold-to-run UP or DOWN"),
    (State.HOLDING, "stopped off upright on the brake"),
    (State.RAMP, "session: moving to target"),
    (State.HOLD, "session: holding at target"),
    (State.REST, "session: resting near horizontal"),
    (State.PAUSED, "session paused on the brake"),
    (State.RETURNING, "normal profile to upright"),
    (State.EMERGENCY_RETURN, "latched, emergency profile to upright"),
    (State.LIMP_HOME, "fault: slowly upright on the one sensor still trusted"),
    (
        State.SUPERVISED_RETURN,
        "held fault, UP or RETURN held: slowly toward upright (hold-to-run), watched; "
        "released or not following = brake, back to the fault",
    ),
    (State.ESTOP, "latched: motor off, brake on"),
    (
        State.FAULT,
        "latched fault, alarm: upright on the emergency profile if motion is trusted, "
        "else motor off, supply relay open, brake on",
    ),
]
STATE_NAMES = [s.value for s in State]
SESSION_STATES = (State.RAMP, State.HOLD, State.REST)
# States the session time limit ends (e-stop and faults override it; returns are already returning).
TIME_LIMITED = (State.JOGGING, State.HOLDING, State.RAMP, State.HOLD, State.REST, State.PAUSED)
# States that sound the alarm whatever is latched (a frozenset: looked up every tick).
ALARM_STATES = frozenset(
    (State.FAULT, State.EMERGENCY_RETURN, State.LIMP_HOME, State.SUPERVISED_RETURN)
)
# The states and recoveries the per-tick code compares on every tick, as module constants:
# on Python 3.11 each ``State.X`` or ``Recovery.X`` goes through the enum metaclass's
# ``__getattr__`` hook (about 60 ns, a dozen times a tick); with ``make fast`` these are C
# statics. The rest of the code names them as usual.
S_BOOT: Final = State.BOOT
S_IDLE: Final = State.IDLE
S_RAMP: Final = State.RAMP
S_ESTOP: Final = State.ESTOP
S_FAULT: Final = State.FAULT
S_SUPERVISED_RETURN: Final = State.SUPERVISED_RETURN
R_REPORT: Final = Recovery.REPORT
R_HOLD: Final = Recovery.HOLD
MOTIONLESS_STATES = frozenset((State.ESTOP, State.BOOT))  # the controller never drives there
# States in which losing the ankle lock triggers an emergency return.
LOCK_GUARDED = (
    State.JOGGING,
    State.HOLDING,
    State.RAMP,
    State.HOLD,
    State.REST,
    State.PAUSED,
    State.RETURNING,
)

TRANSITIONS: list[dict[str, Any]] = [
    # Boot self-test outcome. Conditions are tried in order.
    # A failed self-test latches a fault (see _on_fault); with the e-stop pressed it waits there.
    dict(trigger="selftest_failed", source=State.BOOT, dest=State.ESTOP, conditions="estop_input"),
    dict(trigger="selftest_passed", source=State.BOOT, dest=State.ESTOP, conditions="estop_input"),
    dict(trigger="selftest_passed", source=State.BOOT, dest=State.IDLE, conditions="at_upright"),
    # Power came back off upright.
    dict(trigger="selftest_passed", source=State.BOOT, dest=State.RETURNING),
    # E-stop overrides everything; a fault keeps the motor off already.
    dict(
        trigger="estop",
        source=[s for s in State if s not in (State.BOOT, State.ESTOP, State.FAULT)],
        dest=State.ESTOP,
    ),
    dict(trigger="estop", source=State.FAULT, dest=State.ESTOP, conditions="fault_returning"),
    # Supervised recovery: a held fault is a pause, never a dead end (controller/core/recovery.py).
    # RETURN or UP held drives slowly toward upright; release stops it again.
    dict(
        trigger="press_return",
        source=State.FAULT,
        dest=State.SUPERVISED_RETURN,
        conditions="may_supervise",
    ),
    dict(
        trigger="press_up",
        source=State.FAULT,
        dest=State.SUPERVISED_RETURN,
        conditions="may_supervise",
    ),
    dict(trigger="supervised_release", source=State.SUPERVISED_RETURN, dest=State.FAULT),
    dict(
        trigger="arrived",
        source=State.SUPERVISED_RETURN,
        dest=State.IDLE,
        conditions="verified_upright",
    ),
    dict(trigger="fault", source=[s for s in State if s != State.FAULT], dest=State.FAULT),
    # Program session.
    dict(trigger="press_start", source=State.IDLE, dest=State.RAMP, conditions="may_start_session"),
    dict(trigger="press_start", source=State.PAUSED, dest=State.RAMP, conditions="paused_in_ramp"),
    dict(trigger="press_start", source=State.PAUSED, dest=State.HOLD, conditions="paused_in_hold"),
    dict(trigger="press_start", source=State.PAUSED, dest=State.REST, conditions="paused_in_rest"),
    dict(
        trigger="press_start",
        source=State.PAUSED,
        dest=State.RETURNING,
        conditions="paused_in_returning",
    ),
    dict(trigger="press_stop", source=list(SESSION_STATES), dest=State.PAUSED),
    dict(
        trigger="press_stop", source=State.RETURNING, dest=State.PAUSED, unless="return_is_forced"
    ),
    dict(trigger="press_stop", source=State.JOGGING, dest=State.HOLDING),
    dict(trigger="arrived", source=State.RAMP, dest=State.HOLD),
    dict(trigger="next_step", source=State.HOLD, dest=State.RAMP),  # a program's next step
    dict(trigger="phase_done", source=State.HOLD, dest=State.REST),
    dict(trigger="phase_done", source=State.REST, dest=State.RETURNING),
    # Hold-to-run jog.
    dict(
        trigger="press_down",
        source=[State.IDLE, State.HOLDING],
        dest=State.JOGGING,
        conditions="may_jog_down",
        before="_jog_down",
    ),
    dict(trigger="press_up", source=State.HOLDING, dest=State.JOGGING, before="_jog_up"),
    # UP during a DOWN jog turns it toward upright (a DOWN that reads held, shorted, must not
    # carry the person away while they hold UP: campaign 2026 index 9404).
    dict(
        trigger="press_up",
        source=State.JOGGING,
        dest=State.JOGGING,
        conditions="jogging_down",
        before="_jog_up",
    ),
    dict(
        trigger="press_up",
        source=State.ESTOP,
        dest=State.JOGGING,
        conditions="estop_released",
        before="_jog_up",
    ),
    dict(
        trigger="press_up",
        source=[State.RAMP, State.HOLD, State.REST, State.PAUSED],
        dest=State.RETURNING,
    ),
    dict(trigger="jog_end", source=State.JOGGING, dest=State.HOLDING),
    # `idle` is entered at a verified upright only; should the table leave it there (a brake
    # that slips), UP and RETURN still bring it back.
    dict(
        trigger="press_up",
        source=State.IDLE,
        dest=State.JOGGING,
        conditions="off_upright",
        before="_jog_up",
    ),
    dict(trigger="arrived", source=State.HOLDING, dest=State.IDLE, conditions="verified_upright"),
    # Returns.
    dict(trigger="time_limit", source=list(TIME_LIMITED), dest=State.RETURNING),
    dict(trigger="press_return", source=list(LOCK_GUARDED), dest=State.EMERGENCY_RETURN),
    dict(
        trigger="press_return",
        source=State.ESTOP,
        dest=State.EMERGENCY_RETURN,
        conditions="estop_released",
    ),
    dict(
        trigger="press_return",
        source=State.IDLE,
        dest=State.EMERGENCY_RETURN,
        conditions="off_upright",
    ),
    dict(trigger="lock_lost", source=list(LOCK_GUARDED), dest=State.EMERGENCY_RETURN),
    dict(
        trigger="arrived",
        source=[State.RETURNING, State.EMERGENCY_RETURN],
        dest=State.IDLE,
        conditions="verified_upright",
    ),
    # Safety monitor recoveries (a latched fault chooses the safest means left).
    # A fault whose recovery is the emergency return stays visible as `fault` while it returns.
    dict(
        trigger="fault_return",
        source=[State.BOOT, State.IDLE, State.EMERGENCY_RETURN] + list(LOCK_GUARDED),
        dest=State.FAULT,
    ),
    dict(
        trigger="arrived",
        source=State.FAULT,
        dest=State.IDLE,
        conditions=["fault_returning", "verified_upright"],
    ),
    dict(
        trigger="fault_limp",
        source=[State.EMERGENCY_RETURN] + list(LOCK_GUARDED),
        dest=State.LIMP_HOME,
    ),
    dict(
        trigger="fault_limp", source=State.FAULT, dest=State.LIMP_HOME, conditions="fault_returning"
    ),
    dict(trigger="arrived", source=State.LIMP_HOME, dest=State.IDLE, conditions="verified_upright"),
    # Ended by the (trusted) upright switch.
    dict(trigger="limp_done", source=State.LIMP_HOME, dest=State.IDLE),
]


# The guards and callbacks TRANSITIONS names by string: transitions looks them up on its model,
# which forwards exactly these to the controller (fsm_model.py).
GUARD_NAMES = frozenset(
    name
    for t in TRANSITIONS
    for key in ("conditions", "unless", "before", "after")
    for name in ([t[key]] if isinstance(t.get(key), str) else t.get(key, []))
)

Callback = Callable[[EventData], None]  # a state's entry or exit (transitions' callbacks)
During = Callable[[float, Inputs], None]  # a state's handler for each tick: (dt, inputs)


def _source(event: EventData) -> State:
    """The state a transition leaves (transitions keeps Enum states by member name)."""
    if event.transition is None:
        raise RuntimeError("a state callback outside a transition")
    return State[event.transition.source]


def _outputs(
    motor_cmd: float, brake: bool, alarm: bool, heartbeat: bool, motor_power: bool
) -> Outputs:
    """``Outputs`` by position through ``tuple.__new__``: the same tuple, without the
    NamedTuple's Python-level ``__new__`` (built every tick)."""
    outputs: Outputs = tuple.__new__(Outputs, (motor_cmd, brake, alarm, heartbeat, motor_power))
    return outputs


HOLD_CARRY_S = 0.5  # a held UP or RETURN carries into the supervised recovery after this on
# the brake (stopped first; in the same tick the new plan jumped the setpoint)


@dataclass(frozen=True, slots=True)
class TransitionRecord:
    t_s: float
    source: str
    dest: str
    trigger: str


@dataclass(frozen=True, slots=True)
class EventRecord:
    t_s: float
    message: str


class Controller:
    """Policy for one table. Create a fresh one at every boot (power-up or restart)."""

    def __init__(
        self,
        config: Config,
        now: float,
        on_transition: Callable[[TransitionRecord], None] | None = None,
        on_event: Callable[[EventRecord], None] | None = None,
        program: Sequence[tuple[float, float]] = (),
    ) -> None:
        self.cfg = config
        # The session's steps, (target_deg, hold_s) each; by default the config's one step.
        # Targets are clamped to the envelope when they are driven to (limits.clamp_target).
        self.session = Session(
            list(program) or [(config.session.target_deg, config.session.hold_s)]
        )
        self.jog = Jog()
        self.duty = DutyBudget(config.motion.duty_on_s, config.motion.duty_window_s)
        self.now = now
        self.boot_t = now
        self.on_transition = on_transition
        self.on_event = on_event
        self.transitions: list[TransitionRecord] = []
        self.events: list[EventRecord] = []
        self.motion = Motion(config)
        self.angle = 0.0  # fused measured angle
        self.inputs: Inputs | None = None
        self.prev_buttons: frozenset[str] = frozenset()
        self.selftest_ok = False
        self.selftest_problem: tuple[str, bool] | None = None  # the first problem seen
        self.monitor = SafetyMonitor(config)
        self.brake_test = BrakeTest()
        self.limp = LimpHome(config.limits.upright_deg)
        hw = config.hardware
        self.supervised = Supervised(hw.motor_stall_current_a, hw.motor_no_load_speed_dps)
        # The readings when a fault began holding (the supervised recovery singles out a drift).
        self.hold_raw: tuple[float | None, float | None] | None = None
        self.upright_by_evidence = False  # upright verified by the switch and the back-EMF
        self.hold_carry = False  # UP or RETURN was held when the held fault began
        self.hold_t = 0.0  # ... at this time
        # The held UP or RETURN already carried into one supervised recovery: the same hold
        # carries no further (a new press is needed), cleared when both are released.
        self.carry_spent = False
        self.boot_off_upright = False  # booted off upright: only the way back until upright
        self.cooldown_until = 0.0  # a forced return ended: the table rests upright until then
        # Reasons the application refuses new sessions, by source (e.g. "history": the store a
        # session must be recorded in has failed). Set through refuse_sessions; read only by START.
        self.sessions_refused: dict[str, str] = {}
        self.return_forced = False  # time limit or boot recovery: STOP cannot pause the return
        self.heartbeat = False
        self.motor_cmd = 0.0
        self.motor_power = False  # the supply relay as last commanded
        self.dt = 0.0
        # Each state's handlers: (on entry, every tick after the rules, on exit). transitions
        # calls the first and the last with its EventData; _progress calls the middle one.
        handlers: dict[State, tuple[Callback | None, During | None, Callback | None]] = {
            State.BOOT: (None, None, None),  # the self-test runs before the rules (_tick)
            State.IDLE: (self._enter_idle, None, None),
            State.JOGGING: (self._enter_jogging, self._during_jogging, None),
            State.HOLDING: (self._enter_holding, self._during_holding, None),
            State.RAMP: (self._enter_ramp, self._during_ramp, self._exit_ramp),
            State.HOLD: (self._enter_hold, self._during_hold, None),
            State.REST: (self._enter_rest, self._during_rest, None),
            State.PAUSED: (self._enter_paused, self._during_paused, self._exit_paused),
            State.RETURNING: (self._enter_returning, self._during_return, None),
            State.EMERGENCY_RETURN: (self._enter_emergency_return, self._during_return, None),
            State.LIMP_HOME: (self._enter_limp_home, self._during_limp_home, None),
            State.SUPERVISED_RETURN: (
                self._enter_supervised_return,
                self._during_supervised_return,
                self._exit_supervised_return,
            ),
            State.ESTOP: (self._enter_estop, None, None),
            State.FAULT: (self._enter_fault, self._during_fault, None),
        }
        self._during = {s: during for s, (_, during, _) in handlers.items() if during}
        # transitions' model is a plain object beside this one (fsm_model.py: it binds its
        # triggers there), which reads the guards named in TRANSITIONS from this controller.
        self._state = State.BOOT  # set by transitions through self.fsm.state
        self.fsm = MachineModel(self, GUARD_NAMES)
        self.machine = Machine(
            model=self.fsm,
            states=[
                {
                    "name": s,
                    "on_enter": [enter] if enter else [],
                    "on_exit": [exit_] if exit_ else [],
                }
                for s, (enter, _, exit_) in handlers.items()
            ],
            transitions=TRANSITIONS,
            initial=State.BOOT,
            send_event=True,  # callbacks get transitions' EventData (the source of a transition)
            auto_transitions=False,
            queued=True,
            ignore_invalid_triggers=True,
        )
        # Which triggers each state accepts: a button that means nothing in a state is not
        # fired at all (transitions would log a warning for every such press).
        self.valid_triggers = {s: frozenset(self.machine.get_triggers(s)) for s in State}

    # ------------------------------------------------------------------ public API
    @property
    def state(self) -> State:
        """The state machine's current state (``transitions`` sets it through ``self.fsm``)."""
        return self._state

    def trigger(self, name: str) -> bool:
        """Fire a trigger on the state machine (``_fire`` records what it did)."""
        fired: bool = self.fsm.trigger(name)
        return fired

    def may(self, trigger: str) -> bool:
        """Whether ``trigger`` would make a transition now (its guards read, nothing done)."""
        allowed: bool = getattr(self.fsm, f"may_{trigger}")()
        return allowed

    def update(self, now: float, inputs: Inputs) -> Outputs:
        """One control tick. Never raises: an internal error latches ``fault``."""
        try:
            self._tick(now, inputs)
            return self._outputs()
        except Exception as exc:  # the last line of defence must catch everything
            self._fail_safe(f"internal_error: {type(exc).__name__}: {exc}")
            self.heartbeat = not self.heartbeat
            return SAFE_OUTPUTS._replace(heartbeat=self.heartbeat)

    def refuse_sessions(self, source: str, reason: str) -> None:
        """Refuse every new session from now on, for a reason only the application can see
        (the history store has failed: a session it asked for must not run unrecorded).

        The controller holds no wiring: the application calls this on the control thread,
        between ticks, as often as it likes (the same reason again changes nothing; a new one
        is noted once). Only START from ``idle`` reads it (``may_start_session``), with the
        other interlocks: a session already under way goes on (resumed from a pause too), and
        nothing on the way back (RETURN, UP, the time limit, the e-stop, a fault's return)
        ever asks, so the person always comes back."""
        if self.sessions_refused.get(source) == reason:
            return
        self.sessions_refused[source] = reason
        self._note(f"sessions refused: {reason}")

    def allow_sessions(self, source: str) -> None:
        """Withdraw ``source``'s refusal (a person's rest interval is over): START from
        ``idle`` is judged by the other interlocks again. Called like ``refuse_sessions``."""
        if self.sessions_refused.pop(source, None) is not None:
            self._note(f"sessions allowed again: {source}")

    @property
    def session_elapsed_s(self) -> float:
        return self.session.elapsed(self.now)

    @property
    def setpoint(self) -> float:
        return self.motion.setpoint(self.angle)

    # The motion's state, read by the runner's trace and checks.
    @property
    def tracking(self) -> bool:
        return self.motion.tracking

    @property
    def profile(self) -> TrapezoidProfile:
        return self.motion.profile

    @property
    def loop(self) -> PositionLoop:
        return self.motion.loop

    @property
    def speed_limit(self) -> float:
        return self.motion.speed_limit

    @property
    def accel_limit(self) -> float:
        return self.motion.accel_limit

    # ------------------------------------------------------------------ the tick
    def _tick(self, now: float, inp: Inputs) -> None:
        """Read, then the rules in order of precedence (each sees what the earlier ones did):

        0. boot: only the self-test runs, with the motor off (then the brake test);
        1. the e-stop, over everything but a fault that already holds;
        2. the safety monitor: a new fault is latched and its recovery applied at once;
        3. the ankle lock: lost off upright, the emergency return;
        4. the pendant's presses (RETURN wins; the safest first);
        5. the latched recovery bounds whatever motion runs now, however it started;
        6. the session time limit, after the buttons so no press outlives it;
        7. a tick late past the dead-man re-plans the motion from rest;
        8. the profile steps and the state's own handler runs (``_during``).
        """
        dt, pressed = self._read(now, inp)
        if self.state == S_BOOT:
            if inp.fresh:
                self.monitor.observe_raw(now, inp)
            self._selftest(inp)
            return
        self._rule_estop(inp)
        self._rule_monitor(inp, dt)
        self._rule_ankle_lock(inp)
        self._rule_buttons(inp, pressed)
        self._apply_recovery()
        self._rule_session_limit()
        dt = self._rule_late_tick(dt)
        self._progress(dt, inp)

    def _read(self, now: float, inp: Inputs) -> tuple[float, frozenset[str]]:
        """Take the tick's time and inputs; returns dt and the buttons pressed since the last."""
        dt = self.dt = now - self.now
        self.now = now
        if self.inputs is None:  # the first update: buttons held now are held from boot
            self.monitor.held_at_boot = set(inp.buttons)
        self.inputs = inp
        self._measure(inp)
        pressed = inp.buttons - self.prev_buttons if inp.buttons else inp.buttons
        self.prev_buttons = inp.buttons
        if self.carry_spent and not {"up", "return"} & inp.buttons:
            self.carry_spent = False
        return dt, pressed

    def _rule_estop(self, inp: Inputs) -> None:
        if inp.estop_pressed and self.state != S_ESTOP and not self.fault_holding:
            self._fire("estop")

    def _rule_monitor(self, inp: Inputs, dt: float) -> None:
        if self.fault_holding:
            return
        # Also in e-stop: a sensor that goes bad meanwhile is latched now (with the alarm;
        # nothing moves), and its recovery bounds whatever motion leaves the e-stop.
        motion = self.motion  # (read once: the properties below all read it)
        tracking = motion.tracking
        det = self.monitor.check(
            make_snapshot(
                self.now,
                self.state,
                tracking,
                motion.profile.pos,
                motion.speed_limit,
                self.motor_cmd,
                self.angle,
                None if tracking else motion.braked_angle,
                self.motor_power,
                motion.profile.goal if tracking else None,
                motion.loop.denied_s if tracking else 0.0,
            ),
            inp,
            dt,
        )
        if det is not None:
            self._on_fault(det)

    def _rule_ankle_lock(self, inp: Inputs) -> None:
        if not inp.ankle_locked and self.state in LOCK_GUARDED:
            self._note("ankle lock lost: emergency return")
            self._fire("lock_lost")

    def _rule_buttons(self, inp: Inputs, pressed: frozenset[str]) -> None:
        if not pressed:
            return
        if "return" in inp.buttons:
            # Buttons pressed together: RETURN wins. While it is held nothing else counts
            # (a STOP or DOWN pressed with it must not pause or undo the way back).
            if "return" in pressed:
                self._press("return")
            return
        for button in ("stop", "up", "down", "start"):  # safest first
            if button in pressed and not (button in ("down", "start") and "up" in inp.buttons):
                self._press(button)

    def _rule_session_limit(self) -> None:
        # After the buttons, so no press starts a motion that outlives the limit (holding UP
        # out of an e-stop after the limit expired becomes the forced return).
        self._track_session_clock()
        if (
            self.session.left_upright_t is not None
            and self.state in TIME_LIMITED
            and self.session_elapsed_s >= self.cfg.session.max_duration_s
        ):
            self.return_forced = True
            self._note(
                f"session time limit {self.cfg.session.max_duration_s:g} s reached: returning"
            )
            self._fire("time_limit")

    def _rule_late_tick(self, dt: float) -> float:
        """(issue 12) Late past the dead-man: the drive was cut and the brake held the table
        (the Pi's charge pump), or a motion board slowed it on its own loop (serial). The motion
        goes on from where the table stands, re-planned from rest (after the monitor has judged
        this tick against the plan the table was following). Not from a measured speed: over
        the gap it is an average of before and after the cut. Returns the dt to step with."""
        if not (self.tracking and dt > DRIVE_GAP_S):
            return dt
        self.motion.replan_from_rest(self.angle)
        return 0.0  # the new plan starts now

    def _measure(self, inp: Inputs) -> None:
        # Two independent sensors: their mean halves the noise the loop sees while they agree
        # (disagreement is a fault, checked separately); one alone is the fallback view.
        a, b = inp.angle_primary_deg, inp.angle_secondary_deg
        distrusted = self.monitor.distrusted
        if distrusted:
            a = None if Sensor.PRIMARY in distrusted else a
            b = None if Sensor.SECONDARY in distrusted else b
        if a is not None and b is not None:
            self.angle = 0.5 * (a + b)
        else:
            self.angle = a if a is not None else (b if b is not None else self.angle)

    def _selftest(self, inp: Inputs) -> None:
        """Boot: sample the sensors with the motor off; then go where the outcome says."""
        a, b = inp.angle_primary_deg, inp.angle_secondary_deg
        up = self.cfg.limits.upright_deg
        problem = None  # (what, and whether it leaves no angle anybody can believe)
        if not inp.link_ok:
            problem = ("no link to the motion board (link_lost)", True)
        elif a is None or b is None:
            problem = ("angle sensor gives no reading", False)
        elif not sensors_agree(a, b, SENSOR_AGREE_BOOT_DEG):
            problem = (f"angle sensors disagree ({a:.1f} vs {b:.1f} deg)", False)
        elif not up - 15.0 <= a <= 100.0:
            problem = (f"angle {a:.1f} deg is outside the mechanical range", True)
        elif inp.upright_switch and a > up + 5.0:
            problem = (f"upright switch closed at {a:.1f} deg", False)
        elif not inp.upright_switch and a < up + 0.5:
            problem = (f"upright switch open at {a:.1f} deg", False)
        if problem and self.selftest_problem is None:
            self.selftest_problem = problem
        if self.now - self.boot_t < SELFTEST_S:
            return
        if self.selftest_problem:
            # Sessions stay refused (selftest_ok is False), but a return is never refused:
            # the monitor, running from the next tick, narrows the recovery (a sensor that
            # gives no reading or disagrees leads to the limp home). Only an angle nobody can
            # believe leaves nothing to return on.
            reason, unbelievable = self.selftest_problem
            unbelievable = unbelievable or (a is None and b is None)
            self._fire("selftest_failed")  # to the e-stop if it is pressed: nothing moves there
            self._on_fault(
                Detection(
                    "selftest_failed",
                    reason,
                    Recovery.HOLD if unbelievable else Recovery.EMERGENCY_RETURN,
                )
            )
            return
        # The brake test pushes the motor: only with the ankle lock confirmed (issue 11, repro 9:
        # a person standing on an unlocked table with a failed brake would be tipped). Without
        # the lock it is deferred to the pre-session test, which runs before every session.
        if (
            not inp.estop_pressed
            and self.at_upright
            and not inp.drive_inhibited
            and inp.ankle_locked
        ):
            if not self.brake_test.running:
                self.brake_test.start(self.now, self.angle)
            if self._brake_test_running(inp):
                return
        elif self.at_upright and not inp.ankle_locked and not self.brake_test.running:
            self._note("boot brake test deferred to the pre-session test: ankle lock not confirmed")
        self.selftest_ok = True
        self._note(
            "self-test passed"
            + ("" if self.brake_ok else " except the brake: sessions refused")
            + (
                (
                    "; the motion board is returning the user on its own: brake test skipped, "
                    "sessions refused"
                    if inp.board_returning
                    else "; the motion board is shut down: brake test skipped, sessions refused"
                )
                if inp.drive_inhibited
                else ""
            )
        )
        if not self.at_upright:
            # Unknown time spent inverted (power loss or crash): assume the limit is used up,
            # with the e-stop pressed too (issue 11, repro 6: a power cycle in the e-stop
            # restarted the clock, 588 s off upright against 300 s). Until the table has been
            # upright only the way back is offered: DOWN and START are refused.
            self.return_forced = True
            self.boot_off_upright = True
            self.session.left_upright_t = self.now - self.cfg.session.max_duration_s
            self._note(
                "table not upright at boot: "
                + (
                    "returning the user upright"
                    if not inp.estop_pressed
                    else "the way back (RETURN or hold UP) once the e-stop is released"
                )
            )
        self._fire("selftest_passed")

    def _brake_test_running(self, inp: Inputs) -> bool:
        """Advance the brake test; False once it is over (its verdict is then recorded)."""
        test = self.brake_test
        if not test.running:
            return False
        outcome = test.step(self.now, self.angle, inp.ankle_locked)
        if outcome is None:
            return True
        if outcome == Outcome.STOPPED:
            self._note("brake test stopped: the ankle lock opened")
        elif outcome == Outcome.FAILED:
            self._on_fault(test.failure())
        else:
            self._note(f"brake test passed (moved {test.moved:.2f} deg)")
        return False

    def _on_fault(self, det: Detection) -> None:
        """Every fault goes through here, whether the monitor or the controller found it:
        latched (with the alarm), logged, and its recovery applied."""
        self.monitor.latch(det)
        self._report(det)
        self._apply_recovery(det)

    def _apply_recovery(self, new: Detection | None = None) -> None:
        """The one place a latched recovery acts on the state machine: when a fault is latched
        (``new``), and every tick after the buttons, so a motion started meanwhile is bounded too
        (RETURN out of an e-stop after a sensor was found bad becomes the limp home)."""
        recovery, state = self.monitor.recovery, self.state
        if recovery == R_REPORT:
            return  # nothing latched that moves the table (the usual tick): no branch below acts
        if recovery == Recovery.HOLD:
            if state in (State.IDLE, State.SUPERVISED_RETURN) and (
                new is None or new.recovery != Recovery.HOLD
            ):
                # At a verified upright a held fault only refuses sessions; a lesser fault does
                # not stop a supervised recovery (an over-travel switch tripped by a table that
                # slid there is evidence, not a reason to stop).
                return
            if state == State.FAULT:
                if new is not None:
                    self._stop_on_brake()  # escalated during a fault's return
                    self.hold_carry = self._way_back_held() and not self.carry_spent
                return
            self._fire("fault")  # also out of the e-stop: the fault also cuts the supply
        elif recovery == Recovery.LIMP_HOME:
            self._fire("fault_limp")  # from the motions it takes over (not idle: upright already)
        elif recovery == Recovery.EMERGENCY_RETURN:
            if new is None:
                if state != State.IDLE:  # at idle a fault's return has arrived
                    self._fire("fault_return")
            elif new.recovery != Recovery.REPORT and state != State.ESTOP:
                # (In e-stop nothing moves; the recovery applies when it is left.)
                self._fire("fault_return")
        if new is not None and new.brake_slips and not self.tracking and not self.motionless:
            # Hold on the motor from now on, whatever else is latched: at idle a limp home
            # (a sensor found bad earlier) has nowhere to go and the table slid past upright.
            self._brake()

    def _report(self, det: Detection) -> None:
        """Log a fault just latched; a sensor it dropped leaves this tick's angle at once."""
        self._note(f"fault: {det.code}: {det.reason} ({det.recovery.replace('_', ' ')})")
        if det.good_sensor and self.inputs is not None:
            self._measure(self.inputs)
            if self.tracking and abs(self.profile.vel) <= 0.5 * self.profile.amax * self.dt:
                # A motion just begun on the bad reading (the boot's return on a noisy mean;
                # its planned speed can stop within the tick's acceleration) starts again from
                # where the good one says the table stands: its setpoint 0.9
                # deg off drove a 40 kg user to 11.8 deg/s (campaign 2026 index 3336).
                self.motion.replan_from_rest(self.angle)
                self.loop.reset(self.angle, self.loop.load)  # its state saw the bad reading

    def _track_session_clock(self) -> None:
        if has_left_upright(self.angle, self.cfg.limits.upright_deg):
            self.session.start_clock(self.now)

    # ------------------------------------------------------------------ the states' handlers
    def _progress(self, dt: float, inp: Inputs) -> None:
        """Step the active profile, then the state's own handler (``_during``)."""
        self.motion.step(dt, self.now)
        during = self._during.get(self.state)
        if during is not None:
            during(dt, inp)

    def _during_jogging(self, dt: float, inp: Inputs) -> None:
        if self.jog.button not in inp.buttons:
            self._fire("jog_end")
        elif self.now - self.jog.started_t >= self.cfg.motion.jog_max_s:
            self._note(
                f"jog stopped after the {self.cfg.motion.jog_max_s:g} s cap; "
                "release and press again"
            )
            self._fire("jog_end")
        elif self._settled():
            self._fire("jog_end")  # reached the end of travel

    def _during_holding(self, dt: float, inp: Inputs) -> None:
        self._brake_when_settled()
        if not self.tracking and self.at_upright:
            self._fire("arrived")

    def _during_paused(self, dt: float, inp: Inputs) -> None:
        self._brake_when_settled()

    def _brake_when_settled(self) -> None:
        if self.tracking and self._settled():
            self._brake()

    def _during_ramp(self, dt: float, inp: Inputs) -> None:
        if self.brake_test.running:
            # A failed test has already returned (to idle: sessions refused).
            if not self._brake_test_running(inp) and self.brake_ok:
                self._move_to(self.session.target_deg)
        elif self._settled():
            self._fire("arrived")

    def _during_hold(self, dt: float, inp: Inputs) -> None:
        if self.session.phase_over(self.now):
            self._fire("next_step" if self.session.next_step() else "phase_done")

    def _during_rest(self, dt: float, inp: Inputs) -> None:
        session = self.session
        if not session.rest_timing and self._settled():
            self._brake()
            session.rest_timing = True
            session.start_phase(self.now, self.cfg.session.rest_s)
        elif session.rest_timing and session.phase_over(self.now):
            self._fire("phase_done")

    def _during_limp_home(self, dt: float, inp: Inputs) -> None:
        step = self.limp.step(self.now, inp, self.monitor)
        if isinstance(step, Detection):
            self._on_fault(step)
        elif step == LimpStep.AT_SWITCH:
            self._brake()
            self._fire("limp_done")
        elif step == LimpStep.BY_ANGLE and self._settled() and self.at_upright:
            self._fire("arrived")

    def _during_return(self, dt: float, inp: Inputs) -> None:
        """The way up on a profile: returning, emergency_return, and a fault that returns."""
        if inp.board_returning:
            # The motion board brings the user up on its own and refuses our commands (it
            # never stops a return half way): our setpoint waits on the table, and once the
            # board is done (shut down at upright) our profile arrives where the table is.
            self.motion.replan_from_rest(self.angle)
            return
        slower = self.motion.adapt_to_torque(self.now, self.angle, self.motor_cmd)
        if slower is not None:
            self._note(f"drive near full duty on the way up: re-planned at {slower:.1f} deg/s")
        if self._settled() or (inp.upright_switch and self.at_upright and self.profile.done):
            if self.at_upright:
                if not self._fire("arrived"):
                    self._on_fault(
                        Detection(
                            "upright_unverified",
                            f"at {self.angle:.1f} deg but the upright switch does not agree",
                            Recovery.HOLD,
                        )
                    )
            else:  # the profile is done but the table is not there: never call that idle
                self._on_fault(
                    Detection(
                        "return_incomplete",
                        f"stopped at {self.angle:.1f} deg, not upright",
                        Recovery.HOLD,
                    )
                )

    def _during_fault(self, dt: float, inp: Inputs) -> None:
        if not self.fault_holding:
            self._during_return(dt, inp)
        elif self.hold_carry:
            # UP or RETURN was already held when the hold began (the motion it drove ended in
            # the fault): held on, it is the supervised recovery, without a second press
            # (campaign 2026 index 5556: UP held for 60 s did nothing). Once only: after a
            # supervised stop a new press is needed.
            # Anything that refuses the recovery meanwhile (the e-stop pressed, the link lost,
            # the board's take-over) ends the carry: releasing the e-stop with UP still held
            # must not move the table (DESIGN: releasing it does not move anything).
            held = {"up", "return"} & inp.buttons
            if not held or not self.may_supervise:
                self.hold_carry = False
            elif self.now - self.hold_t >= HOLD_CARRY_S:
                self.hold_carry = False
                self.carry_spent = True
                self._note("UP or RETURN held since the fault latched: supervised recovery")
                self._fire("press_return" if "return" in held else "press_up")

    def _during_supervised_return(self, dt: float, inp: Inputs) -> None:
        """Hold-to-run, watched, ended by a verified upright (or a release, or a verdict)."""
        if not {"up", "return"} & inp.buttons:
            self._note(
                "supervised recovery released: holding on the brake (hold UP or RETURN to go on)"
            )
            self._fire("supervised_release")
            return
        sup = self.supervised
        if sup.probing:
            probe = sup.probe(self.now, inp.motor_current_a)
            if probe is not None:
                det = Detection(probe.code, probe.reason, Recovery.HOLD, driver_stuck_on=True)
                self.monitor.latch(det)
                self._report(det)
                self._fire("supervised_release")
            elif not sup.probing:
                # It obeyed: no longer known stuck on (at idle the relay may close again to
                # hold on the motor; a new stuck-on detection sets it again).
                self.monitor.driver_disobeys = False
                self._note(
                    f"motor driver obeys ({inp.motor_current_a:.1f} A at duty 0): brake released"
                )
                self._begin_supervised_motion()
            return
        if sup.emf is None:
            pos = self.angle
            if self._settled() and self.at_upright:
                self._brake()
                if self._fire("arrived"):
                    return
        else:
            switch = inp.upright_switch and self.monitor.upright_switch_trusted
            upright = sup.emf_step(self.motor_cmd, inp.motor_current_a, dt, switch)
            pos = sup.emf.travel
            raw = (inp.angle_primary_deg, inp.angle_secondary_deg)
            by_readings = not upright and sup.readings_arrived(
                raw, SENSOR_AGREE_DEG, self.cfg.limits.upright_deg
            )
            if upright or by_readings:
                self.upright_by_evidence = True
                sup.emf = None  # on the brake from here
                self._note(
                    "upright by the upright switch and the motor's back-EMF "
                    "(no angle sensor trusted)"
                    if upright
                    else "upright by both angle readings, which moved together toward upright "
                    "on the back-EMF drive (the upright switch was never seen closing)"
                )
                self._brake()
                if self._fire("arrived"):
                    return
        readings = (inp.angle_primary_deg, inp.angle_secondary_deg)
        sinking = sup.readings_sink(readings, SENSOR_AGREE_DEG)
        still = sup.readings_still(self.now, readings, SENSOR_AGREE_DEG)
        verdict = sup.judge(self.now, pos, self.motor_cmd, sinking, still)
        if verdict is not None:
            # The recovery is a hold already: the verdict only ends this supervised motion.
            det = Detection(verdict.code, verdict.reason, Recovery.HOLD)
            self.monitor.latch(det)
            self._report(det)
            self._fire("supervised_release")

    def _settled(self) -> bool:
        return self.motion.settled(self.angle, self.now, self.monitor.measured_speed())

    # ------------------------------------------------------------------ write
    def _outputs(self) -> Outputs:
        self.heartbeat = not self.heartbeat
        state = self.state
        if (
            self.brake_test.running
            and state in (S_BOOT, S_RAMP)
            and self.inputs is not None
            and self.inputs.ankle_locked
        ):
            self.motor_cmd = self.brake_test.duty
            return _outputs(self.motor_cmd, True, bool(self.monitor.latched), self.heartbeat, True)
        if state == S_SUPERVISED_RETURN and self.supervised.emf is not None:
            self.motor_cmd = self.supervised.emf_duty()  # no trusted angle: on the back-EMF
            brake = False
        elif self.tracking and not self.motionless:
            self.motor_cmd = self.motion.drive(
                self.angle,
                self.dt,
                self._live_current(),
                now=self.now,
                trusted=not self.monitor.latched,
            )
            if state == S_SUPERVISED_RETURN:
                # Bounded: a wrong load estimate cannot wind it up to full duty.
                self.motor_cmd = clamp(self.motor_cmd, -SUPERVISED_DUTY_MAX, SUPERVISED_DUTY_MAX)
            brake = False
        else:
            self.motor_cmd = 0.0
            brake = True
        alarm = (
            state in ALARM_STATES
            or bool(self.monitor.latched)
            or (state == S_ESTOP and not self.at_upright)
        )
        # The supply relay stays closed while holding: at duty 0 the H-bridge shorts the motor,
        # whose back-EMF then slows any motion the brake fails to stop (a failed brake with the
        # relay open let a heavy user fall at 84 deg/s in the simulator; closed, about 5 deg/s).
        # It opens where the drive itself is suspect (a fault that holds) and during the boot
        # self-test.
        # At idle the relay stays closed while the motor holds the table (a brake found
        # slipping: opened, the released brake let the table sink to the stop), unless the
        # driver is known to ignore its command (the monitor watches at idle; not in a held
        # fault, where the supply stays cut and only the brake is left).
        self.motor_power = not (
            state == S_BOOT
            or self.fault_holding
            or (
                state == S_IDLE
                and self.monitor.recovery == R_HOLD
                and (brake or self.monitor.driver_disobeys)
            )
        )
        if not self.motor_power and not brake:
            # Never the brake released with the supply cut: nothing would hold the table.
            self.motor_cmd, brake = 0.0, True
        self.duty.record(self.now, self.dt, self.motor_cmd != 0.0 and self.motor_power)
        return _outputs(self.motor_cmd, brake, alarm, self.heartbeat, self.motor_power)

    # ------------------------------------------------------------------ helpers
    def _live_current(self) -> float | None:
        """The motor current for the loop's load bound; None where the sensor gives nothing
        (a driven motor draws at least its no-load current: 0 A is a dead sensor, no evidence)."""
        current = None if self.inputs is None else self.inputs.motor_current_a
        return current if current is not None and current > LIVE_CURRENT_A else None

    def _fire(self, trigger: str) -> bool:
        """Fire a trigger and record the transition it made; False if it made none."""
        before = self.state
        if trigger not in self.valid_triggers[before]:
            return False
        self.trigger(trigger)
        if self.state != before:
            record = TransitionRecord(self.now, before.value, self.state.value, trigger)
            self.transitions.append(record)
            if self.on_transition:
                self.on_transition(record)
            return True
        return False

    def _press(self, button: str) -> None:
        """Fire a pendant press; a press the guards refuse is logged with their reasons."""
        trigger = "press_" + button
        if not self._fire(trigger):
            refusal = self._refusal(trigger)
            if refusal is not None:
                self._note(refusal)

    def _note(self, message: str) -> None:
        record = EventRecord(self.now, message)
        self.events.append(record)
        if self.on_event:
            self.on_event(record)

    def _fail_safe(self, reason: str) -> None:
        """Last resort after an exception: stop, brake, latch fault, whatever state we were in."""
        self.motion.tracking = False
        self.motor_cmd = 0.0
        self.hold_carry = False  # a held button never carries out of an internal error
        inp = self.inputs  # the readings as this hold begins (a supervised recovery's reference)
        self.hold_raw = None if inp is None else (inp.angle_primary_deg, inp.angle_secondary_deg)
        try:
            self.monitor.hold_after_error()
            self._note(f"fault: {reason}")
            if self.state != State.FAULT:
                before = self.state
                self.machine.set_state(State.FAULT)  # a trigger might raise again; force it
                self.transitions.append(
                    TransitionRecord(self.now, before.value, State.FAULT.value, "exception")
                )
                if self.on_transition:
                    self.on_transition(self.transitions[-1])
        except Exception:  # nothing may escape the safety path
            pass

    def _way_back_held(self) -> bool:
        """UP or RETURN held now (noting when the hold began, for HOLD_CARRY_S)."""
        self.hold_t = self.now
        return self.inputs is not None and bool({"up", "return"} & self.inputs.buttons)

    def _brake(self) -> None:
        if not self.brake_ok and not self.motionless:
            # The brake does not hold: keep the motor holding position instead.
            if not self.tracking:
                self._move_to(self.angle, Pace.EMERGENCY)
            self.motion.stop()
            return
        self.motion.engage_brake(self.angle, trusted=not self.monitor.latched)

    def _move_to(self, goal: float, pace: Pace = Pace.NORMAL) -> None:
        self.motion.move_to(goal, self.angle, pace)

    # ------------------------------------------------------------------ what holds now
    @property
    def brake_ok(self) -> bool:
        """False once the brake was seen slipping: the motor holds instead from then on. (Seeding
        the motor's load estimate from the creep speed was tried and measured worse: the speed
        of a table that has only just begun to creep is too noisy to be a prior.)"""
        return not self.monitor.brake_slips

    @property
    def fault_holding(self) -> bool:
        """In ``fault`` with no trusted way to move: motor off, supply cut, brake on."""
        return self.state == S_FAULT and self.monitor.recovery == R_HOLD

    @property
    def motionless(self) -> bool:
        """States in which the controller never drives the motor."""
        return self.state in MOTIONLESS_STATES or self.fault_holding

    # ------------------------------------------------------------------ guards
    # The transition table's conditions: read-only properties, so transitions' own
    # ``may_<trigger>()`` can ask them. Why a press was refused is logged by _refusal.
    @property
    def verified_upright(self) -> bool:
        """Upright by evidence that agrees: a trusted angle at upright and the upright switch
        closed (or both angle sensors trusted and agreeing), or the switch plus the back-EMF
        when no angle is trusted. ``idle`` is entered only on this (issue 11, repro 2)."""
        if self.upright_by_evidence:
            return True
        inp = self.inputs
        if inp is None or not self.at_upright or self.monitor.position_untrusted:
            return False
        both = (
            not self.monitor.distrusted
            and inp.angle_primary_deg is not None
            and inp.angle_secondary_deg is not None
        )
        # (A switch stuck closed agrees trivially: then the trusted sensor is the evidence. The
        # limp home, which ends on the switch alone, checks the switch separately.)
        return inp.upright_switch or both

    @property
    def may_supervise(self) -> bool:
        """The supervised recovery is refused only where it cannot help or would harm; a fault
        that returns by itself is already on the way up."""
        return (
            self.monitor.recovery == Recovery.HOLD
            and self.inputs is not None
            and not self._supervise_problems()
        )

    @property
    def off_upright(self) -> bool:
        return not self.at_upright

    @property
    def fault_returning(self) -> bool:
        return self.monitor.recovery != Recovery.HOLD

    @property
    def at_upright(self) -> bool:
        return is_upright(self.angle, self.cfg.limits.upright_deg)

    @property
    def estop_input(self) -> bool:
        return self.inputs is not None and self.inputs.estop_pressed

    @property
    def estop_released(self) -> bool:
        return not self.estop_input

    @property
    def may_start_session(self) -> bool:
        return not self._start_problems()

    @property
    def may_jog_down(self) -> bool:
        return not self._jog_down_problems()

    @property
    def jogging_down(self) -> bool:
        return self.jog.direction > 0

    @property
    def paused_in_ramp(self) -> bool:
        return self.session.paused_from == State.RAMP

    @property
    def paused_in_hold(self) -> bool:
        return self.session.paused_from == State.HOLD

    @property
    def paused_in_rest(self) -> bool:
        return self.session.paused_from == State.REST

    @property
    def paused_in_returning(self) -> bool:
        return self.session.paused_from == State.RETURNING

    @property
    def return_is_forced(self) -> bool:
        return self.return_forced

    # ------------------------------------------------------------------ refusal reasons
    def _refusal(self, trigger: str) -> str | None:
        """Why the guards refused ``trigger`` in this state, for the log (None where no guard
        of its transitions gives reasons)."""
        guards = {
            condition.func
            for transition in self.machine.get_transitions(trigger, source=self.state)
            for condition in transition.conditions
        }
        if "estop_released" in guards and self.estop_input:
            return "e-stop still pressed: release it first"
        for guard, action, problems in (
            ("may_start_session", "start", self._start_problems),
            ("may_jog_down", "jog down", self._jog_down_problems),
            ("may_supervise", "supervised recovery", self._supervise_problems),
        ):
            found = problems() if guard in guards else []
            if found:
                return f"refused {action}: " + "; ".join(found)
        return None

    def _start_problems(self) -> list[str]:
        # The application's refusals (refuse_sessions) stop a new session, not a jog: a jog
        # needs no record, and UP (a jog toward upright) is part of the way back.
        return self._interlock_problems() + list(self.sessions_refused.values())

    def _jog_down_problems(self) -> list[str]:
        problems = self._interlock_problems()
        if self.angle >= self.cfg.limits.max_angle_deg - SETTLE_DEG:
            problems.append("already at the maximum angle")
        return problems

    def _supervise_problems(self) -> list[str]:
        inp = self.inputs
        if self.monitor.recovery != Recovery.HOLD or inp is None:
            return []
        problems = []
        if inp.estop_pressed:
            problems.append("e-stop pressed: release it first")
        if not inp.link_ok:
            problems.append("no link to the motion board (it returns the user on its own)")
        if inp.drive_inhibited:
            problems.append("the motion board has taken over or is shut down")
        if self.supervised.refused:
            problems.append(
                f"an earlier supervised recovery went the wrong way ({self.supervised.refused}): "
                "manual release, docs/safety.md"
            )
        if self.verified_upright:
            problems.append("already upright")
        return problems

    def start_problems(self) -> list[str]:
        """Why a START would be refused now (empty: nothing stands in its way), for displays."""
        return self._start_problems()

    def _interlock_problems(self) -> list[str]:
        inp = self.inputs
        problems = []
        if inp is None:
            return ["no inputs yet"]
        if not inp.ankle_locked:
            problems.append("ankle lock not confirmed")
        if inp.estop_pressed:
            problems.append("e-stop pressed")
        if not self.selftest_ok:
            problems.append("self-test not passed")
        if self.monitor.latched:
            problems.append("latched fault: " + ", ".join(sorted(self.monitor.latched)))
        if inp.angle_primary_deg is None or inp.angle_secondary_deg is None:
            problems.append("an angle sensor gives no reading")
        elif not sensors_agree(inp.angle_primary_deg, inp.angle_secondary_deg, SENSOR_AGREE_DEG):
            problems.append("angle sensors disagree")
        if inp.overtravel_tripped:
            problems.append("over-travel switch open")
        if self.boot_off_upright:
            problems.append(
                "the table was off upright at power-on: it must be upright first "
                "(RETURN or hold UP)"
            )
        if self.now < self.cooldown_until:
            problems.append(
                "rest upright after a forced return: wait "
                f"{self.cooldown_until - self.now:.0f} s "
                f"(session.cooldown_s = {self.cfg.session.cooldown_s:g})"
            )
        wait = self.duty.wait_s(self.now)
        if wait > 0:
            problems.append(
                f"the actuator's duty budget ({self.cfg.motion.duty_on_s:g} s on per "
                f"{self.cfg.motion.duty_window_s:g} s) is used up: wait {wait:.0f} s"
            )
        if inp.drive_inhibited:
            problems.append(
                "the motion board has acted alone or is shut down (check the table, then clear it)"
            )
        if inp.estop_discrepancy or inp.ankle_discrepancy:
            problems.append("a dual-channel safety input disagrees with itself")
        if self.at_upright and not inp.upright_switch:
            problems.append("upright switch open at upright")
        return problems

    # ------------------------------------------------------------------ entries and exits
    # (transitions' callbacks, with its EventData)
    def _jog_down(self, event: EventData) -> None:
        self.jog.direction = 1

    def _jog_up(self, event: EventData) -> None:
        if _source(event) == State.JOGGING:
            self._note("UP pressed during a DOWN jog: jogging up")
        self.jog.direction = -1

    def _enter_idle(self, event: EventData) -> None:
        self._brake()
        if self.return_forced:  # time limit, fault, boot recovery, supervised recovery: rest first
            self.cooldown_until = self.now + self.cfg.session.cooldown_s
            if self.cfg.session.cooldown_s > 0:
                self._note(
                    "upright after a forced return: the table rests "
                    f"{self.cfg.session.cooldown_s:g} s before it tilts down again"
                )
        self.boot_off_upright = False
        self.return_forced = False
        self.session.end()

    def _start_session_clock(self) -> None:
        """The clock starts when motion away from upright is commanded: never later than
        the table actually leaves (the angle check in the tick is the backstop for motion
        nobody commanded, such as a sagging brake)."""
        self.session.start_clock(self.now)

    def _enter_jogging(self, event: EventData) -> None:
        self.jog.started_t = self.now
        if self.jog.direction > 0:
            self._start_session_clock()
        limits = self.cfg.limits
        self._move_to(limits.max_angle_deg if self.jog.direction > 0 else limits.upright_deg)

    def _enter_holding(self, event: EventData) -> None:
        self.motion.stop()

    def _enter_ramp(self, event: EventData) -> None:
        self._start_session_clock()
        if _source(event) == State.IDLE:
            self.session.step_i = 0
            self.brake_test.start(self.now, self.angle)  # before every session; then the ramp
        else:
            self._move_to(self.session.target_deg)

    def _enter_hold(self, event: EventData) -> None:
        self._brake()
        self.session.start_phase(self.now, self.session.hold_s)

    def _enter_rest(self, event: EventData) -> None:
        self.session.rest_timing = False
        self._move_to(self.cfg.session.rest_deg)

    def _exit_ramp(self, event: EventData) -> None:
        self.brake_test.cancel()  # a pre-session brake test interrupted by STOP or e-stop

    def _exit_paused(self, event: EventData) -> None:
        self.session.paused_from = None

    def _enter_paused(self, event: EventData) -> None:
        self.session.pause(_source(event), self.now)
        self.motion.stop()

    def _enter_returning(self, event: EventData) -> None:
        self._move_to(self.cfg.limits.upright_deg)

    def _enter_emergency_return(self, event: EventData) -> None:
        self.return_forced = True
        self._move_to(self.cfg.limits.upright_deg, Pace.EMERGENCY)

    def _enter_limp_home(self, event: EventData) -> None:
        self.return_forced = True
        self._move_to(self.cfg.limits.upright_deg, Pace.LIMP)
        if self.monitor.position_untrusted:
            self.profile.goal = self.limp.goal(position_untrusted=True)
        upright_switch = self.inputs is not None and self.inputs.upright_switch
        self.limp.begin(self.now, self.angle, self.profile.vmax, upright_switch)

    def _enter_estop(self, event: EventData) -> None:
        self.motion.engage_brake(self.angle, trusted=False)  # the e-stop cuts the motor anyway
        self._note("e-stop: motor off, brake on (latched; RETURN or hold UP after release)")

    def _enter_fault(self, event: EventData) -> None:
        if self.fault_holding:
            self._stop_on_brake()
            # (Not after the supervised watch's own stop, a release or a verdict: then a new press.)
            # Once per hold: after a carried recovery was stopped by the monitor too (a driver
            # stuck on again, re-injected three times, was probed three times on one press).
            self.hold_carry = (
                event.event.name != "supervised_release"
                and self._way_back_held()
                and not self.carry_spent
            )
            if not self.verified_upright:
                self._note(
                    "held on the brake: hold UP or RETURN to come up slowly (supervised recovery)"
                )
        else:
            self.return_forced = True
            self._move_to(self.cfg.limits.upright_deg, Pace.EMERGENCY)

    def _enter_supervised_return(self, event: EventData) -> None:
        self.return_forced = True
        if self.monitor.driver_disobeys or "runaway" in self.monitor.latched:
            # The driver ignored its command once (a runaway, maybe intermittent; caught by its
            # current, or by the speed or following error, which cannot tell a driver stuck on
            # from a slipping load): first probe it on the brake with the supply closed and
            # duty 0 (Supervised.probe).
            self.supervised.begin_probe(self.now)
            self._note(
                "supervised recovery: probing the motor driver on the brake first "
                "(supply closed, duty 0)"
            )
            return
        self._begin_supervised_motion()

    def _begin_supervised_motion(self) -> None:
        """Release the brake toward upright, on a trusted angle or on the back-EMF."""
        inp = self.inputs
        monitor = self.monitor
        # The readings parted while the fault held (the monitor does not run then: a reading
        # that drifted on the brake was not judged, and their mean is no angle at all; a
        # drift of 158 deg during a hold had the recovery trust the drifting one, campaign
        # 2026 index 373): judged now against the readings when the hold began. Never once
        # the readings were found frozen: a reading that stood still then says nothing (one
        # still stuck would be trusted over the one that came back).
        parted = (
            inp is not None
            and not monitor.distrusted
            and inp.angle_primary_deg is not None
            and inp.angle_secondary_deg is not None
            and abs(inp.angle_primary_deg - inp.angle_secondary_deg) > SENSOR_AGREE_DEG
        )
        if (
            not monitor.sensors_frozen
            and (parted or monitor.position_untrusted)
            and inp is not None
            and self.hold_raw is not None
        ):
            good = single_out(self.hold_raw, (inp.angle_primary_deg, inp.angle_secondary_deg))
            if good is not None and self._switches_back_the_moved_reading(inp, good):
                good = None  # the brake did not hold: the one that moved may be right
            if good is None and parted and not monitor.position_untrusted:
                # Apart, and which one moved on the brake cannot be told: neither is trusted
                # for position (as the monitor's own ambiguous case): the back-EMF drive.
                monitor.position_untrusted = True
                self._note(
                    "supervised recovery: the angle readings parted during the hold and which "
                    "one is wrong cannot be told: driving on the back-EMF"
                )
            if good is not None:
                # On the brake the good sensor stood still and the bad one kept moving (a drift):
                # it is singled out, and the way back runs on the good one.
                good_sensor = Sensor(good)
                det = self.monitor.single_out_sensor(
                    good_sensor,
                    f"the {good_sensor.other} angle reading moved on the brake, the "
                    f"{good_sensor} did not: trusting the {good_sensor}",
                )
                self._report(det)
        if self.monitor.position_untrusted:
            # No reading is trusted for position: drive on the back-EMF (bounded duty), end on
            # the upright switch. The load prior is gravity's pull last measured on trusted
            # sensors (Motion.emf_prior).
            self.motion.drive_open_loop(SUPERVISED_SPEED_DPS, SUPERVISED_ACCEL_DPS2)
            readings = None if inp is None else (inp.angle_primary_deg, inp.angle_secondary_deg)
            self.supervised.begin_on_emf(self.now, self.motion.emf_prior(), readings)
        else:
            # The loop's last load estimate is not a prior here: it may have wound up against the
            # fault that held (a jam drove it to its bound and the release then ran the table
            # at 9.7 deg/s toward inversion).
            # The best prior is gravity's pull where the table last stopped on trusted sensors
            # (from none, a 136 kg user at 60 deg passed 2 deg/s at the brake release).
            self.motion.restart(
                self.cfg.limits.upright_deg,
                self.angle,
                Pace.SUPERVISED,
                self.motion.trusted_load,
            )
            self.supervised.begin_on_angle(self.now, self.angle)
        self._note(
            f"supervised recovery: toward upright at {SUPERVISED_SPEED_DPS:g} deg/s while UP or "
            "RETURN is held"
            + (" (on the back-EMF and the upright switch)" if self.supervised.emf else "")
        )

    def _switches_back_the_moved_reading(self, inp: Inputs, good: str) -> bool:
        """ "It did not move on the brake" assumes the brake held. The over-travel switch open
        where only the reading that moved puts the table (past the point the monitor takes
        the switch for real) says the brake slipped and the still one may be stuck: then
        neither is trusted (a slipping brake with a stuck secondary slid the table to the
        stop at 95 deg, and the stuck reading was trusted)."""
        moved = inp.angle_secondary_deg if good == "primary" else inp.angle_primary_deg
        still = inp.angle_primary_deg if good == "primary" else inp.angle_secondary_deg
        if moved is None or still is None or not inp.overtravel_tripped:
            return False
        return moved >= self.cfg.limits.max_angle_deg + OVERTRAVEL_REAL_DEG > still

    def _exit_supervised_return(self, event: EventData) -> None:
        self.supervised.end()

    def _stop_on_brake(self) -> None:
        inp = self.inputs
        self.hold_raw = None if inp is None else (inp.angle_primary_deg, inp.angle_secondary_deg)
        self.motion.engage_brake(self.angle, trusted=False)
        self.motor_cmd = 0.0
