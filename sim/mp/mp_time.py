"""``time`` for the firmware in the simulator (MicroPython code): ``ticks_ms`` is the
simulator's clock (mp_machine.ticks_ms, where the board waits for its next instant); the
tick arithmetic is MicroPython's own."""

from time import ticks_add, ticks_diff  # noqa: F401 - re-exported to the firmware

import mp_machine


def ticks_ms():
    return mp_machine.ticks_ms()


def ticks_us():
    return mp_machine.ticks_ms() * 1000


def sleep_ms(ms):
    raise RuntimeError("the firmware never sleeps: its loop polls (firmware/main.py)")
