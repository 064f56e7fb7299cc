"""Who may watch and who may press: bearer tokens, rate limits, replayed requests.

Two tokens live in the data folder, each created on first use with mode 0600:
``supervisor.token`` (the operator: may press RETURN and STOP) and
``supervisor-viewer.token`` (may only watch). A token file others can read is refused, as
ssh refuses such a key. Tokens are compared in constant time (``hmac.compare_digest``).
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from controller.core.errors import InputError, Problem

OPERATOR = "operator"
VIEWER = "viewer"
TOKEN_FILES = {OPERATOR: "supervisor.token", VIEWER: "supervisor-viewer.token"}


@dataclass(frozen=True, slots=True)
class Tokens:
    operator: str
    viewer: str
    created: tuple[str, ...] = ()  # the roles whose token was created now (print them once)

    def role_of(self, header: str | None) -> str | None:
        """The role an ``Authorization: Bearer ...`` header grants, or None. Both tokens are
        always compared, in constant time, so the timing says nothing about either."""
        if not header or not header.startswith("Bearer "):
            return None
        given = header[7:].strip().encode()
        is_op = hmac.compare_digest(given, self.operator.encode())
        is_viewer = hmac.compare_digest(given, self.viewer.encode())
        return OPERATOR if is_op else VIEWER if is_viewer else None


def _load_or_create(path: Path) -> tuple[str, bool]:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise InputError(
                [Problem(str(path), "", f"readable by others (mode {mode:o}); chmod 600 it")]
            ) from None
        token = path.read_text().strip()
        if len(token) < 16:
            raise InputError(
                [Problem(str(path), "", "holds no usable token (delete it to make a new one)")]
            ) from None
        return token, False
    token = secrets.token_urlsafe(24)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token, True


def load_tokens(data: Path) -> Tokens:
    """The two tokens, created on first use. InputError when the folder or a file is unusable."""
    try:
        data.mkdir(parents=True, exist_ok=True)
        op, op_new = _load_or_create(data / TOKEN_FILES[OPERATOR])
        viewer, viewer_new = _load_or_create(data / TOKEN_FILES[VIEWER])
    except OSError as exc:
        where = exc.filename or str(data)
        raise InputError([Problem(str(where), "", f"token file: {exc.strerror or exc}")]) from None
    created = tuple(r for r, new in ((OPERATOR, op_new), (VIEWER, viewer_new)) if new)
    return Tokens(op, viewer, created)


class RateLimiter:
    """Token buckets by key (a client address and what it asks): ``rate`` per second, at
    most ``burst`` at once. The clock is injected; at most ``max_keys`` are remembered (the
    oldest forgotten), so a flood of addresses cannot fill memory."""

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float], max_keys: int = 4096
    ) -> None:
        self.rate, self.burst, self.clock, self.max_keys = rate, burst, clock, max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, key: str) -> bool:
        now = self.clock()
        level, last = self._buckets.pop(key, (self.burst, now))
        level = min(self.burst, level + (now - last) * self.rate)
        ok = level >= 1.0
        self._buckets[key] = (level - 1.0 if ok else level, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return ok


class ReplayGuard:
    """Each action carries a fresh ``request_id``; one seen before is a replay and refused.
    The last ``size`` ids are remembered."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._seen: OrderedDict[str, None] = OrderedDict()

    def first_time(self, request_id: str) -> bool:
        if request_id in self._seen:
            return False
        self._seen[request_id] = None
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return True
