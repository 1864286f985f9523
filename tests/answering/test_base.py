"""The answerer interface's defaults and the citation contract every answer is held to."""

from assistant.answering.base import NOT_COVERED, Answerer, check_citations, refusal
from assistant.schema import Answer, Citation

from conftest import PORT_TEXT, passage


class Quoting(Answerer):
    """Declares only `answer`: the rest is the interface's defaults."""

    def answer(self, question, hits):
        hit = hits[0]
        return Answer("Dock workers won a 6 per cent raise. [1]", False,
                      (Citation(1, hit, "Dock workers won a 6 per cent raise."),), tuple(hits))


def _hit(text=PORT_TEXT, rank=1, cid="c1", article_id="port.md"):
    return passage(text, rank, cid, article_id, title="Port")


def test_an_answerer_streams_its_whole_answer_and_leaves_the_rest_to_the_caller():
    answerer, hits = Quoting(), [passage(PORT_TEXT, title="Port")]
    assert list(answerer.stream("What did dock workers win?", hits)) == [answerer.answer("What did dock workers win?", hits)]
    never = lambda question, hits: (0.0, 0.0)  # noqa: E731 (no support at all: still the answerer's call)
    assert answerer.precheck("What did dock workers win?", hits, never) is None
    assert answerer.rewrite("Where does he work?", ["Who is Liu Weidong?"]) is None


def _store_text(texts):
    return lambda article_id: texts.get(article_id)


def test_check_keeps_a_valid_answer():
    hit = passage(PORT_TEXT, title="Port")
    answer = Answer("Dock workers won a 6 per cent raise. [1]", False,
                    (Citation(1, hit, "Dock workers won a 6 per cent raise."),), (hit,))
    checked = check_citations(answer, _store_text({"port.md": PORT_TEXT}))
    assert checked.citations == answer.citations and checked.text == answer.text
    assert checked.extra["dropped_citations"] == 0


def test_check_drops_a_quote_not_in_the_article_and_its_marker():
    hit = passage(PORT_TEXT, title="Port")
    good = Citation(1, hit, "Dock workers won a 6 per cent raise.")
    invented = Citation(2, hit, "Dock workers won a 60 per cent raise.")
    answer = Answer("They won a raise. [1] A big one. [2]", False, (good, invented), (hit,))
    checked = check_citations(answer, _store_text({"port.md": PORT_TEXT}))
    assert [c.n for c in checked.citations] == [1]
    assert checked.text == "They won a raise. [1] A big one."


def test_check_drops_numbers_pointing_nowhere_and_unretrieved_passages():
    hit, other = passage(PORT_TEXT, title="Port"), _hit(cid="zz", rank=9)
    answer = Answer("Fact. [1] Other. [7]", False, (Citation(1, other, "Dock workers won a 6 per cent raise."),), (hit,))
    checked = check_citations(answer, _store_text({"port.md": PORT_TEXT}))
    assert checked.refused and checked.citations == () and checked.text == NOT_COVERED


def test_a_refusal_cites_nothing():
    hit = passage(PORT_TEXT, title="Port")
    answer = Answer(NOT_COVERED, True, (Citation(1, hit, "Dock workers won a 6 per cent raise."),), (hit,))
    assert check_citations(answer, _store_text({"port.md": PORT_TEXT})).citations == ()
    assert refusal([hit]).citations == () and refusal().refused


def test_missing_article_drops_the_citation():
    hit = passage(PORT_TEXT, title="Port")
    answer = Answer("Fact. [1]", False, (Citation(1, hit, "Dock workers won a 6 per cent raise."),), (hit,))
    assert check_citations(answer, _store_text({})).refused
