"""The motion board's firmware in the real MicroPython interpreter (the unix port), stepped
by the simulator: ``boot.py`` is the process's entry point, ``mp_machine.py`` and
``mp_time.py`` stand in for ``machine`` and ``time``. These files run under MicroPython,
not CPython; ``sim/mp_board.py`` is their CPython side (docs/firmware.md)."""
