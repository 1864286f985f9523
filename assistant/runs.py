"""What ingest and feeds runs did, kept for the owner (`/owner`) and the operator (`/metrics`) in
the feedback's SQLite file: the command line records each run it makes (`cli.py`), and the start-up
ingest its own. A run's failures are kept capped (`MAX_FAILURES`, each `MAX_REASON` characters);
the newest `KEEP` runs of each kind stay.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

MAX_FAILURES = 20
MAX_REASON = 300
KEEP = 1_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ingest_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    finished TEXT NOT NULL,        -- UTC, ISO 8601
    added INTEGER NOT NULL, updated INTEGER NOT NULL, removed INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    failures TEXT NOT NULL         -- JSON [[file, reason], ...], capped
);
CREATE TABLE IF NOT EXISTS feed_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    finished TEXT NOT NULL,
    feed TEXT NOT NULL,
    added INTEGER NOT NULL,
    error TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class IngestRun:
    finished: str
    added: int
    updated: int
    removed: int
    failed: int
    failures: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class FeedState:
    """A feed as the runs recorded it: when it was last read, and when it last brought an article."""

    feed: str
    last_run: str
    last_added: str  # "" when it never brought one
    error: str = ""  # the last run's error, "" when it read


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class RunLog:
    def __init__(self, path: Path):
        self.path = Path(path)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10)
        db.executescript(_SCHEMA)
        return db

    def ingest(self, report) -> None:
        """Record an ingest (`indexing.sync.SyncReport`)."""
        failures = [[str(f)[:MAX_REASON], str(why)[:MAX_REASON]] for f, why in report.failed[:MAX_FAILURES]]
        with closing(self._connect()) as db, db:
            db.execute("INSERT INTO ingest_runs (finished, added, updated, removed, failed, failures) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (_now(), len(report.added), len(report.updated),
                                                     len(report.removed), len(report.failed), json.dumps(failures)))
            db.execute("DELETE FROM ingest_runs WHERE id <= (SELECT MAX(id) FROM ingest_runs) - ?", (KEEP,))

    def feeds(self, reports: Sequence) -> None:
        """Record a feeds round (`sources.feeds.FeedReport`s), in an index folder that exists: a round
        that added nothing creates no index."""
        if not self.path.parent.is_dir():
            return
        with closing(self._connect()) as db, db:
            now = _now()
            db.executemany("INSERT INTO feed_runs (finished, feed, added, error) VALUES (?, ?, ?, ?)",
                           [(now, str(r.feed)[:2_000], len(r.articles.added), str(r.error)[:MAX_REASON])
                            for r in reports])
            db.execute("DELETE FROM feed_runs WHERE id <= (SELECT MAX(id) FROM feed_runs) - ?", (KEEP * 10,))

    def ingests(self) -> tuple[int, int, IngestRun | None]:
        """(runs, files failed in them, the last run) of the kept runs."""
        if not self.path.exists():
            return 0, 0, None
        with closing(self._connect()) as db:
            runs, failed = db.execute("SELECT COUNT(*), COALESCE(SUM(failed), 0) FROM ingest_runs").fetchone()
            last = db.execute("SELECT finished, added, updated, removed, failed, failures FROM ingest_runs "
                              "ORDER BY id DESC LIMIT 1").fetchone()
        return runs, failed, (IngestRun(*last[:5], failures=tuple(tuple(f) for f in json.loads(last[5])))
                              if last else None)

    def feed_states(self) -> list[FeedState]:
        if not self.path.exists():
            return []
        with closing(self._connect()) as db:
            rows = db.execute("SELECT feed, MAX(finished), MAX(CASE WHEN added > 0 THEN finished END), "
                              "(SELECT error FROM feed_runs AS l WHERE l.feed = f.feed ORDER BY id DESC LIMIT 1) "
                              "FROM feed_runs AS f GROUP BY feed ORDER BY feed").fetchall()
        return [FeedState(feed, last, added or "", error or "") for feed, last, added, error in rows]
