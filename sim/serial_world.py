"""``--backend serial``: the real ``hal.serial`` over a pseudo-terminal to a virtual motion
board running the firmware (firmware/main.py's BoardIO and Loop, firmware/board.py) under
CPython on the ``machine`` shim, with the simulator's physics behind its pins and the
simulator's clock as its ticks_ms.

Lockstep, so traces stay deterministic: each 10 ms tick the board samples and sends its
STATUS (``before``), the host reads it (``SerialMockHal.read`` waits for that frame, not
for a time), the controller decides and the host sends SET_OUTPUTS, then the board
receives, steps and drives its pins (``after``), which the simulated wiring applies. The
board keeps running while the host hangs; ``link_loss`` cuts the bytes both ways.
"""
from __future__ import annotations

import fcntl
import os
import sys
import tty
from typing import Callable

from controller.config import Config
from hal.interfaces import Inputs, Outputs
from sim import machine_shim
from sim.table import SimTable

sys.modules.setdefault("machine", machine_shim)  # firmware/main.py imports machine

from firmware import main as fw  # noqa: E402
from firmware.board import Board  # noqa: E402
from firmware.safety import Limits  # noqa: E402
from hal.serial.backend import SerialTable  # noqa: E402

STATUS_WAIT_S = 5.0  # wall-clock bound on the lockstep wait (a frame takes microseconds)


class Wire:
    """The serial cable: a pseudo-terminal pair; the board holds the master end."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(self.slave)
        flags = fcntl.fcntl(self.master, fcntl.F_GETFL)
        fcntl.fcntl(self.master, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        self.path = os.ttyname(self.slave)

    def close(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


def _u16(angle: float | None) -> int:
    """The board's ADC reading for an angle (its calibration in firmware/main.py)."""
    if angle is None:
        return 0
    f = 0.05 + (angle - fw.DEG_AT_5) / (fw.DEG_AT_95 - fw.DEG_AT_5) * 0.9
    return max(0, min(65535, int(round(f * 65535))))


class VirtualBoard:
    def __init__(self, table: SimTable, cfg: Config, wire: Wire, now_s: float) -> None:
        self.table = table
        self.world = machine_shim.World()
        self.world.uart_fd = wire.master
        machine_shim.current = self.world
        self.io = fw.BoardIO()
        lim = Limits(upright_deg=cfg.limits.upright_deg, max_angle_deg=cfg.limits.max_angle_deg,
                     emergency_speed_dps=cfg.motion.emergency_speed_dps,
                     emergency_accel_dps2=cfg.motion.emergency_accel_dps2,
                     no_load_speed_dps=cfg.hardware.motor_no_load_speed_dps)
        self.board = Board(self.ms(now_s), lim)
        self.loop = fw.Loop(self.io, self.board)

    @staticmethod
    def ms(t: float) -> int:
        return int(round(t * 1000)) % (1 << 30)

    def _push_sensors(self) -> None:
        w, inp = self.world, self.table.read()
        a_open = inp.estop_pressed
        b_open = inp.estop_pressed and not inp.estop_discrepancy
        ankle_a = inp.ankle_locked and not inp.ankle_discrepancy
        ankle_b = inp.ankle_locked or inp.ankle_discrepancy
        for pin, closed in ((fw.ESTOP_A, not a_open), (fw.ESTOP_B, not b_open),
                            (fw.OVERTRAVEL, not inp.overtravel_tripped), (fw.ANKLE_A, ankle_a),
                            (fw.ANKLE_B, ankle_b), (fw.UPRIGHT, inp.upright_switch)):
            w.levels[pin] = 0 if closed else 1
        for name, pin in zip(("start", "stop", "up", "down", "return"), fw.BUTTON_PINS):
            w.levels[pin] = 0 if name in inp.buttons else 1
        w.adc_u16[fw.ADC_PRIMARY] = _u16(inp.angle_primary_deg)
        w.adc_u16[fw.ADC_SECONDARY] = _u16(inp.angle_secondary_deg)
        w.adc_u16[fw.ADC_CURRENT] = max(0, min(65535, int(round(inp.motor_current_a / fw.CURRENT_FULL_SCALE_A * 65535))))

    def _pull_outputs(self) -> None:
        w = self.world
        sign = 1.0 if w.outputs[fw.DIR_PIN] else -1.0
        duty = sign * w.pwm_u16[fw.PWM_PIN] / 65535.0
        self.table.write(Outputs(motor_cmd=duty or 0.0, brake=not w.outputs[fw.BRAKE_PIN],
                                 alarm=bool(w.outputs[fw.BUZZER_PIN]), heartbeat=bool(w.outputs[fw.CHARGE_PUMP_PIN]),
                                 motor_power=bool(w.outputs[fw.RELAY_PIN])))

    def before(self, t: float) -> None:
        """Sample and report (the host reads this tick's STATUS next)."""
        self._push_sensors()
        self.loop.report(self.ms(t))

    def after(self, t: float) -> None:
        """Take the host's frames, step, and drive the pins into the simulated wiring."""
        now = self.ms(t)
        self.loop.receive(now)
        self.loop.control(now)
        self._pull_outputs()

    @property
    def link_cut(self) -> bool:
        return self.world.uart_cut

    @link_cut.setter
    def link_cut(self, cut: bool) -> None:
        self.world.uart_cut = cut


class SerialMockHal:
    """The HAL the controller sees: a real ``SerialTable`` on the wire's far end."""

    def __init__(self, board: VirtualBoard, wire: Wire, clock: Callable[[], float]) -> None:
        self.board = board
        self.hal = SerialTable(wire.path, clock=clock, status_wait_s=STATUS_WAIT_S, blocking_handshake=False)
        self.board.loop.receive(board.ms(clock()))  # the board answers the HELLO at once

    def read(self) -> Inputs:
        self.hal.status_wait_s = 0.0 if self.board.link_cut else STATUS_WAIT_S
        return self.hal.read()

    def write(self, outputs: Outputs) -> None:
        self.hal.write(outputs)

    def safe_stop(self) -> None:
        self.hal.safe_stop()

    def close(self) -> None:
        """The process is gone (crash, power, restart): the port closes, nothing more is sent."""
        self.hal.abandon()
