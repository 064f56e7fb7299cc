"""The simulated table: physics plus sensors, switches, pendant, wiring and power.

``SimTable`` implements the HAL (``hal.TableHardware``) so the controller cannot tell it
from real hardware. The test harness drives the *world* side: pressing buttons, cutting
wires, cutting power. Hardwired behaviour lives here because it lives in the wiring on
a real table:

- the e-stop contact cuts motor power and the brake's release power directly, so the
  motor stops and the brake engages the instant it is pressed, whatever the software does;
- the motor driver's enable and the brake's release power pass through a charge-pump
  dead-man that drops within ``DEADMAN_S`` when the controller stops toggling its
  heartbeat output: a hung controller leaves the motor off and the brake on;
- the motor supply relay (``Outputs.motor_power``) must be closed for the motor to run;
- a power cut leaves the brake engaged (spring-applied) and the motor unpowered.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass
from typing import Any

from hal.interfaces import BUTTONS, Inputs, Outputs
from sim.faults import DRIFT_DPS, FAULTS, NOISY_DEG, SLIP_FRACTION, WEAK_FRACTION
from sim.physics import TableParams, TablePhysics

_TWO_PI = 2.0 * math.pi  # random.TWOPI

DEADMAN_S = 0.1  # charge-pump hold-up: enable drops this long after the last toggle
UPRIGHT_SWITCH_DEG = 1.5  # the home switch closes within this of the upright stop position


@dataclass(frozen=True, slots=True)
class SensorModel:
    noise_deg: float  # standard deviation of Gaussian noise
    quantum_deg: float  # resolution (ADC step or encoder count)


NO_BUTTONS: frozenset[str] = frozenset()
PRIMARY = SensorModel(noise_deg=0.05, quantum_deg=360.0 / 4096.0)  # 12-bit absolute sensor
SECONDARY = SensorModel(noise_deg=0.0, quantum_deg=0.1)  # incremental encoder counts


class SimTable:
    """World state and the HAL view of it."""

    def __init__(
        self,
        *,
        angle_deg: float,
        upright_deg: float,
        mass_kg: float = 80.0,
        height_cm: float = 178.0,
        seed: int = 0,
        params: TableParams | None = None,
        physics_dt: float = 0.001,
    ) -> None:
        self.params = params or TableParams()
        self.physics = TablePhysics(self.params, mass_kg, height_cm, angle_deg)
        self.physics_dt = physics_dt
        self.upright_deg = upright_deg
        self.rng = random.Random(seed)
        self._gauss_next: float | None = None  # the second of _gauss's pair, not yet used
        # World inputs (what a person does), not yet through the wiring.
        self.estop_button = False
        self.ankle_lock_closed = False
        self.held: set[str] = set()
        self.powered = True
        # What the controller last commanded.
        self.outputs = Outputs(motor_cmd=0.0, brake=True, alarm=False, heartbeat=False)
        self._last_heartbeat = False
        self._last_toggle_t = -1.0
        self.t = 0.0
        self.faults: set[str] = set()
        self._stuck: dict[str, float] = {}
        self._fault_t: dict[str, float] = {}
        self._runaway_dir = 1.0
        # [timing] current_lag_ticks: the current sensor's path (filter, ADC pipeline) lags the
        # motor by this many reads (control ticks) on top of the one tick a command needs.
        self.current_lag_ticks = 0
        self._currents: deque[float] = deque()
        # A device on its own clock inside the world (the serial motion board with
        # board_clock = "own"): ``ticker.due_s`` is when it next steps, ``ticker.step(t)`` steps
        # it. Every advance of the world stops there, however the runner moves time.
        self.ticker: Any = None

    # ----- the world side (scenario events) -----------------------------------------
    def press(self, button: str) -> None:
        if button not in BUTTONS:
            raise ValueError(f"unknown button {button!r}")
        self.held.add(button)

    def release(self, button: str) -> None:
        self.held.discard(button)

    def inject(self, fault: str) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        self.faults.add(fault)
        self._fault_t[fault] = self.t
        if fault.endswith("_stuck") and "sensor" in fault:
            self._stuck[fault] = self._sample(PRIMARY if fault.startswith("angle") else SECONDARY)
        elif fault == "motor_runaway":
            self._runaway_dir = -1.0 if self.outputs.motor_cmd < 0.0 else 1.0
        self._apply_physics_faults()

    def clear(self, fault: str) -> None:
        self.faults.discard(fault)
        self._stuck.pop(fault, None)
        self._fault_t.pop(fault, None)
        self._apply_physics_faults()

    def _apply_physics_faults(self) -> None:
        ph, f = self.physics, self.faults
        ph.torque_scale = WEAK_FRACTION if "motor_weak" in f else 1.0
        ph.brake_scale = SLIP_FRACTION if "brake_slip" in f else 1.0
        ph.jammed = "motor_stall" in f

    @property
    def estop_circuit_open(self) -> bool:
        """NC e-stop loop: open when pressed or when its wire is cut."""
        return self.estop_button or "estop_wire_break" in self.faults

    def set_power(self, on: bool) -> None:
        if not on:
            self.outputs = Outputs(motor_cmd=0.0, brake=True, alarm=False, heartbeat=False)
        self.powered = on

    @property
    def heartbeat_age_s(self) -> float:
        """How long since the controller last toggled its heartbeat output."""
        return self.t - self._last_toggle_t

    @property
    def deadman_ok(self) -> bool:
        """The charge pump holds its output while the heartbeat toggled recently."""
        return self.t - self._last_toggle_t <= DEADMAN_S

    @property
    def motor_enabled(self) -> bool:
        """Motor power after the supply, the hardwired e-stop, the dead-man and the relay."""
        return (
            self.powered
            and not self.estop_circuit_open
            and self.deadman_ok
            and self.outputs.motor_power
        )

    @property
    def brake_engaged(self) -> bool:
        """Spring-applied: engaged unless its release is powered (supply, e-stop loop and
        dead-man all healthy) and the controller commands it off. A failed brake never holds."""
        if "brake_failed" in self.faults:
            return False
        return (
            self.outputs.brake or not self.powered or self.estop_circuit_open or not self.deadman_ok
        )

    @property
    def applied_cmd(self) -> float:
        """What the driver actually applies (a runaway driver ignores the command)."""
        if "motor_runaway" in self.faults:
            return self._runaway_dir
        return self.outputs.motor_cmd

    def advance(self, duration: float) -> None:
        """Move the world forward; the physics integrates at ``physics_dt``."""
        ticker = self.ticker
        if ticker is None:
            self._integrate(duration, self.physics_dt)
            return
        end = self.t + duration
        while ticker is not None and ticker.due_s < end - 1e-9:
            if ticker.due_s > self.t + 1e-9:
                self._integrate(ticker.due_s - self.t, self.physics_dt)
            ticker.step(ticker.due_s)
            ticker = self.ticker
        if end - self.t > 1e-9:
            self._integrate(end - self.t, self.physics_dt)
        self.t = end

    def _integrate(self, duration: float, step: float) -> None:
        self.physics.advance(
            duration, step, self.applied_cmd, self.motor_enabled, self.brake_engaged
        )
        self.t += duration

    def advance_to(self, t_end: float, chunk_s: float = 0.01) -> None:
        """Move the world to ``t_end`` (an instant off the 10 ms grid: a late tick) in steps of
        at most ``physics_dt``; the wiring (dead-man, brake, enable) is re-evaluated at least
        every ``chunk_s``, as with the ideal 10 ms advance, so a stalled loop loses its drive
        within 10 ms of the dead-man's timeout."""
        while t_end - self.t > 1e-9:
            ticker = self.ticker
            if ticker is not None and ticker.due_s <= self.t + 1e-9:
                ticker.step(ticker.due_s)
                continue
            chunk = min(t_end - self.t, chunk_s)
            if ticker is not None:
                chunk = min(chunk, ticker.due_s - self.t)
            n = max(1, math.ceil(chunk / self.physics_dt - 1e-9))
            self._integrate(chunk, chunk / n)

    def _sensed_current(self) -> float:
        """The current the controller reads: the physics' current ``current_lag_ticks`` reads
        ago."""
        current = self.physics.current
        lag = self.current_lag_ticks
        if not lag:
            return current
        history = self._currents
        history.append(current)
        while len(history) > lag + 1:
            history.popleft()
        return history[0]

    # ----- the HAL side ---------------------------------------------------------------
    def _gauss(self, sigma: float) -> float:
        """``self.rng.gauss(0.0, sigma)``: the same numbers in the same order (CPython's
        algorithm, a Box-Muller pair from two ``random()`` draws, copied so the sensor noise
        runs compiled with ``make fast``: the library's ``gauss`` is Python code, called twice
        a tick). Every Gaussian draw of the table goes through here (the pair's second number
        is kept here, not in ``rng.gauss_next``), so the sequence does not depend on the
        Python version's own ``gauss``."""
        z = self._gauss_next
        if z is None:
            draw = self.rng.random
            x2pi = draw() * _TWO_PI
            g2rad = math.sqrt(-2.0 * math.log(1.0 - draw()))
            z = math.cos(x2pi) * g2rad
            self._gauss_next = math.sin(x2pi) * g2rad
        else:
            self._gauss_next = None
        return 0.0 + z * sigma

    def _sample(self, model: SensorModel) -> float:
        value = self.physics.angle
        if model.noise_deg:
            value += self._gauss(model.noise_deg)
        q = model.quantum_deg
        return round(value / q) * q

    def _primary(self) -> float | None:
        faults = self.faults
        if "angle_sensor_dropout" in faults:
            return None
        if "angle_sensor_stuck" in faults:
            return self._stuck["angle_sensor_stuck"]
        value = self._sample(PRIMARY)
        if "angle_sensor_drift" in faults:
            value += DRIFT_DPS * (self.t - self._fault_t["angle_sensor_drift"])
        if "angle_sensor_noise" in faults:
            value += self._gauss(NOISY_DEG)
        return value

    def read(self) -> Inputs:
        faults = self.faults
        angle = self.physics.angle
        if faults:
            primary = self._primary()
            secondary = self._stuck.get("secondary_sensor_stuck", self._sample(SECONDARY))
            held = self.held | {"down"} if "button_stuck" in faults else self.held
        else:
            primary, secondary, held = self._sample(PRIMARY), self._sample(SECONDARY), self.held
        # Positional, in Inputs' field order, through tuple.__new__ (the same tuple as by
        # keyword; a NamedTuple's own __new__ is Python code, twice the cost: every tick).
        return tuple.__new__(
            Inputs,
            (
                primary,
                secondary,
                # upright_switch, overtravel_tripped
                angle <= self.upright_deg + UPRIGHT_SWITCH_DEG or "upright_switch_stuck" in faults,
                angle >= self.params.stop_high_deg - 2.0 or "overtravel_switch_open" in faults,
                self.estop_circuit_open,  # estop_pressed
                self.ankle_lock_closed and "ankle_sensor_wire_break" not in faults,  # ankle_locked
                frozenset(held) if held else NO_BUTTONS,  # buttons
                self._sensed_current(),  # motor_current_a
                # estop_discrepancy, ankle_discrepancy: a wire break opens one channel of the two;
                # a real press or unlock opens both.
                "estop_wire_break" in faults,
                "ankle_sensor_wire_break" in faults,
                # link_ok, drive_inhibited, board_returning, fresh: every field is given
                # (tuple.__new__ knows no defaults), the serial board's as the defaults say.
                True,
                False,
                False,
                True,
            ),
        )

    def write(self, outputs: Outputs) -> None:
        if not self.powered:
            return
        if outputs.heartbeat != self._last_heartbeat:
            self._last_toggle_t = self.t
            self._last_heartbeat = outputs.heartbeat
        self.outputs = outputs

    def safe_stop(self) -> None:
        self.outputs = Outputs(
            motor_cmd=0.0,
            brake=True,
            alarm=self.outputs.alarm,
            heartbeat=self.outputs.heartbeat,
            motor_power=False,
        )

    def close(self) -> None:
        self.safe_stop()
