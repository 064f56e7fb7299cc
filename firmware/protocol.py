"""The serial protocol between the Pi (host) and the motion board, shared by both sides.
Written in the subset MicroPython runs (no dataclasses, no typing at run time).

Frame: SYNC(0x7E) LEN SEQ TYPE PAYLOAD[LEN] CRC16-CCITT(hi, lo); the CRC (polynomial
0x1021, initial 0xFFFF, no reflection) covers LEN, SEQ, TYPE and PAYLOAD. LEN is at most
MAX_PAYLOAD. The decoder resynchronises on the next SYNC after any bad byte, and never
raises on any input. docs/protocol.md has the message table.

Version 2: every payload starts with a 16-bit SESSION word, so a frame of one session is
never taken for a frame of another (a replayed HELLO, a board that reset): the host's
frames carry the board's session token (from HELLO_ACK; HELLO carries the host's nonce
instead), the board's frames echo the host's nonce. ``FORMATS`` lists the fields after it.
"""

import struct

SYNC = 0x7E
MAX_PAYLOAD = 40
PROTO_VERSION = 2
FW_VERSION = (2, 0)
SESSION_FMT = ">H"  # the session word that starts every payload

# Host -> board
HELLO = 0x01  # B proto_version (the session word is the host's nonce)
SET_OUTPUTS = (
    0x02  # h duty_milli, B flags (bit0 brake, bit1 alarm, bit2 motor_power), H validity_ms
)
PING = 0x03  # (empty)
CLEAR = 0x04  # (empty): leave a latched shutdown
# Board -> host
ACK = 0x80  # B acked_seq
NAK = 0x81  # B seq, B reason
HELLO_ACK = 0x82  # see FORMATS
STATUS = 0x90  # see FORMATS

FORMATS = {
    HELLO: ">B",
    SET_OUTPUTS: ">hBH",
    PING: "",
    CLEAR: "",
    ACK: ">B",
    NAK: ">BB",
    # proto, fw major, fw minor, upright cdeg, max angle cdeg, emergency speed cdps,
    # emergency accel cdps2, host timeout ms, max validity ms, boot id, session token
    HELLO_ACK: ">BBBhhHHHHHH",
    # board ms (low 16 bits), primary cdeg, secondary cdeg (NO_READING = none), current cA,
    # input bits, board state, applied duty milli, output bits, last host seq accepted
    STATUS: ">HhhHHBhBB",
}
NO_READING = -32768
# Whole payload formats (the session word first) and sizes, for the board's
# allocation-free path (FrameReader, pack_into).
FULL_FORMATS = {t: SESSION_FMT + f[1:] for t, f in FORMATS.items()}
SIZES = {t: 2 + struct.calcsize(f) for t, f in FORMATS.items()}

# NAK reasons
NAK_UNKNOWN = 1
NAK_BAD_PAYLOAD = 2
NAK_STALE_SEQ = 3
NAK_SHUTDOWN = 4
NAK_NO_HELLO = 5
NAK_VERSION = 6
NAK_SESSION = 7  # the frame's session word is not this board's current session token

# STATUS input bits
IN_UPRIGHT = 1
IN_OVERTRAVEL_OPEN = 2
IN_ESTOP_A_OPEN = 4
IN_ESTOP_B_OPEN = 8
IN_ANKLE_A_CLOSED = 16
IN_ANKLE_B_CLOSED = 32
IN_BUTTON_SHIFT = 6  # start, stop, up, down, return at bits 6..10
BUTTONS = ("start", "stop", "up", "down", "return")
# STATUS output bits
OUT_BRAKE = 1
OUT_RELAY = 2
OUT_ALARM = 4
# SET_OUTPUTS flag bits
FLAG_BRAKE = 1
FLAG_ALARM = 2
FLAG_POWER = 4
# Board states
ST_WAIT = 0  # no host session yet (or cleared): holds on the brake
ST_HOST = 1  # following the host's commands, within the board's own limits
ST_RETURN = 2  # returning to upright alone (host lost)
ST_SHUTDOWN = 3  # latched after acting alone: brake, supply open, until CLEAR
ST_HOLD = 4  # latched: cannot move safely (sensors disagree, overspeed): brake, alarm
STATE_NAMES = ("wait", "host", "return", "shutdown", "hold")


def _crc_table():
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_TABLE = _crc_table()


def crc16(data, crc=0xFFFF):
    """CRC16-CCITT (0x1021, init 0xFFFF) of bytes."""
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc


def crc16_at(buf, start, end, crc=0xFFFF):
    """crc16 of buf[start:end] without slicing it (nothing allocated)."""
    table = _TABLE
    for i in range(start, end):
        crc = ((crc << 8) & 0xFFFF) ^ table[((crc >> 8) ^ buf[i]) & 0xFF]
    return crc


def frame_into(buf, seq, mtype, plen):
    """Complete the frame whose payload is already at buf[4:4+plen] (SYNC, LEN, SEQ, TYPE and
    the CRC): the board's replies are built in place in preallocated buffers."""
    buf[0] = SYNC
    buf[1] = plen
    buf[2] = seq & 0xFF
    buf[3] = mtype & 0xFF
    crc = crc16_at(buf, 1, 4 + plen)
    buf[4 + plen] = crc >> 8
    buf[5 + plen] = crc & 0xFF
    return buf


def encode(seq, mtype, payload=b""):
    """One frame as bytes."""
    n = len(payload)
    if n > MAX_PAYLOAD:
        raise ValueError("payload too long")
    body = bytes((n, seq & 0xFF, mtype & 0xFF)) + bytes(payload)
    crc = crc16(body)
    return bytes((SYNC,)) + body + bytes((crc >> 8, crc & 0xFF))


def pack_s(seq, mtype, session, *values):
    """Encode a message of a known type: the session word, then its field values."""
    fmt = FORMATS[mtype]
    body = struct.pack(SESSION_FMT, session & 0xFFFF)
    if fmt:
        body += struct.pack(fmt, *values)
    return encode(seq, mtype, body)


def pack(seq, mtype, *values):
    """``pack_s`` with session 0 (no session: what a board without a host sends)."""
    return pack_s(seq, mtype, 0, *values)


def session_of(payload):
    """The session word of a payload, or None when it is too short to have one."""
    if len(payload) < 2:
        return None
    return (payload[0] << 8) | payload[1]


def unpack(mtype, payload):
    """The field values after the session word, or None when the type is unknown or the
    size wrong."""
    fmt = FORMATS.get(mtype)
    if fmt is None or len(payload) < 2:
        return None
    if not fmt:
        return () if len(payload) == 2 else None
    if len(payload) != 2 + struct.calcsize(fmt):
        return None
    return struct.unpack(fmt, payload[2:])


class Decoder:
    """Bytes in, whole verified frames out as (seq, type, payload). Bounded memory; never
    raises; counts what it threw away."""

    def __init__(self):
        self.buf = bytearray()
        self.crc_errors = 0
        self.dropped = 0

    def feed(self, data):
        frames = []
        buf = self.buf
        buf.extend(data)
        while True:
            start = buf.find(bytes((SYNC,)))
            if start < 0:
                self.dropped += len(buf)
                buf[:] = b""
                break
            if start:
                self.dropped += start
                buf[:] = buf[start:]
            if len(buf) < 2:
                break
            n = buf[1]
            if n > MAX_PAYLOAD:
                self.dropped += 1
                buf[:] = buf[1:]
                continue
            total = n + 6
            if len(buf) < total:
                # Incomplete, or a start that was not one (a lost byte, a flipped length):
                # if a later SYNC already begins a whole valid frame, this start was garbage.
                j = self._later_frame(buf)
                if j < 0:
                    break
                self.dropped += j
                buf[:] = buf[j:]
                continue
            body = bytes(buf[1 : 4 + n])
            crc = (buf[4 + n] << 8) | buf[5 + n]
            if crc16(body) != crc:
                self.crc_errors += 1
                self.dropped += 1
                buf[:] = buf[1:]  # the SYNC was not a frame start: rescan after it
                continue
            frames.append((body[1], body[2], body[3:]))
            buf[:] = buf[total:]
        if len(buf) > 4 * (MAX_PAYLOAD + 6):  # cannot happen with the rules above; a guard
            self.dropped += len(buf)
            buf[:] = b""
        return frames

    @staticmethod
    def _later_frame(buf):
        """Index of the first SYNC after 0 that starts a complete frame with a good CRC, or -1."""
        j = buf.find(bytes((SYNC,)), 1)
        while j > 0:
            if len(buf) - j >= 2:
                n = buf[j + 1]
                end = j + n + 6
                if n <= MAX_PAYLOAD and end <= len(buf):
                    if crc16(bytes(buf[j + 1 : j + 4 + n])) == (buf[end - 2] << 8) | buf[end - 1]:
                        return j
            j = buf.find(bytes((SYNC,)), j + 1)
        return -1


class FrameReader:
    """``Decoder``'s rules (resynchronise on the next SYNC, the later-frame rule, bounded) on
    a fixed buffer, for the board: ``push`` bytes, then ``next()`` until it is False; each
    True leaves one verified frame in ``seq``, ``mtype`` and ``payload[:plen]``. Allocates
    nothing (MicroPython's garbage collector never sees the link)."""

    SIZE = 4 * (MAX_PAYLOAD + 6)

    def __init__(self):
        self.buf = bytearray(self.SIZE)
        self.n = 0
        self.payload = bytearray(MAX_PAYLOAD)
        self.seq = 0
        self.mtype = 0
        self.plen = 0
        self.crc_errors = 0
        self.dropped = 0

    def push(self, data, k):
        """The first k bytes of data, appended (call ``next()`` until False after each push)."""
        buf = self.buf
        n = self.n
        for i in range(k):
            if n == self.SIZE:  # cannot happen when next() drains after every push: a guard
                self.dropped += n
                n = 0
            buf[n] = data[i]
            n += 1
        self.n = n

    def _drop(self, j):
        buf = self.buf
        n = self.n
        for i in range(j, n):
            buf[i - j] = buf[i]
        self.n = n - j

    def _find(self, start):
        buf = self.buf
        for i in range(start, self.n):
            if buf[i] == SYNC:
                return i
        return -1

    def _later_frame(self):
        """Index of the first SYNC after 0 that starts a complete frame with a good CRC, or -1."""
        buf = self.buf
        j = self._find(1)
        while j > 0:
            if self.n - j >= 2:
                m = buf[j + 1]
                end = j + m + 6
                if m <= MAX_PAYLOAD and end <= self.n:
                    if crc16_at(buf, j + 1, j + 4 + m) == (buf[end - 2] << 8) | buf[end - 1]:
                        return j
            j = self._find(j + 1)
        return -1

    def next(self):
        buf = self.buf
        while True:
            start = self._find(0)
            if start < 0:
                self.dropped += self.n
                self.n = 0
                return False
            if start:
                self.dropped += start
                self._drop(start)
            if self.n < 2:
                return False
            m = buf[1]
            if m > MAX_PAYLOAD:
                self.dropped += 1
                self._drop(1)
                continue
            if self.n < m + 6:
                j = self._later_frame()
                if j < 0:
                    return False
                self.dropped += j
                self._drop(j)
                continue
            if crc16_at(buf, 1, 4 + m) != (buf[4 + m] << 8) | buf[5 + m]:
                self.crc_errors += 1
                self.dropped += 1
                self._drop(1)
                continue
            self.seq = buf[2]
            self.mtype = buf[3]
            self.plen = m
            p = self.payload
            for i in range(m):
                p[i] = buf[4 + i]
            self._drop(m + 6)
            return True


def seq_newer(seq, last):
    """True when ``seq`` comes after ``last`` (mod 256, within half the space)."""
    d = (seq - last) & 0xFF
    return 0 < d < 128


def seq_within(seq, last, window):
    """True when ``seq`` is 1 .. ``window`` after ``last`` (mod 256): a frame far ahead is
    not a newer frame but a forged, replayed or misrouted one."""
    d = (seq - last) & 0xFF
    return 0 < d <= window
