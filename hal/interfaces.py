"""HAL interfaces: one snapshot in (``Inputs``), one command out (``Outputs``) per tick.

The loop is ros2_control's ``read -> update -> write``: the backend samples every input
into an immutable ``Inputs``, the controller computes ``Outputs`` from it and the time,
and the backend applies them. Backends: the simulator (``sim.table.SimTable``),
gpiozero (``hal.gpio.backend``) and the serial motion board (``hal.serial.backend``); each
owns its configuration schema (``hal/*/config.py``). A backend holds no policy: it never
decides to move; it only reports and applies.

Fail-safe reading of safety inputs is the backend's job, because only it knows the
wiring: normally-closed contacts mean an open circuit (pressed, tripped, or a broken
wire) must read as the unsafe condition -- ``estop_pressed=True``,
``overtravel_tripped=True``, ``ankle_locked=False``.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable

BUTTONS = ("start", "stop", "up", "down", "return")


class Inputs(NamedTuple):
    """Everything the controller reads, sampled at one instant. Immutable (a NamedTuple:
    as safe as a frozen dataclass, and built in C every tick)."""

    angle_primary_deg: (
        float | None
    )  # absolute sensor (potentiometer/inclinometer); None = no reading
    angle_secondary_deg: (
        float | None
    )  # independent second source (encoder/second ADC); None = no reading
    upright_switch: bool  # home switch closed: the table is at upright
    overtravel_tripped: bool  # NC over-travel limit open (tripped or wire broken)
    estop_pressed: bool  # NC e-stop circuit open (pressed or wire broken)
    ankle_locked: bool  # ankle lock confirmed closed (a broken wire reads False)
    buttons: frozenset[str]  # pendant buttons currently held, names from BUTTONS
    motor_current_a: float  # motor current magnitude in amperes
    # Dual-channel safety inputs (ISO 13849 category 3 style): the e-stop and the ankle
    # lock each have two independent contacts. The reading above is the safe side of the
    # two (either open = pressed / unlocked); these say the two channels disagree, which
    # a real press or unlock never does for long: a cut wire or a failed contact.
    estop_discrepancy: bool = False
    ankle_discrepancy: bool = False
    # Serial motion board only: the link is healthy (telemetry fresh, pings answered), and
    # the board has taken over or latched a shutdown and will not follow commands.
    link_ok: bool = True
    drive_inhibited: bool = False
    # Serial motion board only: the board is bringing the user upright on its own (its STATUS
    # state RETURN, after its host went silent): the motion is the board's, toward upright,
    # at up to its emergency speed, not the host's drive (a restarted host follows it).
    board_returning: bool = False
    # False when nothing new was sampled since the last read: the values repeat the last
    # ones heard (a serial link's gap shorter than its timeout, or a tick between two of
    # the board's reports). Readings that did not change then say nothing about motion.
    fresh: bool = True


class Outputs(NamedTuple):
    """Everything the controller commands. Immutable."""

    motor_cmd: float  # -1..1 duty, positive = toward inversion (head down)
    brake: bool  # True = brake engaged (the brake is also engaged when unpowered)
    alarm: bool  # buzzer
    heartbeat: bool  # toggled every tick; a hardware dead-man drops motor enable when it stops
    motor_power: bool = False  # motor supply relay: opened when the drive is suspect (a driver
    # stuck on cannot move the table then); False = open (safe default)


SAFE_OUTPUTS = Outputs(motor_cmd=0.0, brake=True, alarm=True, heartbeat=False, motor_power=False)


@runtime_checkable
class TableHardware(Protocol):
    """The controller's whole view of the table."""

    def read(self) -> Inputs:
        """Sample every input now."""
        ...

    def write(self, outputs: Outputs) -> None:
        """Apply the outputs now."""
        ...

    def safe_stop(self) -> None:
        """Motor off and brake on at once, without waiting for a tick. Idempotent.

        Called on e-stop edges where the backend can act immediately, on exceptions and
        on shutdown.
        """
        ...

    def close(self) -> None:
        """Leave the hardware safe (motor off, brake on) and release it. Idempotent."""
        ...
