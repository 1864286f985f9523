"""The feedback store: real SQLite files in tmp_path."""

import json
import sqlite3
from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.errors import BadFeedback
from assistant.feedback import (MAX_COMMENT, MAX_ENTRY_BYTES, MAX_SOURCE, FeedbackStore, answer_settings, entry_lines,
                                feedback_path)
from assistant.schema import Filters

CITED = [{"n": 1, "article_id": "wheat.md", "title": "Wheat harvest", "url": "https://example.org/wheat",
          "link": "https://example.org/wheat#:~:text=420%20million", "quote": "420 million bushels"}]


def test_entries_are_stored_with_citations_and_settings_and_listed_newest_first(tmp_path):
    store = FeedbackStore(tmp_path / "new-folder" / "feedback.sqlite3")
    assert store.entries() == []  # nothing yet, and nothing created by looking
    assert not store.path.exists()
    produced = answer_settings(Settings.of(backend="gguf:/m.gguf", top_k=4), Filters(sources=("Plains Daily",)), ["q0"])
    first, _ = store.add("How much wheat?", "420 million bushels [1]", "up", citations=CITED, settings=produced)
    second, _ = store.add("Who is Liu?", "A researcher [1]", "down", comment="Wrong person", via="chat")

    entries = store.entries()
    assert [e.id for e in entries] == [second, first]
    latest, older = entries
    assert (latest.rating, latest.comment, latest.via) == ("down", "Wrong person", "chat")
    assert older.citations == tuple(CITED)
    assert older.settings == {"llm": "gguf:/m.gguf", "top_k": 4, "min_coverage": None, "min_similarity": None,
                              "filters": {"sources": ["Plains Daily"], "since": "", "until": ""}, "history": ["q0"]}
    assert older.created.endswith("Z") and len(older.created) == 20
    assert json.loads(json.dumps(older.to_dict()))["citations"] == CITED


def test_nothing_about_the_reader_is_stored(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite3")
    store.add("q", "a", "up")
    with sqlite3.connect(store.path) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(feedback)")}
    assert columns == {"id", "created", "updated", "rating", "question", "answer", "comment", "citations",
                       "settings", "via", "token_hash"}
    assert "api_key" not in json.dumps(answer_settings(Settings.of(openai_api_key="sk-secret")))
    assert "sk-secret" not in json.dumps(answer_settings(Settings.of(openai_api_key="sk-secret")))


def test_a_comment_amends_the_entry_only_with_its_token(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite3")
    entry_id, token = store.add("q", "a", "down")
    other_id, _ = store.add("q2", "a2", "up")
    assert not store.amend(other_id, token, comment="forged")  # another entry's token
    assert not store.amend(entry_id, "guess", comment="forged")
    assert store.amend(entry_id, token, comment="The date is wrong.")
    assert store.amend(entry_id, token, rating="up")
    entry = {e.id: e for e in store.entries()}[entry_id]
    assert (entry.rating, entry.comment) == ("up", "The date is wrong.")
    assert {e.id: e for e in store.entries()}[other_id].comment == ""
    with sqlite3.connect(store.path) as db:
        assert token not in json.dumps(db.execute("SELECT * FROM feedback").fetchall())  # only its hash


def test_bad_feedback_gets_a_clear_message_and_stores_nothing(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite3")
    for kwargs, message in ((dict(rating="meh"), "rating must be 'up' or 'down'"),
                            (dict(comment="x" * (MAX_COMMENT + 1)), "please keep it under 2,000"),
                            (dict(question="  "), "names no question"),
                            (dict(answer="y" * 20_001), "feedback keeps at most 20,000"),
                            (dict(citations=[{"n": i} for i in range(21)]), "at most 20 citations"),
                            (dict(citations=[{"n": 1, "quote": "z" * 5000}]), "over 4,000 characters")):
        with pytest.raises(BadFeedback, match=message):
            store.add(**{"question": "q", "answer": "a", "rating": "up", **kwargs})
    assert store.entries() == []
    with pytest.raises(BadFeedback, match="use YYYY-MM-DD"):
        store.entries(since="yesterday")


def test_every_stored_field_and_the_entry_are_capped(tmp_path):
    """Issue 18, finding 3: an outlet name in the filters had no cap, nor the settings stored with
    an entry (~1 MB each); now each is capped, and so is the whole entry."""
    store = FeedbackStore(tmp_path / "f.sqlite3")

    def settings(sources=("Plains Daily",), history=()):
        return answer_settings(Settings(), Filters(sources=tuple(sources)), list(history))

    for produced, message in ((settings(["x" * 1_000_000]), f"outlet name in the filters is over {MAX_SOURCE}"),
                              (settings(["x" * (MAX_SOURCE + 1)]), "outlet name"),
                              (settings([f"o{i}" for i in range(51)]), "at most 50 outlets"),
                              (settings(history=["q" * 4_001]), "earlier question is over 4,000"),
                              ({"history": ["q"] * 6}, "5 earlier questions"),
                              ({"filters": {"sources": [], "since": "x" * 50_000}}, "'since' must be a date")):
        with pytest.raises(BadFeedback, match=message):
            store.add("q", "a", "up", settings=produced)
    many = [{"n": i, "quote": "z" * 3_900} for i in range(20)]  # each citation within its cap, together 78 KB
    with pytest.raises(BadFeedback, match=f"an entry keeps at most {MAX_ENTRY_BYTES:,}"):
        store.add("q", "a", "up", citations=many)
    assert store.entries() == []
    store.add("q" * 4_000, "a" * 10_000, "up", comment="c" * 2_000, citations=many[:3],
              settings=settings(["y" * MAX_SOURCE] * 50, ["q" * 2_000] * 5))
    assert len(store.entries()) == 1  # fields at or near their caps, the entry within its own


def test_one_client_cannot_fill_the_store_the_oldest_entries_make_room(tmp_path):
    """Issue 18, finding 3: once full, the store refused everyone's feedback for good; now it
    keeps the newest entries within its size."""
    store = FeedbackStore(tmp_path / "f.sqlite3", max_bytes=512 * 1024)
    flood = [store.add("flood", "a" * 19_000, "up", citations=[{"n": 1, "quote": "z" * 3_900}] * 5)[0]
             for _ in range(60)]  # ~40 KB each, 2.4 MB together
    other, token = store.add("Who is Liu Weidong?", "A research fellow [1]", "down")
    assert store.amend(other, token, comment="Wrong person")
    kept = [e.id for e in store.entries()]
    assert kept[0] == other and flood[0] not in kept and flood[-1] in kept
    assert kept == sorted(kept, reverse=True) and len(kept) < 20  # the newest, each newer than every one removed
    assert set(flood) - set(kept) == {i for i in flood if i < min(kept)}
    assert store.path.stat().st_size < 2 * store.max_bytes  # freed pages are reused: the file stays about its size


def test_since_filters_by_day(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite3")
    store.add("q", "a", "up")
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE feedback SET created = '2024-01-02T10:00:00Z'")
    store.add("q2", "a2", "down")
    assert [e.question for e in store.entries(since="2024-01-02")] == ["q2", "q"]
    assert [e.question for e in store.entries(since="2024-01-03")] == ["q2"]


def test_path_defaults_to_the_index_folder():
    assert str(feedback_path(Settings().storage)) == "index/feedback.sqlite3"
    assert str(feedback_path(Settings.of(feedback_db=Path("/data/fb.db")).storage)) == "/data/fb.db"


ESCAPES = ("\x1b[2J\x1b[H", "\x1b]0;pwned\x07", "\x1b]8;;https://evil.example\x1b\\here\x1b]8;;\x1b\\")
FORGED = "2026-01-01 00:00:00 UTC  👍 up  #999 via chat"


def test_entry_lines_escape_what_a_reader_sent(tmp_path):
    """Issue 18, finding 4: ANSI sequences in a question, answer, comment or citation title cleared
    the owner's screen, set the window title or planted links; a newline in a title forged an entry."""
    store = FeedbackStore(tmp_path / "f.sqlite3")
    store.add(f"Who {ESCAPES[0]}is he?", f"An {ESCAPES[1]}answer", "up", comment=f"See {ESCAPES[2]}",
              citations=[{"n": 1, "title": f"Title\n\n{FORGED}\n  Q: forged", "url": "https://example.org/\x1b[31m"}])
    lines = entry_lines(store.entries()[0])
    assert all(line.isprintable() for line in lines) and not any("\x1b" in line for line in lines)
    assert not any(line.startswith(("2026-01-01", "  Q: forged")) for line in lines)
    assert lines[1] == "  Q: Who \\x1b[2J\\x1b[His he?"
    assert f"  [1] Title\\n\\n{FORGED}\\n  Q: forged https://example.org/\\x1b[31m" in lines


def test_entry_lines_for_the_terminal(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite3")
    store.add("How much\nwheat?", "420 million bushels [1]", "down", comment="Old figure", citations=CITED,
              settings=answer_settings(Settings()))
    lines = entry_lines(store.entries()[0])
    assert "👎 down" in lines[0] and "UTC" in lines[0] and "via api" in lines[0]
    assert lines[1:4] == ["  Q: How much wheat?", "  A: 420 million bushels [1]", "  comment: Old figure"]
    assert "  [1] Wheat harvest https://example.org/wheat#:~:text=420%20million" in lines
    assert lines[-1] == "  settings: llm=extractive top_k=5"
