"""Readers' 👍/👎 on answers, with an optional comment, kept for the desk's owner in SQLite.

Each entry holds what the reader saw and typed (question, answer, citations, comment) and the
settings that produced the answer; nothing about the reader (no address, no browser). A rating
is stored when it is clicked; the comment, typed afterwards, amends the same entry, which the
reader's page holds a random token for (`add` returns it; only its hash is stored).

    python -m assistant feedback [--since YYYY-MM-DD] [--json]      # newest first

Every stored field is capped, and so is an entry (`MAX_ENTRY_BYTES`); the database keeps the
newest entries within `MAX_BYTES`, the oldest removed to make room, so no one client can fill
it and turn feedback off for everyone else.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import sqlite3
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Sequence

from .config import Settings, StorageSettings
from .errors import BadFeedback
from .i18n import N_, Text
from .questionlog import log_bytes
from .text import shown

log = logging.getLogger(__name__)

RATINGS = ("up", "down")
MAX_QUESTION = 4_000  # characters; a question itself is capped lower (ASSISTANT_MAX_QUESTION_CHARS)
MAX_ANSWER = 20_000
MAX_COMMENT = 2_000
MAX_CITATIONS = 20
MAX_CITATION = 4_000  # characters of one citation as JSON
MAX_SOURCE = 200  # characters of an outlet name in the reader's filters, like any short string
MAX_SOURCES = 50  # outlets in the reader's filters
MAX_HISTORY = 5  # earlier questions kept with an entry, each capped like a question
MAX_ENTRY_BYTES = 50_000  # one entry as stored (UTF-8); a real one is a few KB
MAX_BYTES = 100 * 2**20  # what the entries may take in the database; past it the oldest are removed
PRUNE_STEP = 10  # entries removed at a time when over `MAX_BYTES`
MAX_ID = 2**63 - 1  # SQLite's largest integer: no entry id is above it

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL,          -- UTC, ISO 8601 ("2026-11-29T17:02:03Z")
    updated TEXT NOT NULL,
    rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    citations TEXT NOT NULL,        -- JSON list, as the reader saw them
    settings TEXT NOT NULL,         -- JSON: what produced the answer
    via TEXT NOT NULL,              -- "chat" (the page at /) or "api" (/embed and other clients)
    token_hash TEXT NOT NULL        -- sha256 of the token that may amend the entry
);
CREATE INDEX IF NOT EXISTS feedback_created ON feedback (created);
"""


@dataclass(frozen=True)
class Feedback:
    id: int
    created: str
    updated: str
    rating: str
    question: str
    answer: str
    comment: str = ""
    citations: tuple = ()
    settings: dict = field(default_factory=dict, compare=False)
    via: str = "api"

    def to_dict(self) -> dict:
        return {**asdict(self), "citations": list(self.citations)}


def feedback_path(storage: StorageSettings) -> Path:
    return storage.feedback_db or storage.index_dir / "feedback.sqlite3"


def answer_settings(settings: Settings, filters=None, history: Sequence[str] = ()) -> dict:
    """The settings that produced an answer: answer step, retrieval and refusal knobs, the
    reader's filters and earlier questions. No secrets (API keys, tokens) and no addresses."""
    return {"llm": settings.llm.backend, "top_k": settings.answers.top_k, "min_coverage": settings.llm.min_coverage,
            "min_similarity": settings.llm.min_similarity,
            "filters": ({"sources": list(filters.sources), "since": filters.since, "until": filters.until}
                        if filters else {}),
            "history": list(history)[-MAX_HISTORY:]}


def over_limit(wait: int) -> Text:
    """The message for a reader over the feedback limit (ASSISTANT_RATE_LIMIT, counted apart from questions)."""
    return Text(N_("That is more feedback at once than this assistant takes. Please try again in {wait} s."), wait=wait)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_settings(settings: dict) -> str:
    """The settings as stored (JSON), the reader's part of them capped like any field.

    Raises:
        BadFeedback: an outlet name, an earlier question or the number of either is over its cap."""
    filters = settings.get("filters") or {}
    sources, history = list(filters.get("sources") or ()), list(settings.get("history") or ())
    if len(sources) > MAX_SOURCES or len(history) > MAX_HISTORY:
        raise BadFeedback(f"Feedback keeps at most {MAX_SOURCES} outlets and {MAX_HISTORY} earlier questions.")
    if any(len(str(s)) > MAX_SOURCE for s in sources):
        raise BadFeedback(f"An outlet name in the filters is over {MAX_SOURCE} characters.")
    if any(len(str(q)) > MAX_QUESTION for q in history):
        raise BadFeedback(f"An earlier question is over {MAX_QUESTION:,} characters.")
    for key in ("since", "until"):
        if len(str(filters.get(key) or "")) > len("YYYY-MM-DD"):
            raise BadFeedback(f"'{key}' must be a date: YYYY-MM-DD.")
    return json.dumps(settings, ensure_ascii=False)


def _check(rating: str | None, comment: str | None) -> None:
    if rating is not None and rating not in RATINGS:
        raise BadFeedback(f"rating must be 'up' or 'down', not {rating!r}.")
    if comment is not None and len(comment) > MAX_COMMENT:
        raise BadFeedback(f"That comment is {len(comment):,} characters long; please keep it under {MAX_COMMENT:,}.")


class FeedbackStore:
    """The feedback database at `path` (created, with its folder, on the first `add`)."""

    def __init__(self, path: Path, max_bytes: int = MAX_BYTES):
        self.path = Path(path)
        self.max_bytes = max_bytes  # what the entries may take; past it the oldest are removed (`_prune`)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10)
        db.executescript(_SCHEMA)
        return db

    def add(self, question: str, answer: str, rating: str, comment: str = "", citations: Sequence[dict] = (),
            settings: dict | None = None, via: str = "api") -> tuple[int, str]:
        """Store a rating; returns (id, token), the token amending it later (`amend`). Past the
        store's size the oldest entries are removed to make room.

        Raises:
            BadFeedback: an unknown rating, a field or the whole entry over its cap (nothing is stored)."""
        _check(rating, comment)
        for name, value, cap in (("question", question, MAX_QUESTION), ("answer", answer, MAX_ANSWER)):
            if not value.strip() and name == "question":
                raise BadFeedback("The feedback names no question.")
            if len(value) > cap:
                raise BadFeedback(f"That {name} is {len(value):,} characters long; feedback keeps at most {cap:,}.")
        if len(citations) > MAX_CITATIONS:
            raise BadFeedback(f"Feedback keeps at most {MAX_CITATIONS} citations, not {len(citations)}.")
        cited = [json.dumps(c, ensure_ascii=False) for c in citations]
        if any(len(c) > MAX_CITATION for c in cited):
            raise BadFeedback(f"A citation is over {MAX_CITATION:,} characters.")
        stored = (question, answer, comment, "[" + ", ".join(cited) + "]", _check_settings(settings or {}))
        size = sum(len(field.encode("utf-8")) for field in stored)
        if size > MAX_ENTRY_BYTES:
            raise BadFeedback(f"That feedback takes {size:,} bytes; an entry keeps at most {MAX_ENTRY_BYTES:,}.")
        token = secrets.token_urlsafe(18)
        now = _now()
        with closing(self._connect()) as db, db:
            cursor = db.execute(
                "INSERT INTO feedback (created, updated, rating, question, answer, comment, citations, settings, "
                "via, token_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (now, now, rating, *stored, via, _hash(token)))
            self._prune(db, keep=cursor.lastrowid)
            return cursor.lastrowid, token

    def _prune(self, db: sqlite3.Connection, keep: int) -> None:
        """Remove the oldest entries (never `keep`) while the database's pages in use hold more than
        `max_bytes` beside the question log's share; SQLite reuses the freed pages, so the file stays
        about that size."""
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        removed, others = 0, None
        while (db.execute("PRAGMA page_count").fetchone()[0]
               - db.execute("PRAGMA freelist_count").fetchone()[0]) * page_size > self.max_bytes + (others or 0):
            if others is None:  # the question log shares the file and keeps its own limit
                others = log_bytes(db)
                continue
            gone = db.execute("DELETE FROM feedback WHERE id IN (SELECT id FROM feedback WHERE id < ? ORDER BY id "
                              "LIMIT ?)", (keep, PRUNE_STEP)).rowcount
            if not gone:
                break
            removed += gone
        if removed:
            log.warning("feedback store %s is at its size (%s MB): the %d oldest entries were removed",
                        self.path, f"{self.max_bytes / 2**20:g}", removed)

    def amend(self, entry_id: int, token: str, rating: str | None = None, comment: str | None = None) -> bool:
        """Change an entry's rating or comment; False when no entry has this id and token."""
        _check(rating, comment)
        if not self.path.exists() or not 1 <= entry_id <= MAX_ID:  # SQLite cannot even compare a larger one
            return False
        with closing(self._connect()) as db, db:
            cursor = db.execute(
                "UPDATE feedback SET rating = COALESCE(?, rating), comment = COALESCE(?, comment), updated = ? "
                "WHERE id = ? AND token_hash = ?", (rating, comment, _now(), entry_id, _hash(token)))
            return cursor.rowcount == 1

    def counts(self) -> dict[str, int]:
        """Entries kept, by rating."""
        if not self.path.exists():
            return dict.fromkeys(RATINGS, 0)
        with closing(self._connect()) as db:
            found = dict(db.execute("SELECT rating, COUNT(*) FROM feedback GROUP BY rating").fetchall())
        return {rating: found.get(rating, 0) for rating in RATINGS}

    def entries(self, since: str = "") -> list[Feedback]:
        """Entries created on or after `since` (YYYY-MM-DD, UTC), newest first."""
        if since:
            try:
                date.fromisoformat(since)
            except ValueError:
                raise BadFeedback(f"'{since}' is not a date: use YYYY-MM-DD.") from None
        if not self.path.exists():
            return []
        with closing(self._connect()) as db:
            rows = db.execute("SELECT id, created, updated, rating, question, answer, comment, citations, settings, "
                              "via FROM feedback WHERE created >= ? ORDER BY created DESC, id DESC",
                              (since,)).fetchall()
        return [Feedback(id=r[0], created=r[1], updated=r[2], rating=r[3], question=r[4], answer=r[5],
                         comment=r[6], citations=tuple(json.loads(r[7])), settings=json.loads(r[8]), via=r[9])
                for r in rows]


def entry_lines(entry: Feedback) -> list[str]:
    """One entry for the owner to read in a terminal; what a reader sent is shown with its
    control characters escaped (`text.shown`): it cannot forge a line or drive the terminal."""
    mark = "👍" if entry.rating == "up" else "👎"
    lines = [f"{entry.created.replace('T', ' ').rstrip('Z')} UTC  {mark} {entry.rating}  #{entry.id} via {entry.via}",
             f"  Q: {' '.join(entry.question.split())}",
             f"  A: {_clip(' '.join(entry.answer.split()), 300)}"]
    if entry.comment:
        lines.append(f"  comment: {' '.join(entry.comment.split())}")
    for c in entry.citations:
        if isinstance(c, dict):
            lines.append(f"  [{c.get('n', '?')}] {c.get('title') or c.get('article_id', '')} "
                         f"{c.get('link') or c.get('url') or ''}".rstrip())
    settings = entry.settings
    if settings:
        lines.append(f"  settings: llm={settings.get('llm')} top_k={settings.get('top_k')}"
                     + (f" filters={json.dumps(settings['filters'], ensure_ascii=False)}"
                        if settings.get("filters") else ""))
    return [shown(line) for line in lines]


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"
