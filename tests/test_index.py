import numpy as np
import pytest

from assistant.chunking import chunk_article, make_splitter
from assistant.errors import IndexNotReady
from assistant.index import date_number, open_store
from assistant.schema import Article


def _article(text="Ports reopened on Monday. Ships queued for days.", hash_="1" * 64, article_id="a.md"):
    return Article(article_id, text, title="Ports", source="Wire", date="2022-06-12",
                   url="https://example.org/p", content_hash=hash_)


def _write(store, embedder, article):
    chunks = chunk_article(article, make_splitter(embedder.count_tokens))
    store.write_article(article, chunks, embedder.encode([c.text for c in chunks]),
                        embedder.encode([article.title])[0])
    return chunks


def test_write_then_read_back(tmp_path, embedder):
    store = open_store(tmp_path / "index", embedder)
    chunks = _write(store, embedder, _article())
    stored = store.stored_articles()["a.md"]
    assert (stored.content_hash, stored.chunks, stored.date) == ("1" * 64, len(chunks), "2022-06-12")
    assert store.article_text("a.md") == _article().text
    assert store.article_text("missing.md") is None
    assert [c.chunk_id for c in store.all_chunks()] == [c.chunk_id for c in chunks]


def test_query_returns_cosine_similarity(tmp_path, embedder):
    store = open_store(tmp_path / "index", embedder)
    _write(store, embedder, _article())
    vector = embedder.encode(["Ports reopened on Monday. Ships queued for days."])[0]
    (chunk, similarity), = store.query(vector, 5)
    assert similarity == pytest.approx(1.0, abs=1e-3)  # cosine space: identical text scores 1
    assert store.query(vector, 5, where={"source": "Other"}) == []


def test_rewrite_replaces_stale_chunks(tmp_path, embedder):
    store = open_store(tmp_path / "index", embedder)
    old = _write(store, embedder, _article())
    new = _write(store, embedder, _article(text="Ports closed again on Friday.", hash_="2" * 64))
    assert {c.chunk_id for c in store.all_chunks()} == {c.chunk_id for c in new}
    assert not {c.chunk_id for c in old} & {c.chunk_id for c in new}


def test_prune_orphans_removes_incomplete_and_unknown_articles(tmp_path, embedder):
    store = open_store(tmp_path / "index", embedder)
    _write(store, embedder, _article())
    # Chunks written without their article record: what a killed ingest leaves behind.
    orphan = _article(article_id="b.md", hash_="3" * 64)
    chunks = chunk_article(orphan, make_splitter(embedder.count_tokens))
    store.chunks.upsert(ids=[c.chunk_id for c in chunks], documents=[c.text for c in chunks],
                        metadatas=[{"article_id": "b.md", "start": 0, "end": 1, "content_hash": "3" * 64}],
                        embeddings=np.asarray(embedder.encode([c.text for c in chunks])))
    assert store.prune_orphans(keep={"a.md", "b.md"}) == len(chunks)
    assert {c.article_id for c in store.all_chunks()} == {"a.md"}


def test_reopen_sees_persisted_data_and_missing_index_is_reported(tmp_path, embedder):
    _write(open_store(tmp_path / "index", embedder), embedder, _article())
    assert open_store(tmp_path / "index", embedder, create=False).chunk_count() > 0
    with pytest.raises(IndexNotReady, match="ingest"):
        open_store(tmp_path / "nowhere", embedder, create=False)


def test_date_number():
    assert date_number("2022-06-12") == 20220612
    assert date_number("") == 0 and date_number("June 2022") == 0
