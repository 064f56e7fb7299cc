"""Safety invariants checked on every run, from the TRUE physics, not the controller's view.

``InvariantChecker`` is fed one trace row per tick and collects violations; the CLI
exits 1 when there is any. These are the checks a builder relies on to trust a trace:

- envelope: the true angle stays within upright .. max_angle (0.5 deg tolerance); a table
  that starts beyond it (a boot there: DESIGN's "a start beyond the limits") or is carried
  beyond it while the drive is cut (``envelope_undriven``: e-stop, power off, hung, a stalled
  loop, a fault held on the brake; only the brake holds then) may afterwards only come back,
  never go deeper;
- no overshoot: a motion never passes its goal by more than 0.5 deg;
- speed: the true speed never exceeds the active profile's limit (when a faster profile
  ends, its limit decays at the deceleration limit: a controlled slow-down); after an
  injected fault, the emergency speed (the fault-injection acceptance criterion);
- acceleration: the setpoint never accelerates faster than the active limit;
- time limit: once the table has been off upright for ``max_duration_s`` it is returning
  (an emergency return, a limp home or a supervised return are ways back too), or stopped
  by e-stop/fault, which override it;
- ankle lock: while unlocked the table never leaves upright, and never tilts further
  toward inversion than it needs to stop (plus 0.5 deg);
- e-stop: while the e-stop input is pressed the motor command is 0 and the brake is on,
  and once the brake has stopped the table (0.5 s) nothing moves until the e-stop state
  is left;
- power loss and a hung controller: the brake holds the angle (once it has had 0.5 s to
  stop the table).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from controller.core.config import Config
from controller.core.limits import LEAVE_TOL_DEG, UPRIGHT_TOL_DEG, stopping_distance
from sim.table import DEADMAN_S

ENVELOPE_TOL_DEG = 0.5
OVERSHOOT_TOL_DEG = 0.5
SPEED_TOL_DPS = 0.05  # true speed resolution of the check (sensor-free, physics truth)
STILL_DPS = 0.05  # "not moving"
BRAKE_STOP_S = 0.5  # time the brake is given to stop the table
TIME_LIMIT_GRACE_S = 0.1  # the controller's clock runs on the measured angle
# After the session time limit, the states that are a way back or a stop that overrides it.
# ``limp_home`` and ``supervised_return`` are ways back too (DESIGN section 3, "Faults" and "A
# way back from every state"): a limp home is the return by the safest means left when a
# sensor is bad (the emergency profile is not trusted then), a supervised return the
# hold-to-run way back from a held fault (which itself overrides the limit; toward upright
# only: a person who holds UP after the limit comes up in it, campaign 2026 index 2010). A
# limp home or supervised return under way when the limit passes already is the return it
# asks for.
RETURN_OK = frozenset(
    {"returning", "emergency_return", "estop", "fault", "idle", "boot", "power_off", "hung"}
    | {"limp_home", "supervised_return"}
)
# States in which the controller is not driving and the brake (or the e-stop) stops the table.
NOT_DRIVING = ("estop", "fault", "power_off", "hung")
# States in which the drive is cut (the e-stop's relay and latch, no power, the dead-man): only
# the brake holds the table (so it does in a ``fault`` that holds: see ``feed``).
UNDRIVEN = ("estop", "power_off", "hung")


class Row(NamedTuple):
    t: float
    state: str
    angle: float
    vel: float
    setpoint_vel: float
    goal: float | None
    tracking: bool
    speed_limit: float
    accel_limit: float
    motor_cmd: float
    brake: bool
    estop_in: bool
    ankle_locked: bool
    powered: bool


@dataclass
class InvariantChecker:
    config: Config
    violations: dict[str, tuple[float, str, int]] = field(default_factory=dict)
    _prev: Row | None = None
    _goal: float | None = None
    _goal_dir: float = 0.0
    _allowed: float = 0.0
    fault_injected: bool = False
    board_acts_alone: bool = False  # serial: the motion board may return the table on its own
    _left_t: float | None = None
    _lock_ceiling: float | None = None
    _state_since: float = 0.0
    _off_since: float | None = None
    _ceiling: float | None = None  # the envelope as judged now (see _envelope)
    _floor: float = 0.0
    allowed_speed: float = 0.0  # the speed bound the last row was checked against (for plots)

    def _violate(self, kind: str, t: float, message: str) -> None:
        first = self.violations.get(kind)
        if first is None:
            self.violations[kind] = (t, message, 1)
        else:
            self.violations[kind] = (first[0], first[1], first[2] + 1)

    def _envelope(self, t: float, state: str, angle: float, undriven: bool) -> None:
        """The envelope, upright .. max_angle (0.5 deg tolerance), held against what the
        controller does. Beyond it at the start (a boot there, DESIGN's "a start beyond the
        limits") is the scenario's doing; while the drive is cut (``undriven``: ``UNDRIVEN``
        states, a stalled loop's gap past the dead-man) only the brake holds the table, and an
        excursion then is its own kind (``envelope_undriven``, which a failed brake makes
        unavoidable). From either, the table may only come back: the bound
        is the least deep angle reached since, never inside the envelope."""
        lim = self.config.limits
        if self._ceiling is None:
            self._ceiling, self._floor = max(lim.max_angle_deg, angle), min(lim.upright_deg, angle)
        if undriven:
            if not (
                lim.upright_deg - ENVELOPE_TOL_DEG <= angle <= lim.max_angle_deg + ENVELOPE_TOL_DEG
            ):
                self._violate(
                    "envelope_undriven",
                    t,
                    f"angle {angle:.2f} deg beyond the envelope {lim.upright_deg:g} .. "
                    f"{lim.max_angle_deg:g} in {state} (the drive was cut: only the brake held)",
                )
            self._ceiling = max(self._ceiling, angle)
            self._floor = min(self._floor, angle)
            return
        ceiling = self._ceiling = min(self._ceiling, max(lim.max_angle_deg, angle))
        floor = self._floor = max(self._floor, min(lim.upright_deg, angle))
        if angle > ceiling + ENVELOPE_TOL_DEG:
            where = f" (deeper than {ceiling:.2f} deg, where it had come back to)"
            self._violate(
                "envelope",
                t,
                f"angle {angle:.2f} deg beyond max_angle_deg {lim.max_angle_deg:g}"
                + (where if ceiling > lim.max_angle_deg + 0.05 else ""),
            )
        if angle < floor - ENVELOPE_TOL_DEG:
            where = f" (beyond {floor:.2f} deg, where it had come back to)"
            self._violate(
                "envelope",
                t,
                f"angle {angle:.2f} deg beyond upright_deg {lim.upright_deg:g}"
                + (where if floor < lim.upright_deg - 0.05 else ""),
            )

    def messages(self) -> list[str]:
        out = []
        for kind, (t, message, count) in sorted(self.violations.items(), key=lambda kv: kv[1][0]):
            more = f" (and {count - 1} more ticks)" if count > 1 else ""
            out.append(f"{kind}: at t={t:.2f} s: {message}{more}")
        return out

    def feed(self, r: Row) -> None:
        lim, ses = self.config.limits, self.config.session
        # The row's fields as locals, read once (this runs every tick of every run).
        (
            t,
            state,
            angle,
            vel,
            setpoint_vel,
            goal,
            tracking,
            speed_limit,
            accel_limit,
            motor_cmd,
            brake,
            estop_in,
            ankle_locked,
            powered,
        ) = r
        prev = self._prev
        if prev is None or prev.state != state:
            self._state_since = t
        # (A row after a gap past the dead-man ends a stalled loop: the hardware cut the drive
        # meanwhile and only the brake held the table.)
        gap = prev is not None and t > prev.t + DEADMAN_S
        # (So is a ``fault`` that holds on the brake: the drive is untrusted or cut, by the
        # controller's relay or the e-stop's, and with a failed brake nothing holds the table.)
        holding = state == "fault" and motor_cmd == 0.0 and brake
        self._envelope(t, state, angle, undriven=gap or holding or state in UNDRIVEN)
        # Overshoot of the active goal. (After a stalled loop's gap the motion is judged afresh
        # from where the table is: the drive was cut meanwhile, as for the envelope.)
        if gap:
            self._goal = None
        elif tracking and goal is not None:
            if goal != self._goal:
                self._goal = goal
                self._goal_dir = 1.0 if goal > angle else -1.0
            past = (angle - goal) * self._goal_dir
            if past > OVERSHOOT_TOL_DEG:
                self._violate(
                    "overshoot",
                    t,
                    f"angle {angle:.2f} deg passed the goal {goal:.2f} deg "
                    f"by {past:.2f} deg in {state}",
                )
        elif not tracking:
            self._goal = None
        # Speed: the active limit; a higher limit that just ended still applies while it
        # decays at the active deceleration limit (a controlled slow-down). After an injected
        # fault the bound is the emergency speed (the fault-injection acceptance criterion).
        dt = t - prev.t if prev is not None else 0.0
        if tracking:
            self._allowed = max(speed_limit, self._allowed - accel_limit * dt)
        else:
            self._allowed = max(0.0, self._allowed - self.config.motion.max_accel_dps2 * dt)
        allowed = self.allowed_speed = max(
            self._allowed, self.config.motion.emergency_speed_dps if self.fault_injected else 0.0
        )
        # (Not driving, the brake stops the table, except after an injected fault: then
        # the emergency speed holds everywhere, a drive that ignores its command included.)
        if abs(vel) > allowed + SPEED_TOL_DPS and (self.fault_injected or state not in NOT_DRIVING):
            self._violate(
                "speed",
                t,
                f"speed {abs(vel):.2f} deg/s over the {allowed:.2f} deg/s limit in {state}",
            )
        # Setpoint acceleration.
        # (Not across a gap past the dead-man, a stalled loop: the hardware cut the drive and
        # braked, and the motion is planned again from rest; that is no commanded acceleration.)
        if prev is not None and tracking and prev.tracking and prev.t < t <= prev.t + DEADMAN_S:
            acc = abs(setpoint_vel - prev.setpoint_vel) / (t - prev.t)
            if acc > accel_limit * 1.0001 + 1e-9:
                self._violate(
                    "accel",
                    t,
                    f"setpoint acceleration {acc:.2f} deg/s^2 "
                    f"over the {accel_limit:g} limit in {state}",
                )
        # Session time limit, on the true angle.
        if self._left_t is None and angle > lim.upright_deg + LEAVE_TOL_DEG:
            self._left_t = t
        elif (
            self._left_t is not None
            and angle <= lim.upright_deg + UPRIGHT_TOL_DEG
            and state == "idle"
        ):
            self._left_t = None
        if (
            self._left_t is not None
            and t - self._left_t > ses.max_duration_s + TIME_LIMIT_GRACE_S
            and state not in RETURN_OK
        ):
            self._violate(
                "time_limit",
                t,
                f"{t - self._left_t:.1f} s off upright and still in {state} "
                f"(limit {ses.max_duration_s:g} s)",
            )
        # Ankle lock: while unlocked the person is never tilted further toward inversion
        # than the table needs to stop (its stopping distance at the moment the lock was
        # lost), and once it heads back up it never gains more than the overshoot tolerance.
        if not ankle_locked and powered:
            if self._lock_ceiling is None:
                accel = (
                    accel_limit
                    if tracking and accel_limit > 0
                    else self.config.motion.max_accel_dps2
                )
                v_down = max(vel, 0.0)
                self._lock_ceiling = angle + stopping_distance(v_down, accel) + OVERSHOOT_TOL_DEG
            elif vel < 0.0:
                self._lock_ceiling = min(self._lock_ceiling, angle + OVERSHOOT_TOL_DEG)
            # Returning to upright from beyond it is never "toward inversion" in any sense
            # that matters: the ceiling is never below upright itself.
            if angle > max(self._lock_ceiling, lim.upright_deg + UPRIGHT_TOL_DEG):
                self._violate(
                    "ankle_lock",
                    t,
                    f"tilted to {angle:.2f} deg toward inversion without the ankle lock",
                )
            if (
                prev is not None
                and prev.angle <= lim.upright_deg + LEAVE_TOL_DEG < angle
                and prev.state == "idle"
            ):
                self._violate("ankle_lock", t, "left upright without the ankle lock")
        else:
            self._lock_ceiling = None
        # E-stop.
        # (A hung controller commands nothing: its stale output pins are cut by the wiring,
        # and the hang's own rule below checks that the table stops.)
        if estop_in and powered and state != "hung" and (motor_cmd != 0.0 or not brake):
            self._violate(
                "estop", t, f"e-stop pressed but motor_cmd={motor_cmd:.3f} brake={int(brake)}"
            )
        if state == "estop" and t - self._state_since > BRAKE_STOP_S and abs(vel) > STILL_DPS:
            self._violate("estop", t, f"moving at {vel:.2f} deg/s in e-stop")
        # Power loss or a hung controller: the brake holds.
        if state in ("power_off", "hung"):
            # (With a motion board, a hung host leaves the board in charge: it brings the
            # motion to a controlled stop and the table upright, within the speed bound.)
            toward_upright_ok = self.board_acts_alone and state == "hung"
            if self._off_since is None:
                self._off_since = t
            elif (
                t - self._off_since > BRAKE_STOP_S
                and abs(vel) > STILL_DPS
                and not toward_upright_ok
            ):
                self._violate(
                    state, t, f"moving at {vel:.2f} deg/s while {state.replace('_', ' ')}"
                )
        else:
            self._off_since = None
        self._prev = r
