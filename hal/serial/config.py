"""The serial backend's configuration schema, the ``[hardware.serial]`` table. It lives
with the backend that uses it; ``controller.core.config`` composes it into the whole
configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True, slots=True)
class Serial:
    """``[hardware.serial]``: the link to the motion board (docs/firmware.md)."""

    url: str = (
        "/dev/serial0"  # anything pyserial's serial_for_url takes: /dev/ttyACM0, socket://host:port
    )
    baudrate: int = 230400


BAUDRATES = (57600, 115200, 230400, 460800, 921600)


def check_serial(values: dict[str, Any], report: Callable[[str, str], None]) -> None:
    """``[hardware.serial]`` of the merged values (dotted keys): a usable URL, a known baud rate."""
    url = values["hardware.serial.url"]
    if not isinstance(url, str) or not url.strip():
        report("hardware.serial.url", f"must be a device path or a pyserial URL, got {url!r}")
    if values["hardware.serial.baudrate"] not in BAUDRATES or isinstance(
        values["hardware.serial.baudrate"], bool
    ):
        report(
            "hardware.serial.baudrate",
            f"{values['hardware.serial.baudrate']!r} is not one of "
            f"{', '.join(map(str, BAUDRATES))}",
        )
