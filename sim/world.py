"""Each backend's simulated world behind one small interface, so the runner never asks which
backend it drives.

The physics (``SimTable``) is the same for every backend; what differs is what a
controller process opens to reach it, and what else lives on the table's supply:

- ``sim``: the process uses the simulated table itself as its HAL;
- ``gpio-mock``: the real gpio backend on gpiozero's mock pins, wired to the table
  (``sim.gpio_world``);
- ``serial``: the real serial backend on a pseudo-terminal to a virtual motion board that
  runs the firmware and boots with the table's power (``sim.serial_world``).

The backends' modules are imported only when chosen: gpiozero and the pty are not needed
for a ``sim`` run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Protocol

from controller.core.config import Config
from hal.interfaces import TableHardware
from sim.table import SimTable
from sim.timing import Timing

if TYPE_CHECKING:
    from sim.gpio_world import GpioMockHal

BACKENDS = ("sim", "gpio-mock", "serial")


class World(Protocol):
    """What the runner needs of a backend's world, called on the simulation's thread with
    the simulated time passed in."""

    name: str
    # A serial link the scenario can cut, and a board that acts alone when it is lost (the
    # invariant checker then expects the board, not the host, to bring the person back).
    has_link: bool

    def open_hal(self) -> TableHardware:
        """The hardware a freshly started controller process opens."""
        ...

    def close_hal(self, hal: TableHardware) -> None:
        """The process is gone (power cut, crash, restart): its pins or port are released."""
        ...

    def power(self, on: bool, now: float) -> None:
        """The table's supply switched: whatever lives on it boots or dies with it."""
        ...

    def cut_link(self, cut: bool) -> None:
        """The serial link cut both ways (``link_loss``), or mended; only if ``has_link``."""
        ...

    def before(self, now: float) -> None:
        """At the start of a tick, before the controller reads (a board reports)."""
        ...

    def after(self, now: float) -> None:
        """After the controller wrote (a board takes the host's frames and steps)."""
        ...

    def close(self) -> None:
        """The run is over: release what the world holds (the pty)."""
        ...


class SimWorld:
    """``sim``: the controller reads and writes the simulated table in-process."""

    name = "sim"
    has_link = False

    def __init__(self, table: SimTable) -> None:
        self.table = table

    def open_hal(self) -> TableHardware:
        return self.table

    def close_hal(self, hal: TableHardware) -> None:
        pass

    def power(self, on: bool, now: float) -> None:
        pass

    def cut_link(self, cut: bool) -> None:
        pass

    def before(self, now: float) -> None:
        pass

    def after(self, now: float) -> None:
        pass

    def close(self) -> None:
        pass


class GpioWorld(SimWorld):
    """``gpio-mock``: a fresh ``GpioTable`` on mock pins at every process start."""

    name = "gpio-mock"

    def __init__(self, table: SimTable, cfg: Config) -> None:
        super().__init__(table)
        self.cfg = cfg

    def open_hal(self) -> GpioMockHal:
        from sim.gpio_world import GpioMockHal

        return GpioMockHal(self.table, self.cfg.hardware.gpio)

    def close_hal(self, hal: TableHardware) -> None:
        hal.close()


def make_world(
    backend: str,
    table: SimTable,
    cfg: Config,
    *,
    timing: Timing,
    seed: int,
    clock: Callable[[], float],
) -> World:
    """The world for ``backend`` (one of ``BACKENDS``) around ``table``; ``clock`` reads the
    simulation's current time (the serial host's handshake waits on it)."""
    if backend == "sim":
        return SimWorld(table)
    if backend == "gpio-mock":
        return GpioWorld(table, cfg)
    if backend == "serial":
        from sim.serial_world import SerialWorld

        return SerialWorld(table, cfg, timing=timing, seed=seed, clock=clock)
    raise ValueError(f"unknown backend {backend!r} (one of {', '.join(BACKENDS)})")
