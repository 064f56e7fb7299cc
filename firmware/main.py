"""The motion board's entry point on a Raspberry Pi Pico (RP2040, MicroPython): the thin
``machine`` glue around ``board.Board``. Copy the firmware files to the board with
mpremote (docs/firmware.md); MicroPython runs ``main.py`` at power-up.

The loop polls (no interrupt handlers, so nothing allocates in one): every millisecond it
reads the UART into the frame decoder, and every 10 ms it samples the sensors, steps the
board logic, drives the outputs and sends a STATUS frame. The watchdog is fed only at the
end of a complete, on-time iteration: a stuck loop resets the board (8.3 s is the RP2040's
longest timeout; 500 ms is used), and at reset every output pin starts as an input with
the pull-downs of docs/firmware.md holding the motor off and the brake engaged.
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
        self.contacts = [
            Pin(n, Pin.IN, Pin.PULL_UP)
            for n in (ESTOP_A, ESTOP_B, OVERTRAVEL, ANKLE_A, ANKLE_B, UPRIGHT)
        ]
        self.buttons = [Pin(n, Pin.IN, Pin.PULL_UP) for n in BUTTON_PINS]
        self.adc = [machine.ADC(n) for n in (ADC_PRIMARY, ADC_SECONDARY, ADC_CURRENT)]
        self.uart = machine.UART(
            UART_ID, baudrate=BAUD, tx=Pin(UART_TX), rx=Pin(UART_RX), timeout=0
        )

    @staticmethod
    def _angle(raw):
        f = raw / 65535.0
        if f < 0.02 or f > 0.98:
            return None  # a rail: broken wire or dead sensor
        return DEG_AT_5 + (f - 0.05) / 0.9 * (DEG_AT_95 - DEG_AT_5)

    def sample(self):
        c = [p.value() == 0 for p in self.contacts]  # contact closed pulls to ground
        buttons = 0
        for i, p in enumerate(self.buttons):
            if p.value() == 0:
                buttons |= 1 << i
        return Sensors(
            primary=self._angle(self.adc[0].read_u16()),
            secondary=self._angle(self.adc[1].read_u16()),
            current_a=self.adc[2].read_u16() / 65535.0 * CURRENT_FULL_SCALE_A,
            estop_a_open=not c[0],
            estop_b_open=not c[1],
            overtravel_open=not c[2],
            ankle_a_closed=c[3],
            ankle_b_closed=c[4],
            upright=c[5],
            buttons=buttons,
        )

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
    """One pass of the board's work, in three parts the main loop runs in order (the
    simulator's virtual board calls them around the host's tick)."""

    def __init__(self, io, board):
        self.io = io
        self.board = board
        self.decoder = P.Decoder()
        self.sample = Sensors()

    def receive(self, now):
        """Frames from the host, answered at once."""
        data = self.io.uart.read()
        if data:
            for seq, mtype, payload in self.decoder.feed(data):
                for reply in self.board.on_frame(seq, mtype, payload, now):
                    self.io.uart.write(reply)

    def report(self, now):
        """Sample every sensor and send the STATUS telemetry."""
        self.sample = self.io.sample()
        self.board.sample = self.sample
        self.io.uart.write(self.board.status_frame())

    def control(self, now):
        """Step the board logic on the latest sample and drive the outputs."""
        self.io.apply(*self.board.step(now, self.sample))


def run(io, board, clock_ms, wdt=None, iterations=None):
    """The main loop. ``iterations`` bounds it for tests on the shim."""
    loop = Loop(io, board)
    next_step = clock_ms()
    n = 0
    while iterations is None or n < iterations:
        now = clock_ms()
        loop.receive(now)
        if ticks_diff(now, next_step) >= 0:
            loop.report(now)
            loop.control(now)
            late = ticks_diff(clock_ms(), next_step) > PERIOD_MS
            next_step = ticks_add(next_step, PERIOD_MS)
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
