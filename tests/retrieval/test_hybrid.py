import pytest

from assistant.retrieval.hybrid import Retriever
from assistant.schema import Chunk, Filters

from conftest import SEED_ID, TRADE_QUESTION, make_article, store_article
from fakes import FakeEmbedder, MemoryStore


def _chunk(cid, text, source="A", date="2022-01-01"):
    return Chunk(chunk_id=cid, article_id=cid, text=text, start=0, end=len(text), source=source, date=date)


def test_hybrid_search_finds_the_passage(seed_assistant):
    hits = seed_assistant.retriever.search(TRADE_QUESTION, k=3)
    assert hits[0].chunk.article_id == SEED_ID and "40.7 per cent" in hits[0].chunk.text
    assert [h.rank for h in hits] == [1, 2, 3]
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    assert hits[0].similarity > 0.4


def test_lexical_side_rescues_rare_names(seed_assistant):
    hits = seed_assistant.retriever.lexical_search("Zuo Xiying", 5)
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
    stale = {c.chunk_id for c in retriever.iter_chunks()}
    for question in ("How much will the tram line cost?", "How many bushels of wheat did Kansas harvest?"):
        hits = retriever.search(question, k=5)
        assert not stale - {c.chunk_id for c in store.all_chunks()} & {h.chunk.chunk_id for h in hits}
        assert "wheat.md" not in {h.chunk.article_id for h in hits}
        assistant.ask(question)
    assert "Zeebrugge" not in {t for c, _ in retriever.lexical_search("Zeebrugge", 5) for t in c.text.split()}

    assert retriever.refresh_if_changed()  # the ingest wrote a new generation
    assert retriever.lexical_search("Zeebrugge", 5)[0][0].article_id == "port.md"
    assert {c.article_id for c in retriever.iter_chunks()} == {"tram.md", "port.md"}
    assert "420 million euros" in assistant.search("How much will the tram line cost?")[0].chunk.text
    assert not retriever.refresh_if_changed()


def test_a_count_change_without_a_new_generation_waits_to_settle(tmp_path, embedder):
    from assistant.indexing.store import open_store

    store = open_store(tmp_path / "index", embedder)
    store_article(store, embedder, make_article())
    retriever = Retriever(store, embedder)
    store_article(store, embedder, make_article(article_id="b.md", text="Rail strike ends.", hash_="4" * 64))  # no generation
    assert not retriever.refresh_if_changed(settle=60)  # an ingest may still be running
    assert retriever.refresh_if_changed(settle=0)
    assert {c.article_id for c in retriever.iter_chunks()} == {"a.md", "b.md"}




# -- the ranking logic on the fakes (tests/fakes.py): no model, no Chroma --------------------------

FAKE_ARTICLES = (("port.md", "Dock workers at the Zeebrugge port ended their strike on Monday.", "Harbour Times", "2022-06-07"),
                 ("tram.md", "The council approved a tram line to the airport on Monday.", "Metro Gazette", "2023-03-20"),
                 ("wheat.md", "Farmers in Kansas harvested a record wheat crop.", "Plains Daily", "2022-08-02"))


def _fake_retriever() -> tuple[Retriever, MemoryStore, FakeEmbedder]:
    from assistant.schema import Article

    embedder, store = FakeEmbedder(), MemoryStore()
    for article_id, text, source, date in FAKE_ARTICLES:
        store_article(store, embedder, Article(article_id, text, title=text.split(" on ")[0], source=source, date=date,
                                               content_hash=article_id * 8))
    store.mark_changed()
    return Retriever(store, embedder), store, embedder


def test_fusion_ranks_the_passage_both_rankings_agree_on():
    retriever, store, embedder = _fake_retriever()
    hits = retriever.search("When did the Zeebrugge strike end?", k=3)
    assert [h.chunk.article_id for h in hits][0] == "port.md" and [h.rank for h in hits] == [1, 2, 3]
    assert all(a.score > b.score for a, b in zip(hits, hits[1:]))
    query = embedder.encode(["When did the Zeebrugge strike end?"])[0]
    for hit in hits:  # the dense side's cosine similarity, whichever ranking found the passage
        assert hit.similarity == pytest.approx(float(query @ store.vectors([hit.chunk.chunk_id])[hit.chunk.chunk_id]))


def test_filters_apply_to_every_ranking():
    retriever, _, _ = _fake_retriever()
    question = "When did the Zeebrugge strike end?"
    assert {h.chunk.article_id for h in retriever.search(question, k=3, filters=Filters(sources=("Metro Gazette",)))} == {
        "tram.md"}
    assert {h.chunk.article_id for h in retriever.search(question, k=3, filters=Filters(since="2022-07-01"))} == {
        "tram.md", "wheat.md"}
    assert retriever.lexical_search("Zeebrugge", 5, Filters(until="2022-01-01")) == []
    assert retriever.search(question, filters=Filters(sources=("Nobody",))) == []


def test_a_passage_the_store_dropped_is_skipped_until_the_refresh():
    retriever, store, _ = _fake_retriever()
    store.remove_article("port.md")  # an ingest under way: not marked changed yet
    assert retriever.lexical_search("Zeebrugge", 5)[0][0].article_id == "port.md"  # still in the lexical index
    assert "port.md" not in {h.chunk.article_id for h in retriever.search("Zeebrugge strike", k=3)}
    assert not retriever.refresh_if_changed(settle=60)  # the count moved without a new generation: wait
    store.mark_changed()
    assert retriever.refresh_if_changed()
    assert retriever.lexical_search("Zeebrugge", 5) == [] and retriever.chunk_count == 2


def test_the_retriever_answers_for_its_lexical_index():
    from assistant.text import stem

    retriever, store, _ = _fake_retriever()
    assert (retriever.article_count, retriever.chunk_count) == (3, 3)
    assert retriever.sources == ["Harbour Times", "Metro Gazette", "Plains Daily"]
    # rarer weighs more: "Zeebrugge" in one passage, "Monday" in two, a word in none most of all
    assert retriever.idf(stem("monday")) < retriever.idf(stem("zeebrugge")) < retriever.idf(stem("walrus"))
    port, tram = FAKE_ARTICLES[0][1], FAKE_ARTICLES[1][1]
    question = "Did the Zeebrugge dock workers strike on Monday?"
    assert retriever.coverage(question, port) == 1.0 > retriever.coverage(question, tram) > 0.0

    seen = []

    def count(chunks):
        seen.append(len(chunks))
        return len(chunks)

    assert retriever.summary(count) == retriever.summary(count) == 3 and seen == [3]  # once per build
    store.remove_article("wheat.md")
    store.mark_changed()
    assert retriever.refresh_if_changed()
    assert retriever.summary(count) == 2 and seen == [3, 2]
    assert retriever.sources == ["Harbour Times", "Metro Gazette"] and retriever.article_count == 2
