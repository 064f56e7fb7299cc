"""``--backend serial``: the real ``hal.serial`` over a pseudo-terminal to a virtual motion
board running the firmware (firmware/main.py's BoardIO and Loop, firmware/board.py) under
CPython on the ``machine`` shim, with the simulator's physics behind its pins and the
simulator's clock as its ticks_ms.

Deterministic lockstep, on an idle or a busy machine: every byte that crosses the
pseudo-terminal is counted (``Wire``). Before the host reads, it waits (bounded in wall
time, ``WAIT_S``) until its reader thread has queued every byte the board has sent so far;
before the board steps, it waits until it has taken every byte the host has written so
far. A pty delivers bytes through a kernel work queue, so "not there yet" is not "not
sent": waiting for a count, not for a time, is what makes the same scenario give the same
trace. A host that is hung, powered off or behind a cut link has sent nothing more, so the
board never waits for it and acts on its own dead-man in simulated time.

Each 10 ms tick (``board_clock = "lockstep"``, the default) the firmware's loop
(firmware/main.py ``Loop.poll``) runs two passes at the tick's instant: the board samples and
sends its STATUS (``before``; with no host answering it also steps and drives its pins), the
host reads it, the controller decides, the host sends SET_OUTPUTS, then the board takes the
host's frames and steps and drives its pins on that answer (``after``), as a real loop that
steps on the host's answer the moment it reads it.

``[timing]`` (sim/timing.py), both deterministic and in simulated time only:

- ``link_latency_ms``: every frame reaches the other side that much later, both ways (a
  delay queue keyed on simulated time; no real sleeps). Frames the host wrote in tick t
  reach the board's first step at or after t + latency; the board's frames reach the host's
  first read at or after their sending time + latency.
- ``board_clock = "own"``: the board steps on its own 10 ms clock, a seeded whole number of
  milliseconds (1..9) after the host's: the table's 10 ms physics step is split at that
  offset, the board samples, takes the frames that have arrived, reports and drives its pins
  there, and the physics goes on with its new outputs; between its steps its loop also runs
  when a host frame arrives (a Pico polls its UART about every millisecond).

``link_loss`` cuts the bytes both ways (``link_cut``).
"""

from __future__ import annotations

import os
import random
import select
import sys
import time
import tty
from collections import deque
from typing import Any, Callable

from controller.core.config import Config
from hal.interfaces import Inputs, Outputs, TableHardware
from sim import machine_shim
from sim.table import SimTable
from sim.timing import IDEAL, Timing

sys.modules.setdefault("machine", machine_shim)  # firmware/main.py imports machine

from firmware import main as fw  # noqa: E402
from firmware.board import Board  # noqa: E402
from firmware.safety import Limits  # noqa: E402
from firmware.ticks import ticks_diff  # noqa: E402
from hal.serial.backend import BoardLimits, SerialTable  # noqa: E402

WAIT_S = 5.0  # wall-clock bound on a lockstep wait (a frame takes microseconds on an idle machine)
STATUS_WAIT_S = WAIT_S  # the former name, kept for callers


BOARDS = ("cpython", "micropython")  # --board: which interpreter runs the firmware


class Wire:
    """The serial cable: a pseudo-terminal pair; the board holds the master end. It counts
    the bytes each side put on it and took off it, across host restarts and board boots.
    ``board`` says what is on the board's end (``boot_board``): the firmware under CPython
    in this process (VirtualBoard) or in a ``micropython`` process (sim/mp_board.py);
    ``log(t, message)`` records what the board's end did (a crash) in the run's events."""

    def __init__(
        self, board: str = "cpython", log: Callable[[float, str], None] | None = None
    ) -> None:
        if board not in BOARDS:
            raise ValueError(f"board must be one of {BOARDS}, not {board!r}")
        self.board = board
        self.log = log
        self.mp_board: Any = None  # the live micropython board process, ended with the wire
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        os.set_blocking(self.slave, False)  # only used to drain what no host read
        self.path = os.ttyname(self.slave)
        self.to_board = 0  # bytes hosts wrote whole
        self.board_read = 0  # of those, taken by the board side
        self.to_host = 0  # bytes the board side wrote
        self.host_read = 0  # of those, read by hosts that have closed, or drained
        self.boots = 0  # boards built on this wire (each boot gets its own seeded values)
        self.hosts = 0
        self.lost_to_host = 0  # bytes the board wrote into a full pty (no host reading)
        self.late_waits = 0  # lockstep waits that hit WAIT_S (a determinism failure: reported)

    def take_for_board(self, wait_s: float = WAIT_S) -> list[bytes]:
        """Every byte hosts have written so far, waiting (bounded) for those still in the pty."""
        chunks: list[bytes] = []
        deadline: float | None = None
        while self.board_read < self.to_board:
            try:
                data = os.read(self.master, 4096)
            except (BlockingIOError, InterruptedError):
                data = b""
            if data:
                chunks.append(data)
                self.board_read += len(data)
                continue
            if deadline is None:
                deadline = time.monotonic() + wait_s
            left = deadline - time.monotonic()
            if left <= 0:
                self.late_waits += 1
                self.board_read = self.to_board  # resynchronise the count; never wait twice
                break
            select.select([self.master], [], [], left)
        return chunks

    def put_for_host(self, data: bytes) -> None:
        """Board -> host. A full pty (no host has the port open to read it) loses the rest,
        as a UART with nobody listening does; those bytes are never counted as sent."""
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.master, view)
            except BlockingIOError:
                self.lost_to_host += len(view)
                return
            view = view[n:]
            self.to_host += n

    def drain_host_side(self, wait_s: float = WAIT_S) -> None:
        """Before a host opens the port: take the bytes no host read, so the new host's
        byte count starts exactly at what the board sends from now on."""
        deadline: float | None = None
        while self.host_read < self.to_host:
            try:
                data = os.read(self.slave, 4096)
            except (BlockingIOError, InterruptedError):
                data = b""
            if data:
                self.host_read += len(data)
                continue
            if deadline is None:
                deadline = time.monotonic() + wait_s
            left = deadline - time.monotonic()
            if left <= 0:
                self.late_waits += 1
                self.host_read = self.to_host
                break
            select.select([self.slave], [], [], left)

    def close(self) -> None:
        if self.mp_board is not None:
            self.mp_board.close()
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


PERIOD_US = 10_000  # the firmware's 100 Hz loop


def _us(t: float) -> int:
    return int(round(t * 1_000_000))


class VirtualBoard:
    """The firmware on the shim, wired to the table; also the link model behind its UART
    (``uart_read``/``uart_write``): the cut, the latency queues, the lockstep counts."""

    def __init__(
        self,
        table: SimTable,
        cfg: Config,
        wire: Wire,
        now_s: float,
        *,
        timing: Timing = IDEAL,
        seed: int = 0,
    ) -> None:
        self.table = table
        self.cfg = cfg
        self.wire = wire
        self.timing = timing
        self.seed = seed
        wire.boots += 1
        rng = random.Random(f"virtual-board/{seed}/{wire.boots}")
        self.latency_us = int(round(timing.link_latency_ms * 1000))
        self.own_clock = timing.board_clock == "own"
        self.offset_us = rng.randint(1, 9) * 1000 if self.own_clock else 0
        self.now_us = _us(now_s)
        self.inbound: deque[tuple[int, bytes]] = deque()  # (due, bytes) host -> board
        self.outbound: deque[tuple[int, bytes]] = deque()  # (due, bytes) board -> host
        self.world = machine_shim.World()
        self.world.uart_fd = wire.master
        self.world.uart_hook = self
        machine_shim.current = self.world
        self.io = fw.BoardIO()
        lim = Limits(
            upright_deg=cfg.limits.upright_deg,
            max_angle_deg=cfg.limits.max_angle_deg,
            emergency_speed_dps=cfg.motion.emergency_speed_dps,
            emergency_accel_dps2=cfg.motion.emergency_accel_dps2,
            no_load_speed_dps=cfg.hardware.motor_no_load_speed_dps,
        )
        self.board = Board(self.ms(now_s), lim, boot_id=rng.randrange(1 << 16))
        self.loop = fw.Loop(self.io, self.board)
        # Its own clock: a step every 10 ms from boot plus a seeded offset, whenever the world
        # passes that instant (SimTable.ticker), however the host's ticks fall; between steps
        # the loop also runs when a frame arrives (a Pico's loop polls its UART every ms).
        self.next_step_us = self.now_us + self.offset_us
        self.loop.next_step = (self.next_step_us // 1000) % (1 << 30)
        if self.own_clock:
            table.ticker = self

    @staticmethod
    def ms(t: float) -> int:
        return int(round(t * 1000)) % (1 << 30)

    # ------------------------------------------------------------------ the link model
    def uart_read(self) -> bytes | None:
        """What has arrived by now (the firmware's UART.read)."""
        out = b""
        q = self.inbound
        while q and q[0][0] <= self.now_us:
            data = q.popleft()[1]
            if not self.world.uart_cut:
                out += data
        return out or None

    def uart_write(self, data: bytes) -> None:
        """The firmware's UART.write: on its way, arriving after the latency."""
        if self.world.uart_cut:
            return  # into a cut wire
        self.outbound.append((self.now_us + self.latency_us, data))
        self._deliver_out()

    def _deliver_out(self) -> None:
        q = self.outbound
        while q and q[0][0] <= self.now_us:
            data = q.popleft()[1]
            if not self.world.uart_cut:
                self.wire.put_for_host(data)

    def _intake(self) -> None:
        """Take every byte the host has written (lockstep), stamped with its arrival time."""
        for chunk in self.wire.take_for_board():
            if not self.world.uart_cut:
                self.inbound.append((self.now_us + self.latency_us, chunk))

    # ------------------------------------------------------------------ pins
    def _push_sensors(self) -> None:
        w, inp = self.world, self.table.read()
        a_open = inp.estop_pressed
        b_open = inp.estop_pressed and not inp.estop_discrepancy
        ankle_a = inp.ankle_locked and not inp.ankle_discrepancy
        ankle_b = inp.ankle_locked or inp.ankle_discrepancy
        for pin, closed in (
            (fw.ESTOP_A, not a_open),
            (fw.ESTOP_B, not b_open),
            (fw.OVERTRAVEL, not inp.overtravel_tripped),
            (fw.ANKLE_A, ankle_a),
            (fw.ANKLE_B, ankle_b),
            (fw.UPRIGHT, inp.upright_switch),
        ):
            w.levels[pin] = 0 if closed else 1
        for name, pin in zip(
            ("start", "stop", "up", "down", "return"), fw.BUTTON_PINS, strict=True
        ):
            w.levels[pin] = 0 if name in inp.buttons else 1
        w.adc_u16[fw.ADC_PRIMARY] = _u16(inp.angle_primary_deg)
        w.adc_u16[fw.ADC_SECONDARY] = _u16(inp.angle_secondary_deg)
        w.adc_u16[fw.ADC_CURRENT] = max(
            0, min(65535, int(round(inp.motor_current_a / fw.CURRENT_FULL_SCALE_A * 65535)))
        )

    def _pull_outputs(self) -> None:
        w = self.world
        sign = 1.0 if w.outputs[fw.DIR_PIN] else -1.0
        duty = sign * w.pwm_u16[fw.PWM_PIN] / 65535.0
        self.table.write(
            Outputs(
                motor_cmd=duty or 0.0,
                brake=not w.outputs[fw.BRAKE_PIN],
                alarm=bool(w.outputs[fw.BUZZER_PIN]),
                heartbeat=bool(w.outputs[fw.CHARGE_PUMP_PIN]),
                motor_power=bool(w.outputs[fw.RELAY_PIN]),
            )
        )

    # ------------------------------------------------------------------ the runner's calls
    def _poll(self, now_us: int) -> None:
        """One pass of the firmware's loop (firmware/main.py ``Loop.poll``) at ``now_us``:
        it takes the frames that have arrived, samples and reports when its step is due, and
        steps and drives its pins when that step's time has come (or the host's answer)."""
        self.now_us = now_us
        self._deliver_out()
        now = (now_us // 1000) % (1 << 30)
        if ticks_diff(now, self.loop.next_step) >= 0:
            self._push_sensors()  # it samples (each reading draws the sensors' noise)
        self.loop.poll(now)
        self._pull_outputs()

    def before(self, t: float) -> None:
        """Frames due reach the host; in lockstep, the loop's pass at the tick (its step:
        sample and report; it steps now, or waits for the host's answer: ``after``)."""
        self.now_us = _us(t)
        self._deliver_out()
        if not self.own_clock:
            self._poll(_us(t))

    def after(self, t: float) -> None:
        """Take the host's frames; in lockstep, the loop's pass that reads the host's answer
        to this tick's STATUS and steps and drives the pins on it, the same instant."""
        self.now_us = _us(t)
        self._intake()
        if not self.own_clock:
            self._poll(_us(t))

    def take_host_bytes(self, t: float) -> None:
        """A host process just opened the port and greeted. As the real service's blocking
        handshake before its loop starts (hal/serial SerialTable with blocking_handshake),
        this takes no simulated time: the HELLO reaches the board, and the board's answer and
        a STATUS reach the host, at once, whatever the link latency, so the controller's
        first tick has telemetry. On its own clock the board's next step is taken now (the
        handshake waits for it; the world does not move meanwhile)."""
        self.now_us = _us(t)
        self._intake()
        if not self.own_clock and not self.latency_us:
            self.loop.receive(self.ms(t))  # ideal lockstep: before() reports next
            return
        self.inbound = deque((self.now_us, data) for _, data in self.inbound)
        at_us = self.now_us
        if self.own_clock:
            at_us = max(at_us, self.next_step_us)
            self.next_step_us = at_us + PERIOD_US
        latency, self.latency_us = self.latency_us, 0
        try:
            self._poll(at_us)
        finally:
            self.latency_us = latency

    # SimTable.ticker: the world calls these as its time passes the board's next pass: its
    # next step, or the arrival of a host frame (it polls its UART every millisecond).
    @property
    def due_s(self) -> float:
        due = self.next_step_us
        if self.inbound and self.inbound[0][0] < due:
            due = max(self.inbound[0][0], self.now_us)
        return due / 1e6

    def step(self, t: float) -> None:
        at_us = _us(t)
        if at_us >= self.next_step_us:
            at_us = self.next_step_us
            self.next_step_us += PERIOD_US
        if self.table.powered and self.table.ticker is self:
            self._poll(at_us)
        else:  # unpowered: what arrives is lost (and the world's advance never waits on it)
            while self.inbound and self.inbound[0][0] <= at_us:
                self.inbound.popleft()

    @property
    def link_cut(self) -> bool:
        return self.world.uart_cut

    @link_cut.setter
    def link_cut(self, cut: bool) -> None:
        self.world.uart_cut = cut


def boot_board(
    table: SimTable, cfg: Config, wire: Wire, now_s: float, *, timing: Timing = IDEAL, seed: int = 0
) -> Any:
    """The motion board booting at ``now_s`` on the board's end of ``wire`` (``wire.board``)."""
    if wire.board == "micropython":
        from sim.mp_board import MpBoard

        return MpBoard(table, cfg, wire, now_s, timing=timing, seed=seed, log=wire.log)
    return VirtualBoard(table, cfg, wire, now_s, timing=timing, seed=seed)


class SerialMockHal:
    """The HAL the controller sees: a real ``SerialTable`` on the wire's far end, checking
    the board's limits against the scenario's configuration, in byte-counted lockstep."""

    def __init__(
        self,
        board: VirtualBoard,
        wire: Wire,
        clock: Callable[[], float],
        *,
        timing: Timing = IDEAL,
        opener: Callable[..., Any] | None = None,
    ) -> None:
        import serial

        self.board = board
        self.wire = wire
        self.timing = timing
        self._opener = opener or serial.serial_for_url
        wire.hosts += 1
        self._rx_base = self._tx_base = 0
        rng = random.Random(f"host-nonce/{board.seed}/{wire.hosts}")
        self.hal = SerialTable(
            wire.path,
            clock=clock,
            blocking_handshake=False,
            opener=self._open,
            expected=BoardLimits.from_config(board.cfg),
            nonce_source=lambda: rng.randrange(1, 1 << 16),
        )
        self._sync()
        self.board.take_host_bytes(clock())

    def _open(self, url: str, **kw: Any) -> Any:
        """Open the port at a known byte count: what no host read is drained first, so this
        host's count starts exactly at what the board sends from now on (pyserial flushes
        its input at open, which would otherwise race the bytes still in the pty)."""
        # None while the first SerialTable is being built (its constructor opens the port).
        hal: SerialTable | None = getattr(self, "hal", None)
        read = hal.rx_bytes if hal is not None else 0
        sent = hal.tx_bytes if hal is not None else 0
        if hal is not None:  # a reopen: the closed port's reader took this much
            self.wire.host_read = max(self.wire.host_read, self._rx_base + read)
        self.wire.drain_host_side()
        port = self._opener(url, **kw)
        self._rx_base = self.wire.to_host - read
        self._tx_base = self.wire.to_board - sent
        return port

    def _sync(self) -> None:
        self.wire.to_board = self._tx_base + self.hal.tx_bytes

    def read(self) -> Inputs:
        if self.hal._port is not None and not self.hal.wait_received(
            self.wire.to_host - self._rx_base, WAIT_S
        ):
            self.wire.late_waits += 1
        inputs = self.hal.read()
        self._sync()
        return inputs

    def write(self, outputs: Outputs) -> None:
        self.hal.write(outputs)
        self._sync()

    def safe_stop(self) -> None:
        self.hal.safe_stop()
        self._sync()

    def close(self) -> None:
        """The process is gone (crash, power, restart): the port closes, nothing more is sent."""
        self.hal.abandon()
        reader = self.hal._reader
        if reader is not None and reader.is_alive():
            reader.join(WAIT_S)
        self.wire.host_read = max(self.wire.host_read, self._rx_base + self.hal.rx_bytes)


class SerialWorld:
    """``serial``: the pty, and the virtual motion board that boots with the table's power
    (``sim.world.World``). The host process opens a ``SerialMockHal`` on the pty's far end."""

    name = "serial"
    has_link = True

    def __init__(
        self,
        table: SimTable,
        cfg: Config,
        *,
        timing: Timing = IDEAL,
        seed: int = 0,
        clock: Callable[[], float],
        board: str = "cpython",
        log: Callable[[float, str], None] | None = None,
    ) -> None:
        self.table = table
        self.cfg = cfg
        self.timing = timing
        self.seed = seed
        self.clock = clock
        self.wire: Wire | None = Wire(board, log=log)
        self.board: Any = self._boot(0.0)  # a VirtualBoard or an MpBoard

    def _boot(self, now: float) -> Any:
        """A virtual motion board booting at ``now``, with the scenario's [timing]."""
        assert self.wire is not None
        return boot_board(self.table, self.cfg, self.wire, now, timing=self.timing, seed=self.seed)

    def open_hal(self) -> SerialMockHal:
        assert self.board is not None and self.wire is not None  # the table is powered
        return SerialMockHal(self.board, self.wire, self.clock, timing=self.timing)

    def close_hal(self, hal: TableHardware) -> None:
        hal.close()

    def power(self, on: bool, now: float) -> None:
        if on:
            self.board = self._boot(now)
            self.board.link_cut = "link_loss" in self.table.faults
        elif self.board is not None:
            self.board = None  # unpowered; the pins fall to their pull-downs
            self.table.ticker = None

    def cut_link(self, cut: bool) -> None:
        # Unpowered, there is no board to cut: it boots cut (``power``) while the fault lasts.
        if self.board is not None:
            self.board.link_cut = cut

    def before(self, now: float) -> None:
        if self.board is not None and self.table.powered:
            self.board.before(now)  # the motion board samples and reports, host or no host

    def after(self, now: float) -> None:
        if self.board is not None and self.table.powered:
            self.board.after(now)  # takes the host's frames (if any), steps, drives its pins

    def close(self) -> None:
        if self.wire is not None:
            self.wire.close()
            self.wire = None
