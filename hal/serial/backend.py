"""``SerialTable``: the HAL over a serial link to the motion board (firmware/).

The board owns the motor, the brake and the sensors, and keeps the user safe on its own
when this side stops talking (firmware/board.py): it returns the table upright when the
host is silent for 300 ms or a command's validity lapses. This side sends the
controller's outputs as idempotent SET_OUTPUTS frames (an absolute duty with a validity
period, never "move by"), turns the board's STATUS telemetry into ``Inputs``, and
watches the link: no telemetry for ``LINK_TIMEOUT_S`` or ``PINGS_UNANSWERED`` pings
without an ACK make ``Inputs.link_ok`` false (the controller latches a fault and relies
on the board's own return). A failed port is reopened, and every (re)connection starts
with the versioned handshake.

Threads: a reader thread only turns bytes into frames and queues them; ``read()`` (the
control thread) consumes them. pyserial runs with ``timeout`` set (never None: that
blocks forever) and ``serial_for_url``, so ``/dev/ttyACM0``, ``socket://`` and test URLs
all work.
"""
from __future__ import annotations

import math
import queue
import threading
import time
from typing import Any, Callable

from firmware import protocol as P
from hal.interfaces import Inputs, Outputs

LINK_TIMEOUT_S = 0.3
PING_EVERY = 10            # writes (0.1 s at 100 Hz)
PINGS_UNANSWERED = 3
VALIDITY_MS = 100          # each command holds for 10 ticks at most
HANDSHAKE_TIMEOUT_S = 0.2
HANDSHAKE_TRIES = 3
REOPEN_EVERY_S = 1.0


class SerialTable:
    def __init__(self, url: str, *, baudrate: int = 230400, clock: Callable[[], float] = time.monotonic,
                 opener: Callable[..., Any] | None = None, status_wait_s: float = 0.0,
                 blocking_handshake: bool = True) -> None:
        import serial
        self.url = url
        self.baudrate = baudrate
        self.clock = clock
        self._opener = opener or serial.serial_for_url
        self.status_wait_s = status_wait_s   # block read() this long for fresh telemetry (lockstep tests)
        self.frames: queue.Queue[tuple[int, int, bytes]] = queue.Queue(maxsize=2000)
        self._status_event = threading.Event()
        self._stop = threading.Event()
        self._port: Any = None
        self._reader: threading.Thread | None = None
        self._tx_seq = 0
        self._writes = 0
        self._pending_pings: dict[int, float] = {}
        self._last_rx_t: float | None = None
        self._last_open_try = -1e9
        self.status: tuple | None = None
        self.board_info: tuple | None = None
        self.crc_errors = 0
        self.link_ok = False
        self._hello_t = -1e9
        self._status_seq = 0
        self.last_error = ""
        self._connect(blocking_handshake)

    # ------------------------------------------------------------------ link
    def _connect(self, blocking: bool) -> None:
        self._last_open_try = self.clock()
        try:
            self._port = self._opener(self.url, baudrate=self.baudrate, timeout=0.02, write_timeout=0.1)
        except Exception as exc:  # noqa: BLE001 - any open failure is a lost link, retried later
            self._port = None
            self.last_error = f"{type(exc).__name__}: {exc}"
            return
        self._stop.clear()
        self._reader = threading.Thread(target=self._read_loop, name="serial-reader", daemon=True)
        self._reader.start()
        if blocking:
            self._handshake()
        else:
            self._hello()

    def _read_loop(self) -> None:
        decoder = P.Decoder()
        port = self._port
        while not self._stop.is_set():
            try:
                data = port.read(max(1, port.in_waiting))
            except Exception:  # noqa: BLE001 - the port died: read() sees the link as lost
                break
            if not data:
                continue
            for frame in decoder.feed(data):
                try:
                    self.frames.put_nowait(frame)
                except queue.Full:
                    pass  # the control thread is far behind; telemetry is superseded anyway
                if frame[1] == P.STATUS:
                    self._status_event.set()
            self.crc_errors = decoder.crc_errors

    def _send(self, mtype: int, *values: Any) -> int:
        self._tx_seq = (self._tx_seq + 1) & 0xFF
        frame = P.pack(self._tx_seq, mtype, *values)
        if self._port is not None:
            try:
                self._port.write(frame)
            except Exception:  # noqa: BLE001
                self._drop_port()
        return self._tx_seq

    def _hello(self) -> None:
        self._hello_t = self.clock()
        self._send(P.HELLO, P.PROTO_VERSION)

    def _handshake(self) -> None:
        """HELLO until HELLO_ACK (bounded tries); the board then reports its limits."""
        for _ in range(HANDSHAKE_TRIES):
            self._hello()
            deadline = time.monotonic() + HANDSHAKE_TIMEOUT_S
            while time.monotonic() < deadline:
                try:
                    frame = self.frames.get(timeout=0.01)
                except queue.Empty:
                    continue
                self._consume(frame)
                if self.board_info is not None:
                    self._await_status()
                    return
        # No answer: the link stays down; read() keeps retrying.

    def _await_status(self) -> None:
        """Keep the first telemetry (bounded wait), so the first read() is not blind."""
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT_S
        while self.status is None and time.monotonic() < deadline:
            try:
                self._consume(self.frames.get(timeout=0.01))
            except queue.Empty:
                pass

    def _drop_port(self) -> None:
        self._stop.set()
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except Exception:  # noqa: BLE001
                pass
        self.board_info = None

    def _consume(self, frame: tuple[int, int, bytes]) -> None:
        seq, mtype, payload = frame
        values = P.unpack(mtype, payload)
        if values is None:
            return
        self._last_rx_t = self.clock()
        if mtype == P.STATUS:
            if self.status is None or P.seq_newer(seq, self._status_seq):
                self.status, self._status_seq = values, seq
        elif mtype == P.ACK:
            self._pending_pings.pop(values[0], None)
        elif mtype == P.HELLO_ACK:
            self.board_info = values

    # ------------------------------------------------------------------ the HAL
    def read(self) -> Inputs:
        now = self.clock()
        if self._port is None and now - self._last_open_try >= REOPEN_EVERY_S:
            self._connect(blocking=False)  # never stall the control loop: answered by later reads
        elif self._port is not None and self.board_info is None and now - self._hello_t >= HANDSHAKE_TIMEOUT_S:
            self._hello()
        if self.status_wait_s > 0 and self._port is not None:
            self._status_event.wait(self.status_wait_s)
        self._status_event.clear()
        while True:
            try:
                self._consume(self.frames.get_nowait())
            except queue.Empty:
                break
        fresh = self._last_rx_t is not None and now - self._last_rx_t <= LINK_TIMEOUT_S
        self.link_ok = (self._port is not None and self.board_info is not None and fresh
                        and len(self._pending_pings) < PINGS_UNANSWERED)
        return self._inputs()

    def _inputs(self) -> Inputs:
        s = self.status
        if s is None:  # nothing heard yet: everything reads unsafe
            return Inputs(None, None, False, True, True, False, frozenset(), 0.0, link_ok=False)
        _, primary, secondary, current_ca, bits, state, _, _, _ = s
        ea, eb = bool(bits & P.IN_ESTOP_A_OPEN), bool(bits & P.IN_ESTOP_B_OPEN)
        aa, ab = bool(bits & P.IN_ANKLE_A_CLOSED), bool(bits & P.IN_ANKLE_B_CLOSED)
        buttons = frozenset(name for i, name in enumerate(P.BUTTONS) if bits & (1 << (P.IN_BUTTON_SHIFT + i)))
        return Inputs(
            angle_primary_deg=None if primary == P.NO_READING else primary / 100.0,
            angle_secondary_deg=None if secondary == P.NO_READING else secondary / 100.0,
            upright_switch=bool(bits & P.IN_UPRIGHT),
            overtravel_tripped=bool(bits & P.IN_OVERTRAVEL_OPEN),
            estop_pressed=ea or eb,
            ankle_locked=aa and ab,
            buttons=buttons,
            motor_current_a=current_ca / 100.0,
            estop_discrepancy=ea != eb,
            ankle_discrepancy=aa != ab,
            link_ok=self.link_ok,
            drive_inhibited=state in (P.ST_RETURN, P.ST_SHUTDOWN, P.ST_HOLD),
        )

    def write(self, outputs: Outputs) -> None:
        if self._port is None:
            return
        finite = math.isfinite(outputs.motor_cmd)  # NaN never reaches the board: motor 0, brake on
        duty = max(-1000, min(1000, int(round(outputs.motor_cmd * 1000)))) if finite else 0
        flags = ((P.FLAG_BRAKE if outputs.brake or not finite else 0) | (P.FLAG_ALARM if outputs.alarm else 0)
                 | (P.FLAG_POWER if outputs.motor_power else 0))
        self._send(P.SET_OUTPUTS, duty, flags, VALIDITY_MS)
        self._writes += 1
        if self._writes % PING_EVERY == 0:
            self._pending_pings[self._send(P.PING)] = self.clock()

    def safe_stop(self) -> None:
        """Motor off, brake on, supply open now; the board takes over when it lapses."""
        if self._port is not None:
            self._send(P.SET_OUTPUTS, 0, P.FLAG_BRAKE | P.FLAG_ALARM, VALIDITY_MS)

    def abandon(self) -> None:
        """Close the port without a word (the process is going away as after a crash)."""
        self._drop_port()
        if self._reader is not None:
            self._reader.join(timeout=1.0)

    def clear_board(self) -> None:
        """Leave the board's latched shutdown (an explicit operator action)."""
        self._send(P.CLEAR)

    def close(self) -> None:
        self.safe_stop()
        self._drop_port()
        if self._reader is not None:
            self._reader.join(timeout=1.0)
