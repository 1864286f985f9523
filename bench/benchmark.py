"""Ingest and retrieval benchmark: our pipeline against bare model calls, same process.

    python bench/benchmark.py [--corpus DIR] [--articles N] [--questions FILE]

Prints ingest throughput against bare `SentenceTransformer.encode` of everything it embeds
(chunks, titles and the sentence vectors stored for answers; ratio: 1.0 means the pipeline costs
nothing beyond the model), re-ingest of the
unchanged corpus against the first ingest, and retrieval / answer latency p50/p95
against a bare query embedding. Reads the corpus where it lies; copies nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
ROOT = Path(__file__).resolve().parents[1]

from assistant.indexing.chunking import chunk_article, make_splitter  # noqa: E402
from assistant.config import Settings  # noqa: E402
from assistant.sources.corpus import iter_corpus  # noqa: E402
from assistant.indexing.embeddings import MiniLM  # noqa: E402
from assistant.indexing.sentence_model import SentenceModel  # noqa: E402
from assistant.evaluation.scoring import read_questions  # noqa: E402
from assistant.indexing.store import open_store  # noqa: E402
from assistant.indexing.sync import group_texts, sync  # noqa: E402
from assistant.schema import Article  # noqa: E402
from assistant.wiring import build_assistant  # noqa: E402

NEWS = ROOT.parent / "shared" / "eval" / "news"


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=NEWS / "corpus" if NEWS.exists() else ROOT / "corpus")
    parser.add_argument("--articles", type=int, default=80, help="how many articles to ingest (0 = all)")
    parser.add_argument("--questions", type=Path,
                        default=NEWS / "questions_dev.jsonl" if NEWS.exists() else None)
    parser.add_argument("--queries", type=int, default=60, help="timed queries")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pd-bench-"))
    try:
        corpus = work / "corpus"
        corpus.mkdir()
        files = sorted(p for p in args.corpus.rglob("*") if p.is_file() and not p.name.startswith("."))
        for path in files[: args.articles or None]:
            shutil.copy(path, corpus / path.name)  # a temporary copy: ingest follows no link out of its folder

        embedder = MiniLM(threads=None)  # ingest is a batch job: all cores, as `python -m assistant ingest`
        reader = SentenceModel(work / "index", embedder, threads=None)  # the shipped reader embeds the sentences
        embedder.encode(["warm up the model"] * 64)
        reader.encode(["warm up the reader"] * 64)
        articles = [a for a in iter_corpus(corpus) if isinstance(a, Article)]
        splitter = make_splitter(embedder.count_tokens)
        # Everything ingest embeds: each chunk with its title, each title (the retrieval model),
        # each distinct sentence (the reader).
        groups = [(a, chunk_article(a, splitter)) for a in articles]
        texts, _ = group_texts(groups)
        fixed = sum(len(cs) for _, cs in groups) + len(groups)

        bare_s, _ = timed(lambda: (embedder.encode(texts[:fixed]), reader.encode(texts[fixed:])))
        store = open_store(work / "index", embedder)
        ingest_s, report = timed(lambda: sync(corpus, store, embedder, progress=False, sentences=reader))
        reingest_s, again = timed(lambda: sync(corpus, store, embedder, progress=False, sentences=reader))
        assert report.chunks_written and not again.changed

        # Serving: one torch thread (measured faster with the other core busy).
        import torch
        torch.set_num_threads(1)
        assistant = build_assistant(Settings.of(index_dir=work / "index"), embedder=embedder)
        questions = [q.question for q in read_questions(args.questions)] if args.questions else [
            "How much did trade between China and Russia grow?", "Who is Liu Weidong?"]
        questions = (questions * (args.queries // len(questions) + 1))[: args.queries]
        embed_ms, search_ms, ask_ms = [], [], []
        for q in questions:
            embed_ms.append(timed(lambda: embedder.encode([q]))[0] * 1000)
            search_ms.append(timed(lambda: assistant.search(q))[0] * 1000)
            ask_ms.append(timed(lambda: assistant.ask(q))[0] * 1000)

        chunks = report.chunks_written
        figures = {
            "articles": len(articles), "chunks": chunks,
            "bare_encode_texts_per_s": round(len(texts) / bare_s, 1),
            "texts_embedded": len(texts),
            "ingest_texts_per_s": round(len(texts) / ingest_s, 1),
            "ingest_vs_bare_encode": round(bare_s / ingest_s, 3),
            "reingest_s": round(reingest_s, 3),
            "reingest_speedup_vs_first": round(ingest_s / reingest_s, 1),
            "query_embed_p50_ms": round(percentile(embed_ms, 50), 1),
            "search_p50_ms": round(percentile(search_ms, 50), 1),
            "search_p95_ms": round(percentile(search_ms, 95), 1),
            "search_p50_vs_query_embed": round(percentile(search_ms, 50) / percentile(embed_ms, 50), 2),
            "ask_p50_ms": round(percentile(ask_ms, 50), 1),
            "ask_p95_ms": round(percentile(ask_ms, 95), 1),
            "ask_p50_vs_search_p50": round(percentile(ask_ms, 50) / percentile(search_ms, 50), 2),
            "reader": reader.model_id,
            "threads_ingest": os.cpu_count(), "threads_serving": 1,
        }
        print(f"corpus: {args.corpus} ({len(articles)} articles, {chunks} chunks)")
        print(f"ingest: {figures['ingest_texts_per_s']} texts/s vs bare encode {figures['bare_encode_texts_per_s']}"
              f" texts/s of the same {len(texts)} texts (chunks, titles, sentences) → ratio "
              f"{figures['ingest_vs_bare_encode']} (goal ≥ 0.85)")
        print(f"re-ingest unchanged: {reingest_s:.2f} s, {figures['reingest_speedup_vs_first']}× faster than the first")
        print(f"search: p50 {figures['search_p50_ms']} ms, p95 {figures['search_p95_ms']} ms "
              f"({figures['search_p50_vs_query_embed']}× a bare query embedding of {figures['query_embed_p50_ms']} ms)")
        print(f"ask (search + extractive answer, sentences by {reader.model_id}): p50 {figures['ask_p50_ms']} ms, "
              f"p95 {figures['ask_p95_ms']} ms ({figures['ask_p50_vs_search_p50']}× search)")
        print(json.dumps(figures))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
