"""The question log (assistant/questionlog.py): real SQLite in tmp_path, the feedback's file."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from assistant.errors import BadFeedback
from assistant.feedback import FeedbackStore
from assistant.questionlog import MAX_CITED, MAX_QUESTION, PRUNE_EVERY, QuestionLog

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


def test_a_question_is_kept_with_its_outcome_channel_latency_and_citations_and_nothing_about_the_reader(tmp_path):
    db = tmp_path / "feedback.sqlite3"
    log = QuestionLog(db)
    log.record("How much did trade grow?", "answered", "api", 0.4567, ["a.md", "a.md", "b.md"], now=NOW)
    log.record("Who won the cup?", "refused", "embed", 0.12, now=NOW)
    log.record("x", "busy", "chat", 10.0, now=NOW)

    got = log.entries()
    assert [(a.outcome, a.channel, a.latency_ms, a.cited) for a in got] == [
        ("answered", "api", 457, ("a.md", "b.md")), ("refused", "embed", 120, ()), ("busy", "chat", 10_000, ())]
    assert got[0].asked == "2026-05-01T12:00:00Z" and got[0].question == "How much did trade grow?"
    columns = {row[1] for row in sqlite3.connect(db).execute("PRAGMA table_info(questions)")}
    assert columns == {"id", "asked", "outcome", "channel", "latency_ms", "question", "cited", "size"}
    with pytest.raises(ValueError):
        log.record("q", "maybe", "api", 0)
    with pytest.raises(BadFeedback):
        log.entries(since="yesterday")


def test_question_text_and_citations_are_capped_and_control_characters_go(tmp_path):
    log = QuestionLog(tmp_path / "f.sqlite3")
    log.record("\x1b[2J" + "why " * 1_000, "refused", "api", 0.1, [f"{i}.md" * 100 for i in range(50)], now=NOW)
    (row,) = log.entries()
    assert len(row.question) == MAX_QUESTION and "\x1b" not in row.question
    assert len(row.cited) == MAX_CITED and all(len(a) <= 200 for a in row.cited)


def test_retention_prunes_questions_older_than_the_setting(tmp_path):
    log = QuestionLog(tmp_path / "f.sqlite3", days=90)
    log.record("old", "refused", "api", 0.1, now=NOW - timedelta(days=91))
    log.record("recent", "refused", "api", 0.1, now=NOW - timedelta(days=89))
    assert [a.question for a in log.entries()] == ["old", "recent"]
    log.record("new", "answered", "chat", 0.1, now=NOW)  # a new question prunes what is past 90 days
    assert [a.question for a in log.entries()] == ["recent", "new"]
    short = QuestionLog(tmp_path / "f.sqlite3", days=1)
    short.record("today", "answered", "chat", 0.1, now=NOW + timedelta(days=2))
    assert [a.question for a in short.entries()] == ["today"]


def test_one_client_cannot_fill_the_log_nor_push_out_the_feedback(tmp_path):
    db = tmp_path / "f.sqlite3"
    feedback = FeedbackStore(db, max_bytes=200_000)
    feedback.add("Who is Liu Weidong?", "A scholar.", "down", "wrong")
    log = QuestionLog(db, max_bytes=60_000)
    for i in range(PRUNE_EVERY * 8):  # ~400 rows of ~560 bytes: ~4 times the log's limit
        log.record(f"{i} " + "q" * 490, "refused", "api", 0.1, now=NOW)
    kept = log.entries()
    assert sum(len(a.question) + 64 for a in kept) <= 60_000 + PRUNE_EVERY * 600
    assert kept[-1].question.startswith(f"{PRUNE_EVERY * 8 - 1} ")  # the newest stay
    assert len(kept) < PRUNE_EVERY * 8
    feedback.add("Another question", "An answer.", "up")  # the log's share does not count as feedback's
    assert [e.question for e in feedback.entries()] == ["Another question", "Who is Liu Weidong?"]


def test_per_day_and_slowest(tmp_path):
    log = QuestionLog(tmp_path / "f.sqlite3")
    for day, outcome, seconds in ((0, "answered", 0.2), (0, "refused", 3.0), (1, "answered", 1.0), (1, "busy", 9.0)):
        log.record(f"q{day}{outcome}", outcome, "chat", seconds, now=NOW + timedelta(days=day))
    assert log.per_day("2026-05-01") == [
        ("2026-05-01", {"answered": 1, "refused": 1, "error": 0, "busy": 0}),
        ("2026-05-02", {"answered": 1, "refused": 0, "error": 0, "busy": 1})]
    assert [a.question for a in log.slowest("2026-05-01")] == ["q0refused", "q1answered", "q0answered"]
