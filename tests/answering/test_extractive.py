
from dataclasses import replace

from assistant.answering.base import NOT_COVERED, closest_articles
from assistant.answering.extractive import ExtractiveAnswerer, spans_of
from assistant.answering.weights import fitted_weights
from assistant.schema import Chunk, Hit

from conftest import PORT_TEXT, TRADE_QUESTION, passage



def _hit(text=PORT_TEXT, rank=1, cid="c1", article_id="port.md"):
    return passage(text, rank, cid, article_id, title="Port")


def test_extractive_answer_quotes_the_answering_sentence(seed_assistant):
    hits = seed_assistant.retriever.search(TRADE_QUESTION, k=5)
    answer = ExtractiveAnswerer(seed_assistant.retriever.embedder).answer(TRADE_QUESTION, hits)
    assert not answer.refused
    assert "40.7 per cent" in answer.text and answer.text.startswith("Two-way trade") and "[1]" in answer.text
    assert answer.lead == "40.7 per cent"  # how much: the figure leads, verbatim from the quote
    first = answer.citations[0]
    assert first.n == 1 and first.quote in first.hit.chunk.text and "40.7 per cent" in first.quote


def test_number_question_prefers_the_sentence_with_the_number(embedder):
    answer = ExtractiveAnswerer(embedder).answer("How big a raise did dock workers win?", [passage(PORT_TEXT, title="Port")])
    assert answer.lead == "6 per cent" and "Dock workers won a 6 per cent raise. [1]" in answer.text


def test_citations_are_numbered_in_order_of_use(embedder):
    hits = [_hit(rank=1), _hit("Dock workers won a 6 per cent raise after the strike.", rank=2, cid="c2",
                               article_id="b.md")]
    answer = ExtractiveAnswerer(embedder).answer("What did dock workers win?", hits)
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    for c in answer.citations:
        assert f"[{c.n}]" in answer.text


def test_no_sentences_means_refusal(embedder):
    assert ExtractiveAnswerer(embedder).answer("Anything?", [_hit("Too short.")]).refused
    assert ExtractiveAnswerer(embedder).answer("Anything?", []).refused


def test_a_sentence_that_refers_back_brings_the_one_before(embedder):
    text = ("Bed Bath & Beyond posted a loss of 358 million dollars. The company is scaling back "
            "the use of its air conditioning in stores.")
    answer = ExtractiveAnswerer(embedder).answer("Which company turned off the air conditioning in its stores?",
                                                 [_hit(text)])
    assert answer.citations[0].quote == text  # one contiguous, verbatim quote
    assert "Bed Bath & Beyond" in answer.text and answer.text.count("[1]") == 1


def test_sources_that_disagree_on_a_figure_are_both_shown(embedder):
    a = _hit("Exports to Asia rose 12 per cent in 2023, the ministry said.", rank=1, cid="a", article_id="a.md")
    b_chunk = Chunk(chunk_id="b", article_id="b.md", text="Exports to Asia rose 9 per cent in 2023, a trade body said.",
                    start=0, end=58, title="Other", source="Other Wire", date="2024-02-01")
    b = Hit(chunk=b_chunk, score=0.9, similarity=0.7, rank=2)
    answer = ExtractiveAnswerer(embedder).answer("How much did exports to Asia rise in 2023?", [a, b])
    assert "12 per cent" in answer.text and "9 per cent" in answer.text
    assert "Another source gives a different figure: " in answer.text
    assert [c.hit.chunk.article_id for c in answer.citations] == ["a.md", "b.md"]


def test_figures():
    from assistant.answering.extractive import figures

    assert figures("Trade grew 40.7 per cent to $1,200 billion; 3% of it") == {
        ("", "%"): {"40.7", "3"}, ("$", "billion"): {"1200"}}


def _always(answer: bool):
    """The committed weights with the answer-or-refuse threshold pushed to one side."""
    weights = fitted_weights()
    return replace(weights, answerable=replace(weights.answerable, threshold=0.0 if answer else 1.01))


def test_a_refusal_names_the_closest_articles_and_cites_nothing(embedder):
    hits = [_hit(rank=1), _hit("Dock workers won a raise.", rank=2, cid="c2", article_id="b.md")]
    answer = ExtractiveAnswerer(embedder, weights=_always(False)).answer("What did dock workers win?", hits)
    assert answer.refused and answer.citations == () and answer.text == NOT_COVERED
    assert [a.article_id for a in answer.closest] == ["port.md", "b.md"]
    assert closest_articles(hits, n=1)[0].title == "Port"


def test_unrelated_question_is_refused_by_the_fitted_model(seed_assistant):
    question = "What did the mayor of Lisbon say about bicycle lanes?"
    answer = seed_assistant.ask(question)
    assert answer.refused and answer.citations == () and answer.closest


def test_quotes_never_join_across_a_line_break(embedder):
    # The cleaner may have removed a caption between these paragraphs: "He" must not pull the
    # sentence before the break into one quote.
    text = "The minister spoke on Monday.\nHe said the port would reopen in June."
    answer = ExtractiveAnswerer(embedder, weights=_always(True)).answer("When will the port reopen?", [_hit(text)])
    assert [c.quote for c in answer.citations][0] == "He said the port would reopen in June."
    assert all("\n" not in c.quote for c in answer.citations)


def test_list_bullets_stay_out_of_quotes():
    text = "Key points:\n  • Moscow is taking advantage of China, an expert says\n- Trade grew by 40 per cent"
    quotes = [text[s:e] for s, e in spans_of(text)]
    assert "Moscow is taking advantage of China, an expert says" in quotes
    assert "Trade grew by 40 per cent" in quotes


def test_stored_sentence_vectors_spare_the_model(embedder):
    hit = passage(PORT_TEXT, title="Port")
    spans = spans_of(hit.chunk.text)
    stored = {hit.chunk.chunk_id: [(s, e, v) for (s, e), v in
                                   zip(spans, embedder.encode([hit.chunk.text[s:e] for s, e in spans]))]}
    encoded = []

    class Counting:
        def encode(self, texts):
            encoded.extend(texts)
            return embedder.encode(texts)

    with_store = ExtractiveAnswerer(Counting(), sentence_vectors=lambda ids: {i: stored[i] for i in ids if i in stored})
    question = "How big a raise did dock workers win?"
    assert with_store.answer(question, [hit]) == ExtractiveAnswerer(embedder).answer(question, [hit])
    assert encoded == [question]  # only the question was embedded


def test_a_compound_query_is_also_decided_question_by_question():
    from assistant.answering.extractive import sub_questions

    assert sub_questions("Who is Liu Weidong? Where does he work?") == ["Who is Liu Weidong?", "Where does he work?"]
    assert sub_questions("who is liu weidong? where does he work") == ["who is liu weidong?", "where does he work"]
    assert sub_questions("How much did trade grow?") == [] and sub_questions("what?? ok") == []


def test_a_question_of_many_tiny_questions_costs_a_few_answers(seed_assistant, monkeypatch):
    """Issue 18, finding 5: "Liu Wei? " × 222 was decided question by question, 222 times (~50× the
    cost of an answer). Counted in sentence-scoring passes over the passages, not timed."""
    from assistant.answering.extractive import MAX_SUB_QUESTIONS, sub_questions

    repeated = "Liu Wei? " * 222
    distinct = " ".join(f"Liu Wei {n}?" for n in range(150))
    assert sub_questions(repeated) == []  # one question, asked 222 times
    assert sub_questions(distinct) == [f"Liu Wei {n}?" for n in range(146, 150)]  # the last ones
    passes = []
    candidates = ExtractiveAnswerer.candidates
    monkeypatch.setattr(ExtractiveAnswerer, "candidates",
                        lambda self, question, *args, **kwargs: passes.append(question) or
                        candidates(self, question, *args, **kwargs))
    for question in (repeated, distinct):
        assert len(question) <= seed_assistant.settings.answers.max_question_chars
        passes.clear()
        seed_assistant.ask(question)
        assert 1 <= len(passes) <= 1 + MAX_SUB_QUESTIONS, len(passes)


def test_a_compound_query_is_answered_when_one_of_its_questions_would_be(embedder):
    """Two questions typed together dilute every signal of each; the pair is answered when either
    question alone clears the answer-or-refuse threshold. Weights that refuse long questions
    (more asked terms, lower probability) make the point without depending on fitted values."""
    from assistant.answering.weights import QUESTION_FEATURES, SENTENCE_FEATURES, Model, Weights

    def model(features, weights, bias):
        return Model(features, weights, bias, mean=(0.0,) * len(features), scale=(1.0,) * len(features))

    by_length = [0.0] * len(QUESTION_FEATURES)
    by_length[QUESTION_FEATURES.index("question_terms")] = -5.0  # more asked terms, less likely answered
    weights = Weights(sentence=model(SENTENCE_FEATURES, (0.0,) * len(SENTENCE_FEATURES), 0.0),
                      answerable=model(QUESTION_FEATURES, tuple(by_length), 7.0))
    answerer = ExtractiveAnswerer(embedder, weights=weights)
    hits = [passage(PORT_TEXT, title="Port")]
    assert not answerer.answer("What did dock workers win?", hits).refused
    assert not answerer.answer("What did dock workers win? When did the port reopen after the strike?", hits).refused
    assert answerer.answer("What did the dock workers and the shipping firms win after the strike?", hits).refused
