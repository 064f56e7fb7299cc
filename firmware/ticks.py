"""ticks_ms arithmetic that survives the wrap-around: MicroPython's own ``ticks_add`` and
``ticks_diff`` on the board; the same arithmetic (period 2**30) under CPython. Never
subtract two tick values directly."""

try:
    from time import ticks_add, ticks_diff  # MicroPython
except ImportError:  # CPython: the tests and the virtual motion board
    _PERIOD = 1 << 30
    _HALF = _PERIOD >> 1

    def ticks_add(ticks, delta):
        return (ticks + delta) % _PERIOD

    def ticks_diff(ticks1, ticks2):
        return ((ticks1 - ticks2 + _HALF) % _PERIOD) - _HALF
