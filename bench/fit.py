"""Fit the extractive answerer's two models on the pooled dev sets and commit the weights.

    python bench/fit.py --index DIR --questions A.jsonl [B.jsonl ...] [--folds 5] [--out assistant/answering/weights.json]

The sentence model learns which sentence of the retrieved passages holds the gold evidence;
the answer-or-refuse model learns, from the best sentences' signals, whether the question is
answerable from the articles at all. Both are logistic regressions over the features named in
`assistant/answering/weights.py`. Prints the cross-validated figures (each question answered by weights
fitted without its fold), then writes the weights fitted on everything, with the sets, the
folds and the held-back figures recorded beside them.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
ROOT = Path(__file__).resolve().parents[1]

from assistant.answering.base import check_citations  # noqa: E402
from assistant.config import Settings  # noqa: E402
from assistant.answering.weights import SENTENCE_FITTED  # noqa: E402
from assistant.evaluation.fitting import fit, fold_weights, prepare, sentence_choice  # noqa: E402
from assistant.evaluation.run import score_sets  # noqa: E402
from assistant.evaluation.scoring import read_questions  # noqa: E402
from assistant.wiring import build_assistant  # noqa: E402

KEYS = ("recall@5", "sentence_choice_when_retrieved", "chosen_sentence_has_gold", "evidence_in_answer", "unanswerable_handled", "refusal_accuracy", "false_refusal_rate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--questions", type=Path, nargs="+", required=True)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "assistant" / "answering" / "weights.json")
    parser.add_argument("--cache", type=Path, help="keep retrieved passages and sentence vectors here between runs "
                                                   "(for trying features: only the questions are embedded again)")
    args = parser.parse_args()

    assistant = build_assistant(Settings.of(index_dir=args.index))
    questions = [q for path in args.questions for q in read_questions(path)]
    if args.cache:
        cases = cached_prepare(assistant, questions, args.cache)
    else:
        cases = prepare(assistant, questions)
    text = assistant.store.article_text
    per_case = fold_weights(cases, assistant.answerer, args.folds)
    held_back = [assistant.answerer.compose(c.query, c.hits, c.candidates, w) for c, w in zip(cases, per_case)]
    sets = list(dict.fromkeys(q.source_file for q in questions))
    scores, _ = score_sets(cases, [check_citations(a, text) for a in held_back], text, sets,
                           [sentence_choice(c, w) for c, w in zip(cases, per_case)])
    figures = {name: {k: s.table()[k] for k in KEYS} | {"questions": s.table()["questions"]}
               for name, s in scores.items()}
    print(f"cross-validated ({args.folds} folds, grouped by follow-up chain):")
    for name, row in figures.items():
        print(f"  {name:<32} " + "  ".join(f"{k} {row[k]}" for k in ("questions",) + KEYS))

    weights = fit(cases, assistant.answerer)
    out = {"sentence": weights.sentence.to_dict(), "answerable": weights.answerable.to_dict(),
           "second": weights.second.to_dict() if weights.second else None,
           "fitted_on": sets, "folds": args.folds, "sentence_features_fitted": list(SENTENCE_FITTED),
           "reader": assistant.answerer.embedder.model_id, "cross_validated": figures}
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    for name, model in (("sentence", weights.sentence), ("second", weights.second), ("answerable", weights.answerable)):
        if model is None:
            continue
        print(f"{name} model (standardised weights):")
        for feature, w in sorted(zip(model.features, model.weights), key=lambda x: -abs(x[1])):
            print(f"  {feature:<22} {w:+.3f}")
        if name == "answerable":
            print(f"  threshold {model.threshold:.3f}")


def cached_prepare(assistant, questions, cache: Path):
    """`prepare`, with the retrieved passages and every sentence vector kept in `cache`
    (a scratch file of this script's own, outside the project)."""
    import pickle

    from assistant.answering.extractive import spans_of

    searched, vectors = pickle.loads(cache.read_bytes()) if cache.is_file() else ({}, {})
    search, encode = assistant.retriever.search, assistant.answerer.embedder.encode

    def cached_search(query, n, filters):
        if (query, n, filters) not in searched:
            searched[(query, n, filters)] = search(query, n, filters)
        return searched[(query, n, filters)]

    answerer = assistant.answerer
    answerer.sentence_vectors = lambda chunk_ids: {cid: vectors[cid] for cid in chunk_ids if cid in vectors}
    cases = prepare(assistant, questions, search=cached_search)
    for case in cases:  # remember every sentence vector seen, for the next run
        for hit in case.hits:
            if hit.chunk.chunk_id not in vectors:
                spans = spans_of(hit.chunk.text)
                encoded = encode([hit.chunk.text[s:e] for s, e in spans]) if spans else []
                vectors[hit.chunk.chunk_id] = [(s, e, v) for (s, e), v in zip(spans, encoded)]
    cache.write_bytes(pickle.dumps((searched, vectors)))
    return cases


if __name__ == "__main__":
    main()
