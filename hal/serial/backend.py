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

Protocol v2 (docs/protocol.md): every HELLO carries a fresh host nonce; the board answers
with its protocol version, its limits, its boot id and a session token. The host refuses a
board whose version or limits differ from its own configuration (``refused`` says why,
with the numbers; the link never reads healthy and no SET_OUTPUTS is sent), sends the
token in every frame, and accepts a board frame only when it echoes the nonce and its
sequence number is 1 .. ``RX_WINDOW`` after the last accepted one: anything else (a
replay, a forged frame far ahead, a frame of an older session) is dropped without
refreshing link health. A board that lost the session (reset: its frames carry another
session word) or a link that stayed stale is greeted again with a new HELLO.

Writes never block (``write_timeout=0``): one that cannot go out whole is a late tick, not
a lost link: that frame is lost (the next tick's supersedes it, its validity bounds the
cost); only ``WRITE_TIMEOUTS_LOST`` in a row drop the port.

Threads: a reader thread only turns bytes into frames and queues them; ``read()`` (the
control thread) consumes them. pyserial runs with ``timeout`` set (never None: that
blocks forever) and ``serial_for_url``, so ``/dev/ttyACM0``, ``socket://`` and test URLs
all work.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

from firmware import protocol as P
from hal.interfaces import Inputs, Outputs

_log = logging.getLogger("invtable.serial")  # refusals and resets reach the service's stderr

LINK_TIMEOUT_S = 0.3
PING_EVERY = 10  # writes (0.1 s at 100 Hz)
PINGS_UNANSWERED = 3
VALIDITY_MS = 100  # each command holds for 10 ticks at most
HANDSHAKE_TIMEOUT_S = 0.2
HANDSHAKE_TRIES = 3
REOPEN_EVERY_S = 1.0
RX_WINDOW = 16  # board frames: at most this many ahead of the last accepted
FOREIGN_LIMIT = 3  # board frames of another session in a row: the board lost ours
WRITE_TIMEOUTS_LOST = 3  # consecutive write timeouts that mean the port is gone


class Status(NamedTuple):
    """A STATUS frame's fields (``firmware/protocol.py`` FORMATS[STATUS]), by name."""

    board_ms: int  # the board's clock, low 16 bits
    primary_cdeg: int  # NO_READING: none
    secondary_cdeg: int
    current_ca: int
    inputs: int  # IN_* bits and the buttons
    state: int  # ST_*
    duty_milli: int  # applied
    outputs: int  # OUT_* bits
    acked_seq: int  # the last host sequence number accepted


class HelloAck(NamedTuple):
    """A HELLO_ACK frame's fields (``firmware/protocol.py`` FORMATS[HELLO_ACK]), by name."""

    proto: int
    fw_major: int
    fw_minor: int
    upright_cdeg: int
    max_angle_cdeg: int
    emergency_speed_cdps: int
    emergency_accel_cdps2: int
    host_timeout_ms: int
    max_validity_ms: int
    boot_id: int
    token: int


@dataclass(frozen=True, slots=True)
class BoardLimits:
    """The limits the host's configuration expects the board to enforce (HELLO_ACK)."""

    upright_deg: float
    max_angle_deg: float
    emergency_speed_dps: float
    emergency_accel_dps2: float

    @classmethod
    def from_config(cls, cfg: Any) -> "BoardLimits":
        """From a controller ``Config`` (duck-typed: the HAL does not import the policy)."""
        return cls(
            cfg.limits.upright_deg,
            cfg.limits.max_angle_deg,
            cfg.motion.emergency_speed_dps,
            cfg.motion.emergency_accel_dps2,
        )

    def mismatch(self, info: HelloAck) -> str:
        """'' when the board's HELLO_ACK reports these limits, else every difference."""
        board = {
            "upright_deg": info.upright_cdeg / 100.0,
            "max_angle_deg": info.max_angle_cdeg / 100.0,
            "emergency_speed_dps": info.emergency_speed_cdps / 100.0,
            "emergency_accel_dps2": info.emergency_accel_cdps2 / 100.0,
        }
        diffs = [
            f"{k} {v:.2f} on the board, {getattr(self, k):.2f} in the config"
            for k, v in board.items()
            if round(getattr(self, k) * 100) != round(v * 100)
        ]
        return "; ".join(diffs)


def _random_nonce() -> int:
    return int.from_bytes(os.urandom(2), "big") or 1


class SerialTable:
    def __init__(
        self,
        url: str,
        *,
        baudrate: int = 230400,
        clock: Callable[[], float] = time.monotonic,
        opener: Callable[..., Any] | None = None,
        status_wait_s: float = 0.0,
        blocking_handshake: bool = True,
        expected: BoardLimits | None = None,
        nonce_source: Callable[[], int] = _random_nonce,
    ) -> None:
        import serial

        self._timeout_exc = serial.SerialTimeoutException
        self.url = url
        self.expected = expected
        self._nonce_source = nonce_source
        self._nonce: int | None = None  # the session word the board must echo
        self._token: int | None = None  # the session word the board requires from us
        self._rx_seq = 0
        self._foreign = 0
        self.refused = ""  # why this board is not used (version, limits)
        self.boot_id: int | None = None
        self.board_resets = 0
        self.dropped_frames = 0  # valid frames not accepted (other session, out of window)
        self.write_timeouts = 0
        self._timeouts_in_row = 0
        self.tx_bytes = 0  # bytes that went out (the simulator's lockstep counts them)
        self.rx_bytes = 0  # bytes read and queued as frames
        self._rx_cond = threading.Condition()
        self.baudrate = baudrate
        self.clock = clock
        self._opener = opener or serial.serial_for_url
        self.status_wait_s = (
            status_wait_s  # block read() this long for fresh telemetry (lockstep tests)
        )
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
        self.status: Status | None = None
        self.board_info: HelloAck | None = None
        self.crc_errors = 0
        self.link_ok = False
        self._hello_t = -1e9
        self._status_seq = 0
        self._read_status: Status | None = None  # the STATUS the previous read() returned
        self.last_error = ""
        self.open_error = ""  # why the port itself could not be opened at the last try
        self._connect(blocking_handshake)

    @property
    def port_open(self) -> bool:
        """Whether the serial port itself opened at the last try (a missing device, no
        permission: False, the reason in ``open_error``). A port that opened with no board
        answering on it is open: that is a lost link, handled by the controller."""
        return not self.open_error

    # ------------------------------------------------------------------ link
    def _connect(self, blocking: bool) -> None:
        self._last_open_try = self.clock()
        self.refused = ""
        self.board_info = None
        self._token = None
        try:
            # write_timeout=0: a write never blocks the control loop, and says how much went
            # out. (With a timeout, pyserial raises SerialTimeoutException when the thread
            # was merely descheduled past it, after writing the whole frame.)
            self._port = self._opener(
                self.url, baudrate=self.baudrate, timeout=0.02, write_timeout=0
            )
        except Exception as exc:  # any open failure is a lost link, retried later
            self._port = None
            self.last_error = self.open_error = f"{type(exc).__name__}: {exc}"
            return
        self.open_error = ""
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
            except Exception:  # the port died: read() sees the link as lost
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
            with self._rx_cond:
                self.rx_bytes += len(data)
                self._rx_cond.notify_all()

    def wait_received(self, total: int, timeout: float) -> bool:
        """Block until ``total`` bytes have been read and queued (bounded): the simulator's
        lockstep knows how many the board sent and waits for exactly those."""
        with self._rx_cond:
            return self._rx_cond.wait_for(lambda: self.rx_bytes >= total, timeout)

    def _send(self, mtype: int, *values: Any, session: int | None = None) -> int:
        self._tx_seq = (self._tx_seq + 1) & 0xFF
        frame = P.pack_s(self._tx_seq, mtype, self._token if session is None else session, *values)
        if self._port is not None:
            try:
                n = self._port.write(frame)
            except self._timeout_exc:
                n = 0  # nothing went out (the driver's buffer is full)
            except Exception as exc:  # any write failure drops the port: a lost link
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._drop_port()
                return self._tx_seq
            n = len(frame) if n is None else n
            self.tx_bytes += n
            if n < len(frame):
                # A slow write is a late tick: this frame is lost (a cut one is dropped by the
                # board's decoder), the next supersedes it and its validity bounds the cost.
                self.write_timeouts += 1
                self._timeouts_in_row += 1
                if self._timeouts_in_row >= WRITE_TIMEOUTS_LOST:
                    self.last_error = (
                        f"{self._timeouts_in_row} serial writes in a row did not go out"
                    )
                    self._drop_port()
            else:
                self._timeouts_in_row = 0
        return self._tx_seq

    def _hello(self) -> None:
        """Greet with a fresh nonce: answers to any earlier HELLO no longer count."""
        self._hello_t = self.clock()
        self._nonce = self._nonce_source() & 0xFFFF or 1
        self._token = None
        self.board_info = None
        self._send(P.HELLO, P.PROTO_VERSION, session=self._nonce)

    def _session_lost(self, why: str) -> None:
        """The board no longer knows our session (it reset, or another HELLO took it):
        greet it again at once."""
        self.last_error = why
        self._foreign = 0
        if self._port is not None and not self.refused:
            self._hello()

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
                if self.refused:
                    return
                if self._token is not None:
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
            except Exception:  # a port that died may fail to close too
                pass
        self.board_info = None

    def _consume(self, frame: tuple[int, int, bytes]) -> None:
        seq, mtype, payload = frame
        values = P.unpack(mtype, payload)
        if values is None:
            return
        session = P.session_of(payload)
        if self._nonce is None or session != self._nonce:
            self.dropped_frames += 1
            if self._token is not None:
                self._foreign += 1
                if self._foreign >= FOREIGN_LIMIT:
                    self._session_lost(
                        "the board's frames carry another session (board reset?): HELLO again"
                    )
            return
        if mtype == P.HELLO_ACK:
            if self._token is None and not self.refused:
                self._accept_board(seq, values)
            return
        if mtype == P.NAK and values[1] == P.NAK_VERSION and self._token is None:
            self.refused = (
                f"the board refused protocol version {P.PROTO_VERSION}: "
                "it runs firmware of another protocol version"
            )
            self.last_error = self.refused
            _log.error("%s: %s (nothing will be commanded)", self.url, self.refused)
            return
        if self._token is None or not P.seq_within(seq, self._rx_seq, RX_WINDOW):
            self.dropped_frames += 1  # far ahead, replayed or before the handshake: not heard
            return
        self._rx_seq = seq
        self._foreign = 0
        self._last_rx_t = self.clock()
        if mtype == P.STATUS:
            self.status, self._status_seq = Status(*values), seq
        elif mtype == P.ACK:
            self._pending_pings.pop(values[0], None)
        elif mtype == P.NAK and values[1] in (P.NAK_NO_HELLO, P.NAK_SESSION):
            self._session_lost("the board refused our session: HELLO again")

    def _accept_board(self, seq: int, fields: tuple) -> None:
        """The handshake's answer: used only if its version and limits are ours."""
        values = self.board_info = HelloAck(*fields)
        problems = []
        if values.proto != P.PROTO_VERSION:
            problems.append(
                f"protocol version {values.proto} on the board, {P.PROTO_VERSION} on the host"
            )
        if self.expected is not None:
            diff = self.expected.mismatch(values)
            if diff:
                problems.append(diff)
        if problems:
            self.refused = "board refused: " + "; ".join(problems)
            self.last_error = self.refused
            _log.error("%s: %s (nothing will be commanded)", self.url, self.refused)
            return
        boot_id = values.boot_id
        if self.boot_id is not None and boot_id != self.boot_id:
            self.board_resets += 1
            self.last_error = f"the board reset (boot id {self.boot_id} -> {boot_id}); new session"
            _log.warning("%s: %s", self.url, self.last_error)
        self.boot_id = boot_id
        self._token = values.token
        self._rx_seq = seq
        self._foreign = 0
        self._pending_pings.clear()
        self._last_rx_t = self.clock()

    # ------------------------------------------------------------------ the HAL
    def read(self) -> Inputs:
        now = self.clock()
        if self._port is None and now - self._last_open_try >= REOPEN_EVERY_S:
            self._connect(blocking=False)  # never stall the control loop: answered by later reads
        if self.status_wait_s > 0 and self._port is not None:
            self._status_event.wait(self.status_wait_s)
        self._status_event.clear()
        while True:
            try:
                self._consume(self.frames.get_nowait())
            except queue.Empty:
                break
        fresh = self._last_rx_t is not None and now - self._last_rx_t <= LINK_TIMEOUT_S
        if (
            self._port is not None
            and not self.refused
            and now - self._hello_t >= HANDSHAKE_TIMEOUT_S
        ):
            if self._token is None:
                self._hello()  # unanswered: greet again (never blocking the loop)
            elif not fresh:
                self._hello()  # a stale link: a new session also resets the sequence window
        self.link_ok = (
            self._port is not None
            and self._token is not None
            and not self.refused
            and fresh
            and len(self._pending_pings) < PINGS_UNANSWERED
        )
        return self._inputs()

    def _inputs(self) -> Inputs:
        s = self.status
        if s is None:  # nothing heard yet: everything reads unsafe
            return Inputs(None, None, False, True, True, False, frozenset(), 0.0, link_ok=False)
        # A new STATUS is a new object (even with equal values): identity tells fresh.
        fresh, self._read_status = s is not self._read_status, s
        primary, secondary, bits, state = s.primary_cdeg, s.secondary_cdeg, s.inputs, s.state
        ea, eb = bool(bits & P.IN_ESTOP_A_OPEN), bool(bits & P.IN_ESTOP_B_OPEN)
        aa, ab = bool(bits & P.IN_ANKLE_A_CLOSED), bool(bits & P.IN_ANKLE_B_CLOSED)
        buttons = frozenset(
            name for i, name in enumerate(P.BUTTONS) if bits & (1 << (P.IN_BUTTON_SHIFT + i))
        )
        return Inputs(
            angle_primary_deg=None if primary == P.NO_READING else primary / 100.0,
            angle_secondary_deg=None if secondary == P.NO_READING else secondary / 100.0,
            upright_switch=bool(bits & P.IN_UPRIGHT),
            overtravel_tripped=bool(bits & P.IN_OVERTRAVEL_OPEN),
            estop_pressed=ea or eb,
            ankle_locked=aa and ab,
            buttons=buttons,
            motor_current_a=s.current_ca / 100.0,
            estop_discrepancy=ea != eb,
            ankle_discrepancy=aa != ab,
            link_ok=self.link_ok,
            drive_inhibited=state in (P.ST_RETURN, P.ST_SHUTDOWN, P.ST_HOLD),
            board_returning=state == P.ST_RETURN,
            fresh=fresh,
        )

    def write(self, outputs: Outputs) -> None:
        if self._port is None or self._token is None:
            return  # no session with a board we accept: nothing to command
        finite = math.isfinite(outputs.motor_cmd)  # NaN never reaches the board: motor 0, brake on
        duty = max(-1000, min(1000, int(round(outputs.motor_cmd * 1000)))) if finite else 0
        flags = (
            (P.FLAG_BRAKE if outputs.brake or not finite else 0)
            | (P.FLAG_ALARM if outputs.alarm else 0)
            | (P.FLAG_POWER if outputs.motor_power else 0)
        )
        self._send(P.SET_OUTPUTS, duty, flags, VALIDITY_MS)
        self._writes += 1
        if self._writes % PING_EVERY == 0:
            self._pending_pings[self._send(P.PING)] = self.clock()

    def safe_stop(self) -> None:
        """Motor off, brake on, supply open now; the board takes over when it lapses."""
        if self._port is not None and self._token is not None:
            self._send(P.SET_OUTPUTS, 0, P.FLAG_BRAKE | P.FLAG_ALARM, VALIDITY_MS)

    def abandon(self) -> None:
        """Close the port without a word (the process is going away as after a crash)."""
        self._drop_port()
        if self._reader is not None:
            self._reader.join(timeout=1.0)

    def clear_board(self) -> None:
        """Leave the board's latched shutdown (an explicit operator action)."""
        if self._token is not None:
            self._send(P.CLEAR)

    def close(self) -> None:
        self.safe_stop()
        self._drop_port()
        if self._reader is not None:
            self._reader.join(timeout=1.0)
