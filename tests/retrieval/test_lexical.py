import shutil

from assistant.retrieval.lexical import Lexical
from assistant.schema import Filters


def test_lexical_on_an_empty_store():
    assert Lexical([]).search("anything", 5, Filters()) == []


def test_bm25_cache_gives_the_same_ranking(seed_assistant, tmp_path):
    chunks = seed_assistant.store.all_chunks()
    built = Lexical(chunks, tmp_path)
    assert len(list(tmp_path.glob("bm25-*"))) == 1
    loaded = Lexical(chunks, tmp_path)
    for query in ("Zuo Xiying", "trade between China and Russia", "wheat harvest Kansas"):
        assert loaded.search(query, 5, Filters()) == built.search(query, 5, Filters())
        assert loaded.coverage(query, chunks[0].text) == built.coverage(query, chunks[0].text)
    # another set of chunks gets its own cache and the old one goes
    Lexical(chunks[:-1], tmp_path)
    assert len(list(tmp_path.glob("bm25-*"))) == 1


class _Runs:
    """Unpickling this runs code: it leaves a file behind."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_bm25_cache_holds_no_code_and_a_bad_one_is_rebuilt(seed_assistant, tmp_path):
    import pickle

    import numpy as np

    chunks = seed_assistant.store.all_chunks()
    queries = ("Zuo Xiying", "trade between China and Russia", "wheat harvest Kansas")
    built = Lexical(chunks, tmp_path)
    expected = [built.search(q, 5, Filters()) for q in queries]
    (cache,) = tmp_path.glob("bm25-*")
    files = sorted(p.name for p in cache.iterdir())
    assert files and all(name.endswith((".json", ".npy")) for name in files)
    for npy in cache.glob("*.npy"):
        assert np.load(npy, allow_pickle=False).dtype != object  # plain numbers, nothing to unpickle

    marker = tmp_path / "ran"
    # A cache whose array would run code when unpickled, and a pickle left by an earlier version.
    np.save(cache / "data.csc.index.npy", np.array([_Runs(marker)], dtype=object), allow_pickle=True)
    (tmp_path / "bm25-0123456789abcdef01234567.pickle").write_bytes(pickle.dumps(_Runs(marker)))
    rebuilt = Lexical(chunks, tmp_path)
    assert not marker.exists()
    assert [rebuilt.search(q, 5, Filters()) for q in queries] == expected
    assert [p.name for p in tmp_path.glob("bm25-*")] == [cache.name]  # rebuilt in place; the pickle is gone
    assert Lexical(chunks, tmp_path)._load(tmp_path)  # the rebuilt cache loads

    for damage in ("vocab.tokenizer.json", "params.index.json"):
        (cache / damage).write_text("{not json")
        assert [Lexical(chunks, tmp_path).search(q, 5, Filters()) for q in queries] == expected
    # A well-formed cache of other chunks under this name: it does not fit, so it is rebuilt.
    other = tmp_path / "other"
    Lexical(chunks[:-1], other)
    shutil.rmtree(cache)
    next(other.glob("bm25-*")).rename(cache)
    assert not Lexical(chunks, tmp_path.parent / "nowhere")._load(tmp_path)
    assert [Lexical(chunks, tmp_path).search(q, 5, Filters()) for q in queries] == expected
    assert not marker.exists()
