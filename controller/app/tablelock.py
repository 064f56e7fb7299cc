"""One table, one controller: an exclusive ``fcntl`` lock on ``DATA/table.lock``.

``invtable run`` and ``session start`` hold it for as long as they drive the table; a
second controller is refused with the holder's pid. The kernel drops the lock when the
holder dies (even by kill -9), so a crash never leaves the table locked. Only the holder
may mark sessions left open by a crash as interrupted.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from controller.core.errors import InputError, Problem, StoreError

LOCK_NAME = "table.lock"


class TableLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> "TableLock":
        """Take the lock or raise: InputError naming the holder; StoreError if the file cannot
        be made."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(self.path, exc.strerror or str(exc)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise InputError(
                [
                    Problem(
                        str(self.path),
                        "",
                        f"the table is in use by another controller (pid "
                        f"{holder}): one table, one controller; stop it first",
                    )
                ]
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # the lock holds even if the pid cannot be written (a full disk)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None

    def __enter__(self) -> "TableLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder_pid(data_dir: Path) -> int | None:
    """The pid last written to the lock file if that process is alive (for display only:
    readers never take the lock, so they can never make a controller's start fail)."""
    try:
        pid = int((Path(data_dir) / LOCK_NAME).read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid
