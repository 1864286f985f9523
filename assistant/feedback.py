"""Readers' 👍/👎 on answers, with an optional comment, kept for the desk's owner in SQLite.

Each entry holds what the reader saw and typed (question, answer, citations, comment) and the
settings that produced the answer; nothing about the reader (no address, no browser). A rating
is stored when it is clicked; the comment, typed afterwards, amends the same entry, which the
reader's page holds a random token for (`add` returns it; only its hash is stored).

    python -m assistant feedback [--since YYYY-MM-DD] [--json]      # newest first
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Sequence

from .config import Settings
from .errors import BadFeedback, FeedbackFull

RATINGS = ("up", "down")
MAX_QUESTION = 4_000  # characters; a question itself is capped lower (ASSISTANT_MAX_QUESTION_CHARS)
MAX_ANSWER = 20_000
MAX_COMMENT = 2_000
MAX_CITATIONS = 20
MAX_CITATION = 4_000  # characters of one citation as JSON
MAX_BYTES = 100 * 2**20  # the database file; past it, new feedback is refused, none is dropped

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


def feedback_path(settings: Settings) -> Path:
    return settings.storage.feedback_db or settings.storage.index_dir / "feedback.sqlite3"


def answer_settings(settings: Settings, filters=None, history: Sequence[str] = ()) -> dict:
    """The settings that produced an answer: answer step, retrieval and refusal knobs, the
    reader's filters and earlier questions. No secrets (API keys, tokens) and no addresses."""
    return {"llm": settings.llm.backend, "top_k": settings.answers.top_k, "min_coverage": settings.answers.min_coverage,
            "min_similarity": settings.answers.min_similarity,
            "filters": ({"sources": list(filters.sources), "since": filters.since, "until": filters.until}
                        if filters else {}),
            "history": list(history)[-5:]}


def over_limit(wait: int) -> str:
    """The message for a reader over the feedback limit (ASSISTANT_RATE_LIMIT, counted apart from questions)."""
    return f"That is more feedback at once than this assistant takes. Please try again in {wait} s."


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check(rating: str | None, comment: str | None) -> None:
    if rating is not None and rating not in RATINGS:
        raise BadFeedback(f"rating must be 'up' or 'down', not {rating!r}.")
    if comment is not None and len(comment) > MAX_COMMENT:
        raise BadFeedback(f"That comment is {len(comment):,} characters long; please keep it under {MAX_COMMENT:,}.")


class FeedbackStore:
    """The feedback database at `path` (created, with its folder, on the first `add`)."""

    def __init__(self, path: Path, max_bytes: int = MAX_BYTES):
        self.path = Path(path)
        self.max_bytes = max_bytes

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10)
        db.executescript(_SCHEMA)
        return db

    def add(self, question: str, answer: str, rating: str, comment: str = "", citations: Sequence[dict] = (),
            settings: dict | None = None, via: str = "api") -> tuple[int, str]:
        """Store a rating; returns (id, token), the token amending it later (`amend`).

        Raises:
            BadFeedback: an unknown rating, or a field over its cap (nothing is stored).
            FeedbackFull: the database is at its size cap."""
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
        if self.path.exists() and self.path.stat().st_size >= self.max_bytes:
            raise FeedbackFull("Feedback cannot be stored just now (the store is full); thank you all the same.")
        token = secrets.token_urlsafe(18)
        now = _now()
        with closing(self._connect()) as db, db:
            cursor = db.execute(
                "INSERT INTO feedback (created, updated, rating, question, answer, comment, citations, settings, "
                "via, token_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (now, now, rating, question, answer, comment, "[" + ", ".join(cited) + "]",
                 json.dumps(settings or {}, ensure_ascii=False), via, _hash(token)))
            return cursor.lastrowid, token

    def amend(self, entry_id: int, token: str, rating: str | None = None, comment: str | None = None) -> bool:
        """Change an entry's rating or comment; False when no entry has this id and token."""
        _check(rating, comment)
        if not self.path.exists():
            return False
        with closing(self._connect()) as db, db:
            cursor = db.execute(
                "UPDATE feedback SET rating = COALESCE(?, rating), comment = COALESCE(?, comment), updated = ? "
                "WHERE id = ? AND token_hash = ?", (rating, comment, _now(), entry_id, _hash(token)))
            return cursor.rowcount == 1

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
    """One entry for the owner to read in a terminal."""
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
    return lines


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"
