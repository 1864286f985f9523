"""What ingest and feeds runs did (assistant/runs.py), in real SQLite."""

from __future__ import annotations

from dataclasses import dataclass, field

from assistant.runs import MAX_FAILURES, MAX_REASON, RunLog


@dataclass
class Added:  # the parts of `sources.fetch.AddReport` a round is recorded by
    added: list = field(default_factory=list)


@dataclass
class Round:  # the parts of `sources.feeds.FeedReport`
    feed: str
    articles: Added
    error: str = ""


@dataclass
class Ingest:  # the parts of `indexing.sync.SyncReport`
    added: list = field(default_factory=list)
    updated: list = field(default_factory=list)
    removed: list = field(default_factory=list)
    failed: list = field(default_factory=list)


def test_ingests_are_counted_with_their_failures_capped(tmp_path):
    runs = RunLog(tmp_path / "fb.sqlite3")
    assert runs.ingests() == (0, 0, None)
    runs.ingest(Ingest(added=["a.md"]))
    runs.ingest(Ingest(updated=["a.md"], failed=[(f"{i}.pdf", "x" * 1_000) for i in range(30)]))
    count, failed, last = runs.ingests()
    assert (count, failed, last.updated, last.failed) == (2, 30, 1, 30)
    assert len(last.failures) == MAX_FAILURES and len(last.failures[0][1]) == MAX_REASON


def test_a_feed_remembers_when_it_last_brought_an_article(tmp_path):
    runs = RunLog(tmp_path / "fb.sqlite3")
    runs.feeds([Round("https://a.example/rss", Added(["x"])), Round("https://b.example/rss", Added(), "timed out")])
    runs.feeds([Round("https://a.example/rss", Added())])
    a, b = runs.feed_states()
    assert (a.feed, a.error, b.error, b.last_added) == ("https://a.example/rss", "", "timed out", "")
    assert a.last_added and a.last_run >= a.last_added


def test_a_feeds_round_creates_no_index_folder(tmp_path):
    RunLog(tmp_path / "index" / "fb.sqlite3").feeds([Round("https://a.example/rss", Added())])
    assert not (tmp_path / "index").exists()
