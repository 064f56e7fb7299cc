"""User profiles, screening and session history in SQLite (the embedded default).

WAL journal, full sync, one commit per change that matters (a session begun, a state
change, its end), so a crash or power cut loses nothing committed; a session left open by
one is found and marked ``interrupted`` the next time the store opens. An append-only
JSON-lines audit log beside the database records every transition and fault.
"""
from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from controller.clock import wall_time
from typing import Any

# DESIGN section 2: the contraindications; any "yes" locks the profile out of inversion
# past horizontal until a clearance is recorded (who gave it and when).
SCREENING = {
    "high_blood_pressure": "high blood pressure (over 140/90)",
    "heart_disease": "heart or circulatory disease",
    "eye_condition": "glaucoma or another eye condition",
    "retinal_detachment": "retinal detachment",
    "osteoporosis": "osteoporosis",
    "recent_fracture_or_surgery": "a recent fracture or surgery",
    "implants": "surgical implants",
    "hernia": "a hernia",
    "pregnancy": "pregnancy",
    "anticoagulants": "anticoagulants (blood thinners)",
    "middle_ear_infection": "a middle-ear infection",
}
STAGES = ("beginner", "established")
OUTCOMES = ("completed", "user_stop", "time_limit", "emergency", "estop", "fault", "power_loss", "interrupted")
HEIGHT_CM = (147.0, 198.0)
WEIGHT_KG = (40.0, 136.0)

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, height_cm REAL NOT NULL, weight_kg REAL NOT NULL, stage TEXT NOT NULL,
    max_angle_deg REAL NOT NULL, max_session_s REAL NOT NULL, screening_yes TEXT NOT NULL,
    cleared_by TEXT, cleared_at REAL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL, program TEXT NOT NULL,
    started_at REAL NOT NULL, ended_at REAL, peak_deg REAL, past_horizontal_s REAL,
    hold_s REAL, motor_on_s REAL, outcome TEXT, clipped TEXT, events TEXT, state TEXT);
"""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    height_cm: float
    weight_kg: float
    stage: str
    max_angle_deg: float
    max_session_s: float
    screening_yes: tuple[str, ...]
    cleared_by: str | None
    cleared_at: float | None
    created_at: float

    @property
    def locked_out(self) -> bool:
        """Any "yes" in the screening without a recorded clearance."""
        return bool(self.screening_yes) and not self.cleared_by

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "height_cm": self.height_cm, "weight_kg": self.weight_kg, "stage": self.stage,
                "max_angle_deg": self.max_angle_deg, "max_session_s": self.max_session_s,
                "screening_yes": list(self.screening_yes), "cleared_by": self.cleared_by,
                "cleared_at": self.cleared_at, "locked_out": self.locked_out, "created_at": self.created_at}


def default_data_dir() -> Path:
    env = os.environ.get("INVTABLE_DATA")
    if env:
        return Path(env)
    state = os.environ.get("STATE_DIRECTORY")  # systemd's StateDirectory=invtable
    if state:
        return Path(state)
    return Path.home() / ".local" / "share" / "invtable"


class Store:
    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.dir = data_dir
        self.db = sqlite3.connect(data_dir / "invtable.db", timeout=5.0, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self.audit_path = data_dir / "audit.jsonl"
        self.interrupted = self._mark_interrupted()

    def close(self) -> None:
        self.db.close()

    def _mark_interrupted(self) -> list[int]:
        """Sessions a crash or power cut left open: recorded as interrupted."""
        ids = [r["id"] for r in self.db.execute("SELECT id FROM sessions WHERE outcome IS NULL")]
        if ids:
            with self.db:
                self.db.execute("UPDATE sessions SET outcome='interrupted', ended_at=COALESCE(ended_at, ?) "
                                "WHERE outcome IS NULL", (wall_time(),))
            for i in ids:
                self.audit({"event": "session_interrupted", "session": i})
        return ids

    # ---------------------------------------------------------------- audit
    def audit(self, record: dict[str, Any]) -> None:
        line = json.dumps({"wall_time": round(wall_time(), 3), **record}, separators=(",", ":")) + "\n"
        with open(self.audit_path, "a") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    # ---------------------------------------------------------------- users
    def add_user(self, user: User) -> None:
        with self.db:
            self.db.execute("INSERT INTO users VALUES (?,?,?,?,?,?,?,?,?,?)",
                            (user.name, user.height_cm, user.weight_kg, user.stage, user.max_angle_deg,
                             user.max_session_s, ",".join(user.screening_yes), user.cleared_by, user.cleared_at,
                             user.created_at))
        self.audit({"event": "user_added", "user": user.name, "locked_out": user.locked_out})

    def get_user(self, name: str) -> User | None:
        r = self.db.execute("SELECT * FROM users WHERE name=?", (name,)).fetchone()
        if r is None:
            return None
        return User(r["name"], r["height_cm"], r["weight_kg"], r["stage"], r["max_angle_deg"], r["max_session_s"],
                    tuple(x for x in r["screening_yes"].split(",") if x), r["cleared_by"], r["cleared_at"],
                    r["created_at"])

    def users(self) -> list[User]:
        return [u for u in (self.get_user(r["name"]) for r in self.db.execute("SELECT name FROM users ORDER BY name"))
                if u is not None]

    def update_user(self, user: User) -> None:
        with self.db:
            self.db.execute("UPDATE users SET height_cm=?, weight_kg=?, stage=?, max_angle_deg=?, max_session_s=?, "
                            "screening_yes=?, cleared_by=?, cleared_at=? WHERE name=?",
                            (user.height_cm, user.weight_kg, user.stage, user.max_angle_deg, user.max_session_s,
                             ",".join(user.screening_yes), user.cleared_by, user.cleared_at, user.name))
        self.audit({"event": "user_edited", "user": user.name, "locked_out": user.locked_out})

    def remove_user(self, name: str) -> None:
        with self.db:
            self.db.execute("DELETE FROM users WHERE name=?", (name,))
        self.audit({"event": "user_removed", "user": name})

    # ---------------------------------------------------------------- sessions
    def begin_session(self, user: str, program: str, clipped: list[str]) -> int:
        with self.db:
            cur = self.db.execute("INSERT INTO sessions (user, program, started_at, clipped, state, events) "
                                  "VALUES (?,?,?,?,?,?)", (user, program, wall_time(), json.dumps(clipped), "boot", "[]"))
        sid = int(cur.lastrowid)
        self.audit({"event": "session_started", "session": sid, "user": user, "program": program, "clipped": clipped})
        return sid

    def progress(self, sid: int, state: str, peak_deg: float, past_horizontal_s: float, events: list[dict]) -> None:
        with self.db:
            self.db.execute("UPDATE sessions SET state=?, peak_deg=?, past_horizontal_s=?, events=? WHERE id=?",
                            (state, peak_deg, past_horizontal_s, json.dumps(events), sid))

    def end_session(self, sid: int, outcome: str, peak_deg: float, past_horizontal_s: float, hold_s: float,
                    motor_on_s: float, events: list[dict]) -> None:
        with self.db:
            self.db.execute("UPDATE sessions SET ended_at=?, outcome=?, peak_deg=?, past_horizontal_s=?, hold_s=?, "
                            "motor_on_s=?, events=? WHERE id=?",
                            (wall_time(), outcome, peak_deg, past_horizontal_s, hold_s, motor_on_s, json.dumps(events),
                             sid))
        self.audit({"event": "session_ended", "session": sid, "outcome": outcome, "peak_deg": round(peak_deg, 2)})

    def sessions(self, user: str | None = None) -> list[dict[str, Any]]:
        q = "SELECT * FROM sessions" + (" WHERE user=?" if user else "") + " ORDER BY id"
        out = []
        for r in self.db.execute(q, (user,) if user else ()):
            d = dict(r)
            d["clipped"] = json.loads(d["clipped"] or "[]")
            d["events"] = json.loads(d["events"] or "[]")
            out.append(d)
        return out

    def best(self, user: str) -> tuple[float | None, float | None]:
        """The best completed session: (peak angle, total hold seconds)."""
        r = self.db.execute("SELECT MAX(peak_deg) AS p, MAX(hold_s) AS h FROM sessions WHERE user=? AND "
                            "outcome='completed'", (user,)).fetchone()
        return r["p"], r["h"]

    def first_session_at(self, user: str) -> float | None:
        return self.db.execute("SELECT MIN(started_at) AS t FROM sessions WHERE user=?", (user,)).fetchone()["t"]

    def motor_on_since(self, t: float) -> float:
        r = self.db.execute("SELECT SUM(motor_on_s) AS s FROM sessions WHERE COALESCE(ended_at, started_at) >= ?",
                            (t,)).fetchone()
        return float(r["s"] or 0.0)
