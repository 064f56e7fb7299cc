"""systemd's notify protocol (sd_notify(3)): one datagram per message to $NOTIFY_SOCKET.

Twenty lines instead of a dependency: the protocol is a single sendto() on a Unix
datagram socket (an address starting with "@" is in the abstract namespace), and the
packages that wrap it either need libsystemd headers to build (systemd-python) or are
unmaintained. Without NOTIFY_SOCKET (not under systemd) every call is a no-op.
"""

from __future__ import annotations

import os
import socket


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        # Ping at half the watchdog period, as sd_watchdog_enabled(3) advises.
        self.watchdog_interval_s = int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 else None
        self._sock: socket.socket | None = None
        if self.address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    def notify(self, message: str) -> bool:
        if self._sock is None:
            return False
        try:
            self._sock.sendto(message.encode(), self.address)
            return True
        except OSError:
            return False  # systemd gone: nothing to tell; never stop the control loop for it

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
