import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from assistant.indexing.embeddings import Embedder
from assistant.indexing.chunking import chunk_article, make_splitter
from assistant.sources.corpus import load_article
from assistant.errors import IngestRunning
from assistant.indexing.store import open_store
from assistant.indexing.sync import ingest_lock, sync

from conftest import ROOT, SEED_ID, write_article
from fakes import FakeEmbedder, MemoryStore
from test_cli import cli_env, error_line


def _by_article(store):
    out = {}
    for chunk in store.all_chunks():
        out.setdefault(chunk.article_id, set()).add(chunk.chunk_id)
    return out


def test_sync_logic_on_the_fakes(corpus_dir):
    """Add, skip the unchanged, replace the edited, remove the deleted: the bookkeeping alone."""
    write_article(corpus_dir, "a.md", "Port strike ends", "Dock workers ended their strike. Ships sailed again.")
    write_article(corpus_dir, "b.md", "Tram approved", "The council approved a tram line. It opens in 2027.")
    store, embedder = MemoryStore(), FakeEmbedder()
    assert sync(corpus_dir, store, embedder, progress=False).added == ["a.md", "b.md"]
    assert all(spans for spans in store.sentence_vectors([c.chunk_id for c in store.all_chunks()]).values())
    generation = store.version()[0]
    embedded = len(embedder.encoded)
    again = sync(corpus_dir, store, embedder, progress=False)
    assert again.unchanged == ["a.md", "b.md"] and not again.changed
    assert store.version()[0] == generation and len(embedder.encoded) == embedded  # nothing embedded or marked
    write_article(corpus_dir, "a.md", "Port strike ends", "Dock workers ended their strike. Ships sailed on Friday.")
    (corpus_dir / "b.md").unlink()
    report = sync(corpus_dir, store, embedder, progress=False)
    assert (report.updated, report.removed) == (["a.md"], ["b.md"]) and store.version()[0] != generation
    assert {c.article_id for c in store.all_chunks()} == {"a.md"} and "Friday" in store.article_text("a.md")


def test_second_ingest_changes_nothing_and_says_so(seed_corpus, tmp_path, embedder):
    store = open_store(tmp_path / "index", embedder)
    first = sync(seed_corpus, store, embedder, progress=False)
    assert first.added == [SEED_ID] and first.chunks_written > 0
    assert len(list((tmp_path / "index").glob("lexical-*"))) == 1  # the lexical index the apps map
    before = _by_article(store)
    second = sync(seed_corpus, store, embedder, progress=False)
    assert second.unchanged == [SEED_ID] and not second.changed and second.chunks_written == 0
    assert "nothing changed" in second.summary()
    assert _by_article(store) == before


def test_an_index_from_before_sentence_vectors_gets_them_on_the_next_ingest(seed_corpus, tmp_path, embedder):
    """An article indexed without its sentence vectors (an older ingest) is embedded again, once:
    otherwise every answer would embed its sentences while the reader waits."""
    from assistant.indexing.chunking import embedding_text

    store = open_store(tmp_path / "index", embedder)
    article = load_article(seed_corpus / f"{SEED_ID}", seed_corpus)
    chunks = chunk_article(article, make_splitter(embedder.count_tokens))
    store.write_article(article, chunks, embedder.encode([embedding_text(c) for c in chunks]),
                        embedder.encode([article.title])[0])  # as written before sentences were stored
    ids = [c.chunk_id for c in chunks]
    assert not store.stored_articles()[SEED_ID].sentences
    assert not any(store.sentence_vectors(ids).values())
    report = sync(seed_corpus, store, embedder, progress=False)
    assert report.reembedded == [SEED_ID] and report.chunks_written == len(chunks) and not report.updated
    assert store.stored_articles()[SEED_ID].sentences and all(store.sentence_vectors(ids).values())
    assert sync(seed_corpus, store, embedder, progress=False).unchanged == [SEED_ID]


class Renamed(Embedder):
    """The real model under another id: what a newly tuned reader looks like to the index."""

    def __init__(self, model, model_id):
        self.model, self._id = model, model_id

    @property
    def dimension(self):
        return self.model.dimension

    @property
    def model_id(self):
        return self._id

    def encode(self, texts, progress=False):
        return self.model.encode(texts)

    def count_tokens(self, text):
        return self.model.count_tokens(text)


class Counted(Renamed):
    """The real model, counting the texts it embeds."""

    def __init__(self, model, model_id):
        super().__init__(model, model_id)
        self.encoded = 0

    def encode(self, texts, progress=False):
        self.encoded += len(texts)
        return self.model.encode(texts)


def test_an_index_with_the_sentences_collection_of_before_is_migrated_once(seed_corpus, tmp_path, embedder):
    """Indexes from before kept a sentence vector per HNSW-indexed Chroma record: the next
    ingest moves them into the sentence table as stored, embeds nothing, drops the collection."""
    import numpy as np

    store = open_store(tmp_path / "index", embedder)
    sync(seed_corpus, store, embedder, progress=False)
    ids = [c.chunk_id for c in store.all_chunks()]
    stored = store.sentence_vectors(ids)
    chunks = {c.chunk_id: c for c in store.all_chunks()}
    legacy = store.client.get_or_create_collection("sentences", configuration={"hnsw": {"space": "cosine"}},
                                                   embedding_function=store._ef)
    rows = [(cid, s, e, v) for cid in ids for s, e, v in stored[cid]]
    legacy.upsert(ids=[f"{cid}:{s}-{e}" for cid, s, e, _ in rows], embeddings=np.stack([v for *_, v in rows]),
                  metadatas=[{"chunk_id": cid, "article_id": chunks[cid].article_id, "start": s, "end": e,
                              "content_hash": chunks[cid].content_hash, "model": embedder.model_id}
                             for cid, s, e, _ in rows])
    store.sentences.delete_chunks(ids)  # the layout of before: no table rows yet
    assert not any(store.sentence_vectors(ids).values())

    counting = Counted(embedder, embedder.model_id)
    report = sync(seed_corpus, open_store(tmp_path / "index", embedder), counting, progress=False)
    assert report.migrated == len(ids) and counting.encoded == 0 and report.unchanged == [SEED_ID]
    assert "moved the sentence vectors of" in report.summary()
    moved = store.sentence_vectors(ids, model=embedder.model_id)
    for cid in ids:
        assert [(s, e) for s, e, _ in moved[cid]] == [(s, e) for s, e, _ in stored[cid]]
        assert np.allclose(np.stack([v for *_, v in moved[cid]]), np.stack([v for *_, v in stored[cid]]), atol=2e-3)
    assert "sentences" not in {c.name for c in store.client.list_collections()}
    assert sync(seed_corpus, store, embedder, progress=False).migrated == 0


def test_a_new_reader_embeds_the_sentences_again_and_only_its_vectors_are_read(seed_corpus, tmp_path, embedder):
    store = open_store(tmp_path / "index", embedder)
    sync(seed_corpus, store, embedder, progress=False)
    ids = [c.chunk_id for c in store.all_chunks()]
    chunks_before = _by_article(store)
    reader = Renamed(embedder, "reader-new")
    report = sync(seed_corpus, store, embedder, progress=False, sentences=reader)
    assert report.reembedded == [SEED_ID] and not report.updated and not report.added
    assert "embedded again" in report.summary()
    assert store.stored_articles()[SEED_ID].sentences == "reader-new"
    assert all(store.sentence_vectors(ids, model="reader-new").values())
    assert not any(store.sentence_vectors(ids, model=embedder.model_id).values())  # never compared with its question
    assert _by_article(store) == chunks_before  # the passages are the same passages
    assert sync(seed_corpus, store, embedder, progress=False, sentences=reader).unchanged == [SEED_ID]


def test_editing_one_article_replaces_only_its_chunks(seed_corpus, tmp_path, embedder):
    path = write_article(seed_corpus, "tram.md", "Tram line approved", "The council approved a tram line. "
                         "It will open in 2027.")
    store = open_store(tmp_path / "index", embedder)
    sync(seed_corpus, store, embedder, progress=False)
    before = _by_article(store)
    path.write_text(path.read_text(encoding="utf-8").replace("2027", "2029"), encoding="utf-8")
    report = sync(seed_corpus, store, embedder, progress=False)
    after = _by_article(store)
    assert report.updated == ["tram.md"] and report.unchanged == [SEED_ID]
    assert after[SEED_ID] == before[SEED_ID]
    assert after["tram.md"].isdisjoint(before["tram.md"])
    assert "2029" in store.article_text("tram.md")


def test_deleting_an_article_removes_its_chunks(seed_corpus, tmp_path, embedder):
    path = write_article(seed_corpus, "tram.md", "Tram line approved", "The council approved a tram line.")
    store = open_store(tmp_path / "index", embedder)
    sync(seed_corpus, store, embedder, progress=False)
    os.remove(path)
    report = sync(seed_corpus, store, embedder, progress=False)
    assert report.removed == ["tram.md"]
    assert set(_by_article(store)) == {SEED_ID}
    assert "tram.md" not in store.stored_articles()


def test_broken_files_are_reported_and_the_rest_ingests(seed_corpus, tmp_path, embedder):
    (seed_corpus / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (seed_corpus / "empty.txt").write_bytes(b"")
    (seed_corpus / "blob.txt").write_bytes(b"PK\x03\x04\x00\x00 a zip archive, not an article")
    with open(seed_corpus / "huge.txt", "wb") as huge:  # 50 MB (sparse: the size is checked before reading)
        huge.truncate(50_000_000)
    (seed_corpus / "cp1252.txt").write_bytes("Caf\u00e9 owners said \u201cprices rose\u201d.".encode("cp1252"))
    store = open_store(tmp_path / "index", embedder)
    report = sync(seed_corpus, store, embedder, progress=False)
    assert sorted(report.added) == sorted([SEED_ID, "cp1252.txt"])  # not UTF-8, still read
    reasons = dict(report.failed)
    assert sorted(reasons) == ["blob.txt", "broken.pdf", "empty.txt", "huge.txt"]
    assert reasons["huge.txt"] == "too large: 50 MB, limit 20 MB" and reasons["empty.txt"] == "empty"
    assert "binary" in reasons["blob.txt"] and "PDF" in reasons["broken.pdf"]
    assert "skipped  huge.txt: too large" in report.summary()


def test_summary_says_a_link_out_was_skipped_and_shows_names_on_one_line(seed_corpus, tmp_path, embedder):
    (tmp_path / "secret.txt").write_text("Outside the corpus.\n", encoding="utf-8")
    (seed_corpus / "link.txt").symlink_to(tmp_path / "secret.txt")
    forged = "x.md\n  added    forged.md"
    write_article(seed_corpus, forged, "A title", "A body that is long enough to be an article of its own.")
    report = sync(seed_corpus, open_store(tmp_path / "index", embedder), embedder, progress=False)
    lines = report.summary().splitlines()
    assert "  skipped  link.txt: a link to a file outside the corpus folder (not followed)" in lines
    assert "  added    x.md\\n  added    forged.md" in lines  # the newline shown, not obeyed
    assert not any(line.startswith("  added    forged.md") for line in lines)


def test_an_indexed_file_replaced_by_a_link_out_is_removed(seed_corpus, tmp_path, embedder):
    # An index built before links out were refused may hold one: its text came from elsewhere.
    store = open_store(tmp_path / "index", embedder)
    write_article(seed_corpus, "linked.md", "Outside", "Text that will later come from outside the corpus folder.")
    sync(seed_corpus, store, embedder, progress=False)
    (tmp_path / "outside.md").write_bytes((seed_corpus / "linked.md").read_bytes())
    (seed_corpus / "linked.md").unlink()
    (seed_corpus / "linked.md").symlink_to(tmp_path / "outside.md")
    report = sync(seed_corpus, store, embedder, progress=False)
    assert report.removed == ["linked.md"] and dict(report.failed) == {
        "linked.md": "a link to a file outside the corpus folder (not followed)"}
    assert set(_by_article(store)) == {SEED_ID}


def test_a_file_that_becomes_unreadable_keeps_its_indexed_version(seed_corpus, tmp_path, embedder):
    path = write_article(seed_corpus, "tram.md", "Tram line approved", "The council approved a tram line.")
    store = open_store(tmp_path / "index", embedder)
    sync(seed_corpus, store, embedder, progress=False)
    path.write_bytes(b"\x00\x01binary junk\x00")
    report = sync(seed_corpus, store, embedder, progress=False)
    assert [name for name, _ in report.failed] == ["tram.md"] and report.removed == []
    assert "tram.md" in store.stored_articles()


def test_interrupted_ingest_is_completed_by_the_next_one(seed_corpus, tmp_path, embedder):
    store = open_store(tmp_path / "index", embedder)
    sync(seed_corpus, store, embedder, progress=False)
    complete = _by_article(store)
    # Simulate a crash between writing chunks and the article record: drop the record.
    store.articles.delete(ids=[SEED_ID])
    report = sync(seed_corpus, store, embedder, progress=False)
    assert report.added == [SEED_ID]
    assert _by_article(store) == complete  # stable ids: rewritten in place, no duplicates


def test_two_identical_files_each_keep_their_own_chunks(seed_corpus, tmp_path, embedder):
    for name in ("tram.md", "tram copy.md"):
        write_article(seed_corpus, name, "Tram line approved", "The council approved a tram line to the airport.")
    store = open_store(tmp_path / "index", embedder)
    sync(seed_corpus, store, embedder, progress=False)
    by_article = _by_article(store)
    stored = store.stored_articles()
    assert len(by_article["tram.md"]) == stored["tram.md"].chunks
    assert len(by_article["tram copy.md"]) == stored["tram copy.md"].chunks
    os.remove(seed_corpus / "tram copy.md")
    sync(seed_corpus, store, embedder, progress=False)
    assert len(_by_article(store)["tram.md"]) == store.stored_articles()["tram.md"].chunks

# -- one ingest at a time --------------------------------------------------------------------

def test_lock_refuses_a_second_holder(tmp_path):
    with ingest_lock(tmp_path / "ingest.lock"):
        with pytest.raises(IngestRunning, match=f"an ingest is already running \\(process {os.getpid()}"):
            with ingest_lock(tmp_path / "ingest.lock"):
                pass
    with ingest_lock(tmp_path / "ingest.lock"):  # released on exit
        pass


@pytest.mark.slow
def test_cli_ingest_while_another_runs_says_so_and_fails(seed_corpus, tmp_path):
    index = tmp_path / "index"
    with ingest_lock(index / "ingest.lock"):  # this process is "the running ingest"
        proc = subprocess.run([sys.executable, "-m", "assistant", "ingest", "--corpus", str(seed_corpus),
                               "--index", str(index), "--quiet"], cwd=ROOT, env=cli_env(),
                              capture_output=True, text=True, timeout=120)
    assert "an ingest is already running" in error_line(proc)
    assert not (index / "chroma.sqlite3").exists()


@pytest.mark.slow
def test_a_killed_lock_holder_leaves_no_stale_lock(tmp_path):
    lock = tmp_path / "ingest.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from assistant.indexing.sync import ingest_lock\n"
                               f"with ingest_lock({str(lock)!r}):\n print('locked', flush=True); time.sleep(120)"],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(IngestRunning):
            with ingest_lock(lock):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with ingest_lock(lock):  # the kernel released it with the process
        pass


# -- crash safety: SIGKILL real ingests, then rerun ---------------------------------------------

_PLACES = ["Lisbon", "Nairobi", "Osaka", "Quito", "Tallinn", "Hanoi", "Accra", "Bergen", "Cordoba", "Dhaka"]
_BODIES = ["port authority", "water board", "housing ministry", "rail regulator", "school council",
           "energy agency", "customs office", "health trust", "farm union", "transit commission"]
_ACTIONS = ["approved", "delayed", "cut", "doubled", "reviewed", "audited", "expanded", "froze"]
_OBJECTS = ["its budget for bridges", "grants for solar roofs", "a levy on freight", "rules on rent rises",
            "the tender for new trams", "subsidies for wheat", "a plan for flood barriers", "fees for permits"]


def _generated_corpus(folder: Path, articles: int = 30) -> Path:
    """`articles` small articles of our own: the same vocabulary, no two alike."""
    rng = random.Random(6)
    folder.mkdir()
    for n in range(articles):
        place, body = _PLACES[n % 10], _BODIES[(n * 3) % 10]
        paragraphs = []
        for _ in range(rng.randint(3, 6)):
            paragraphs.append(" ".join(
                f"The {rng.choice(_BODIES)} in {rng.choice(_PLACES)} {rng.choice(_ACTIONS)} "
                f"{rng.choice(_OBJECTS)} by {rng.randint(2, 95)} per cent in {rng.randint(1995, 2024)}."
                for _ in range(rng.randint(2, 5))))
        write_article(folder, f"{n:02d}-{place.lower()}.md", f"{place} {body} report {n}", "\n\n".join(paragraphs),
                      date=f"2023-{n % 12 + 1:02d}-{n % 28 + 1:02d}")
    return folder


class _Ingest:
    """A real `python -m assistant ingest` subprocess whose progress bar we watch."""

    def __init__(self, corpus: Path, index: Path):
        env = {**cli_env(), "ASSISTANT_EMBED_GROUP": "8"}  # many small writes: many points to die between
        self.proc = subprocess.Popen([sys.executable, "-m", "assistant", "ingest", "--corpus", str(corpus),
                                      "--index", str(index)], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.err = b""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while chunk := self.proc.stderr.read1(4096):
            self.err += chunk

    def progress(self) -> float:
        """Share of the articles written so far, from tqdm's last "done/total"."""
        done = re.findall(rb"ingesting:.*?(\d+)/(\d+)", self.err)
        return int(done[-1][0]) / int(done[-1][1]) if done else -1.0

    def kill_when(self, ready, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not ready() and self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


@pytest.mark.slow
def test_ingest_killed_at_any_point_is_completed_by_the_next(tmp_path, embedder):
    corpus, index = _generated_corpus(tmp_path / "corpus"), tmp_path / "index"
    lock = index / "ingest.lock"
    # Each rerun embeds only what the killed one left unfinished, so the points are shares of what remains.
    kill_points = {"just after taking the lock (opening Chroma)": lambda run: lock.is_file() and lock.read_text().strip(),
                   "40% embedded and written": lambda run: run.progress() >= 0.4,
                   "90% embedded and written": lambda run: run.progress() >= 0.9}
    for name, ready in kill_points.items():
        run = _Ingest(corpus, index)
        run.kill_when(lambda: ready(run))
        assert run.proc.returncode == -signal.SIGKILL, f"ingest ended by itself before '{name}'"

    final = _Ingest(corpus, index)
    assert final.proc.wait(timeout=120) == 0, final.err.decode(errors="replace")[-2000:]

    store = open_store(index, embedder, create=False)
    articles = store.stored_articles()
    files = sorted(p.name for p in corpus.iterdir())
    assert sorted(articles) == files  # every article present exactly once
    chunks = store.all_chunks()
    splitter = make_splitter(embedder.count_tokens)
    expected = {c.chunk_id for path in corpus.iterdir()
                for c in chunk_article(load_article(path, corpus), splitter)}
    assert {c.chunk_id for c in chunks} == expected and len(chunks) == len(expected)  # no orphans, no gaps
    spans = [(c.article_id, c.start, c.end) for c in chunks]
    assert len(spans) == len(set(spans))  # no duplicate passages
    for article_id, stored in articles.items():
        mine = [c for c in chunks if c.article_id == article_id]
        assert len(mine) == stored.chunks and {c.content_hash for c in mine} == {stored.content_hash}


def test_a_file_that_breaks_its_reader_is_reported_by_name_and_the_rest_ingests(seed_corpus, tmp_path, embedder):
    (seed_corpus / "odd-authors.md").write_text("---\ntitle: Odd\nauthors: 42\n---\n\nThe port reopened on Monday.\n")
    (seed_corpus / "bad-date.md").write_text("---\ntitle: Bad date\ndate: 2022-13-45\n---\n\nThe port closed.\n")
    store = open_store(tmp_path / "index", embedder)
    report = sync(seed_corpus, store, embedder, progress=False)
    assert sorted(report.added) == sorted([SEED_ID, "odd-authors.md"])
    (name, reason), = report.failed
    assert name == "bad-date.md" and "month must be in 1..12" in reason
    assert "skipped  bad-date.md: could not be read" in report.summary()


def test_articles_stream_through_embedding_groups(seed_corpus, tmp_path, embedder, monkeypatch):
    import assistant.indexing.sync as ingest_module

    for n in range(6):
        write_article(seed_corpus, f"{n}.md", f"Story {n}", f"The council met on day {n}. It approved item {n}.")
    events = []  # ("read", article) and ("write", articles) in the order they happened

    real_iter_corpus = ingest_module.iter_corpus

    def reading(folder):  # the real reader, noting each article as it is read
        for item in real_iter_corpus(folder):
            events.append(("read", item.article_id))
            yield item

    monkeypatch.setattr(ingest_module, "iter_corpus", reading)
    store = open_store(tmp_path / "index", embedder)
    write_articles = store.write_articles
    monkeypatch.setattr(store, "write_articles", lambda batch, **kw: (
        events.append(("write", [a.article_id for a, *_ in batch])), write_articles(batch, **kw)))
    report = sync(seed_corpus, store, embedder, progress=False, group_size=2)
    assert len(report.added) == 7
    writes = [i for i, (kind, _) in enumerate(events) if kind == "write"]
    reads = [i for i, (kind, _) in enumerate(events) if kind == "read"]
    assert len(writes) >= 3 and writes[0] < reads[-1]  # written while the corpus is still being read
    assert all(len(articles) <= 2 for kind, articles in events if kind == "write")  # one small article each
