"""The question log: each question asked, kept for the desk's owner beside the feedback (same SQLite file).

Private by design: a row holds the time (UTC), the outcome (answered, refused, error, busy), the
channel (chat, embed, api), the latency, the articles cited and the question, capped at
`MAX_QUESTION` characters; never an address, a browser or a session. Rows older than
`ASSISTANT_QUESTION_DAYS` (90) are removed as new ones come in, and the log keeps the newest rows
within `MAX_BYTES`, so no one client can fill it (nor push the feedback out: `feedback._prune`
counts only its own share of the file). `ASSISTANT_QUESTION_LOG=0` turns it off.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Sequence

from .errors import BadFeedback

log = logging.getLogger(__name__)

OUTCOMES = ("answered", "refused", "error", "busy")
CHANNELS = ("chat", "embed", "api")
MAX_QUESTION = 500  # characters kept of a question
MAX_CITED = 10  # article ids kept of an answer, each capped like an outlet name
MAX_ID_CHARS = 200
MAX_BYTES = 20 * 2**20  # what the rows may take; past it the oldest are removed
PRUNE_EVERY = 50  # rows added between checks of the size (a sum over the table)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS questions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    asked TEXT NOT NULL,            -- UTC, ISO 8601 ("2026-11-29T17:02:03Z")
    outcome TEXT NOT NULL CHECK (outcome IN ('answered', 'refused', 'error', 'busy')),
    channel TEXT NOT NULL CHECK (channel IN ('chat', 'embed', 'api')),
    latency_ms INTEGER NOT NULL,
    question TEXT NOT NULL,
    cited TEXT NOT NULL,            -- JSON list of article ids
    size INTEGER NOT NULL           -- bytes of the row's text, for the log's own size limit
);
CREATE INDEX IF NOT EXISTS questions_asked ON questions (asked);
"""


@dataclass(frozen=True)
class Asked:
    """One logged question."""

    id: int
    asked: str
    outcome: str
    channel: str
    latency_ms: int
    question: str
    cited: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"id": self.id, "asked": self.asked, "outcome": self.outcome, "channel": self.channel,
                "latency_ms": self.latency_ms, "question": self.question, "cited": list(self.cited)}


def _stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def checked_since(since: str) -> str:
    """`since` (YYYY-MM-DD or ""), refused when it is not a date.

    Raises:
        BadFeedback: not a date (the owner's tools share feedback's error)."""
    if since:
        try:
            date.fromisoformat(since)
        except ValueError:
            raise BadFeedback(f"'{since}' is not a date: use YYYY-MM-DD.") from None
    return since


class QuestionLog:
    """The log in the SQLite file at `path` (the feedback's), keeping `days` days and `max_bytes`."""

    def __init__(self, path: Path, days: int = 90, max_bytes: int = MAX_BYTES):
        self.path = Path(path)
        self.days = days
        self.max_bytes = max_bytes

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10)
        db.executescript(_SCHEMA)
        return db

    def record(self, question: str, outcome: str, channel: str, seconds: float, cited: Sequence[str] = (),
               now: datetime | None = None) -> int:
        """Log a question (its text folded and capped); returns the row's id. Rows past the
        retention are removed, and, every `PRUNE_EVERY` rows, the oldest past the size limit."""
        if outcome not in OUTCOMES or channel not in CHANNELS:
            raise ValueError(f"unknown outcome {outcome!r} or channel {channel!r}")
        text = " ".join("".join(ch if ch.isprintable() else " " for ch in question).split())[:MAX_QUESTION]
        ids = json.dumps([str(a)[:MAX_ID_CHARS] for a in list(dict.fromkeys(cited))[:MAX_CITED]], ensure_ascii=False)
        moment = now or datetime.now(timezone.utc)
        with closing(self._connect()) as db, db:
            row = db.execute("INSERT INTO questions (asked, outcome, channel, latency_ms, question, cited, size) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (_stamp(moment), outcome, channel, max(0, round(seconds * 1000)), text, ids,
                              len(text.encode()) + len(ids.encode()) + 64)).lastrowid
            db.execute("DELETE FROM questions WHERE asked < ?", (_stamp(moment - timedelta(days=self.days)),))
            if row % PRUNE_EVERY == 0:
                self._prune(db, keep=row)
        return row

    def _prune(self, db: sqlite3.Connection, keep: int) -> None:
        total = db.execute("SELECT COALESCE(SUM(size), 0) FROM questions").fetchone()[0]
        if total <= self.max_bytes:
            return
        over, removed = total - self.max_bytes, 0
        for row_id, size in db.execute("SELECT id, size FROM questions WHERE id < ? ORDER BY id", (keep,)).fetchall():
            if over <= 0:
                break
            db.execute("DELETE FROM questions WHERE id = ?", (row_id,))
            over, removed = over - size, removed + 1
        log.warning("question log %s is at its size (%s MB): the %d oldest questions were removed",
                    self.path, f"{self.max_bytes / 2**20:g}", removed)

    def entries(self, since: str = "", outcomes: Sequence[str] = OUTCOMES) -> list[Asked]:
        """Logged questions asked on or after `since` (YYYY-MM-DD, UTC) with these outcomes, oldest first."""
        checked_since(since)
        if not self.path.exists():
            return []
        marks = ", ".join("?" * len(outcomes))
        with closing(self._connect()) as db:
            rows = db.execute(f"SELECT id, asked, outcome, channel, latency_ms, question, cited FROM questions "
                              f"WHERE asked >= ? AND outcome IN ({marks}) ORDER BY id", (since, *outcomes)).fetchall()
        return [Asked(*r[:6], cited=tuple(json.loads(r[6]))) for r in rows]

    def per_day(self, since: str) -> list[tuple[str, dict[str, int]]]:
        """(day, {outcome: questions}) for each day with questions, on or after `since`, oldest first."""
        days: dict[str, dict[str, int]] = {}
        if self.path.exists():
            with closing(self._connect()) as db:
                for day, outcome, n in db.execute("SELECT substr(asked, 1, 10), outcome, COUNT(*) FROM questions "
                                                  "WHERE asked >= ? GROUP BY 1, 2 ORDER BY 1", (since,)):
                    days.setdefault(day, dict.fromkeys(OUTCOMES, 0))[outcome] = n
        return list(days.items())

    def slowest(self, since: str, n: int = 10) -> list[Asked]:
        """The `n` slowest answered or refused questions asked on or after `since`."""
        if not self.path.exists():
            return []
        with closing(self._connect()) as db:
            rows = db.execute("SELECT id, asked, outcome, channel, latency_ms, question, cited FROM questions "
                              "WHERE asked >= ? AND outcome IN ('answered', 'refused') "
                              "ORDER BY latency_ms DESC LIMIT ?", (since, n)).fetchall()
        return [Asked(*r[:6], cited=tuple(json.loads(r[6]))) for r in rows]


def log_bytes(db: sqlite3.Connection) -> int:
    """What the question log's rows take in a database file it shares (0 without one)."""
    if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'questions'").fetchone():
        return 0
    return db.execute("SELECT COALESCE(SUM(size), 0) FROM questions").fetchone()[0]
