"""A ``machine`` module for CPython: the firmware's glue (firmware/main.py) runs on it
unchanged, with the simulator behind the pins and a pseudo-terminal behind the UART.

Only what firmware/main.py uses: Pin (in/out, pull-up), PWM (freq, duty_u16), ADC
(read_u16), UART (non-blocking read, write) and WDT (feed). The UART reads and writes the
pseudo-terminal directly, or, when the world has a ``uart_hook`` (the virtual motion
board's link model: lockstep byte counts, latency, the cut), goes through it. The ``World``
instance the virtual motion board sets as ``current`` decides what inputs read and records
outputs.
"""

from __future__ import annotations

import os
from typing import Any


class World:
    def __init__(self) -> None:
        self.levels: dict[int, int] = {}  # input pin -> level the wiring drives
        self.outputs: dict[int, int] = {}  # output pin -> level the firmware drives
        self.pwm_u16: dict[int, int] = {}
        self.adc_u16: dict[int, int] = {}
        self.uart_fd: int | None = None
        self.uart_cut = False  # link_loss: bytes in both directions are lost
        self.uart_hook: Any = None  # the virtual board's link model (uart_read/uart_write)
        self.wdt_feeds = 0
        self.uart_tx_bytes = 0  # written to uart_fd (tests wait for exactly these)


current = World()


class Pin:
    IN, OUT = 0, 1
    PULL_UP, PULL_DOWN = 1, 2

    def __init__(
        self, pin_id: int, mode: int = -1, pull: int = -1, *, value: int | None = None
    ) -> None:
        self.id = pin_id
        self.mode = mode
        self.world = current  # bound at construction, as a pin is to its board
        if mode == Pin.OUT:
            self.world.outputs[pin_id] = 0 if value is None else int(value)
        elif mode == Pin.IN:
            self.world.levels.setdefault(pin_id, 1 if pull == Pin.PULL_UP else 0)

    def value(self, v: Any = None) -> int | None:
        if v is None:
            if self.mode == Pin.OUT:
                return self.world.outputs[self.id]
            return self.world.levels[self.id]
        self.world.outputs[self.id] = 1 if v else 0
        return None


class PWM:
    def __init__(self, pin: Pin) -> None:
        self.id = pin.id
        self.world = current
        self.world.pwm_u16[self.id] = 0

    def freq(self, hz: int | None = None) -> int:
        return 1000

    def duty_u16(self, value: int | None = None) -> int | None:
        if value is None:
            return self.world.pwm_u16[self.id]
        if not 0 <= value <= 65535:
            raise ValueError("duty_u16 out of range")
        self.world.pwm_u16[self.id] = int(value)
        return None


class ADC:
    def __init__(self, pin_id: Any) -> None:
        self.id = pin_id.id if isinstance(pin_id, Pin) else pin_id
        self.world = current

    def read_u16(self) -> int:
        return self.world.adc_u16.get(self.id, 0)


class UART:
    def __init__(self, uart_id: int, baudrate: int = 9600, **kw: Any) -> None:
        self.world = current
        self.fd = current.uart_fd
        self._pending = b""  # read but not yet taken by readinto

    def _pty(self) -> int:
        if self.fd is None:
            raise RuntimeError("the world has neither a uart_fd nor a uart_hook")
        return self.fd

    def read(self, n: int = -1) -> bytes | None:
        if self.world.uart_hook is not None:
            return self.world.uart_hook.uart_read()
        try:
            data = os.read(self._pty(), 4096)
        except BlockingIOError:
            return None
        if self.world.uart_cut:
            return None
        return data or None

    def readinto(self, buf: bytearray, nbytes: int = -1) -> int | None:
        """As MicroPython's: up to len(buf) bytes into buf; the rest waits for the next call."""
        if not self._pending:
            self._pending = self.read() or b""
        n = min(len(buf) if nbytes < 0 else nbytes, len(self._pending))
        if not n:
            return None
        buf[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def write(self, data: bytes) -> int:
        if self.world.uart_hook is not None:
            self.world.uart_hook.uart_write(bytes(data))
            return len(data)
        if self.world.uart_cut:
            return len(data)  # into a cut wire
        fd = self._pty()
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
            self.world.uart_tx_bytes += n
        return len(data)


class WDT:
    def __init__(self, timeout: int = 5000, id: int = 0) -> None:  # `id`: MicroPython's name
        if not 1 <= timeout <= 8388:
            raise ValueError("RP2040 WDT timeout is 1 .. 8388 ms")
        self.timeout = timeout
        self.world = current

    def feed(self) -> None:
        self.world.wdt_feeds += 1
