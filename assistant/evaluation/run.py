"""What `python -m assistant eval` computes: question sets answered and scored, per set and pooled.

    report = evaluate(assistant, questions, folds=5, llm=with_llm(assistant, settings, spec),
                      baseline=langchain_baseline(corpus_dir, folder, embedder))
    report.tables    # {"committed: a.jsonl": {...}, "cv5: pooled": {...}, "llm: pooled": {...}, ...}
    report.misses()  # per-question records of the misses (`--failures`)

The committed weights answer every question; with `folds` each is also answered by weights
fitted without its fold (`fitting.cross_validated`). A language model (`llm`) answers the same
passages, scored beside the extractive answers; LangChain's stock recipe (`baseline`) is scored
on retrieval only. The command line parses, prints and writes files; nothing here does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from ..answering.base import check_citations
from ..schema import Answer, Article
from .baseline import LangChainBaseline
from ..answering.weights import SENTENCE_FEATURES, fitted_weights
from .fitting import Case, fold_weights, prepare, sentence_choice
from .scoring import Question, Scores, first_hit_rank, score_question

# The answer columns of a retrieval-only table (the baseline has no answer step).
ANSWER_KEYS = ("sentence_choice_when_retrieved", "chosen_sentence_has_gold", "evidence_in_answer", "unanswerable_handled", "refusal_accuracy", "false_refusal_rate",
               "answer_contains_gold", "quote_verbatim_rate", "refusals_with_citations", "citations_dropped_by_check")


@dataclass(frozen=True)
class Report:
    tables: dict[str, dict]  # "<answers>: <set>" → scores
    records: list[dict]  # per question and answerer (the extractive answers with the committed weights, the llm's)

    def misses(self) -> list[dict]:
        """Answerable questions whose evidence is not in the answer; unanswerable ones not handled."""
        return [r for r in self.records if (r["type"] != "unanswerable" and not r.get("evidence_in_answer"))
                or (r["type"] == "unanswerable" and not r.get("handled"))]


def evaluate(assistant, questions: Sequence[Question], folds: int = 0, llm=None,
             baseline: LangChainBaseline | None = None, plain=None) -> Report:
    """Score `assistant` (extractive) on `questions`, per question set and pooled when several.

    Args:
        assistant: a `service.Assistant` whose answerer is the extractive one.
        questions: the pooled question sets (`scoring.read_questions`), in order.
        folds: also answer with weights fitted on the other `folds - 1` parts (0: don't).
        llm: the same assistant answering with a language model (`with_llm`), or None.
        baseline: LangChain's stock recipe over the same articles (`langchain_baseline`), or None.
        plain: the same assistant without the reader (`without_reader`), answered with weights
            fitted per fold beside it ("plain cvK" tables; needs `folds`), or None.

    Returns:
        The tables, named "<answers>: <set>", and the per-question records.
    """
    cases = prepare(assistant, questions)
    text = assistant.store.article_text
    committed = assistant.answerer.weights or fitted_weights()
    weights = {"committed": [committed] * len(cases)}
    if folds:
        weights[f"cv{folds}"] = fold_weights(cases, assistant.answerer, folds)
    answers = {name: [check_citations(assistant.answerer.compose(c.query, c.hits, c.candidates, w), text)
                      for c, w in zip(cases, given)] for name, given in weights.items()}
    sets = list(dict.fromkeys(q.source_file for q in questions))
    tables, records = {}, []
    for name, given in answers.items():
        chosen = [sentence_choice(c, w) for c, w in zip(cases, weights[name])]
        per_set, scored = score_sets(cases, given, text, sets, chosen)
        if name == "committed":
            records += [r | {"answerer": "extractive", "candidates": candidate_scores(c, committed)}
                        for r, c in zip(scored, cases)]
        for key, scores in per_set.items():
            if key != "pooled" or len(sets) > 1:
                tables[f"{name}: {key}"] = scores.table()
    if plain is not None and folds:
        plain_cases = prepare(plain, questions)
        plain_weights = fold_weights(plain_cases, plain.answerer, folds, reader=False)
        given = [check_citations(plain.answerer.compose(c.query, c.hits, c.candidates, w), text)
                 for c, w in zip(plain_cases, plain_weights)]
        per_set, _ = score_sets(plain_cases, given, text, sets,
                                [sentence_choice(c, w) for c, w in zip(plain_cases, plain_weights)])
        tables |= {f"plain cv{folds}: {key}": scores.table() for key, scores in per_set.items()
                   if key != "pooled" or len(sets) > 1}
    if llm is not None:
        table, llm_records = llm_table(llm, cases, answers["committed"], text)
        tables["llm: pooled"] = table
        records += llm_records
    if baseline is not None:
        tables["langchain (retrieval only)"] = baseline_table(baseline, cases)
    return Report(tables, records)


def score_sets(cases: Sequence[Case], answers: Sequence[Answer], text, sets: Sequence[str],
               chosen: Sequence[bool | None] = ()) -> tuple[dict[str, Scores], list[dict]]:
    """Each case's answer scored into its question set's `Scores` and the pooled one; with the
    per-question records. `text(article_id)` is the stored article text; `chosen`, per case,
    whether the first-ranked sentence holds the evidence and the gold answer (`fitting.sentence_choice`)."""
    per_set = {s: Scores() for s in [*sets, "pooled"]}
    records = []
    for i, (case, answer) in enumerate(zip(cases, answers)):
        choice = chosen[i] if i < len(chosen) else None
        for key in (case.question.source_file, "pooled"):
            record = score_question(per_set[key], case.question, list(case.ranked), answer, text)
            if choice is not None:
                per_set[key].choices += 1
                per_set[key].chosen_right += choice[0]
                per_set[key].chosen_gold += choice[1]
        records.append(record | ({"sentence_choice_right": choice[0], "chosen_sentence_has_gold": choice[1]}
                                 if choice is not None else {}))
    return per_set, records


def candidate_scores(case: Case, weights, top: int = 8) -> list[dict]:
    """The candidate sentences best first (at most `top`, and every evidence sentence): the
    reader's score (cosine of the question's and the sentence's reader vectors), the fitted
    sentence model's probability, and whether it holds the gold evidence."""
    reader = SENTENCE_FEATURES.index("cos")
    ranked = sorted(zip(case.candidates, case.labels), key=lambda cl: -weights.sentence.probability(cl[0].features))
    return [{"rank": i, "sentence": c.text, "reader": round(c.features[reader], 3),
             "probability": round(weights.sentence.probability(c.features), 3), "evidence": label}
            for i, (c, label) in enumerate(ranked, 1) if i <= top or label]


def llm_table(llm, cases: Sequence[Case], extractive: Sequence[Answer], text) -> tuple[dict, list[dict]]:
    """The same passages answered by a language model, scored beside the extractive answers;
    with its per-question records (answerer "llm", the model's draft and outcome)."""
    from ..answering.verify import answer_citation_precision, model_citation_precision

    scores, support = Scores(), llm.answerer.support
    precision = {"ours": [0, 0], "llm": [0, 0], "model": [0, 0], "fallbacks": 0}
    first_tokens, records = [], []
    for case, answer in zip(cases, extractive):
        written = llm.respond(case.query, list(case.hits))
        record = score_question(scores, case.question, list(case.ranked), written, text)
        v = written.verification
        records.append(record | {"answerer": "llm", "draft": v.draft if v else None,
                                 "outcome": (v.outcome if v else "floor"),
                                 "first_token": v.first_token if v else None})
        for key, a in (("ours", answer), ("llm", written)):
            checked_pair = answer_citation_precision(a, support, case.query)
            precision[key] = [x + y for x, y in zip(precision[key], checked_pair)]
        checked = written.verification
        precision["fallbacks"] += bool(checked and checked.fallback)
        precision["model"] = [x + y for x, y in zip(precision["model"], model_citation_precision(checked))]
        if checked and checked.first_token is not None:
            first_tokens.append(checked.first_token)
    share = lambda pair: round(pair[1] / pair[0], 3) if pair[0] else None  # noqa: E731
    table = scores.table()
    table.update(citation_precision=share(precision["llm"]), model_citation_precision=share(precision["model"]),
                 model_answer_fell_back=precision["fallbacks"], extractive_citation_precision=share(precision["ours"]),
                 **first_token(first_tokens))
    return table, records


def first_token(seconds: list[float]) -> dict:
    """Time to the model's first token, p50 and p95 (None when it never answered)."""
    import numpy as np

    if not seconds:
        return {"first_token_p50_s": None, "first_token_p95_s": None}
    return {"first_token_p50_s": round(float(np.percentile(seconds, 50)), 2),
            "first_token_p95_s": round(float(np.percentile(seconds, 95)), 2)}


def baseline_table(baseline: LangChainBaseline, cases: Sequence[Case]) -> dict:
    """Retrieval scores of LangChain's stock recipe for the same queries; it has no answer
    step, so its answer columns stay empty."""
    scores = Scores()
    for case in cases:
        if case.question.answerable:
            scores.answerable += 1
            scores.ranks.append(first_hit_rank(baseline.search(case.query, k=10), case.question.evidence))
        else:
            scores.unanswerable += 1
    return scores.table() | dict.fromkeys(ANSWER_KEYS)


def without_reader(assistant):
    """The same assistant with the sentences embedded by the retrieval model (the plain MiniLM)
    instead of the reader: what the answerer was before the reader, for `eval --without-reader`.
    Its stored sentence vectors are the reader's, so it embeds each answer's candidates itself."""
    from ..answering.backends import build_answerer
    from ..wiring import answer_parts

    parts = answer_parts(assistant.store, assistant.retriever, assistant.retriever.embedder)
    return replace(assistant, answerer=build_answerer(assistant.settings.with_(backend="extractive").llm, parts))


def with_llm(assistant, settings, spec: str):
    """The same assistant answering with the language model `spec` (openai:…, ollama:…, gguf:…),
    falling back to its extractive answerer."""
    from ..answering.backends import build_answerer
    from ..answering.model_files import ModelUnavailable

    if spec.partition(":")[0] == "extractive":
        raise ModelUnavailable("--llm needs a language model (openai:<model>, ollama:<model> or gguf:<path>); "
                               "the extractive answer is always scored")
    from ..indexing.sentence_model import SentenceModel
    from ..wiring import answer_parts

    sentences = SentenceModel(settings.storage.index_dir, assistant.retriever.embedder,
                              threads=settings.indexing.torch_threads)
    parts = answer_parts(assistant.store, assistant.retriever, sentences)
    return replace(assistant, answerer=build_answerer(settings.with_(backend=spec).llm, parts))


def langchain_baseline(corpus_dir: Path, folder: Path, embedder) -> LangChainBaseline:
    """LangChain's stock recipe over the cleaned articles of `corpus_dir`, its index in `folder`."""
    from ..sources.corpus import iter_corpus

    articles = [a for a in iter_corpus(corpus_dir) if isinstance(a, Article)]
    return LangChainBaseline(articles, embedder, folder)
