"""User profiles, screening and session history in SQLite (the embedded default).

WAL journal, full sync, one commit per change that matters (a session begun, its progress,
its end), so a crash or power cut loses nothing committed. People have a stable id
(``users.uid``); a name is only a label, so a re-added name starts a new history.

Who may write: the table's one controller (``invtable run``, ``session start``) holds the
table lock (``controller.app.tablelock``) and only it marks sessions left open by a crash as
``interrupted`` (``recover_interrupted``). Readers (``history``, ``user list``) open the
database read-only and never change what they read. Every failure to open or write the
store is a ``StoreError`` naming the file and the reason, never a traceback.

An append-only JSON-lines audit log beside the database records every transition, fault
and profile change (with the fields changed, before and after).
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from controller.core.clock import wall_time
from controller.core.errors import StoreError

OUTCOMES = (
    "completed",
    "user_stop",
    "time_limit",
    "emergency",
    "estop",
    "fault",
    "power_loss",
    "interrupted",
)
SOURCES = (
    "real",
    "sim",
)  # where a session ran; "unknown" for rows from before sources were recorded
DB_NAME = "invtable.db"
# The recorder commits a session's progress at least this often (controller time); a killed
# session is charged its last recorded motor time plus this much, so it never escapes the budget.
PROGRESS_EVERY_S = 5.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, height_cm REAL NOT NULL, weight_kg REAL NOT NULL, stage TEXT NOT NULL,
    max_angle_deg REAL NOT NULL, max_session_s REAL NOT NULL, screening_yes TEXT NOT NULL,
    cleared_by TEXT, cleared_at REAL, created_at REAL NOT NULL, uid TEXT, cleared_answers TEXT,
    screened_at REAL, screening_answers TEXT, sessions_per_day INTEGER, past_s_per_day REAL,
    rest_s REAL, supervised_sessions INTEGER, limits_cleared_by TEXT, limits_cleared_at REAL,
    progression_cleared_by TEXT, progression_cleared_at REAL);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL, program TEXT NOT NULL,
    started_at REAL NOT NULL, ended_at REAL, peak_deg REAL, past_horizontal_s REAL,
    hold_s REAL, motor_on_s REAL, outcome TEXT, clipped TEXT, events TEXT, state TEXT,
    user_id TEXT, source TEXT NOT NULL DEFAULT 'real', progress_at REAL, supervisor TEXT,
    feedback TEXT, feedback_at REAL);
"""
# Columns added since the first release: (table, column, declaration) for existing databases.
MIGRATIONS = (
    ("users", "uid", "TEXT"),
    ("users", "cleared_answers", "TEXT"),
    ("users", "screened_at", "REAL"),
    ("users", "screening_answers", "TEXT"),
    ("sessions", "user_id", "TEXT"),
    ("sessions", "source", "TEXT NOT NULL DEFAULT 'unknown'"),
    ("sessions", "progress_at", "REAL"),
    # issue 19: a person's daily limits (NULL: the stage's default), supervision, symptoms
    ("users", "sessions_per_day", "INTEGER"),
    ("users", "past_s_per_day", "REAL"),
    ("users", "rest_s", "REAL"),
    ("users", "supervised_sessions", "INTEGER"),
    ("users", "limits_cleared_by", "TEXT"),
    ("users", "limits_cleared_at", "REAL"),
    ("users", "progression_cleared_by", "TEXT"),
    ("users", "progression_cleared_at", "REAL"),
    ("sessions", "supervisor", "TEXT"),
    ("sessions", "feedback", "TEXT"),
    ("sessions", "feedback_at", "REAL"),
)


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
    uid: str = ""
    cleared_answers: tuple[str, ...] = ()  # the "yes" answers the clearance covers
    screened_at: float | None = None
    screening_answers: dict[str, Any] = field(
        default_factory=dict
    )  # key -> {"yes": bool, "at": wall time}
    # The person's daily limits (None: the stage's default, controller/app/allowance.py).
    sessions_per_day: int | None = None
    past_s_per_day: float | None = None
    rest_s: float | None = None
    supervised_sessions: int | None = None
    limits_cleared_by: str | None = None  # who allowed limits past the usual bounds, and when
    limits_cleared_at: float | None = None
    progression_cleared_by: str | None = None  # who lifted a symptom lock, and when
    progression_cleared_at: float | None = None

    @property
    def uncleared(self) -> tuple[str, ...]:
        """The "yes" answers no recorded clearance covers."""
        covered = set(self.cleared_answers) if self.cleared_by else set()
        return tuple(k for k in self.screening_yes if k not in covered)

    @property
    def locked_out(self) -> bool:
        """Any "yes" in the screening that no clearance covers."""
        return bool(self.uncleared)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "id": self.uid,
            "height_cm": self.height_cm,
            "weight_kg": self.weight_kg,
            "stage": self.stage,
            "max_angle_deg": self.max_angle_deg,
            "max_session_s": self.max_session_s,
            "screening_yes": list(self.screening_yes),
            "screened_at": self.screened_at,
            "screening_answers": self.screening_answers,
            "cleared_by": self.cleared_by,
            "cleared_at": self.cleared_at,
            "cleared_answers": list(self.cleared_answers),
            "locked_out": self.locked_out,
            "created_at": self.created_at,
            "sessions_per_day": self.sessions_per_day,
            "past_s_per_day": self.past_s_per_day,
            "rest_s": self.rest_s,
            "supervised_sessions": self.supervised_sessions,
            "limits_cleared_by": self.limits_cleared_by,
            "limits_cleared_at": self.limits_cleared_at,
            "progression_cleared_by": self.progression_cleared_by,
            "progression_cleared_at": self.progression_cleared_at,
        }


NAME_MAX = 64


def name_problem(name: str) -> str | None:
    """A name is a label shown in records and on screens: printable characters only (no
    newline, no right-to-left override that would reverse what a clinician reads), 1 .. 64."""
    if not name or not name.strip():
        return "must not be empty"
    if len(name) > NAME_MAX:
        return f"must be at most {NAME_MAX} characters (got {len(name)})"
    if name != name.strip():
        return "must not start or end with a space"
    bad = sorted({c for c in name if not c.isprintable()})
    if bad:
        return (
            "must be printable characters only (found "
            + ", ".join(f"U+{ord(c):04X}" for c in bad)
            + ")"
        )
    return None


def default_data_dir() -> Path:
    env = os.environ.get("INVTABLE_DATA")
    if env:
        return Path(env)
    state = os.environ.get("STATE_DIRECTORY")  # systemd's StateDirectory=invtable
    if state:
        return Path(state)
    return Path.home() / ".local" / "share" / "invtable"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def append_line(path: Path, line: str) -> None:
    """Append one line and fsync it (the audit log is evidence: it must survive a power cut)."""
    with open(path, "a") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


class Store:
    """The history. ``write=False`` opens it read-only: a reader never changes what it reads
    (a missing database reads as empty; an older schema is upgraded in a private copy)."""

    def __init__(self, data_dir: Path, *, write: bool = True) -> None:
        self.dir = Path(data_dir)
        self.path = self.dir / DB_NAME
        self.audit_path = self.dir / "audit.jsonl"
        self.writable = write
        self.interrupted: list[int] = []
        with self._guard():
            if write:
                self.dir.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=FULL")
                self.db.executescript(SCHEMA)
                self._migrate(self.db)
            elif self.path.exists():
                if not os.access(self.path, os.R_OK):
                    raise StoreError(self.path, "permission denied")
                self.db = self._open_read_only()
                if self._needs_upgrade(self.db):  # upgrade a private copy, never the file
                    mem = sqlite3.connect(":memory:", isolation_level=None)
                    self.db.backup(mem)
                    self.db.close()
                    self.db = mem
                    mem.executescript(SCHEMA)
                    self._migrate(mem)
            else:
                self.db = sqlite3.connect(":memory:", isolation_level=None)
                self.db.executescript(SCHEMA)
            self.db.row_factory = sqlite3.Row

    def _open_read_only(self) -> sqlite3.Connection:
        """mode=ro; in a folder nobody may write (so the WAL index cannot be made), immutable:
        nothing can change the file under us there."""
        uri = self.path.resolve().as_uri()
        try:
            db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=5.0, isolation_level=None)
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # garbage fails here
            return db
        except sqlite3.OperationalError:
            if os.access(self.dir, os.W_OK):
                raise
        db = sqlite3.connect(
            f"{uri}?mode=ro&immutable=1", uri=True, timeout=5.0, isolation_level=None
        )
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db

    @contextmanager
    def _guard(self, path: Path | None = None) -> Iterator[None]:
        """Every SQLite or OS failure becomes a StoreError naming the file and the reason."""
        try:
            yield
        except StoreError:
            raise
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(path or self.path, _reason(exc)) from None

    @staticmethod
    def _missing_columns(db: sqlite3.Connection) -> list[tuple[str, str, str]]:
        have = {
            t: {r[1] for r in db.execute(f"PRAGMA table_info({t})")} for t in ("users", "sessions")
        }
        return [m for m in MIGRATIONS if have[m[0]] and m[1] not in have[m[0]]]

    @classmethod
    def _needs_upgrade(cls, db: sqlite3.Connection) -> bool:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        return not {"users", "sessions"} <= tables or bool(cls._missing_columns(db))

    def _migrate(self, db: sqlite3.Connection) -> None:
        """Add the columns a database from an older release lacks, and fill them honestly:
        a person gets an id, old sessions the id of the profile that now has their name,
        an old clearance covers the answers it was given over, old sessions' source is unknown."""
        missing = self._missing_columns(db)
        if (
            not missing
            and db.execute("SELECT 1 FROM users WHERE uid IS NULL LIMIT 1").fetchone() is None
        ):
            return
        with db:
            for table, column, decl in missing:
                try:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
                except sqlite3.OperationalError as exc:  # another writer migrated it a moment ago
                    if "duplicate column" not in str(exc):
                        raise
            db.execute("UPDATE users SET uid = lower(hex(randomblob(16))) WHERE uid IS NULL")
            db.execute(
                "UPDATE users SET cleared_answers = screening_yes WHERE cleared_by IS NOT NULL "
                "AND cleared_answers IS NULL"
            )
            db.execute(
                "UPDATE sessions SET user_id = "
                "(SELECT uid FROM users WHERE users.name = sessions.user) WHERE user_id IS NULL"
            )

    def close(self) -> None:
        try:
            self.db.close()
        except sqlite3.Error:
            pass

    def _write(self, sql: str, params: tuple = ()) -> sqlite3.Cursor:
        if not self.writable:
            raise StoreError(self.path, "opened read-only")
        with self._guard():
            with self.db:
                return self.db.execute(sql, params)

    def recover_interrupted(self) -> list[int]:
        """Sessions a crash, kill or power cut left open: recorded as interrupted, ended when
        last heard of, and charged their last recorded motor time plus one progress interval.
        Only the holder of the table lock may call this (a reader would mark a live session)."""
        with self._guard():
            ids = [
                r["id"] for r in self.db.execute("SELECT id FROM sessions WHERE outcome IS NULL")
            ]
        if ids:
            self._write(
                "UPDATE sessions SET outcome='interrupted', "
                "ended_at=COALESCE(ended_at, progress_at, started_at), "
                "motor_on_s=COALESCE(motor_on_s, 0) + ? WHERE outcome IS NULL",
                (PROGRESS_EVERY_S,),
            )
            for i in ids:
                self.audit({"event": "session_interrupted", "session": i})
        self.interrupted = ids
        return ids

    # ---------------------------------------------------------------- audit
    def audit(self, record: dict[str, Any]) -> None:
        line = (
            json.dumps({"wall_time": round(wall_time(), 3), **record}, separators=(",", ":")) + "\n"
        )
        with self._guard(self.audit_path):
            append_line(self.audit_path, line)

    # ---------------------------------------------------------------- users
    def add_user(self, user: User) -> User:
        """Store a new person under a fresh id (a name once used by someone else starts afresh)."""
        from dataclasses import replace

        user = replace(user, uid=user.uid or uuid.uuid4().hex)
        self._write(
            "INSERT INTO users (name, height_cm, weight_kg, stage, max_angle_deg, max_session_s, "
            "screening_yes, cleared_by, cleared_at, created_at, uid, cleared_answers, screened_at, "
            "screening_answers, sessions_per_day, past_s_per_day, rest_s, supervised_sessions, "
            "limits_cleared_by, limits_cleared_at, progression_cleared_by, progression_cleared_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            self._row(user, with_name=True),
        )
        self.audit(
            {"event": "user_added", "user": user.name, "id": user.uid, "profile": user.as_dict()}
        )
        return user

    @staticmethod
    def _row(user: User, *, with_name: bool) -> tuple:
        values = (
            user.height_cm,
            user.weight_kg,
            user.stage,
            user.max_angle_deg,
            user.max_session_s,
            ",".join(user.screening_yes),
            user.cleared_by,
            user.cleared_at,
            user.created_at,
            user.uid,
            ",".join(user.cleared_answers),
            user.screened_at,
            json.dumps(user.screening_answers),
            user.sessions_per_day,
            user.past_s_per_day,
            user.rest_s,
            user.supervised_sessions,
            user.limits_cleared_by,
            user.limits_cleared_at,
            user.progression_cleared_by,
            user.progression_cleared_at,
        )
        return ((user.name,) + values) if with_name else values

    def get_user(self, name: str) -> User | None:
        with self._guard():
            r = self.db.execute("SELECT * FROM users WHERE name=?", (name,)).fetchone()
        if r is None:
            return None
        return User(
            r["name"],
            r["height_cm"],
            r["weight_kg"],
            r["stage"],
            r["max_angle_deg"],
            r["max_session_s"],
            tuple(x for x in r["screening_yes"].split(",") if x),
            r["cleared_by"],
            r["cleared_at"],
            r["created_at"],
            r["uid"] or "",
            tuple(x for x in (r["cleared_answers"] or "").split(",") if x),
            r["screened_at"],
            json.loads(r["screening_answers"] or "{}"),
            r["sessions_per_day"],
            r["past_s_per_day"],
            r["rest_s"],
            r["supervised_sessions"],
            r["limits_cleared_by"],
            r["limits_cleared_at"],
            r["progression_cleared_by"],
            r["progression_cleared_at"],
        )

    def users(self) -> list[User]:
        with self._guard():
            names = [r["name"] for r in self.db.execute("SELECT name FROM users ORDER BY name")]
        return [u for u in (self.get_user(n) for n in names) if u is not None]

    def update_user(self, before: User, after: User, why: str = "user_edited") -> None:
        """Save a profile change; the audit names every field changed, before and after."""
        self._write(
            "UPDATE users SET height_cm=?, weight_kg=?, stage=?, max_angle_deg=?, max_session_s=?, "
            "screening_yes=?, cleared_by=?, cleared_at=?, created_at=?, uid=?, cleared_answers=?, "
            "screened_at=?, screening_answers=?, sessions_per_day=?, past_s_per_day=?, rest_s=?, "
            "supervised_sessions=?, limits_cleared_by=?, limits_cleared_at=?, "
            "progression_cleared_by=?, progression_cleared_at=? WHERE uid=?",
            self._row(after, with_name=False) + (before.uid,),
        )
        old, new = before.as_dict(), after.as_dict()
        changes = {k: {"before": old[k], "after": new[k]} for k in new if old.get(k) != new[k]}
        self.audit({"event": why, "user": after.name, "id": after.uid, "changes": changes})

    def remove_user(self, user: User) -> None:
        self._write("DELETE FROM users WHERE uid=?", (user.uid,))
        self.audit({"event": "user_removed", "user": user.name, "id": user.uid})

    # ---------------------------------------------------------------- sessions
    def begin_session(
        self,
        user: User,
        program: str,
        clipped: list[str],
        source: str = "real",
        supervisor: str | None = None,
    ) -> int:
        now = wall_time()
        cur = self._write(
            "INSERT INTO sessions (user, user_id, program, started_at, progress_at, clipped, "
            "state, events, source, motor_on_s, supervisor) VALUES (?,?,?,?,?,?,?,?,?,0,?)",
            (
                user.name,
                user.uid,
                program,
                now,
                now,
                json.dumps(clipped),
                "boot",
                "[]",
                source,
                supervisor,
            ),
        )
        if cur.lastrowid is None:  # every INSERT sets it
            raise StoreError(self.path, "the new session got no row id")
        sid = cur.lastrowid
        self.audit(
            {
                "event": "session_started",
                "session": sid,
                "user": user.name,
                "id": user.uid,
                "program": program,
                "source": source,
                "clipped": clipped,
                "supervisor": supervisor,
            }
        )
        return sid

    def progress(
        self,
        sid: int,
        state: str,
        peak_deg: float,
        past_horizontal_s: float,
        events: list[dict],
        motor_on_s: float = 0.0,
    ) -> None:
        self._write(
            "UPDATE sessions SET state=?, peak_deg=?, past_horizontal_s=?, events=?, motor_on_s=?, "
            "progress_at=? WHERE id=?",
            (state, peak_deg, past_horizontal_s, json.dumps(events), motor_on_s, wall_time(), sid),
        )

    def end_session(
        self,
        sid: int,
        outcome: str,
        peak_deg: float,
        past_horizontal_s: float,
        hold_s: float,
        motor_on_s: float,
        events: list[dict],
    ) -> None:
        self._write(
            "UPDATE sessions SET ended_at=?, outcome=?, peak_deg=?, past_horizontal_s=?, hold_s=?, "
            "motor_on_s=?, events=? WHERE id=?",
            (
                wall_time(),
                outcome,
                peak_deg,
                past_horizontal_s,
                hold_s,
                motor_on_s,
                json.dumps(events),
                sid,
            ),
        )
        self.audit(
            {
                "event": "session_ended",
                "session": sid,
                "outcome": outcome,
                "peak_deg": round(peak_deg, 2),
            }
        )

    def sessions(self, user: str | None = None) -> list[dict[str, Any]]:
        q = "SELECT * FROM sessions" + (" WHERE user=?" if user else "") + " ORDER BY id"
        out = []
        with self._guard():
            for r in self.db.execute(q, (user,) if user else ()):
                d = dict(r)
                d["clipped"] = json.loads(d["clipped"] or "[]")
                d["events"] = json.loads(d["events"] or "[]")
                out.append(d)
        return out

    def record_feedback(self, sid: int, user: User, feelings: tuple[str, ...]) -> None:
        """How the person felt after session ``sid`` (once: the record is evidence)."""
        self._write(
            "UPDATE sessions SET feedback=?, feedback_at=? WHERE id=?",
            (",".join(feelings), wall_time(), sid),
        )
        self.audit(
            {
                "event": "session_feedback",
                "session": sid,
                "user": user.name,
                "id": user.uid,
                "felt": list(feelings),
            }
        )

    def ledger(self, user: User, sources: tuple[str, ...]) -> list[dict[str, Any]]:
        """This person's sessions from ``sources`` (by id), oldest first: what the daily
        limits, supervision and symptom rules read (controller/app/allowance.py)."""
        with self._guard():
            return [
                dict(r)
                for r in self.db.execute(
                    "SELECT id, started_at, ended_at, progress_at, past_horizontal_s, peak_deg, "
                    "hold_s, outcome, supervisor, feedback, source FROM sessions WHERE user_id=? "
                    f"AND source IN ({','.join('?' * len(sources))}) ORDER BY started_at, id",
                    (user.uid, *sources),
                )
            ]

    @staticmethod
    def _sources(count_sim: bool, unknown: bool) -> tuple[str, ...]:
        return ("real",) + (("sim",) if count_sim else ()) + (("unknown",) if unknown else ())

    def best(self, user: User, *, count_sim: bool = False) -> tuple[float | None, float | None]:
        """This person's best completed session: (peak angle, total hold seconds). Simulated
        sessions (and old ones of unknown source) are not progress on the real table."""
        src = self._sources(count_sim, unknown=False)
        with self._guard():
            r = self.db.execute(
                f"SELECT MAX(peak_deg) AS p, MAX(hold_s) AS h FROM sessions WHERE user_id=? AND "
                f"outcome='completed' AND source IN ({','.join('?' * len(src))})",
                (user.uid, *src),
            ).fetchone()
        return r["p"], r["h"]

    def first_session_at(self, user: User, *, count_sim: bool = False) -> float | None:
        src = self._sources(count_sim, unknown=False)
        with self._guard():
            return self.db.execute(
                f"SELECT MIN(started_at) AS t FROM sessions WHERE user_id=? AND "
                f"source IN ({','.join('?' * len(src))})",
                (user.uid, *src),
            ).fetchone()["t"]

    def motor_on_since(self, t: float, *, count_sim: bool = False) -> float:
        """Motor-on seconds of the table's sessions since ``t`` (old sessions of unknown
        source count: the budget errs on the actuator's side)."""
        src = self._sources(count_sim, unknown=True)
        with self._guard():
            r = self.db.execute(
                "SELECT SUM(motor_on_s) AS s FROM sessions WHERE "
                f"COALESCE(ended_at, started_at) >= ? AND source IN ({','.join('?' * len(src))})",
                (t, *src),
            ).fetchone()
        return float(r["s"] or 0.0)
