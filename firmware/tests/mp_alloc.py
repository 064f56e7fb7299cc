"""Run on the MicroPython unix port (``micropython firmware/tests/mp_alloc.py`` from the
repository root; tests/test_mp_board.py does): the board's receive path, frames in and
replies out, under ``micropython.heap_lock()``: any allocation there raises MemoryError.
The frames of a session carry no floats except SET_OUTPUTS' duty (one boxed float, the
one allocation left there), so PING, CLEAR, stale and foreign frames must allocate nothing."""

import sys

sys.path[:] = ["firmware"]  # the board's flat layout

import gc  # noqa: E402

import micropython  # noqa: E402
import protocol as P  # noqa: E402
from board import Board  # noqa: E402
from main import Loop  # noqa: E402


class Uart:
    """Bytes queued in a preallocated buffer; replies counted, not kept."""

    def __init__(self, size):
        self.buf = bytearray(size)
        self.n = 0
        self.at = 0
        self.sent = 0
        self.frames = 0

    def load(self, data):
        for b in data:
            self.buf[self.n] = b
            self.n += 1

    def readinto(self, buf, nbytes=-1):
        k = self.n - self.at
        if k <= 0:
            return None
        if k > len(buf):
            k = len(buf)
        for i in range(k):
            buf[i] = self.buf[self.at + i]
        self.at += k
        return k

    def write(self, data):
        self.sent += len(data)
        self.frames += 1
        return len(data)


class IO:
    def __init__(self):
        self.uart = Uart(20000)


def main():
    io = IO()
    board = Board(0, boot_id=1234)
    loop = Loop(io, board)
    io.uart.load(P.pack_s(1, P.HELLO, 77, P.PROTO_VERSION))
    loop.receive(0)  # HELLO: the handshake allocates (once per session)
    token = board.token
    frames = []
    seq = 1
    for i in range(600):
        seq = seq % 255 + 1
        if i % 3 == 0:
            frames.append(P.pack_s(seq, P.PING, token))
        elif i % 3 == 1:
            frames.append(P.pack_s(seq, P.CLEAR, token))
        else:
            frames.append(P.pack_s(seq, P.PING, token ^ 0x5A5A))  # another session: NAK
    for f in frames:
        io.uart.load(f)
    io.uart.load(b"\x7e\x03garbage\x7e")  # noise the reader must resynchronise through
    before = io.uart.frames
    micropython.heap_lock()
    try:
        for now in range(0, 6000, 10):
            loop.receive(now)
    finally:
        micropython.heap_unlock()
    replies = io.uart.frames - before
    print("locked: %d frames answered, %d dropped bytes" % (replies, loop.reader.dropped))
    # SET_OUTPUTS: its duty is the one float of the receive path; nothing else may allocate.
    n = 300
    for i in range(n):
        seq = seq % 255 + 1
        io.uart.load(P.pack_s(seq, P.SET_OUTPUTS, token, (i % 200) - 100, P.FLAG_POWER, 100))
    one = 0.5
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    x = one + 0.25  # noqa: F841 - one boxed float: this build's block size
    box = gc.mem_alloc() - a
    before = io.uart.frames
    a = gc.mem_alloc()
    for now in range(6000, 6000 + 10 * n, 10):
        loop.receive(now)
    per_frame = (gc.mem_alloc() - a) / n
    gc.enable()
    print(
        "set_outputs: %d answered, %.1f bytes per frame, float box %d"
        % (io.uart.frames - before, per_frame, box)
    )
    ok = replies == 600 and io.uart.frames - before == n and per_frame <= box
    print("OK" if ok else "FAIL")


main()
