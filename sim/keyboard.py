"""Keyboard pendant for bench-testing on the simulator (``invtable run`` with backend "sim").

A terminal reports key presses but not releases, so hold-to-run is emulated the safe
way: UP and DOWN count as held while the key keeps auto-repeating and are released
``HOLD_S`` after the last repeat (a held key repeats every ~30 ms after an initial
delay of up to ~500 ms). Letting go of the key therefore always stops the motion.
Reading is non-blocking and done by the control thread itself, once per tick.
"""

from __future__ import annotations

import os
import select
import sys
from dataclasses import dataclass
from typing import Any

from sim.scenario import Event

HOLD_S = 0.6
KEYS_HELP = (
    "keys: s START  x/space STOP  u UP (hold)  d DOWN (hold)  r RETURN  "
    "a ankle lock on/off  e e-stop on/off  q quit"
)
TAPS = {"s": "start", "x": "stop", " ": "stop", "r": "return"}
HOLDS = {"u": "up", "d": "down"}


@dataclass
class _Held:
    until: float = -1.0


class KeyboardPendant:
    """Turns key presses into the same world events a scenario uses."""

    def __init__(self, fd: int | None = None) -> None:
        self.fd = sys.stdin.fileno() if fd is None else fd
        self._saved: list[Any] | None = None  # the terminal's attributes (termios.tcgetattr)
        self.held = {name: _Held() for name in HOLDS.values()}
        self.tap_release: dict[str, float] = {}
        self.ankle = False
        self.estop = False
        self.quit = False  # quit now (the loop stops at once)
        # Quitting off upright asks first: ``q`` sets ``quit_asked``; the loop then sets
        # ``asking`` and reads ``answer`` ("y": bring the person upright, then quit; "n":
        # carry on); a second ``q`` while asking quits at once, leaving the person there.
        self.quit_asked = False
        self.asking = False
        self.answer: str | None = None

    def __enter__(self) -> "KeyboardPendant":
        import termios
        import tty

        self._saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd)
        return self

    def __exit__(self, *exc: object) -> None:
        import termios

        if self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)

    def _read_keys(self) -> str:
        keys = ""
        while select.select([self.fd], [], [], 0)[0]:
            chunk = os.read(self.fd, 64)
            if not chunk:
                break
            keys += chunk.decode(errors="ignore")
        return keys

    def poll(self, now: float) -> list[Event]:
        """Events due now: presses from new keys, releases of expired holds and taps."""
        events: list[Event] = []
        for key in self._read_keys().lower():
            if key in TAPS:
                button = TAPS[key]
                events.append(Event(now, "press", button))
                self.tap_release[button] = now + 0.2
            elif key in HOLDS:
                button = HOLDS[key]
                if self.held[button].until < now:
                    events.append(Event(now, "press", button))
                self.held[button].until = now + HOLD_S
            elif key == "a":
                self.ankle = not self.ankle
                events.append(Event(now, "set", "ankle_lock", self.ankle))
            elif key == "e":
                self.estop = not self.estop
                events.append(Event(now, "set", "estop", self.estop))
            elif key == "q":
                if self.asking:
                    self.quit = True
                else:
                    self.quit_asked = True
            elif key in ("y", "n") and self.asking:
                self.answer = key
        for button, held in self.held.items():
            if 0.0 <= held.until < now:
                held.until = -1.0
                events.append(Event(now, "release", button))
        for button, t in list(self.tap_release.items()):
            if t <= now:
                del self.tap_release[button]
                events.append(Event(now, "release", button))
        return events
