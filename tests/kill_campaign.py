"""The kill -9 campaign (issue 13): random SIGKILLs of `session start` and `run` on one data
folder while readers (`history --json`, `user list`) run alongside.

    .venv/bin/python -m tests.kill_campaign --kills 100 --seed 1

Counts and checks:
- corruptions: `PRAGMA integrity_check` not ok, a reader that failed or printed invalid JSON, a
  torn audit line, an unreadable sim_table.json, temp files left after the next controller;
- completed sessions lost: a session whose process finished with "outcome: completed" that is
  not `completed` at the end;
- false interruptions: a session marked interrupted whose process was not killed;
- uncharged kills: a killed session that does not end `interrupted` with motor time > 0.
Prints one JSON line of figures; exit 0 when every failure count is 0.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# Each command a day after the last, by the test clock: the people's rest between sessions and
# daily limits (issue 19) never refuse a session here (this campaign is about kills).
DAY_S = 86400.0
CALLS = {"n": 0}


def cli(*args: str, **kw: object) -> subprocess.Popen:
    CALLS["n"] += 1
    env = {**os.environ, "INVTABLE_TEST_WALL_TIME": str(time.time() + CALLS["n"] * DAY_S)}
    return subprocess.Popen(
        [sys.executable, "-m", "controller", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        **kw,
    )


def rows(data: Path) -> list[dict]:
    db = sqlite3.connect(f"{(data / 'invtable.db').as_uri()}?mode=ro", uri=True, timeout=10)
    db.row_factory = sqlite3.Row
    try:
        return [
            dict(r)
            for r in db.execute("SELECT id, outcome, motor_on_s, source FROM sessions ORDER BY id")
        ]
    finally:
        db.close()


class Readers(threading.Thread):
    """Readers alongside: each call must succeed and print valid JSON / a listing."""

    def __init__(self, data: Path) -> None:
        super().__init__(daemon=True)
        self.data, self.stop, self.calls, self.failures = data, threading.Event(), 0, []

    def run(self) -> None:
        while not self.stop.is_set():
            for args in (["history", "--json"], ["user", "list"]):
                p = subprocess.run(
                    [sys.executable, "-m", "controller", *args, "--data", str(self.data)],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    stdin=subprocess.DEVNULL,
                )
                self.calls += 1
                try:
                    assert p.returncode == 0, p.stderr
                    if args[0] == "history":
                        json.loads(p.stdout)
                    else:
                        assert "ann:" in p.stdout
                except (AssertionError, ValueError) as exc:
                    self.failures.append(f"{' '.join(args)}: {exc}")


def campaign(kills: int, seed: int, data: Path, log: object = None) -> dict:
    rng = random.Random(seed)
    for name in ("ann", "bob"):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "controller",
                "user",
                "add",
                name,
                "--height-cm",
                "170",
                "--weight-kg",
                "70",
                "--screening",
                "no",
                "--supervised-sessions",
                "0",
                "--limits-cleared-by",
                "kill campaign",
                "--data",
                str(data),
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
    readers = Readers(data)
    readers.start()
    figures = {
        "kills": 0,
        "kills_session_start": 0,
        "kills_run": 0,
        "completed_runs": 0,
        "refused": 0,
        "reader_calls": 0,
        "corruptions": 0,
        "completed_lost": 0,
        "false_interruptions": 0,
        "uncharged_kills": 0,
        "sessions": 0,
    }
    expect: dict[int, str] = {}  # session id -> "completed" / "killed" / other outcome
    problems: list[str] = []
    started = time.monotonic()
    while figures["kills"] < kills:
        before = max((r["id"] for r in rows(data)), default=0)
        which = rng.choice(["session", "session", "run"])
        if which == "session":
            user = rng.choice(["ann", "bob"])
            proc = cli(
                "session",
                "start",
                "--user",
                user,
                "--program",
                "first session",
                "--data",
                str(data),
                "--speed",
                str(rng.choice([0, 0, 50, 100])),
                "--seed",
                str(rng.randrange(1000)),
            )
            wait = rng.uniform(0.3, 6.0)
        else:
            proc = cli("run", "--data", str(data), "--duration", "20")
            wait = rng.uniform(0.3, 6.0)
        try:
            out, err = proc.communicate(timeout=wait)
            killed = False
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            out, err = proc.communicate()
            killed = True
        if killed:
            figures["kills"] += 1
            figures["kills_session_start" if which == "session" else "kills_run"] += 1
        elif proc.returncode == 2:
            figures["refused"] += 1
            problems.append(f"refused: {err.strip()}")
        else:
            figures["completed_runs"] += 1
            if "Traceback" in err:
                problems.append(f"traceback: {err}")
                figures["corruptions"] += 1
        for r in rows(data):
            if r["id"] > before:
                if killed:
                    expect[r["id"]] = "killed"
                else:
                    expect[r["id"]] = "completed" if "outcome: completed" in out else "other"
        state = data / "sim_table.json"
        if state.exists():
            try:
                json.loads(state.read_text())["angle_deg"]
            except (ValueError, KeyError) as exc:
                figures["corruptions"] += 1
                problems.append(f"sim_table.json: {exc}")
        if log is not None:
            print(
                f"{figures['kills']:3d} {which:7s} {'killed' if killed else 'ended'} "
                f"after {wait:.2f} s",
                file=log,
                flush=True,
            )
    # The next controller recovers the last kill.
    final = subprocess.run(
        [sys.executable, "-m", "controller", "run", "--data", str(data), "--duration", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    readers.stop.set()
    readers.join()
    figures["reader_calls"] = readers.calls
    figures["corruptions"] += len(readers.failures) + (final.returncode != 0)
    problems += readers.failures
    db = sqlite3.connect(data / "invtable.db")
    check = db.execute("PRAGMA integrity_check").fetchone()[0]
    db.close()
    if check != "ok":
        figures["corruptions"] += 1
        problems.append(f"integrity_check: {check}")
    for line in (data / "audit.jsonl").read_text().splitlines():
        try:
            json.loads(line)
        except ValueError:
            figures["corruptions"] += 1
            problems.append(f"torn audit line: {line[:80]!r}")
    leftovers = [p.name for p in data.glob(".sim_table.json.*")]
    if leftovers:
        figures["corruptions"] += 1
        problems.append(f"temp files left: {leftovers}")
    final_rows = {r["id"]: r for r in rows(data)}
    figures["sessions"] = len(final_rows)
    for sid, what in expect.items():
        r = final_rows.get(sid)
        if what == "completed" and (r is None or r["outcome"] != "completed"):
            figures["completed_lost"] += 1
            problems.append(f"session {sid} completed, now {r and r['outcome']}")
        if what != "killed" and r is not None and r["outcome"] == "interrupted":
            figures["false_interruptions"] += 1
            problems.append(f"session {sid} marked interrupted but its process was not killed")
        if what == "killed" and r is not None and r["outcome"] != "completed":
            # Killed mid-session: interrupted and charged (a kill after the end leaves it
            # completed).
            if r["outcome"] != "interrupted" or not (r["motor_on_s"] or 0) > 0:
                figures["uncharged_kills"] += 1
                problems.append(
                    f"session {sid} killed: outcome {r['outcome']}, motor_on_s {r['motor_on_s']}"
                )
    figures["wall_s"] = round(time.monotonic() - started, 1)
    figures["killed_mid_session"] = sum(
        1
        for sid, w in expect.items()
        if w == "killed" and final_rows[sid]["outcome"] == "interrupted"
    )
    figures["problems"] = problems[:20]
    return figures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", type=Path, help="data folder (default: a new temporary one)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    data = args.data or Path(tempfile.mkdtemp(prefix="invtable-kill-"))
    figures = campaign(args.kills, args.seed, data, sys.stderr if args.verbose else None)
    print(json.dumps({"data": str(data), **figures}))
    bad = (
        figures["corruptions"]
        + figures["completed_lost"]
        + figures["false_interruptions"]
        + figures["uncharged_kills"]
    )
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
