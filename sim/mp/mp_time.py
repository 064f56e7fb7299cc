"""``time`` for the firmware in the simulator (MicroPython code): ``ticks_ms`` is the
simulator's clock (mp_machine.ticks_ms, where the board waits for its next instant). The
tick arithmetic wraps at 2**30 as on the RP2040 (the 64-bit unix port's own wraps at
2**62), so the simulator's instants, sent modulo 2**30, compare as they would on a Pico."""

import mp_machine

_PERIOD = 1 << 30
_HALF = _PERIOD >> 1


def ticks_ms():
    return mp_machine.ticks_ms()


def ticks_us():
    return (mp_machine.ticks_ms() * 1000) % _PERIOD


def ticks_add(ticks, delta):
    return (ticks + delta) % _PERIOD


def ticks_diff(ticks1, ticks2):
    return ((ticks1 - ticks2 + _HALF) % _PERIOD) - _HALF


def sleep_ms(ms):
    raise RuntimeError("the firmware never sleeps: its loop polls (firmware/main.py)")
