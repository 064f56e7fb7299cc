"""``invtable bench``'s supervisor figures: the service loop's lateness with the page open.

The loop (``run_service`` on the real clock, a simulated table behind it) runs with no
supervisor, then with the page and 5 live feeds, then with 50 feeds and a flood of presses
and bad tokens. The clients run in another process (a phone is another machine: clients in
this process would compete for the interpreter lock as no real phone does). Reported, never
asserted (docs/performance.md).
"""

from __future__ import annotations

import io
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from controller.core import clock as stopwatch

CLIENTS = r"""
import http.client, sys, threading, itertools
port, token, streams, flood = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
def feed():
    while True:  # one address for every feed: past the request rate it waits and asks again
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", "/api/stream", headers={"Authorization": "Bearer " + token})
        r = c.getresponse()
        if r.status == 200:
            break
        r.read()
        c.close()
        threading.Event().wait(0.2)
    while r.read(4096):
        pass
def hammer():
    for i in itertools.count():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        tok = token if i % 2 else "not-the-token-%d" % i
        c.request("POST", "/api/return", body='{"request_id": "flood-%08d"}' % i,
                  headers={"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
        c.getresponse().read()
        c.close()
for _ in range(streams):
    threading.Thread(target=feed, daemon=True).start()
if flood:
    threading.Thread(target=hammer, daemon=True).start()
sys.stdin.read()
"""


class LatenessClock:
    """The real clock, recording how late each wait returns after its deadline."""

    def __init__(self) -> None:
        self.rt = stopwatch.RealTimeClock()
        self.late: list[float] = []

    def now(self) -> float:
        return self.rt.now()

    def wait_until(self, t: float) -> None:
        self.rt.wait_until(t)
        self.late.append(max(0.0, self.rt.now() - t))


def loop_with_clients(seconds: float, streams: int | None, flood: bool = False) -> dict[str, Any]:
    """The service loop's lateness; ``streams`` None: no supervisor at all (the baseline)."""
    from controller.app.bench import percentiles
    from controller.app.service import JsonLog, run_service
    from controller.app.supervisor.config import Supervision, WebConfig
    from controller.app.supervisor.runtime import Supervisor
    from controller.core.config import Config
    from sim.table import SimTable

    cfg = Config()
    sup, clients = None, None
    with tempfile.TemporaryDirectory() as tmp:
        if streams is not None:
            sup = Supervisor(
                Supervision(web=WebConfig("127.0.0.1", 0)), Path(tmp), JsonLog(io.StringIO())
            )
            sup.start(out=io.StringIO())
            token = (Path(tmp) / "supervisor.token").read_text().strip()
            clients = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    CLIENTS,
                    str(sup.server.port),
                    token,
                    str(streams),
                    "1" if flood else "0",
                ],
                stdin=subprocess.PIPE,
            )
            for _ in range(1500):  # until every feed is connected (at most ~30 s)
                if sup.server.streams >= streams:
                    break
                stopwatch.sleep(0.02)
        clock = LatenessClock()  # its origin: the loop's first deadline is now
        cpu0, wall0 = stopwatch.process_time(), stopwatch.perf_counter()
        try:
            run_service(
                cfg,
                duration=seconds,
                log=JsonLog(io.StringIO()),
                clock=clock,
                notifier=_Quiet(),  # type: ignore[arg-type]
                make_hardware=lambda: SimTable(
                    angle_deg=cfg.limits.upright_deg, upright_deg=cfg.limits.upright_deg
                ),
                supervisor=sup,
            )
        finally:
            cpu = (stopwatch.process_time() - cpu0) / (stopwatch.perf_counter() - wall0)
            connected = sup.server.streams if sup is not None else 0
            if clients is not None:
                clients.kill()
                clients.wait()
            if sup is not None:
                sup.close()
    out = percentiles(clock.late)
    out["missed"] = sum(1 for x in clock.late if x > 0.01)
    out["feeds"] = connected
    out["flood"] = flood
    out["process_cpu_percent"] = round(cpu * 100.0, 1)  # the loop and the server together
    return out


class _Quiet:
    watchdog_interval_s = None

    def notify(self, message: str) -> bool:
        return True

    def close(self) -> None:
        pass


def supervised(seconds: float) -> dict[str, Any]:
    return {
        "no supervisor": loop_with_clients(seconds, None),
        "page + 5 feeds": loop_with_clients(seconds, 5),
        "page + 50 feeds + flood": loop_with_clients(seconds, 50, flood=True),
    }
