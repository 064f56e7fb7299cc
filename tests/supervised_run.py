"""``invtable run`` through the real CLI in real time with a scripted person at the pendant:
``python tests/supervised_run.py EVENTS.json [run options...]``. The browser and broker tests
start it as a process (a service the page watches, which they can stop, freeze or kill).

EVENTS.json is a list of ``[at_s, do, target, value]`` (the scenario file's world events:
set, press, release, fault)."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from controller.app import cli  # noqa: E402
from sim.scenario import Event  # noqa: E402


class ScriptedPendant:
    quit = False

    def __init__(self, events: list[Event]) -> None:
        self.events = sorted(events, key=lambda e: e.at_s)

    def poll(self, now: float) -> list[Event]:
        due = []
        while self.events and self.events[0].at_s <= now:
            due.append(self.events.pop(0))
        return due


def main() -> int:
    import controller.app.simcmd as runsim

    raw = json.loads(Path(sys.argv[1]).read_text())
    events = [Event(float(at), do, target, value) for at, do, target, value in raw]
    runsim.run_bench = functools.partial(runsim.run_bench, pendant=ScriptedPendant(events))
    return cli.main(["run", *sys.argv[2:]])


if __name__ == "__main__":
    sys.exit(main())
