import json
import subprocess
import tempfile
import sys
from pathlib import Path

import numpy as np

import pytest

from assistant.indexing.chunking import chunk_article, make_splitter
from assistant.indexing.embeddings import Embedder
from assistant.indexing.sentence_model import SentenceModel
from assistant.config import Settings
from assistant.errors import IndexNotReady
from assistant.indexing.store import open_index, open_store
from assistant.indexing.sync import ingest, sync
from assistant.schema import Article, Filters, date_number
from assistant.wiring import build_assistant
from assistant.text import sentence_spans

from conftest import ROOT, SEED_ID, TRADE_QUESTION, free_port, make_article, store_article, write_article
from fakes import FakeEmbedder, MemoryStore
from test_cli import cli_env, error_line, ok


def test_write_then_read_back(tmp_path, embedder):
    store = open_store(tmp_path / "index", embedder)
    chunks = store_article(store, embedder, make_article())
    stored = store.stored_articles()["a.md"]
    assert (stored.content_hash, stored.chunks, stored.date) == ("1" * 64, len(chunks), "2022-06-12")
    assert store.article_text("a.md") == make_article().text
    assert store.article_text("missing.md") is None
    assert [c.chunk_id for c in store.all_chunks()] == [c.chunk_id for c in chunks]


def test_query_returns_cosine_similarity(tmp_path, embedder):
    store = open_store(tmp_path / "index", embedder)
    store_article(store, embedder, make_article())
    vector = embedder.encode(["Ports reopened on Monday. Ships queued for days."])[0]
    (chunk, similarity), = store.query(vector, 5)
    assert similarity == pytest.approx(1.0, abs=1e-3)  # cosine space: identical text scores 1
    assert store.query(vector, 5, Filters(sources=("Other",))) == []


def test_rewrite_replaces_stale_chunks(tmp_path, embedder):
    store = open_store(tmp_path / "index", embedder)
    old = store_article(store, embedder, make_article())
    new = store_article(store, embedder, make_article(text="Ports closed again on Friday.", hash_="2" * 64))
    assert {c.chunk_id for c in store.all_chunks()} == {c.chunk_id for c in new}
    assert not {c.chunk_id for c in old} & {c.chunk_id for c in new}


def test_prune_orphans_removes_incomplete_and_unknown_articles(tmp_path, embedder):
    store = open_store(tmp_path / "index", embedder)
    store_article(store, embedder, make_article())
    # Chunks written without their article record: what a killed ingest leaves behind.
    orphan = make_article(article_id="b.md", hash_="3" * 64)
    chunks = chunk_article(orphan, make_splitter(embedder.count_tokens))
    store.chunks.upsert(ids=[c.chunk_id for c in chunks], documents=[c.text for c in chunks],
                        metadatas=[{"article_id": "b.md", "start": 0, "end": 1, "content_hash": "3" * 64}],
                        embeddings=np.asarray(embedder.encode([c.text for c in chunks])))
    assert store.prune_orphans(keep={"a.md", "b.md"}) == len(chunks)
    assert {c.article_id for c in store.all_chunks()} == {"a.md"}


def test_reopen_sees_persisted_data_and_missing_index_is_reported(tmp_path, embedder):
    store_article(open_store(tmp_path / "index", embedder), embedder, make_article())
    assert open_store(tmp_path / "index", embedder, create=False).chunk_count() > 0
    with pytest.raises(IndexNotReady, match="ingest"):
        open_store(tmp_path / "nowhere", embedder, create=False)


def test_filters_where_and_admits_agree():
    from assistant.indexing.chroma import where
    from assistant.schema import Chunk

    def _chunk(cid, text, source="A", date="2022-01-01"):
        return Chunk(chunk_id=cid, article_id=cid, text=text, start=0, end=len(text), source=source, date=date)

    f = Filters(sources=("A",), since="2022-01-01", until="2022-12-31")
    assert where(f) == {"$and": [{"source": {"$in": ["A"]}}, {"date_num": {"$gte": 20220101}},
                                  {"$or": [{"date_num": {"$lte": 20221231}}, {"date_num": 0}]}]}
    assert f.admits(_chunk("1", "x")) and not f.admits(_chunk("2", "x", source="B"))
    assert not f.admits(_chunk("3", "x", date="2023-02-01"))
    assert not Filters() and where(Filters()) is None


@pytest.fixture(params=["chroma", "memory"])
def any_store(request, tmp_path):
    """Each `Store`: the real one (Chroma in tmp_path) and the in-memory fake, with the fake embedder."""
    embedder = FakeEmbedder()
    return (open_store(tmp_path / "index", embedder) if request.param == "chroma" else MemoryStore()), embedder


def test_both_stores_keep_the_store_contract(any_store):
    """What `tests/fakes.py`'s store promises, checked against Chroma's."""
    store, embedder = any_store
    assert store.all_chunks() == [] and store.chunk_count() == 0 and store.query(embedder.encode(["x"])[0], 5) == []
    a = store_article(store, embedder, make_article())
    b = store_article(store, embedder, make_article(article_id="b.md", text="Rail strike ends.", hash_="4" * 64))
    assert store.chunk_count() == len(a + b) and [c.chunk_id for c in store.all_chunks()] == [c.chunk_id for c in a + b]
    assert set(store.stored_articles()) == {"a.md", "b.md"} and store.stored_articles()["b.md"].chunks == len(b)
    assert store.article_text("b.md") == "Rail strike ends." and store.article_text("missing.md") is None

    vector = embedder.encode(["Rail strike ends."])[0]
    (best, similarity), *rest = store.query(vector, 5)
    assert best.article_id == "b.md" and similarity == pytest.approx(1.0, abs=1e-3)
    assert all(s <= similarity for _, s in rest) and len(store.query(vector, 1)) == 1
    assert store.query(vector, 5, Filters(since="2030-01-01")) == []
    assert {c.article_id for c, _ in store.query(vector, 5, Filters(sources=("Wire",), until="2022-12-31"))} == {
        "a.md", "b.md"}
    assert np.allclose(store.vectors([best.chunk_id])[best.chunk_id], vector, atol=1e-5)
    assert store.vectors(["missing"]) == {}
    assert store.sentence_vectors([best.chunk_id, "missing"]) == {best.chunk_id: [], "missing": []}

    generation, count = store.version()
    store.mark_changed()
    assert store.version()[0] != generation and store.version()[1] == count

    article = make_article(text="Ports closed again. Ships waited.", hash_="2" * 64)  # an update, with sentences
    chunks = chunk_article(article, make_splitter(embedder.count_tokens))
    sentences = [[(s, e, embedder.encode([c.text[s:e]])[0]) for s, e in sentence_spans(c.text)] for c in chunks]
    store.write_article(article, chunks, embedder.encode([c.text for c in chunks]), embedder.encode([article.title])[0],
                        sentences, sentence_model="reader-1")
    assert {c.chunk_id for c in store.all_chunks()} == {c.chunk_id for c in chunks + b}  # the old chunks went
    assert store.stored_articles()["a.md"].sentences == "reader-1" and store.stored_articles()["b.md"].sentences == ""
    found = store.sentence_vectors([chunks[0].chunk_id])[chunks[0].chunk_id]
    assert [(s, e) for s, e, _ in found] == sentence_spans(chunks[0].text)
    assert all(np.allclose(v, w, atol=1e-5) for (_, _, v), (_, _, w) in zip(found, sentences[0]))
    # Only the vectors of the model asked for: another model's are never compared with its question.
    same = store.sentence_vectors([chunks[0].chunk_id], model="reader-1")[chunks[0].chunk_id]
    assert [(s, e) for s, e, _ in same] == [(s, e) for s, e, _ in found]
    assert store.sentence_vectors([chunks[0].chunk_id], model="reader-2") == {chunks[0].chunk_id: []}

    store.remove_article("b.md")
    assert {c.article_id for c in store.all_chunks()} == {"a.md"} and set(store.stored_articles()) == {"a.md"}
    assert store.prune_orphans(keep={"a.md"}) == 0
    assert store.prune_orphans(keep=set()) == len(chunks) and store.all_chunks() == []
    assert store.sentence_vectors([chunks[0].chunk_id]) == {chunks[0].chunk_id: []}


def test_date_number():
    assert date_number("2022-06-12") == 20220612
    assert date_number("") == 0 and date_number("June 2022") == 0


# -- server mode: a real `chroma run` (conftest's chroma_server) ------------------------------

def _server_settings(server, corpus) -> Settings:
    host, port = server
    # index_dir: in server mode only the lexical index, mapped by the processes of one machine
    return Settings.of(chroma_host=host, chroma_port=port, corpus_dir=corpus, index_dir=corpus.parent / "local",
                    ingest_lock=corpus.parent / "ingest.lock")


def _server_cli(server, *args, lock: Path = Path("/nonexistent")):
    host, port = server
    return subprocess.run([sys.executable, "-m", "assistant", *map(str, args)], cwd=ROOT,
                          env={**cli_env(), "CHROMA_HOST": host, "CHROMA_PORT": str(port),
                               "ASSISTANT_INGEST_LOCK": str(lock), "ASSISTANT_INDEX": tempfile.mkdtemp()},
                          capture_output=True, text=True, encoding="utf-8", timeout=180)


def test_server_mode_ingests_and_answers_through_chroma_run(chroma_server, seed_corpus, embedder):
    settings = _server_settings(chroma_server, seed_corpus)
    report = ingest(settings, embedder, progress=False)
    assert report.added == [SEED_ID]
    assistant = build_assistant(settings, embedder=embedder)
    answer = assistant.ask(TRADE_QUESTION)
    assert not answer.refused and "40.7 per cent" in answer.text
    assert assistant.store.chunks.configuration["hnsw"]["space"] == "cosine"
    # Locally only the lexical index; the sentence vectors live on the server, one record a passage.
    assert [p.name.split("-")[0] for p in settings.storage.index_dir.iterdir()
            if p.name != ".lexical.lock"] == ["lexical"]
    names = {c.name for c in assistant.store.client.list_collections()}
    assert names == {"chunks", "articles", "sentence_vectors"}
    assert ingest(settings, embedder, progress=False).unchanged == [SEED_ID]


@pytest.mark.slow
def test_two_processes_on_one_server_see_each_others_ingests(chroma_server, seed_corpus, tmp_path, embedder):
    # Process 1 (a CLI subprocess) ingests the sample; this process reads it from the server.
    assert "added 1" in ok(_server_cli(chroma_server, "ingest", "--corpus", seed_corpus, "--quiet",
                                                 lock=tmp_path / "ingest.lock"))
    settings = _server_settings(chroma_server, seed_corpus)
    reader = build_assistant(settings, embedder=embedder)
    assert reader.article_count == 1 and not reader.ask(TRADE_QUESTION).refused

    # This process adds an article; the CLI process sees it...
    write_article(seed_corpus, "tram.md", "City council approves tram line",
                  "The council voted on Monday to build a tram line to the airport. It will cost 310 million euros.")
    assert ingest(settings, embedder, progress=False).added == ["tram.md"]
    status = json.loads(ok(_server_cli(chroma_server, "status", "--json")))
    assert set(status["by_article"]) == {SEED_ID, "tram.md"}
    # ...and a reader's BM25 index, derived from Chroma's chunks, catches up when it sees the change.
    assert not any(c.article_id == "tram.md" for c, _ in reader.retriever.lexical_search("tram airport", 5))
    assert reader.retriever.refresh_if_changed()
    assert reader.retriever.lexical_search("tram airport", 5)[0][0].article_id == "tram.md"


@pytest.mark.slow
def test_unreachable_server_is_a_clear_error(tmp_path, embedder):
    nowhere = ("127.0.0.1", free_port())  # nobody listens there
    with pytest.raises(IndexNotReady, match=f"127.0.0.1:{nowhere[1]}"):
        open_index(_server_settings(nowhere, tmp_path).storage, embedder)
    line = error_line(_server_cli(nowhere, "status", "--json"))
    assert "cannot reach the Chroma server" in line and f"127.0.0.1:{nowhere[1]}" in line


def test_server_without_an_index_points_to_ingest(chroma_server, tmp_path, embedder):
    with pytest.raises(IndexNotReady, match="ingest"):
        open_index(_server_settings(chroma_server, tmp_path).storage, embedder, create=False)


# -- sentence vectors -------------------------------------------------------------------------

def _sentence_ids(store):
    return store.sentences.chunk_ids()


def _check_sentence_vectors(store, embedder, chunk_ids):
    """Every chunk's stored sentences are its `sentence_spans`, each with the vector of its text."""
    chunks = {c.chunk_id: c for c in store.all_chunks()}
    found = store.sentence_vectors(chunk_ids)
    assert set(found) == set(chunk_ids)
    for cid in chunk_ids:
        text = chunks[cid].text
        assert [(s, e) for s, e, _ in found[cid]] == sentence_spans(text)
        vectors = np.stack([v for *_, v in found[cid]])
        assert vectors.dtype == np.float32 and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
        expected = embedder.encode([text[s:e] for s, e, _ in found[cid]])
        assert np.allclose(np.sum(vectors * expected, axis=1), 1, atol=1e-3)  # the same vectors


def test_sentence_vectors_are_stored_at_ingest_and_go_with_their_chunks(seed_corpus, tmp_path, embedder):
    write_article(seed_corpus, "tram.md", "Tram line approved", "The council approved a tram line. "
                  "It will open in 2027. Mr. Smith voted against it.")
    store = open_store(tmp_path / "index", embedder)
    sync(seed_corpus, store, embedder, progress=False)
    ids = [c.chunk_id for c in store.all_chunks()]
    assert len(ids) > 3
    _check_sentence_vectors(store, embedder, ids[:5])
    assert store.sentence_vectors([]) == {} and store.sentence_vectors(["no-such-chunk"]) == {"no-such-chunk": []}

    tram = [c.chunk_id for c in store.all_chunks() if c.article_id == "tram.md"]
    (seed_corpus / "tram.md").write_text((seed_corpus / "tram.md").read_text().replace("2027", "2029"))
    sync(seed_corpus, store, embedder, progress=False)  # an edit: the old chunk's sentences go with it
    assert store.sentence_vectors(tram) == {cid: [] for cid in tram}
    assert _sentence_ids(store) == {c.chunk_id for c in store.all_chunks()}
    (seed_corpus / "tram.md").unlink()
    sync(seed_corpus, store, embedder, progress=False)  # a deletion too
    assert _sentence_ids(store) == {c.chunk_id for c in store.all_chunks()}
    assert {c.article_id for c in store.all_chunks()} == {SEED_ID}


def test_overlapping_chunks_embed_each_sentence_once(tmp_path, embedder):
    class Counting(Embedder):  # the real model, counting what it is asked to embed
        def __init__(self):
            self.texts = []

        @property
        def dimension(self):
            return embedder.dimension

        def count_tokens(self, text):
            return embedder.count_tokens(text)

        def encode(self, texts, progress=False):
            self.texts += texts
            return embedder.encode(texts)

    article = make_article(text=" ".join(f"Sentence number {i} says the port handled {i * 7} ships." for i in range(60)))
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.md").write_text(f"---\ntitle: Ports\n---\n\n{article.text}\n", encoding="utf-8")
    counting = Counting()
    store = open_store(tmp_path / "index", embedder)
    sync(tmp_path / "corpus", store, counting, progress=False)
    chunks = store.all_chunks()
    assert len(chunks) > 1 and chunks[0].end > chunks[1].start  # they overlap
    spans = {(c.start + s, c.start + e) for c in chunks for s, e in sentence_spans(c.text)}
    sentences = [t for t in counting.texts if t.startswith("Sentence number")]
    assert len(sentences) == len(spans) < sum(len(sentence_spans(c.text)) for c in chunks)
    _check_sentence_vectors(store, embedder, [c.chunk_id for c in chunks])


def test_an_index_without_sentence_vectors_returns_none(tmp_path, embedder):
    store = open_store(tmp_path / "index", embedder)
    chunks = store_article(store, embedder, make_article())  # written without sentences, as before they were stored
    assert store.sentence_vectors([c.chunk_id for c in chunks]) == {c.chunk_id: [] for c in chunks}


def test_server_mode_stores_sentence_vectors(chroma_server, seed_corpus, embedder):
    settings = _server_settings(chroma_server, seed_corpus)
    ingest(settings, embedder, progress=False)
    store = open_index(settings.storage, embedder)
    reader = SentenceModel(None, embedder)  # ingest embeds the sentences with the shipped reader
    _check_sentence_vectors(store, reader, [c.chunk_id for c in store.all_chunks()][:5])
    ids = [c.chunk_id for c in store.all_chunks()]
    assert all(store.sentence_vectors(ids, model=reader.model_id).values())
    assert {a.sentences for a in store.stored_articles().values()} == {reader.model_id}
