"""``--backend serial --board micropython``: the motion board's unmodified firmware
(firmware/main.py's ``main()``) in a real ``micropython`` process (the unix port), stepped
in lockstep with the simulator. The host talks to it over the real pseudo-terminal
(sim.serial_world.Wire) exactly as to a board; the pins, the ADC, the watchdog and the
clock are sim/mp/mp_machine.py, which meets this module on the process's stdin/stdout:
one fixed-size request (the instant, the input levels, how many host bytes the UART may
take by then) and one reply (the outputs, the byte counts) per simulator tick.

When the board steps: the firmware's own loop order (receive, sample and report, step and
drive the pins) runs once per tick at the tick's instant, before the host reads (``before``).
So the STATUS the host reads is fresh, and the command it sends in reply is driven at the
board's next step, 10 ms later: a real board's loop, one period of command latency that the
idealised CPython lockstep (which drives the command the same instant) does not have.

A board process that dies (an exception in the firmware, killed) or does not answer within
``reply_wait_s`` of wall time (hung) is a crashed board: it is killed, its pins fall to
their pull-downs (motor off, brake on, supply open, the charge pump stops), the host's
bytes go nowhere, the host sees a lost link, and the run's events say what happened. A
watchdog reset (the firmware's loop stopped feeding it for its timeout in simulated time)
reboots the board: a new process boots at that instant.
"""

from __future__ import annotations

import os
import random
import select
import shutil
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path
from typing import Callable

from controller.core.config import Config
from controller.core.errors import InputError, Problem
from hal.interfaces import Outputs
from sim.serial_world import Wire, _u16, fw
from sim.table import SimTable
from sim.timing import IDEAL, Timing

ROOT = Path(__file__).resolve().parent.parent
BOOT = Path(__file__).resolve().parent / "mp" / "boot.py"
FIRMWARE = ROOT / "firmware"
REQ_LEN, REP_LEN = 24, 32  # sim/mp/mp_machine.py
REQ_STEP = 1
REP_IDLE, REP_WDT_RESET = 1, 2
REPLY_WAIT_S = 5.0  # wall-clock bound on one step (a step takes well under a millisecond)
HEAP = "192K"  # the process's MicroPython heap: about what a Pico gives (docs/firmware.md)
INPUT_PINS = (fw.ESTOP_A, fw.ESTOP_B, fw.OVERTRAVEL, fw.ANKLE_A, fw.ANKLE_B, fw.UPRIGHT)


def micropython_binary() -> str:
    """The unix port's ``micropython`` (the dev extra), next to this interpreter or on PATH."""
    here = Path(sys.executable).parent / "micropython"
    found = str(here) if here.exists() else shutil.which("micropython")
    if not found:
        raise InputError(
            [
                Problem(
                    "command line",
                    "--board",
                    "micropython needs the MicroPython unix port: pip install 'invtable[dev]' "
                    "(it provides the `micropython` command)",
                )
            ]
        )
    return found


def _get(buf: bytes, at: int, n: int) -> int:
    return int.from_bytes(buf[at : at + n], "big")


class MpBoard:
    """The firmware in a ``micropython`` process, wired to the table; the same calls as
    sim.serial_world.VirtualBoard (``before``, ``after``, ``take_host_bytes``, ``link_cut``)."""

    def __init__(
        self,
        table: SimTable,
        cfg: Config,
        wire: Wire,
        now_s: float,
        *,
        timing: Timing = IDEAL,
        seed: int = 0,
        log: Callable[[float, str], None] | None = None,
    ) -> None:
        if timing.link_latency_ms or timing.board_clock != "lockstep":
            raise InputError(
                [
                    Problem(
                        "scenario",
                        "timing",
                        "link_latency_ms and board_clock = 'own' are not modelled with "
                        "--board micropython yet (use --board cpython)",
                    )
                ]
            )
        self.table = table
        self.cfg = cfg
        self.wire = wire
        self.timing = timing
        self.seed = seed
        self.log = log or (lambda t, msg: None)
        self.reply_wait_s = REPLY_WAIT_S
        # The heap as the firmware used it, step by step (sim/mp/mp_machine.py measures):
        self.steps = 0
        self.alloc_total = 0  # bytes allocated by the firmware's steps, all together
        self.alloc_max = 0  # ... by its worst step
        self.live_max = 0  # bytes live after a collection (the firmware's standing heap)
        self._cut = False
        self.dead = False
        self.proc: subprocess.Popen[bytes] | None = None
        previous = getattr(wire, "mp_board", None)
        if previous is not None:
            previous.close()  # unpowered since: its process goes now
        wire.mp_board = self
        self._boot(now_s)

    # ------------------------------------------------------------------ the process
    def _boot(self, now_s: float) -> None:
        wire = self.wire
        wire.boots += 1
        rng = random.Random(f"virtual-board/{self.seed}/{wire.boots}")  # as VirtualBoard's
        boot_id = rng.randrange(1 << 16)
        self._rx_base = wire.board_read
        self._tx_base = wire.to_host
        self._late = 0
        self._lost = 0
        self.feeds = 0
        cfg = self.cfg
        limits = (
            cfg.limits.upright_deg,
            cfg.limits.max_angle_deg,
            cfg.motion.emergency_speed_dps,
            cfg.motion.emergency_accel_dps2,
            cfg.hardware.motor_no_load_speed_dps,
        )
        self._stderr = tempfile.TemporaryFile()
        cmd = [
            micropython_binary(),
            "-X",
            f"heapsize={HEAP}",
            str(BOOT),
            str(FIRMWARE),
            str(wire.master),
            str(boot_id),
            *(repr(float(v)) for v in limits),
        ]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            pass_fds=(wire.master,),
        )
        self._finalizer = weakref.finalize(self, _kill, self.proc)
        self.pid = self.proc.pid
        self._reply(now_s)  # booted: imports done, waiting for its first instant

    def _reply(self, t: float) -> bytes | None:
        """The board's reply to the last request, or None when it crashed (then handled)."""
        proc = self.proc
        assert proc is not None and proc.stdout is not None
        fd = proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + self.reply_wait_s
        while len(buf) < REP_LEN:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self._crash(t, f"did not answer for {self.reply_wait_s:g} s (hung)")
                return None
            chunk = os.read(fd, REP_LEN - len(buf))
            if not chunk:
                self._crash(t, self._exit_reason())
                return None
            buf += chunk
        return buf

    def _exit_reason(self) -> str:
        assert self.proc is not None
        try:
            code = self.proc.wait(self.reply_wait_s)
        except subprocess.TimeoutExpired:
            return "closed its control channel"
        self._stderr.seek(0)
        lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        last = lines[-1] if lines else ""
        return f"exited with code {code}" + (f": {last}" if last else "")

    def _crash(self, t: float, why: str) -> None:
        """The board is gone: its pins fall to their pull-downs, the host hears nothing more."""
        self.close()
        self.dead = True
        self.log(t, f"motion board crashed: the micropython process {why}")
        self._pins_released()

    def _pins_released(self) -> None:
        """Every output pin an input: the pull-downs hold the motor off and the brake on."""
        self.table.write(
            Outputs(motor_cmd=0.0, brake=True, alarm=False, heartbeat=False, motor_power=False)
        )

    def close(self) -> None:
        """End the process (ours): the run ends, the board loses power or crashed."""
        proc, self.proc = self.proc, None
        if proc is not None:
            self._finalizer.detach()
            _kill(proc)
            self._stderr.close()
        if getattr(self.wire, "mp_board", None) is self:
            self.wire.mp_board = None

    # ------------------------------------------------------------------ one step
    def _request(self, t: float) -> bytes:
        inp = self.table.read()
        a_open = inp.estop_pressed
        b_open = inp.estop_pressed and not inp.estop_discrepancy
        ankle_a = inp.ankle_locked and not inp.ankle_discrepancy
        ankle_b = inp.ankle_locked or inp.ankle_discrepancy
        closed = (
            not a_open,
            not b_open,
            not inp.overtravel_tripped,
            ankle_a,
            ankle_b,
            inp.upright_switch,
        )
        levels = 0xFFFFFFFF  # pull-ups; a closed contact pulls its pin to ground
        for pin, is_closed in zip(INPUT_PINS, closed, strict=True):
            if is_closed:
                levels &= ~(1 << pin)
        for name, pin in zip(
            ("start", "stop", "up", "down", "return"), fw.BUTTON_PINS, strict=True
        ):
            if name in inp.buttons:
                levels &= ~(1 << pin)
        current = max(
            0, min(65535, int(round(inp.motor_current_a / fw.CURRENT_FULL_SCALE_A * 65535)))
        )
        allow = self.wire.to_board - self._rx_base
        return (
            bytes((REQ_STEP,))
            + (int(round(t * 1000)) % (1 << 30)).to_bytes(4, "big")
            + allow.to_bytes(4, "big")
            + (levels & 0xFFFFFFFF).to_bytes(4, "big")
            + _u16(inp.angle_primary_deg).to_bytes(2, "big")
            + _u16(inp.angle_secondary_deg).to_bytes(2, "big")
            + current.to_bytes(2, "big")
            + bytes((1 if self._cut else 0,))
            + bytes(REQ_LEN - 20)
        )

    def _step(self, t: float) -> None:
        proc = self.proc
        assert proc is not None and proc.stdin is not None
        try:
            proc.stdin.write(self._request(t))
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self._crash(t, self._exit_reason())
            return
        rep = self._reply(t)
        if rep is None:
            return
        if rep[0] == REP_WDT_RESET:
            self.log(t, "motion board watchdog reset: the firmware's loop stopped feeding it")
            self.close()
            self._pins_released()
            self._boot(t)
            return
        wire = self.wire
        wire.to_host = self._tx_base + _get(rep, 7, 4)
        wire.board_read = self._rx_base + _get(rep, 11, 4)
        self.feeds = _get(rep, 15, 4)
        lost, late = _get(rep, 19, 2), _get(rep, 21, 2)
        wire.lost_to_host += lost - self._lost
        wire.late_waits += late - self._late
        self._lost, self._late = lost, late
        pwm, outputs = _get(rep, 1, 2), _get(rep, 3, 4)
        self.steps += 1
        alloc, live = _get(rep, 23, 4), _get(rep, 27, 4)
        self.alloc_total += alloc
        self.alloc_max = max(self.alloc_max, alloc)
        self.live_max = max(self.live_max, live)

        def pin(n: int) -> bool:
            return bool(outputs >> n & 1)

        sign = 1.0 if pin(fw.DIR_PIN) else -1.0
        duty = sign * pwm / 65535.0
        self.table.write(
            Outputs(
                motor_cmd=duty or 0.0,
                brake=not pin(fw.BRAKE_PIN),
                alarm=pin(fw.BUZZER_PIN),
                heartbeat=pin(fw.CHARGE_PUMP_PIN),
                motor_power=pin(fw.RELAY_PIN),
            )
        )

    # ------------------------------------------------------------------ the runner's calls
    def before(self, t: float) -> None:
        """The board's step at this tick, before the host reads: it takes the host's frames
        (written last tick), samples, reports and drives its pins."""
        if self.dead or self.proc is None:
            self.wire.take_for_board()  # a dead board's UART: the host's bytes go nowhere
            self.wire.board_read = self.wire.to_board
            return
        self._step(t)

    def after(self, t: float) -> None:
        """Nothing: the host's frames of this tick are taken at the board's next step."""

    def take_host_bytes(self, t: float) -> None:
        """A host just opened the port and greeted: the board answers at its step this tick
        (``before`` follows in the same tick), so the host's first read has telemetry."""

    @property
    def link_cut(self) -> bool:
        return self._cut

    @link_cut.setter
    def link_cut(self, cut: bool) -> None:
        self._cut = cut


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """End a board process this module started (by its own handle, never by name)."""
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(REPLY_WAIT_S)
    except subprocess.TimeoutExpired:
        pass
    for f in (proc.stdin, proc.stdout):
        if f is not None:
            try:
                f.close()
            except OSError:
                pass
