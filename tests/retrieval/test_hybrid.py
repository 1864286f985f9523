import shutil

from assistant.indexing.store import where
from assistant.retrieval.hybrid import Lexical, Retriever, contextualize
from assistant.schema import Filters
from assistant.schema import Chunk

from conftest import SEED_ID, TRADE_QUESTION


def _chunk(cid, text, source="A", date="2022-01-01"):
    return Chunk(chunk_id=cid, article_id=cid, text=text, start=0, end=len(text), source=source, date=date)


def test_hybrid_search_finds_the_passage(seed_assistant):
    hits = seed_assistant.retriever.search(TRADE_QUESTION, k=3)
    assert hits[0].chunk.article_id == SEED_ID and "40.7 per cent" in hits[0].chunk.text
    assert [h.rank for h in hits] == [1, 2, 3]
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    assert hits[0].similarity > 0.4


def test_lexical_side_rescues_rare_names(seed_assistant):
    hits = seed_assistant.retriever.lexical.search("Zuo Xiying", 5, Filters())
    assert hits and "Zuo Xiying" in hits[0][0].text


def test_source_filter_restricts_both_rankings(seed_assistant):
    hits = seed_assistant.retriever.search(TRADE_QUESTION, k=5, filters=Filters(sources=("Plains Daily",)))
    assert hits and {h.chunk.source for h in hits} == {"Plains Daily"}


def test_date_filters(seed_assistant):
    hits = seed_assistant.retriever.search("tram line", k=5, filters=Filters(since="2023-01-01"))
    assert {h.chunk.article_id for h in hits} == {"rail.md"}
    # `until` keeps undated articles (the sample article has no date) and drops later ones.
    hits = seed_assistant.retriever.search("tram line", k=10, filters=Filters(until="2022-12-31"))
    assert "rail.md" not in {h.chunk.article_id for h in hits} and SEED_ID in {h.chunk.article_id for h in hits}


def test_filter_matching_nothing_returns_nothing(seed_assistant):
    assert seed_assistant.retriever.search(TRADE_QUESTION, filters=Filters(sources=("Nobody",))) == []


def test_filters_where_and_admits_agree():
    f = Filters(sources=("A",), since="2022-01-01", until="2022-12-31")
    assert where(f) == {"$and": [{"source": {"$in": ["A"]}}, {"date_num": {"$gte": 20220101}},
                                  {"$or": [{"date_num": {"$lte": 20221231}}, {"date_num": 0}]}]}
    assert f.admits(_chunk("1", "x")) and not f.admits(_chunk("2", "x", source="B"))
    assert not f.admits(_chunk("3", "x", date="2023-02-01"))
    assert not Filters() and where(Filters()) is None


def test_lexical_on_an_empty_store():
    assert Lexical([]).search("anything", 5, Filters()) == []


def test_contextualize_carries_the_subject_of_a_follow_up():
    history = ["Who is Liu Weidong?"]
    assert contextualize("What did he say?", history) == "Who is Liu Weidong? What did he say?"
    assert contextualize("What is the tram line's cost in euros?", history) == "What is the tram line's cost in euros?"
    assert contextualize("What did he say?", []) == "What did he say?"


def test_contextualize_keeps_the_query_under_the_limit():
    earlier = "Who is " + "very " * 500 + "Liu Weidong?"  # 2,519 characters
    query = contextualize("What did he say?", [earlier], limit=2000)
    assert len(query) <= 2000 and query.endswith(" What did he say?") and query.startswith("Who is very")
    assert not query[:-len(" What did he say?")].endswith("ver")  # cut at a word
    assert contextualize("And he?", ["Who is Liu Weidong?"], limit=2000) == "Who is Liu Weidong? And he?"
    assert contextualize("x" * 30, ["Who?"], limit=10) == "x" * 10


def test_refresh_picks_up_new_chunks(seed_assistant, embedder):
    fresh = Retriever(seed_assistant.store, embedder)
    assert fresh.chunk_count == seed_assistant.store.chunk_count()


def test_time_ranking_only_for_questions_about_time():
    from datetime import date

    from assistant.retrieval.hybrid import time_ranking

    old, new, later, undated = (_chunk("old", "x", date="2022-06-01"), _chunk("new", "x", date="2022-06-14"),
                                _chunk("later", "x", date="2022-07-30"), _chunk("undated", "x", date=""))
    today = date(2022, 6, 16)
    assert time_ranking([old, new, later, undated], "Which team won the cup?", today) == []
    # newest first, nothing after "today", undated left out
    assert [c.chunk_id for c in time_ranking([old, new, later, undated], "What happened this week?", today)] == [
        "new", "old"]
    # a named month: nearest to it first, whichever side
    assert [c.chunk_id for c in time_ranking([old, later, new], "What rose in July 2022?", today)][0] == "later"


def test_reference_date_is_the_question_date_or_today():
    from datetime import date

    from assistant.retrieval.hybrid import reference_date

    assert reference_date(Filters(until="2022-06-16")) == date(2022, 6, 16)
    assert reference_date(Filters()) == date.today()


def test_this_week_prefers_the_article_of_that_week(tmp_path, embedder):
    from assistant.config import Settings
    from assistant.indexing.store import open_store
    from assistant.indexing.sync import sync
    from assistant.wiring import build_assistant

    from conftest import write_article

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_article(corpus, "jan.md", "Council approves budget", "The city council approved a budget of 40 million "
                  "euros for road repairs on Tuesday.", date="2022-01-11")
    write_article(corpus, "jun.md", "Council approves budget", "The city council approved a budget of 55 million "
                  "euros for road repairs on Tuesday.", date="2022-06-07")
    sync(corpus, open_store(tmp_path / "index", embedder), embedder, progress=False)
    assistant = build_assistant(Settings.of(index_dir=tmp_path / "index"), embedder=embedder)
    question = "What budget did the council approve this week?"
    for asked_on, expected in (("2022-06-10", "jun.md"), ("2022-01-14", "jan.md")):
        hits = assistant.search(question, filters=Filters(until=asked_on))
        assert hits[0].chunk.article_id == expected
    answer = assistant.ask(question, filters=Filters(until="2022-06-10"))
    assert "55 million" in answer.text and "(as of 2022-06-07) [1]" in answer.text


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


def test_an_ingest_while_serving_is_skipped_then_swapped_in(tmp_path, embedder):
    from assistant.config import Settings
    from assistant.indexing.store import open_store
    from assistant.indexing.sync import sync
    from assistant.wiring import build_assistant

    from conftest import write_article

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    tram = write_article(corpus, "tram.md", "Council approves tram line", "The city council approved a tram line "
                         "to the airport on Monday. It will cost 310 million euros.")
    write_article(corpus, "wheat.md", "Wheat harvest", "Farmers in Kansas harvested a record 420 million bushels.")
    store = open_store(tmp_path / "index", embedder)
    sync(corpus, store, embedder, progress=False)
    assistant = build_assistant(Settings.of(index_dir=tmp_path / "index"), embedder=embedder)
    retriever = assistant.retriever
    assert not retriever.refresh_if_changed()

    tram.write_text(tram.read_text().replace("310", "420"))  # edited: its old chunk ids are gone
    write_article(corpus, "port.md", "Port strike ends", "Dock workers at the Zeebrugge port ended their strike.")
    (corpus / "wheat.md").unlink()
    sync(corpus, store, embedder, progress=False)
    # The lexical index still holds the old chunks: they are skipped, never a KeyError.
    stale = {c.chunk_id for c in retriever.lexical.chunks}
    for question in ("How much will the tram line cost?", "How many bushels of wheat did Kansas harvest?"):
        hits = retriever.search(question, k=5)
        assert not stale - {c.chunk_id for c in store.all_chunks()} & {h.chunk.chunk_id for h in hits}
        assert "wheat.md" not in {h.chunk.article_id for h in hits}
        assistant.ask(question)
    assert "Zeebrugge" not in {t for c, _ in retriever.lexical.search("Zeebrugge", 5, Filters()) for t in c.text.split()}

    assert retriever.refresh_if_changed()  # the ingest wrote a new generation
    assert retriever.lexical.search("Zeebrugge", 5, Filters())[0][0].article_id == "port.md"
    assert {c.article_id for c in retriever.lexical.chunks} == {"tram.md", "port.md"}
    assert "420 million euros" in assistant.search("How much will the tram line cost?")[0].chunk.text
    assert not retriever.refresh_if_changed()


def test_a_count_change_without_a_new_generation_waits_to_settle(tmp_path, embedder):
    from assistant.indexing.store import open_store

    from test_store import _article, _write

    store = open_store(tmp_path / "index", embedder)
    _write(store, embedder, _article())
    retriever = Retriever(store, embedder)
    _write(store, embedder, _article(article_id="b.md", text="Rail strike ends.", hash_="4" * 64))  # no generation
    assert not retriever.refresh_if_changed(settle=60)  # an ingest may still be running
    assert retriever.refresh_if_changed(settle=0)
    assert {c.article_id for c in retriever.lexical.chunks} == {"a.md", "b.md"}


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
