"""The motion board process: ``micropython sim/mp/boot.py FIRMWARE_DIR PTY_FD BOOT_ID
LIMITS...`` with the control channel on stdin/stdout and the UART's socket (relayed to the
serial link's pseudo-terminal by sim/mp_board.py) on PTY_FD (see mp_machine.py). Installs
the simulated ``machine``, ``time`` and ``os`` and runs the unmodified firmware's
``main.main()`` from its flat layout, as the Pico runs main.py. MicroPython code, not
CPython."""

import sys

HERE = sys.argv[0].rsplit("/", 1)[0]
FIRMWARE = sys.argv[1]
sys.path[:] = [HERE]

import mp_machine  # noqa: E402
import mp_os  # noqa: E402
import mp_time  # noqa: E402

mp_machine.PTY_FD = int(sys.argv[2])
mp_os.BOOT_ID = int(sys.argv[3]) & 0xFFFF
mp_machine.world()
sys.modules["machine"] = mp_machine
sys.modules["time"] = mp_time
sys.modules["os"] = mp_os
sys.path[:] = [FIRMWARE]  # the board's flat layout: main.py imports protocol, board, ticks

import board  # noqa: E402
import main  # noqa: E402
import safety  # noqa: E402

# The limits this board was built with (the scenario's configuration, as a board flashed with
# them): upright, max angle, emergency speed and acceleration, the motor's no-load speed.
_up, _max, _speed, _accel, _no_load = [float(a) for a in sys.argv[4:9]]
_limits = safety.Limits(
    upright_deg=_up,
    max_angle_deg=_max,
    emergency_speed_dps=_speed,
    emergency_accel_dps2=_accel,
    no_load_speed_dps=_no_load,
)


def _board(now_ms, limits=None, boot_id=0):
    return board.Board(now_ms, _limits, boot_id=boot_id)


main.Board = _board
main.main()
