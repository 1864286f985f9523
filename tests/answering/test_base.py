"""The answerer interface's defaults and the citation contract every answer is held to."""

from assistant.answering.base import NOT_COVERED, Answerer, check_citations, refusal
from assistant.schema import Answer, Chunk, Citation, Hit

ARTICLE = ("The port reopened on Monday after a two-week strike. Dock workers won a 6 per cent raise. "
           "Shipping firms said queues would clear by June.")


def _hit(text=ARTICLE, rank=1, cid="c1", article_id="port.md"):
    chunk = Chunk(chunk_id=cid, article_id=article_id, text=text, start=0, end=len(text), title="Port")
    return Hit(chunk=chunk, score=1.0, similarity=0.8, rank=rank)


class Quoting(Answerer):
    """Declares only `answer`: the rest is the interface's defaults."""

    def answer(self, question, hits):
        hit = hits[0]
        return Answer("Dock workers won a 6 per cent raise. [1]", False,
                      (Citation(1, hit, "Dock workers won a 6 per cent raise."),), tuple(hits))


def test_an_answerer_streams_its_whole_answer_and_leaves_the_rest_to_the_caller():
    answerer, hits = Quoting(), [_hit()]
    assert list(answerer.stream("What did dock workers win?", hits)) == [answerer.answer("What did dock workers win?", hits)]
    never = lambda question, hits: (0.0, 0.0)  # noqa: E731 (no support at all: still the answerer's call)
    assert answerer.precheck("What did dock workers win?", hits, never) is None
    assert answerer.rewrite("Where does he work?", ["Who is Liu Weidong?"]) is None


def _store_text(texts):
    return lambda article_id: texts.get(article_id)


def test_check_keeps_a_valid_answer():
    hit = _hit()
    answer = Answer("Dock workers won a 6 per cent raise. [1]", False,
                    (Citation(1, hit, "Dock workers won a 6 per cent raise."),), (hit,))
    checked = check_citations(answer, _store_text({"port.md": ARTICLE}))
    assert checked.citations == answer.citations and checked.text == answer.text
    assert checked.extra["dropped_citations"] == 0


def test_check_drops_a_quote_not_in_the_article_and_its_marker():
    hit = _hit()
    good = Citation(1, hit, "Dock workers won a 6 per cent raise.")
    invented = Citation(2, hit, "Dock workers won a 60 per cent raise.")
    answer = Answer("They won a raise. [1] A big one. [2]", False, (good, invented), (hit,))
    checked = check_citations(answer, _store_text({"port.md": ARTICLE}))
    assert [c.n for c in checked.citations] == [1]
    assert checked.text == "They won a raise. [1] A big one."


def test_check_drops_numbers_pointing_nowhere_and_unretrieved_passages():
    hit, other = _hit(), _hit(cid="zz", rank=9)
    answer = Answer("Fact. [1] Other. [7]", False, (Citation(1, other, "Dock workers won a 6 per cent raise."),), (hit,))
    checked = check_citations(answer, _store_text({"port.md": ARTICLE}))
    assert checked.refused and checked.citations == () and checked.text == NOT_COVERED


def test_a_refusal_cites_nothing():
    hit = _hit()
    answer = Answer(NOT_COVERED, True, (Citation(1, hit, "Dock workers won a 6 per cent raise."),), (hit,))
    assert check_citations(answer, _store_text({"port.md": ARTICLE})).citations == ()
    assert refusal([hit]).citations == () and refusal().refused


def test_missing_article_drops_the_citation():
    hit = _hit()
    answer = Answer("Fact. [1]", False, (Citation(1, hit, "Dock workers won a 6 per cent raise."),), (hit,))
    assert check_citations(answer, _store_text({})).refused
