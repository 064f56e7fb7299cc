"""The motion board's entry point on a Raspberry Pi Pico (RP2040, MicroPython): the thin
``machine`` glue around ``board.Board``. Copy the firmware files to the board with
mpremote (docs/firmware.md); MicroPython runs ``main.py`` at power-up.

The loop polls (no interrupt handlers, so nothing allocates in one): every pass it reads the
UART into the frame decoder, and every 10 ms it samples the sensors and sends a STATUS
frame, then steps the board logic and drives the outputs: at once, or, while it follows a
host that answers, as soon as the host's answer to that STATUS is read (``Loop``). That
path allocates nothing but the boxed floats of the arithmetic (docs/firmware.md): the UART
is read into a buffer, the frames are decoded and built in place, the sample is one object
updated in place. The watchdog is fed only at the end of a complete, on-time step (its
control part included): a stuck loop resets the
board (8.3 s is the RP2040's longest timeout; 500 ms is used), and at reset every output pin
starts as an input with the pull-downs of docs/firmware.md holding the motor off and the
brake engaged.
"""

import time

import machine

try:
    from firmware import protocol as P
    from firmware.board import Board, Sensors
    from firmware.ticks import ticks_add, ticks_diff
except ImportError:
    import protocol as P
    from board import Board, Sensors
    from ticks import ticks_add, ticks_diff

# Pico pin map (GP numbers), see docs/firmware.md.
PWM_PIN, DIR_PIN, BRAKE_PIN, RELAY_PIN, BUZZER_PIN, CHARGE_PUMP_PIN = 2, 3, 4, 5, 6, 22
ESTOP_A, ESTOP_B, OVERTRAVEL, ANKLE_A, ANKLE_B, UPRIGHT = 7, 8, 9, 10, 11, 12
BUTTON_PINS = (13, 14, 15, 16, 17)  # start, stop, up, down, return
ADC_PRIMARY, ADC_SECONDARY, ADC_CURRENT = 26, 27, 28
UART_ID, UART_TX, UART_RX, BAUD = 0, 0, 1, 230400
PERIOD_MS = 10
WDT_MS = 500
# Calibration (as the host's [hardware.gpio] keys): degrees at 5 % and 95 % of full scale.
DEG_AT_5, DEG_AT_95 = -105.0, 105.0
CURRENT_FULL_SCALE_A = 40.0


class BoardIO:
    """Pins, PWM, ADC and UART of the Pico, read and written as the board logic needs."""

    def __init__(self):
        Pin = machine.Pin
        self.pwm = machine.PWM(Pin(PWM_PIN))
        self.pwm.freq(1000)
        self.pwm.duty_u16(0)
        self.dir = Pin(DIR_PIN, Pin.OUT, value=0)
        self.brake_release = Pin(BRAKE_PIN, Pin.OUT, value=0)
        self.relay = Pin(RELAY_PIN, Pin.OUT, value=0)
        self.buzzer = Pin(BUZZER_PIN, Pin.OUT, value=0)
        self.pump = Pin(CHARGE_PUMP_PIN, Pin.OUT, value=0)
        self.estop_a = Pin(ESTOP_A, Pin.IN, Pin.PULL_UP)
        self.estop_b = Pin(ESTOP_B, Pin.IN, Pin.PULL_UP)
        self.overtravel = Pin(OVERTRAVEL, Pin.IN, Pin.PULL_UP)
        self.ankle_a = Pin(ANKLE_A, Pin.IN, Pin.PULL_UP)
        self.ankle_b = Pin(ANKLE_B, Pin.IN, Pin.PULL_UP)
        self.upright = Pin(UPRIGHT, Pin.IN, Pin.PULL_UP)
        self.buttons = [Pin(n, Pin.IN, Pin.PULL_UP) for n in BUTTON_PINS]
        self.adc = [machine.ADC(n) for n in (ADC_PRIMARY, ADC_SECONDARY, ADC_CURRENT)]
        self.uart = machine.UART(
            UART_ID, baudrate=BAUD, tx=Pin(UART_TX), rx=Pin(UART_RX), timeout=0
        )
        self.sensors = Sensors()  # the one sample, updated in place

    @staticmethod
    def _angle(raw):
        f = raw / 65535.0
        if f < 0.02 or f > 0.98:
            return None  # a rail: broken wire or dead sensor
        return DEG_AT_5 + (f - 0.05) / 0.9 * (DEG_AT_95 - DEG_AT_5)

    def sample(self):
        """Every sensor into the one Sensors object (a closed contact pulls to ground)."""
        buttons = 0
        pins = self.buttons
        for i in range(len(pins)):
            if pins[i].value() == 0:
                buttons |= 1 << i
        s = self.sensors
        s.primary = self._angle(self.adc[0].read_u16())
        s.secondary = self._angle(self.adc[1].read_u16())
        s.current_a = self.adc[2].read_u16() / 65535.0 * CURRENT_FULL_SCALE_A
        s.estop_a_open = self.estop_a.value() != 0
        s.estop_b_open = self.estop_b.value() != 0
        s.overtravel_open = self.overtravel.value() != 0
        s.ankle_a_closed = self.ankle_a.value() == 0
        s.ankle_b_closed = self.ankle_b.value() == 0
        s.upright = self.upright.value() == 0
        s.buttons = buttons
        return s

    def apply(self, duty, brake, relay, alarm, heartbeat):
        if duty == 0.0 or not relay:
            self.pwm.duty_u16(0)
        level = 1 if duty > 0 else 0
        if duty != 0.0 and self.dir.value() != level:
            self.pwm.duty_u16(0)  # break before make
            self.dir.value(level)
        if relay:
            self.relay.value(1)
        if duty != 0.0 and relay:
            self.pwm.duty_u16(int(min(1.0, abs(duty)) * 65535))
        if not relay:
            self.relay.value(0)
        self.brake_release.value(0 if brake else 1)
        self.buzzer.value(1 if alarm else 0)
        self.pump.value(1 if heartbeat else 0)


class Loop:
    """The board's work, in the order a real loop does it (``poll``, called as often as the
    loop spins, about every millisecond on the Pico; the simulator's boards call it too).

    Every 10 ms the board samples and sends its STATUS (``report``). While it follows a host
    that answers (state HOST, the host's last STATUS was answered), the control step of that
    period waits for the host's answer to this STATUS and runs the moment it is read: read
    UART -> step -> drive the pins, a few milliseconds after the sample instead of a whole
    period later (one period of command latency put a 136 kg user 0.06 deg further past a
    failed brake: docs/firmware.md). A host that did not answer by the next step is not
    waited for again until it answers: with no host, or a silent one, or while the board
    acts alone, the step runs right after its sample, as before."""

    def __init__(self, io, board):
        self.io = io
        self.board = board
        self.reader = P.FrameReader()
        self.rx = bytearray(64)
        self.sample = Sensors()
        board.out = io.uart.write  # replies go straight to the UART
        self.next_step = 0  # when the next period's sample is due (run() sets it)
        self.due = 0  # the instant the current period's step was due (the watchdog's check)
        self.owed = False  # reported; the step waits for the host's answer
        self.answered = False  # the host answered the last STATUS in time: wait for it again

    def receive(self, now):
        """Frames from the host, answered at once; True when a SET_OUTPUTS was taken."""
        uart = self.io.uart  # one name at a time: a 4-tuple assignment allocates a tuple
        reader = self.reader
        board = self.board
        rx = self.rx
        board.commanded = False
        n = uart.readinto(rx)
        while n:
            reader.push(rx, n)
            while reader.next():
                board.handle(reader.seq, reader.mtype, reader.payload, reader.plen, now)
            n = uart.readinto(rx)
        return board.commanded

    def report(self, now):
        """Sample every sensor and send the STATUS telemetry."""
        self.sample = self.io.sample()
        self.board.sample = self.sample
        self.io.uart.write(self.board.status_into())

    def control(self, now):
        """Step the board logic on the latest sample and drive the outputs."""
        b = self.board
        b.update(now, self.sample)
        self.io.apply(b.duty, b.brake, b.relay, b.alarm, b.heartbeat)

    def poll(self, now):
        """One pass of the loop at ``now``; True when it ran a control step."""
        got = self.receive(now)
        stepped = False
        if got:
            self.answered = True  # it answers (in time or late): wait for it next time
            if self.owed:  # the host's answer to our STATUS: driven now
                self.owed = False
                self.control(now)
                stepped = True
        if ticks_diff(now, self.next_step) >= 0:
            if self.owed:  # no answer within the period: not waited for again until it answers
                self.owed = False
                self.answered = False
            self.due = self.next_step
            self.next_step = ticks_add(self.next_step, PERIOD_MS)
            self.report(now)
            if self.answered and self.board.state == P.ST_HOST:
                self.owed = True
            else:
                self.control(now)
                stepped = True
        return stepped


def run(io, board, clock_ms, wdt=None, iterations=None):
    """The main loop. ``iterations`` bounds it for tests on the shim."""
    loop = Loop(io, board)
    loop.next_step = clock_ms()
    n = 0
    while iterations is None or n < iterations:
        if loop.poll(clock_ms()):
            late = ticks_diff(clock_ms(), loop.due) > PERIOD_MS
            if wdt is not None and not late:
                wdt.feed()  # only a healthy, on-time loop keeps the board alive
        n += 1


def boot_id():
    """A random 16-bit id per boot (the RP2040's ring oscillator through os.urandom): it
    seeds the session tokens, so a reset board never reissues the tokens of before."""
    try:
        import os

        b = os.urandom(2)
        return (b[0] << 8) | b[1]
    except Exception:  # a port without urandom: the microsecond counter
        return time.ticks_us() & 0xFFFF


def main():
    io = BoardIO()
    board = Board(time.ticks_ms(), boot_id=boot_id())
    wdt = machine.WDT(timeout=WDT_MS)
    run(io, board, time.ticks_ms, wdt)


if __name__ == "__main__":
    main()
