"""``machine`` for the MicroPython unix port, with the simulator behind every pin and the
clock: the firmware (firmware/main.py) runs on it unchanged. MicroPython code, not CPython.

The control channel is the process's stdin (requests) and stdout (replies), one fixed-size
record each way per pass of the loop the simulator gives an instant. The UART is a unix
socket the simulator passes as a file descriptor (``PTY_FD``); sim/mp_board.py relays it to
the real pseudo-terminal the host's ``hal.serial`` holds, through the link model (latency,
cut), and writes the host's bytes into it before the request that lets the UART take them.

Lockstep: the firmware's loop polls ``time.ticks_ms()``. The clock stands still while the
loop works; when the loop has gone idle (a ``ticks_ms()`` call with nothing done since the
previous one but an empty UART read), the board has finished everything due at this
instant: ``ticks_ms()`` then sends the outputs (a reply) and waits for the next request,
which moves the clock to the simulator's next instant and sets the input levels and how many
host bytes the UART may take by then (the byte-counted lockstep of sim/serial_world.py).
Nothing here waits on the wall clock except the bounded wait for host bytes the simulator
says were written but the kernel has not delivered yet.

Nothing in the per-step path allocates: the records are preallocated bytearrays, the UART
reads into the caller's buffer, integers stay small.
"""

import gc
import select
import sys

REQ_LEN = 24  # sim -> board
REP_LEN = 32  # board -> sim
REQ_STEP, REQ_QUIT = 1, 2
REP_IDLE, REP_WDT_RESET = 1, 2
PTY_FD = 3  # the UART's socket (boot.py sets it from its arguments)
RX_WAIT_MS = 5000  # bound on waiting for host bytes already relayed (never on a unix socket)
ADC_FIRST = 26  # GP26..GP28 are ADC0..ADC2


class _World:
    """Everything the pins, the UART and the clock read and write (one instance)."""

    def __init__(self):
        self.now_ms = 0
        self.levels = 0xFFFFFFFF  # input levels by GP number (pull-ups until told)
        self.outputs = 0  # output levels by GP number
        self.pwm = [0] * 30  # duty_u16 by GP number
        self.adc = [0, 0, 0]
        self.rx_allow = 0  # host bytes the UART may have taken by now (cumulative)
        self.rx_taken = 0
        self.tx = 0  # bytes written to the link (cumulative)
        self.lost = 0  # bytes the pty would not take (no host reading)
        self.late = 0  # waits for host bytes that hit RX_WAIT_MS
        self.cut = False  # the link is cut both ways
        self.booted = False  # the first ticks_ms() waits for the first instant
        self.busy = True  # the firmware did something since the last ticks_ms()
        self.polled = True  # ... or only read an empty UART: idle
        self.wdt_ms = 0  # 0: no watchdog started
        self.fed_ms = 0
        self.feeds = 0
        self.mark = 0
        self.req = bytearray(REQ_LEN)
        self.rep = bytearray(REP_LEN)
        self.ctl_in = sys.stdin.buffer
        self.ctl_out = sys.stdout.buffer
        self.pty = open(PTY_FD, "r+b")  # noqa: SIM115 - the board's UART, for its life
        self.poller = select.poll()
        self.poller.register(self.pty, select.POLLIN)

    def sync(self):
        """Report the outputs, then wait for the simulator's next instant."""
        rep = self.rep
        rep[0] = REP_IDLE
        _put(rep, 1, self.pwm[2], 2)
        _put(rep, 3, self.outputs, 4)
        _put(rep, 7, self.tx, 4)
        _put(rep, 11, self.rx_taken, 4)
        _put(rep, 15, self.feeds, 4)
        _put(rep, 19, self.lost, 2)
        _put(rep, 21, self.late, 2)
        # The heap: what this step allocated (the GC ran before it, so nothing was freed
        # in between), and what stays live after a collection.
        _put(rep, 23, gc.mem_alloc() - self.mark, 4)
        gc.collect()
        _put(rep, 27, gc.mem_alloc(), 4)
        self.ctl_out.write(rep)
        req = self.req
        if self.ctl_in.readinto(req) != REQ_LEN or req[0] != REQ_STEP:
            sys.exit(0)  # the simulator is gone or ends the run
        self.now_ms = _get(req, 1, 4)
        self.rx_allow = _get(req, 5, 4)
        self.levels = _get(req, 9, 4)
        self.adc[0] = _get(req, 13, 2)
        self.adc[1] = _get(req, 15, 2)
        self.adc[2] = _get(req, 17, 2)
        self.cut = bool(req[19] & 1)
        if self.wdt_ms and _ticks_diff(self.now_ms, self.fed_ms) > self.wdt_ms:
            rep[0] = REP_WDT_RESET  # the RP2040 resets: the simulator boots a new board
            self.ctl_out.write(rep)
            sys.exit(3)
        self.mark = gc.mem_alloc()  # the step starts here

    def take(self, buf, n):
        """Up to n of the host bytes due by now into buf; 0 when there are none."""
        want = self.rx_allow - self.rx_taken
        if want <= 0:
            return 0
        if n > want:
            n = want
        k = self.pty.readinto(buf, n)
        if not k:  # written by the host, not yet through the kernel: wait (bounded)
            if not self.poller.poll(RX_WAIT_MS):
                self.late += 1
                self.rx_taken = self.rx_allow  # resynchronise; never wait twice
                return 0
            k = self.pty.readinto(buf, n) or 0
        self.rx_taken += k
        return 0 if self.cut else k


def _put(buf, at, value, n):
    for i in range(n):
        buf[at + n - 1 - i] = (value >> (8 * i)) & 0xFF


def _get(buf, at, n):
    v = 0
    for i in range(n):
        v = (v << 8) | buf[at + i]
    return v


def _ticks_diff(a, b):
    period = 1 << 30
    return ((a - b + (period >> 1)) % period) - (period >> 1)


_w = None


def world():
    global _w
    if _w is None:
        _w = _World()
    return _w


def ticks_ms():
    """The simulator's clock; where the board waits for its next instant (see above)."""
    w = _w
    if (w.polled and not w.busy) or not w.booted:
        w.booted = True
        w.sync()
    w.busy = False
    w.polled = False
    return w.now_ms


class Pin:
    IN, OUT = 0, 1
    PULL_UP, PULL_DOWN = 1, 2

    def __init__(self, pin_id, mode=-1, pull=-1, value=None):
        self.id = pin_id
        self.bit = 1 << pin_id
        self.mode = mode
        w = world()
        w.busy = True
        if mode == Pin.OUT:
            self.value(value or 0)

    def value(self, v=None):
        w = _w
        w.busy = True
        if v is None:
            if self.mode == Pin.OUT:
                return 1 if w.outputs & self.bit else 0
            return 1 if w.levels & self.bit else 0
        if v:
            w.outputs |= self.bit
        else:
            w.outputs &= ~self.bit
        return None


class PWM:
    def __init__(self, pin, freq=1000, duty_u16=0):
        self.id = pin.id
        world().pwm[self.id] = duty_u16

    def freq(self, hz=None):
        return 1000

    def duty_u16(self, value=None):
        w = _w
        w.busy = True
        if value is None:
            return w.pwm[self.id]
        if not 0 <= value <= 65535:
            raise ValueError("duty_u16 out of range")
        w.pwm[self.id] = value
        return None


class ADC:
    def __init__(self, pin_id):
        self.ch = (pin_id.id if isinstance(pin_id, Pin) else pin_id) - ADC_FIRST
        world()

    def read_u16(self):
        w = _w
        w.busy = True
        return w.adc[self.ch]


class UART:
    """UART0 on the pseudo-terminal: non-blocking reads of the host bytes due by now."""

    def __init__(self, uart_id, baudrate=9600, tx=None, rx=None, timeout=0, **kw):
        world()
        self._scratch = bytearray(64)

    def readinto(self, buf, nbytes=-1):
        w = _w
        n = len(buf) if nbytes < 0 or nbytes > len(buf) else nbytes
        k = w.take(buf, n)
        if k:
            w.busy = True
            return k
        w.polled = True
        return None

    def read(self, nbytes=-1):
        """Allocates (as on the board): the firmware reads with readinto."""
        out = b""
        while True:
            k = self.readinto(self._scratch)
            if not k:
                return out or None
            out += self._scratch[:k]

    def any(self):
        w = _w
        return w.rx_allow - w.rx_taken

    def write(self, data):
        w = _w
        w.busy = True
        n = len(data)
        if w.cut:
            return n  # into a cut wire
        k = w.pty.write(data) or 0
        w.tx += k
        if k < n:
            w.lost += n - k  # a full pty (no host reading): lost, as on a UART
        return n


class WDT:
    def __init__(self, id=0, timeout=5000):
        if not 1 <= timeout <= 8388:
            raise ValueError("RP2040 WDT timeout is 1 .. 8388 ms")
        w = world()
        w.busy = True
        w.wdt_ms = timeout
        w.fed_ms = w.now_ms

    def feed(self):
        w = _w
        w.busy = True
        w.fed_ms = w.now_ms
        w.feeds += 1


def reset():
    sys.exit(3)
