"""Remote presses (the page, MQTT) into the control thread, like the pendant's.

A server thread ``offer``s a press to a bounded queue and never waits: a full queue refuses
the press (the caller answers 503). The control thread drains it once per tick and holds
the button for ``TAP_S`` (a tap, as on the keyboard pendant), so the controller sees the
same edge a pendant press makes. Only RETURN and STOP exist here: anything else is refused
at the door, whatever a server asks.
"""

from __future__ import annotations

import queue
from dataclasses import dataclass
from typing import Callable

REMOTE_BUTTONS = frozenset({"return", "stop"})
TAP_S = 0.2
QUEUE_SIZE = 8


@dataclass(frozen=True, slots=True)
class Press:
    button: str
    who: str  # "operator@192.0.2.7 (web)", "mqtt" ...: written to the audit log


class RemotePendant:
    """The bounded queue between the servers and the control thread."""

    def __init__(self, audit: Callable[[float, Press], None] | None = None) -> None:
        self._queue: queue.Queue[Press] = queue.Queue(maxsize=QUEUE_SIZE)
        self._held: dict[str, float] = {}  # button -> release time (control thread only)
        self._released: list[str] = []
        self.audit = audit

    def offer(self, button: str, who: str) -> bool:
        """Any thread: queue a press. False when the queue is full (nothing waits)."""
        if button not in REMOTE_BUTTONS:
            raise ValueError(f"no remote {button!r}: only {sorted(REMOTE_BUTTONS)}")
        try:
            self._queue.put_nowait(Press(button, who))
        except queue.Full:
            return False
        return True

    def step(self, now: float) -> tuple[list[Press], list[str]]:
        """Control thread, once per tick: (presses starting now, buttons released now)."""
        pressed: list[Press] = []
        released = [b for b, until in self._held.items() if until <= now]
        for b in released:
            del self._held[b]
        while True:
            try:
                press = self._queue.get_nowait()
            except queue.Empty:
                break
            if press.button not in self._held:
                pressed.append(press)
            self._held[press.button] = now + TAP_S
            if press.button in released:
                released.remove(press.button)
        for press in pressed:
            if self.audit is not None:
                try:
                    self.audit(now, press)
                except Exception:  # the press counts even if its record fails
                    pass
        return pressed, released

    @property
    def held(self) -> frozenset[str]:
        return frozenset(self._held)
