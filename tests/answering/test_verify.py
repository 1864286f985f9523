"""The verifier (pure): a model's draft split into sentences, each checked against its passage."""

from __future__ import annotations

import pytest

from assistant.schema import Answer, Citation, Verification
from assistant.answering.verify import (CORRECTED, UNSUPPORTED, VERIFIED, Support, answer_citation_precision, assemble,
                              model_citation_precision, split_claims, verify)

from conftest import INJECTED, PORT_TEXT, holds_contract, passage, port_and_tram

HITS = port_and_tram()


@pytest.fixture(scope="module")
def support(embedder):
    return Support(embedder.encode)


def test_split_claims_keeps_each_sentence_with_its_numbers():
    claims = split_claims("Dock workers won a raise [1]. The strike lasted two weeks. [2]\n"
                          "- Queues clear by June [1, 3].\nNothing cited here. Prices rose. (as of 2022-06-12) [2]")
    assert [(c.text, c.cited) for c in claims] == [
        ("Dock workers won a raise.", (1,)), ("The strike lasted two weeks.", (2,)),
        ("Queues clear by June.", (1, 3)), ("Nothing cited here.", ()), ("Prices rose.", (2,))]


def test_a_correct_citation_is_verified_and_quotes_the_supporting_sentence(support):
    checked = verify("The dock workers won a raise of 6 per cent [1].", HITS, support)
    assert [(c.status, c.passage) for c in checked] == [(VERIFIED, 1)]
    answer = assemble(checked, HITS, "m")
    assert answer.text == "The dock workers won a raise of 6 per cent. [1]"
    assert answer.citations[0].quote == "Dock workers won a 6 per cent raise."
    assert answer.verification == Verification("m", sentences=answer.verification.sentences)
    (sentence,) = answer.verification.sentences
    assert (sentence.status, sentence.citations, sentence.model_cited) == (VERIFIED, (1,), (1,))
    holds_contract(answer)


def test_a_wrong_number_is_corrected_to_the_supporting_passage(support):
    checked = verify("The council approved a tram line to the airport [1]. Dock workers won a 6 per cent raise [2].",
                     HITS, support)
    assert [(c.status, c.passage) for c in checked] == [(CORRECTED, 2), (CORRECTED, 1)]
    answer = assemble(checked, HITS)
    # Renumbered in order of use: the tram passage is [1] now, the port passage [2].
    assert [c.hit.chunk.chunk_id for c in answer.citations] == ["c2", "c1"]
    assert answer.text.endswith("airport. [1] Dock workers won a 6 per cent raise. [2]")
    assert [(s.citations, s.model_cited) for s in answer.verification.sentences] == [((1,), (1,)), ((2,), (2,))]
    holds_contract(answer)


def test_numbers_that_point_nowhere_are_removed(support):
    checked = verify("Dock workers won a 6 per cent raise [7]. Shipping firms said queues would clear by June [1][9].",
                     HITS, support)
    assert [(c.status, c.passage) for c in checked] == [(CORRECTED, 1), (VERIFIED, 1)]
    answer = assemble(checked, HITS)
    assert "[7]" not in answer.text and "[9]" not in answer.text and len(answer.citations) == 1
    holds_contract(answer)


def test_unsupported_sentences_are_dropped_changed_figures_included(support):
    draft = ("Dock workers won a 9 per cent raise [1]. The port reopened on Monday after a two-week strike [1]. "
             "The mayor resigned over the strike [1].")
    checked = verify(draft, HITS, support)
    assert [c.status for c in checked] == [UNSUPPORTED, VERIFIED, UNSUPPORTED]
    answer = assemble(checked, HITS)
    assert answer.text == "The port reopened on Monday after a two-week strike. [1]"
    assert [(s.status, s.citations) for s in answer.verification.sentences] == [
        (UNSUPPORTED, ()), (VERIFIED, (1,)), (UNSUPPORTED, ())]
    holds_contract(answer)


def test_passages_checked_may_be_fewer_than_those_retrieved(support):
    """The prompt may leave a passage out; the answer still comes with all the retrieved ones."""
    answer = assemble(verify("The council voted 7 to 2 for a tram line [1].", HITS[1:], support), HITS[1:],
                      retrieved=HITS)
    assert answer.hits == tuple(HITS) and answer.citations[0].hit == HITS[1]
    holds_contract(answer)


def test_nothing_supported_means_no_answer(support):
    assert assemble(verify("Pirates took the port [1]. Sure! [2]", HITS, support), HITS) is None
    assert assemble(verify("", HITS, support), HITS) is None


def test_an_instruction_in_an_article_supports_nothing(support):
    hits = [passage(INJECTED, cid="inj", article_id="inj.md")] + HITS
    checked = verify("Pirates have seized the city council [1]. Cranes were repaired over the weekend [1].",
                     hits, support)
    assert [c.status for c in checked] == [UNSUPPORTED, VERIFIED]
    assert assemble(checked, hits).citations[0].quote == "The harbour master said cranes were repaired over the weekend."


def test_citation_precision_of_a_final_answer_and_of_the_models_own_numbers(support):
    answer = assemble(verify("Dock workers won a 6 per cent raise [1].", HITS, support), HITS)
    assert answer_citation_precision(answer, support) == (1, 1)
    wrong = Answer("Dock workers won a 6 per cent raise. [1]", False, (Citation(1, HITS[1], "x"),), tuple(HITS))
    assert answer_citation_precision(wrong, support) == (1, 0)
    corrected = assemble(verify("Dock workers won a 6 per cent raise [2]. Queues clear by June.", HITS, support), HITS)
    assert model_citation_precision(answer.verification) == (1, 1)
    assert model_citation_precision(corrected.verification) == (1, 0)  # the uncited sentence does not count
    assert model_citation_precision(None) == (0, 0)


def test_a_sentence_is_checked_on_what_it_adds_to_the_question(support):
    """A model that affirms the question ("Yes, …") claims nothing a passage can back, however
    many of the question's words the passage shares; the answer's own words are what is checked."""
    question = "Is it true the dock workers won a raise after the strike?"
    echo, answer = "Yes, the dock workers won a raise after the strike [1].", "They won a 6 per cent raise [1]."
    assert verify(echo, HITS, support)[0].status == VERIFIED  # words alone: the passage shares them all
    assert [c.status for c in verify(echo, HITS, support, question)] == [UNSUPPORTED]
    assert [c.status for c in verify(answer, HITS, support, question)] == [VERIFIED]
    stale = "They won a raise and a pension after the strike."  # adds a word the passage lacks
    assert support.best(stale, PORT_TEXT, question) < support.best(stale, PORT_TEXT)
