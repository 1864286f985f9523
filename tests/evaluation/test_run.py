from assistant.evaluation.run import ANSWER_KEYS, Report, evaluate, first_token, langchain_baseline, without_reader
from assistant.evaluation.scoring import read_questions

from conftest import ROOT

SEED_SETS = [ROOT.parent / "shared" / "eval" / name for name in ("seed_questions.jsonl", "seed_natural_dev.jsonl")]


def test_evaluate_scores_each_set_pooled_held_back_and_the_baseline(seed_assistant, seed_corpus, embedder, tmp_path):
    questions = [q for path in SEED_SETS for q in read_questions(path)]
    baseline = langchain_baseline(seed_corpus, tmp_path / "baseline", embedder)

    report = evaluate(seed_assistant, questions, folds=2, baseline=baseline)  # one set alone: test_cli's eval

    sets = [f"{answers}: {name}" for answers in ("committed", "cv2")
            for name in ("seed_questions.jsonl", "seed_natural_dev.jsonl", "pooled")]
    assert list(report.tables) == sets + ["langchain (retrieval only)"]
    pooled = report.tables["committed: pooled"]
    assert pooled["questions"] == len(questions) == 24
    assert pooled["quote_verbatim_rate"] == 1.0 and pooled["refusals_with_citations"] == 0
    assert pooled["recall@5"] >= 0.8  # measured 1.0 on this index
    assert report.tables["cv2: pooled"]["questions"] == 24
    langchain = report.tables["langchain (retrieval only)"]
    assert langchain["answerable"] == pooled["answerable"] and langchain["recall@10"] > 0
    assert all(langchain[key] is None for key in ANSWER_KEYS)
    # One record per question, from the committed weights' answers, in order.
    assert [r["id"] for r in report.records] == [q.id for q in questions]
    assert {r["answerer"] for r in report.records} == {"extractive"}
    # Sentence choice counts the answerable questions whose evidence is among the candidates.
    chosen = [r["sentence_choice_right"] for r in report.records if "sentence_choice_right" in r]
    assert chosen and pooled["sentence_choice_when_retrieved"] == round(sum(chosen) / len(chosen), 3)
    assert 0 <= pooled["chosen_sentence_has_gold"] <= 1
    assert all(r["type"] != "unanswerable" for r in report.records if "sentence_choice_right" in r)
    # Each record lists its candidate sentences best first, with the reader's score, and every evidence one.
    for r in report.records:
        ranks = [c["rank"] for c in r["candidates"]]
        assert ranks == sorted(ranks) and all(set(c) == {"rank", "sentence", "reader", "probability", "evidence"}
                                              for c in r["candidates"])
        if r.get("sentence_choice_right") is not None:
            assert any(c["evidence"] for c in r["candidates"])
            assert r["sentence_choice_right"] == r["candidates"][0]["evidence"]
            assert isinstance(r["chosen_sentence_has_gold"], bool)


def test_misses_are_answerable_without_evidence_and_unhandled_unanswerable():
    records = [{"id": "hit", "type": "single", "evidence_in_answer": True},
               {"id": "miss", "type": "single", "evidence_in_answer": False},
               {"id": "refused", "type": "unanswerable", "handled": True},
               {"id": "answered", "type": "unanswerable", "handled": False},
               {"id": "followup-miss", "type": "followup:hit"}]

    assert [r["id"] for r in Report({}, records).misses()] == ["miss", "answered", "followup-miss"]


def test_first_token_percentiles():
    assert first_token([]) == {"first_token_p50_s": None, "first_token_p95_s": None}
    assert first_token([1.0, 2.0, 3.0]) == {"first_token_p50_s": 2.0, "first_token_p95_s": 2.9}


def test_without_reader_scores_the_plain_answerer_beside_the_reader(seed_assistant):
    questions = read_questions(SEED_SETS[0])
    plain = without_reader(seed_assistant)
    assert plain.answerer.embedder is seed_assistant.retriever.embedder  # the plain MiniLM embeds the sentences
    assert seed_assistant.answerer.embedder.model_id != plain.answerer.embedder.model_id

    report = evaluate(seed_assistant, questions, folds=2, plain=plain)

    assert list(report.tables) == ["committed: seed_questions.jsonl", "cv2: seed_questions.jsonl",
                                   "plain cv2: seed_questions.jsonl"]
    with_reader, before = report.tables["cv2: seed_questions.jsonl"], report.tables["plain cv2: seed_questions.jsonl"]
    assert with_reader["questions"] == before["questions"] == len(questions)
    assert before["sentence_choice_when_retrieved"] is not None and before["quote_verbatim_rate"] == 1.0
