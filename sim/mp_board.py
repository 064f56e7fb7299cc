"""``--backend serial --board micropython``: the motion board's unmodified firmware
(firmware/main.py's ``main()``) in a real ``micropython`` process (the unix port), stepped
in lockstep with the simulator. The host talks to it over the real pseudo-terminal
(sim.serial_world.Wire) exactly as to a board; the board's UART is a unix socket this
module relays to the pseudo-terminal through the link model (``[timing]`` link latency, the
cut), as sim.serial_world.VirtualBoard's. The pins, the ADC, the watchdog and the clock are
sim/mp/mp_machine.py, which meets this module on the process's stdin/stdout: one
fixed-size request (the instant, the input levels, how many host bytes the UART may take by
then) and one reply (the outputs, the byte counts) per pass of the firmware's loop.

When the board's loop runs (firmware/main.py ``Loop.poll``): in lockstep twice per tick at
the tick's instant, before the host reads (``before``: it samples and reports, and steps
at once unless a host that answers is expected) and after it wrote (``after``: it reads the
host's answer and steps and drives its pins on it), as the CPython board does. With
``board_clock = "own"``, on its own seeded 10 ms grid and whenever a host frame arrives
(``SimTable.ticker``). The two boards give the same trace.

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
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections import deque
from pathlib import Path
from typing import Callable

from controller.core.config import Config
from controller.core.errors import InputError, Problem
from hal.interfaces import Outputs
from sim.serial_world import PERIOD_US, Wire, _u16, _us, fw
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
        self.latency_us = int(round(timing.link_latency_ms * 1000))
        self.own_clock = timing.board_clock == "own"
        self.now_us = _us(now_s)
        self.inbound: deque[tuple[int, bytes]] = deque()  # (due, bytes) host -> board
        self.outbound: deque[tuple[int, bytes]] = deque()  # (due, bytes) board -> host
        self._sock: socket.socket | None = None
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
        offset_us = rng.randint(1, 9) * 1000 if self.own_clock else 0
        boot_id = rng.randrange(1 << 16)
        # The board's UART is one end of a socket pair; this side relays it to the wire's
        # pseudo-terminal through the link model (the latency queues, the cut): a unix socket
        # delivers at once, so what was written before a request is there when it runs.
        if self._sock is not None:
            self._sock.close()
        self._sock, uart = socket.socketpair()
        self._sock.setblocking(False)
        uart.setblocking(False)
        self._fed = 0  # host bytes written into the board's UART since this boot
        self._tx_seen = 0  # board bytes taken off it
        self.inbound.clear()
        self.outbound.clear()
        self.next_step_us = _us(now_s) + offset_us  # its own clock (board_clock = "own")
        if self.own_clock:
            self.table.ticker = self
        self._late = 0
        self._lost = 0
        self._levels: bytes | None = None
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
            str(uart.fileno()),
            str(boot_id),
            *(repr(float(v)) for v in limits),
        ]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            pass_fds=(uart.fileno(),),
        )
        uart.close()  # the process has its own
        self._finalizer = weakref.finalize(self, _kill, self.proc)
        self.pid = self.proc.pid
        wire.mp_board = self  # again after a watchdog reset: the wire ends it with the run
        self._reply(now_s)  # booted: imports done, waiting for its first instant
        self.now_us = _us(now_s)

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
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if getattr(self.wire, "mp_board", None) is self:
            self.wire.mp_board = None

    # ------------------------------------------------------------------ one step
    def _request(self, t: float, sample: bool = True) -> bytes:
        """The request for instant ``t``; ``sample`` false: the input levels of the last one
        (a pass of the loop that does not sample: each reading draws the sensors' noise)."""
        head = (
            bytes((REQ_STEP,))
            + ((_us(t) // 1000) % (1 << 30)).to_bytes(4, "big")
            + self._fed.to_bytes(4, "big")
        )
        if sample or self._levels is None:
            self._levels = self._sensed()
        return head + self._levels + bytes((1 if self._cut else 0,)) + bytes(REQ_LEN - 20)

    def _sensed(self) -> bytes:
        """The input levels and ADC readings of the table now, as the request carries them."""
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
        return (
            (levels & 0xFFFFFFFF).to_bytes(4, "big")
            + _u16(inp.angle_primary_deg).to_bytes(2, "big")
            + _u16(inp.angle_secondary_deg).to_bytes(2, "big")
            + current.to_bytes(2, "big")
        )

    def _step(self, t: float) -> None:
        """One pass of the firmware's loop at ``t``: the frames that have arrived go in first;
        the table is sampled when the loop's step is due (its grid, mirrored here: each
        reading draws the sensors' noise, as the CPython board's)."""
        proc = self.proc
        assert proc is not None and proc.stdin is not None
        self.now_us = _us(t)
        self._deliver_in()
        sample = self.now_us >= self.next_step_us
        if sample:
            self.next_step_us += PERIOD_US
        try:
            proc.stdin.write(self._request(t, sample))
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
        self._take_out(t, _get(rep, 7, 4))
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

    # ------------------------------------------------------------------ the link model
    def _deliver_in(self) -> None:
        """The host's bytes that have arrived by now into the board's UART."""
        q = self.inbound
        sock = self._sock
        while q and q[0][0] <= self.now_us:
            data = q.popleft()[1]
            if self._cut or sock is None:
                continue  # a cut wire, or nobody there
            sock.sendall(data)  # a unix socket's buffer holds far more than a tick's frames
            self._fed += len(data)

    def _take_out(self, t: float, sent: int) -> None:
        """The bytes the board wrote this step (its count says how many), on their way to the
        host: they reach the pseudo-terminal after the latency."""
        sock = self._sock
        assert sock is not None
        deadline = time.monotonic() + self.reply_wait_s
        while self._tx_seen < sent:
            try:
                data = sock.recv(sent - self._tx_seen)
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:  # never on a unix socket: counted as a determinism failure
                    self.wire.late_waits += 1
                    self._tx_seen = sent
                    break
                select.select([sock], [], [], left)
                continue
            if not data:
                break
            self._tx_seen += len(data)
            if not self._cut:
                self.outbound.append((self.now_us + self.latency_us, data))
        self._deliver_out()

    def _deliver_out(self) -> None:
        q = self.outbound
        while q and q[0][0] <= self.now_us:
            data = q.popleft()[1]
            if not self._cut:
                self.wire.put_for_host(data)

    def _intake(self, t: float) -> None:
        """Every byte the host has written (lockstep), stamped with its arrival time."""
        self.now_us = _us(t)
        for chunk in self.wire.take_for_board():
            if not self._cut and not self.dead:
                self.inbound.append((self.now_us + self.latency_us, chunk))

    @property
    def _alive(self) -> bool:
        return not self.dead and self.proc is not None

    # ------------------------------------------------------------------ the runner's calls
    def before(self, t: float) -> None:
        """Frames due reach the host; in lockstep, the loop's pass at this tick before the
        host reads: it takes the frames that have arrived, samples and reports, and steps
        now or waits for the host's answer (``after``)."""
        self.now_us = _us(t)
        self._deliver_out()
        if not self._alive:
            self._intake(t)  # a dead board's UART: the host's bytes go nowhere
            self.inbound.clear()
            return
        if not self.own_clock:
            self._step(t)

    def after(self, t: float) -> None:
        """Take the host's frames; in lockstep, the loop's pass that reads the host's answer
        to this tick's STATUS and steps and drives its pins on it at once (firmware/main.py
        ``Loop.poll``)."""
        self._intake(t)
        if self._alive and not self.own_clock:
            self._step(t)

    def take_host_bytes(self, t: float) -> None:
        """A host just opened the port and greeted. In ideal lockstep the board answers at
        its pass this tick (``before`` follows in the same tick). Otherwise, as the real
        service's blocking handshake before its loop starts, this takes no simulated time:
        the HELLO reaches the board, and its answer and its STATUS the host, at once (no
        latency), so the controller's first tick has telemetry; on its own clock the board's
        next step is taken now (the world does not move meanwhile), as the CPython board's."""
        self._intake(t)
        if not (self.own_clock or self.latency_us) or not self._alive:
            return
        self.inbound = deque((self.now_us, data) for _, data in self.inbound)
        at_us = max(self.now_us, self.next_step_us) if self.own_clock else self.now_us
        latency, self.latency_us = self.latency_us, 0
        try:
            self._step(at_us / 1e6)
        finally:
            self.latency_us = latency

    # SimTable.ticker (board_clock = "own"): the world calls these as its time passes the
    # board's next pass: its next step, or the arrival of a host frame (a Pico's loop polls
    # its UART every millisecond).
    @property
    def due_s(self) -> float:
        due = self.next_step_us
        if self.inbound and self.inbound[0][0] < due:
            due = max(self.inbound[0][0], self.now_us)
        return due / 1e6

    def step(self, t: float) -> None:
        if self._alive and self.table.powered and self.table.ticker is self:
            self._step(t)
        else:  # unpowered or crashed: what arrives is lost (the world never waits on it)
            at_us = _us(t)
            if at_us >= self.next_step_us:
                self.next_step_us += PERIOD_US
            while self.inbound and self.inbound[0][0] <= at_us:
                self.inbound.popleft()

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
