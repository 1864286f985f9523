import shutil

import numpy as np
import pytest

from assistant.indexing.lexical import Lexical, folder_name, open_lexical, prepare
from assistant.indexing.store import open_store
from assistant.indexing.sync import sync
from assistant.schema import Chunk, Filters

from conftest import write_article

QUERIES = ("Zuo Xiying", "trade between China and Russia", "wheat harvest Kansas")


def test_lexical_on_an_empty_store(tmp_path):
    Lexical.build([], tmp_path / "empty")
    empty = Lexical(tmp_path / "empty")
    assert empty.search("anything", 5, Filters()) == [] and empty.chunk_count == 0 and list(empty.iter_chunks()) == []


def test_ingest_builds_the_index_the_apps_map(seed_corpus, tmp_path, embedder):
    store = open_store(tmp_path / "index", embedder)
    sync(seed_corpus, store, embedder, progress=False)
    version = store.version()
    (folder,) = (tmp_path / "index").glob("lexical-*")
    assert folder.name == folder_name(version) and version[0]  # built for the generation the ingest published

    store.all_chunks = lambda: pytest.fail("an app read every chunk: the ingest's index was not used")
    lexical, seen = open_lexical(store)
    assert seen == version and lexical.chunk_count == version[1]
    # Mapped, not loaded: the arrays are views of the files, shared by every process that maps them.
    assert all(isinstance(a, np.memmap) for a in (lexical.df, lexical.bm25.scores["data"], lexical.bm25.scores["indices"]))
    hit, score = lexical.search("trade between China and Russia", 1, Filters())[0]
    assert "Russia" in hit.text and score > 0
    assert lexical.articles == [(hit.article_id, hit.source, hit.date)]

    # An ingest that changes something builds the next folder first; the one before stays for
    # apps still switching, older ones go.
    for name in ("tram.md", "port.md", "mill.md"):
        write_article(seed_corpus, name, f"{name} news", f"The {name} story broke on Monday in Zeebrugge.")
        sync(seed_corpus, open_store(tmp_path / "index", embedder), embedder, progress=False)
    folders = sorted(p.name for p in (tmp_path / "index").glob("lexical-*"))
    assert len(folders) == 2 and folder_name(store.version()) in folders


def test_filters_over_the_columns_match_filters_admits(tmp_path):
    chunks = [Chunk(f"c{i}", f"a{i % 7}", f"text number {i} about ports", 0, 20, source=source, date=day)
              for i, (source, day) in enumerate([(s, d) for s in ("Wire", "Gazette", "") for d in
                                                 ("2022-08-02", "2023-01-31", "", "2024-12-01")] * 3)]
    Lexical.build(chunks, tmp_path / "x")
    lexical = Lexical(tmp_path / "x")
    for filters in (Filters(sources=("Wire",)), Filters(since="2023-01-01"), Filters(until="2023-01-31"),
                    Filters(sources=("Gazette", "Nobody"), since="2022-09-01", until="2024-01-01")):
        assert lexical.mask(filters).tolist() == [float(filters.admits(c)) for c in chunks]
        assert {c.chunk_id for c, _ in lexical.search("ports", 50, filters)} == \
            {c.chunk_id for c in chunks if filters.admits(c)}
    assert [lexical.chunk(i) for i in range(len(chunks))] == chunks


class _Runs:
    """Unpickling this runs code: it leaves a file behind."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_the_index_holds_no_code_and_a_bad_one_is_rebuilt(seed_assistant, tmp_path):
    import pickle

    store = seed_assistant.store
    index = tmp_path / "index"
    shutil.copytree(store.snapshot_dir, index)
    store = open_store(index, seed_assistant.retriever.embedder)
    built, _ = open_lexical(store)
    expected = [built.search(q, 5, Filters()) for q in QUERIES]
    (folder,) = index.glob("lexical-*")
    files = sorted(p.name for p in folder.rglob("*") if p.is_file())
    assert files and all(name.endswith((".json", ".npy", ".jsonl")) for name in files)
    for npy in folder.rglob("*.npy"):
        assert np.load(npy, allow_pickle=False).dtype != object  # plain numbers, nothing to unpickle

    marker = tmp_path / "ran"
    # An array that would run code when unpickled, and a pickle left by an earlier version.
    np.save(folder / "bm25" / "data.csc.index.npy", np.array([_Runs(marker)], dtype=object), allow_pickle=True)
    (index / "bm25-0123456789abcdef01234567.pickle").write_bytes(pickle.dumps(_Runs(marker)))
    rebuilt, _ = open_lexical(store)
    assert not marker.exists()
    assert [rebuilt.search(q, 5, Filters()) for q in QUERIES] == expected
    assert [p.name for p in index.glob("lexical-*")] == [folder.name]  # rebuilt in place
    assert not list(index.glob("bm25-*"))  # the earlier version's pickle is gone

    for damage in ("meta.json", "bm25/vocab.tokenizer.json", "bm25/params.index.json", "offsets.npy"):
        (folder / damage).write_text("{not json")
        assert [open_lexical(store)[0].search(q, 5, Filters()) for q in QUERIES] == expected
    assert not marker.exists()


def test_a_store_without_a_folder_gets_a_private_index(seed_assistant, tmp_path):
    store = seed_assistant.store
    index = tmp_path / "index"
    shutil.copytree(store.snapshot_dir, index)
    store = open_store(index, seed_assistant.retriever.embedder)
    store.snapshot_dir = None  # a Chroma server with no local folder to write
    before = sorted(p.name for p in index.iterdir())
    assert prepare(store, "next") is None
    lexical, _ = open_lexical(store)
    assert "Russia" in lexical.search("trade between China and Russia", 1, Filters())[0][0].text
    assert sorted(p.name for p in index.iterdir()) == before  # built in a private folder, already gone
