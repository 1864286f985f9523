import pytest

from assistant.errors import BadQuestion
from assistant.schema import Filters

from conftest import SEED_ID, TRADE_QUESTION


def test_ask_answers_with_a_verified_citation(seed_assistant):
    answer = seed_assistant.ask(TRADE_QUESTION)
    assert not answer.refused and "40.7 per cent" in answer.text and "[1]" in answer.text
    c = answer.citations[0]
    assert c.hit.chunk.article_id == SEED_ID and c.quote in seed_assistant.store.article_text(SEED_ID)


@pytest.mark.parametrize("question", ["What is the population of Brazil?",
                                      "Who won the 2018 FIFA World Cup?",
                                      "How do I bake sourdough bread?"])
def test_off_topic_questions_are_refused_citing_nothing(seed_assistant, question):
    answer = seed_assistant.ask(question)
    assert answer.refused and answer.citations == () and "don't cover" in answer.text


@pytest.mark.parametrize("question", ["", "   ", "\x00\x01\n"])
def test_empty_question_is_a_clear_error(seed_assistant, question):
    with pytest.raises(BadQuestion, match="type a question"):
        seed_assistant.ask(question)


def test_huge_question_is_a_clear_error(seed_assistant):
    with pytest.raises(BadQuestion, match="under 2,000"):
        seed_assistant.ask("trade " * 20_000)


def test_control_characters_are_dropped(seed_assistant):
    assert seed_assistant.check_question("How\x00 much\tdid\x1b trade grow?\n") == "How much did trade grow?"


def test_follow_up_uses_the_previous_question(seed_assistant):
    answer = seed_assistant.ask("What did he say the Biden administration was trying to do?",
                                history=["Who is Liu Weidong?"])
    assert not answer.refused and "alliance" in answer.text


def test_history_is_capped_like_the_question(seed_assistant):
    long = "trade " * 1_000  # 5,999 characters once folded: no question of this chat could have been that long
    # A chat keeps a refused over-long question in its history: it is left out, not an error.
    assert seed_assistant.earlier_questions(["Who is Liu Weidong?", long]) == ["Who is Liu Weidong?"]
    assert seed_assistant.earlier_questions(["a", " ", "b", "c", "d"]) == ["b", "c", "d"]  # the last few
    with pytest.raises(BadQuestion, match="5,999 characters long"):
        seed_assistant.earlier_questions([long], strict=True)
    # The query a short follow-up builds from the history stays under the cap too.
    query = seed_assistant.query("And him?", ["Who is " + "Liu Weidong " * 300])
    assert len(query) <= 2000 and query.endswith("And him?")


def test_filter_that_matches_nothing_says_so(seed_assistant):
    answer = seed_assistant.ask(TRADE_QUESTION, filters=Filters(sources=("Nobody",)))
    assert answer.refused and answer.citations == () and "No article matches" in answer.notice


def test_article_count(seed_assistant):
    assert seed_assistant.article_count == 3


def test_the_first_ingest_at_start_up_takes_the_ingest_lock(seed_corpus, tmp_path, embedder, capsys):
    from assistant.config import Settings
    from assistant.indexing.sync import ingest_lock, lock_path
    from assistant.wiring import build_assistant

    settings = Settings.of(corpus_dir=seed_corpus, index_dir=tmp_path / "index")
    with ingest_lock(lock_path(settings.storage)):  # another ingest is running: the app leaves the index to it
        assistant = build_assistant(settings, embedder=embedder, ingest_if_empty=True)
    assert assistant.store.chunk_count() == 0
    assert "not ingesting at start-up: an ingest is already running" in capsys.readouterr().out
    assistant = build_assistant(settings, embedder=embedder, ingest_if_empty=True)
    assert assistant.article_count == 1 and "added 1" in capsys.readouterr().out
    with ingest_lock(lock_path(settings.storage)):  # and released it
        pass


def test_the_answerers_declared_steps_are_the_route(seed_assistant):
    """The service asks the answerer's pre-check, then streams or answers; a follow-up is
    rewritten by the answerer when it offers a rewrite, else by the rule."""
    from dataclasses import replace

    from assistant.answering.base import Answerer, refusal

    class Declining(Answerer):
        def answer(self, question, hits):
            raise AssertionError("the pre-check refused: never asked")

        def precheck(self, question, hits, support):
            similarity, coverage = support(question, hits)
            assert 0 < similarity <= 1 and 0 <= coverage <= 1
            return refusal(hits, notice="declined before answering")

        def rewrite(self, question, history):
            return "How much did trade between China and Russia grow?"

    assistant = replace(seed_assistant, answerer=Declining())
    assert assistant.ask(TRADE_QUESTION).notice == "declined before answering"
    assert [a.notice for a in assistant.ask_stream(TRADE_QUESTION)] == ["declined before answering"]
    assert assistant.query("And that?", ["Who is Liu Weidong?"]) == "How much did trade between China and Russia grow?"
    assert seed_assistant.query("Where does he work?", ["Who is Liu Weidong?"]) == "Who is Liu Weidong? Where does he work?"


def test_the_query_side_does_not_import_the_write_side():
    import subprocess
    import sys

    code = "import sys, assistant.service; print('assistant.indexing.sync' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
