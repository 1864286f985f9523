import json

from assistant.evaluation.scoring import (Question, Scores, contains_gold, first_hit_rank, passage_matches,
                                read_questions, score_question, with_context)
from assistant.schema import Answer, Chunk, Citation, Hit


def _hit(text, rank):
    return Hit(Chunk(f"c{rank}", "a.md", text, 0, len(text)), 1.0 / rank, 0.5, rank)


def test_passage_matches_contains_or_overlaps_most():
    evidence = "with the value surging by 40.7 per cent from a year earlier"
    assert passage_matches("Trade grew, with the value  surging by 40.7 per cent from a year earlier, said X.", evidence)
    # a chunk boundary cut the evidence sentence: most of it still counts
    assert passage_matches("... with the value surging by 40.7 per cent", evidence)
    assert not passage_matches("with the value", evidence)
    assert not passage_matches("anything", "")


def test_first_hit_rank():
    hits = [_hit("nothing here", 1), _hit("the value surged 40.7 per cent", 2)]
    assert first_hit_rank(hits, ["the value surged 40.7 per cent"]) == 2
    assert first_hit_rank(hits, ["absent sentence entirely"]) is None


def test_contains_gold():
    assert contains_gold("Netflix said Squid Game returns. [1]", "Squid Game")
    assert contains_gold("The EU requires USB-C ports [1]", "the European Union requires USB-C")  is False
    assert contains_gold("trade surged 40.7 per cent from a year earlier [1]", "It rose 40.7 per cent from a year earlier.")


def test_read_questions_and_context(tmp_path):
    path = tmp_path / "q.jsonl"
    rows = [{"id": "a", "question": "Who is X?", "answer": "A man", "evidence": ["X is a man"], "doc_ids": ["d"],
             "type": "single", "question_date": "2022-06-16"},
            {"id": "b", "question": "What did he say?", "answer": "hi", "evidence": ["hi"], "type": "followup:a"},
            {"id": "c", "question": "Unknown?", "answer": None, "evidence": [], "type": "unanswerable"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    questions = read_questions(path)
    assert [q.id for q in questions] == ["a", "b", "c"] and not questions[2].answerable
    contexts = list(with_context(questions))
    assert contexts[1][1] == ["Who is X?"] and contexts[0][2].until == "2022-06-16"
    assert contexts[0][1] == [] and not contexts[2][2]


def test_scores_table():
    scores = Scores()
    q = Question("a", "How much?", "40.7 per cent", ("grew 40.7 per cent",))
    hit = _hit("Trade grew 40.7 per cent.", 1)
    ok = Answer("Trade grew 40.7 per cent. [1]", False, (Citation(1, hit, "Trade grew 40.7 per cent."),), (hit,))
    score_question(scores, q, [hit], ok, lambda _: "Trade grew 40.7 per cent.")
    unanswerable = Question("b", "Who?", None, (), type="unanswerable")
    score_question(scores, unanswerable, [hit], Answer("The articles I have don't cover this.", True, (), (hit,)),
                   lambda _: "")
    table = scores.table()
    assert table["recall@1"] == 1.0 and table["mrr"] == 1.0 and table["refusal_accuracy"] == 1.0
    assert table["answer_contains_gold"] == 1.0 and table["quote_verbatim_rate"] == 1.0
    assert table["false_refusal_rate"] == 0.0 and table["refusals_with_citations"] == 0


def test_contains_gold_reads_number_words_and_plurals():
    assert contains_gold("His detention was extended six months. [1]", "6")
    assert contains_gold("KFC is trying out a new chicken nugget. [1]", "Chicken nuggets")
    assert not contains_gold("KFC is trying out a new burger. [1]", "Chicken nuggets")


def test_gold_matches_on_word_boundaries_without_stamps_or_markers():
    from assistant.evaluation.scoring import visible_text

    assert visible_text("Trade grew (as of 2022-06-16) [1] fast [2]") == "Trade grew fast"
    assert not contains_gold("Prices rose 15 per cent (as of 2022-06-16) [5]", "$5")
    assert not contains_gold("Prices rose 15 per cent (as of 2022-06-06) [1]", "6")
    assert contains_gold("Tickets cost $5 each. [1]", "$5")


def test_evidence_in_answer_and_absence():
    from assistant.evaluation.scoring import evidence_in_answer, sentence_holds

    evidence = ["The jury awarded Huth $500,000 in damages."]
    assert evidence_in_answer("The jury, of eight women and four men, awarded Huth $500,000 in damages. [1]", evidence)
    assert not evidence_in_answer("Huth sued Cosby in 2014. [1]", evidence)
    assert sentence_holds("The jury awarded Huth $500,000 in damages.", evidence)
    scores = Scores()
    near_miss = Question("n", "How many shops?", None, (), type="unanswerable",
                         absence=("The report did not mention the number of shops.",))
    hit = _hit("The report did not mention the number of shops.", 1)
    quoted = Answer("The report did not mention the number of shops. [1]", False,
                    (Citation(1, hit, "The report did not mention the number of shops."),), (hit,))
    score_question(scores, near_miss, [hit], quoted, lambda _: hit.chunk.text)
    table = scores.table()
    assert table["unanswerable_handled"] == 1.0 and table["refusal_accuracy"] == 0.0


def test_evidence_in_the_quotes_counts_apart_from_the_answers_words():
    """A model's sentence in its own words, checked against a quote that holds the evidence:
    counted in `evidence_in_answer_or_quotes`, not in `evidence_in_answer`."""
    scores = Scores()
    evidence = "The jury awarded Huth $500,000 in damages."
    q = Question("a", "What did the jury decide?", "$500,000 for Huth", (evidence,))
    hit = _hit(f"Cosby was found liable. {evidence}", 1)
    written = Answer("Cosby must pay her half a million dollars. [1]", False, (Citation(1, hit, evidence),), (hit,))
    score_question(scores, q, [hit], written, lambda _: hit.chunk.text)
    table = scores.table()
    assert table["evidence_in_answer"] == 0.0 and table["evidence_in_answer_or_quotes"] == 1.0
