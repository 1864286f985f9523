"""Scale benchmark: ingest, re-ingest, retrieval latency, memory and ready time by index size.

    python bench/scale.py --quick           # 1k chunks: a CI-size run (about a minute)
    python bench/scale.py                   # 1k, 10k and 100k chunks, run by hand; writes docs/scale-latency.png
    python bench/scale.py --sizes 1000,5000
    python bench/scale.py --synthetic 1000000   # a 1M-chunk probe: synthetic chunks written straight to the store

Ingest throughput against bare `encode` is measured on real articles (the news eval set beside
the project, else corpus/), as in bench/benchmark.py. Embedding runs at ~25-45 chunks/s here, so
the large indexes are built from generated articles instead: sentences of the sample article and
sentences made from word lists, recombined (realistic vocabulary and sentence length). A chunk's
vector is the normalised mean of its sentences' model vectors; each distinct sentence is encoded
once and cached. Everything else is the real pipeline: corpus reading and cleaning, the real
tokenizer and splitter, `sync` writing to embedded Chroma (chunks, titles and the `sentences`
collection, one vector per sentence, as `python -m assistant ingest` writes them), and for serving
a fresh process that runs `build_assistant`, real searches (model query embedding, HNSW, BM25 over
every chunk, fusion) and real answers (which read the stored sentence vectors). Sentences are
embedded by the shipped reader, chunks and titles by MiniLM, as ingest does. Each size is served
by one process (RSS and PSS), then by two at once on the same index (their PSS together against
one process's: pages they share — the mapped lexical index, libraries — count once).

`--synthetic N` skips the pipeline for a probe past what the corpus reader can build here in an
hour: N chunks of recombined pool sentences with their cached vectors (as above) are written
straight to the store in batches, then the lexical index is built as ingest builds it; serving is
measured the same way. Its figures are labelled synthetic. Generated corpora
(copies of the generated articles: ingest follows no link out of its folder), built indexes and
the vector cache live in bench/out/scale/ (git-ignored) and are reused by later runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
ROOT = Path(__file__).resolve().parents[1]

import numpy as np  # noqa: E402

from assistant.indexing.chunking import chunk_article, make_splitter  # noqa: E402
from assistant.sources.corpus import iter_corpus  # noqa: E402
from assistant.indexing.embeddings import MiniLM  # noqa: E402
from assistant.indexing.store import open_store  # noqa: E402
from assistant.indexing.sync import group_texts, sync  # noqa: E402
from assistant.schema import Article  # noqa: E402
from assistant.text import sentence_spans  # noqa: E402
from benchmark import NEWS, percentile, timed  # noqa: E402

OUT = ROOT / "bench" / "out" / "scale"
SAMPLE = ROOT / "corpus" / "000_15735037f31751e9.txt"
PLOT = ROOT / "docs" / "scale-latency.png"

# Word lists for generated sentences (our own); with the sample's sentences they make the pool.
PLACES = ("Lisbon", "Nairobi", "Osaka", "Quito", "Tallinn", "Hanoi", "Accra", "Bergen", "Cordoba", "Dhaka",
          "Brussels", "Jakarta", "Lagos", "Manila", "Seoul", "Warsaw", "Lima", "Ankara", "Canberra", "Ottawa")
ACTORS = ("the finance ministry", "the central bank", "the port authority", "the energy regulator",
          "the trade commissioner", "the opposition party", "the farmers' union", "the city council",
          "the health agency", "the defence minister", "the auditor general", "the supreme court",
          "the transport department", "the election commission", "the foreign ministry", "the water board",
          "a parliamentary committee", "the customs service", "the housing agency", "the statistics office")
VERBS = ("approved", "rejected", "delayed", "announced", "cut", "raised", "reviewed", "suspended", "extended",
         "proposed", "criticised", "defended", "audited", "expanded", "froze", "cancelled", "published")
OBJECTS = ("a levy on imported steel", "subsidies for rooftop solar", "the budget for rural roads",
           "rules on short-term rentals", "a tender for electric buses", "tariffs on grain exports",
           "a plan for coastal flood barriers", "the pension reform bill", "funding for teacher training",
           "a ban on single-use plastics", "the sale of state telecom shares", "limits on bank bonuses",
           "a treaty on fishing quotas", "the minimum wage increase", "a scheme for affordable housing",
           "emission targets for heavy industry", "a loan from the development bank", "visa rules for students",
           "the licence for a new copper mine", "compensation for drought-hit farmers")
WHENS = ("on Monday", "on Tuesday", "last week", "in March", "after months of talks", "late on Friday",
         "before the summer recess", "despite protests", "ahead of the election", "in a surprise move")
FIGURES = ("by {n} per cent", "to {n} billion dollars", "for {n} months", "affecting {n},000 households",
           "worth {n} million euros", "by {n} points")
OUTLETS = ("Harbour Times", "Plains Daily", "Metro Gazette", "Policy Review", "Capital Wire", "Coast Herald")


def sentence_pool(size: int = 3000) -> list[str]:
    sample = SAMPLE.read_text(encoding="utf-8").split("---", 2)[-1]
    own = [sample[s:e] for s, e in sentence_spans(sample) if len(sample[s:e].split()) >= 6]
    rng, pool = random.Random(100), set()
    while len(pool) < size:
        figure = rng.choice(FIGURES).format(n=rng.randint(2, 95))
        pool.add(f"{rng.choice(ACTORS).capitalize()} in {rng.choice(PLACES)} {rng.choice(VERBS)} "
                 f"{rng.choice(OBJECTS)} {figure} {rng.choice(WHENS)}.")
    return own + sorted(pool)


def write_article(folder: Path, i: int, pool: list[str]) -> None:
    rng = random.Random(i)
    paragraphs = [" ".join(rng.choice(pool) for _ in range(rng.randint(2, 5))) for _ in range(rng.randint(8, 14))]
    title = f"{rng.choice(PLACES)}: {rng.choice(ACTORS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}"
    date = f"{rng.randint(2019, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    body = "\n\n".join(paragraphs)
    (folder / f"{i:06d}.md").write_text(
        f'---\ntitle: "{title}"\nsource: "{rng.choice(OUTLETS)}"\ndate: "{date}"\n'
        f'url: "https://example.org/{i}"\n---\n\n{body}\n', encoding="utf-8")


class SentenceVectors:
    """The embedder interface `sync` uses, with a chunk's vector made from cached sentence vectors
    (normalised mean); the real tokenizer still sizes the chunks."""

    def __init__(self, model, pool: list[str]):
        self.model = model
        self.model_id = model.model_id
        key = hashlib.sha256("\n".join([self.model_id, *pool]).encode()).hexdigest()[:12]
        cache = OUT / f"sentences-{key}.npy"
        if cache.exists():
            vectors = np.load(cache)
        else:
            print(f"encoding {len(pool)} pool sentences once (cached in {cache.relative_to(ROOT)})", flush=True)
            vectors = model.encode(pool).astype(np.float32)
            np.save(cache, vectors)
        self.vectors = dict(zip(pool, vectors))
        self.dimension = vectors.shape[1]
        self.count_tokens = getattr(model, "count_tokens", None)
        self.encoded = 0  # texts asked for: what a real ingest would run through the model

    def encode(self, texts, progress: bool = False) -> np.ndarray:
        self.encoded += len(texts)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            found = [self.vectors[text[s:e]] for s, e in sentence_spans(text) if text[s:e] in self.vectors]
            if found:
                vector = np.mean(found, axis=0)
            else:  # a title, or a cut sentence alone: a fixed pseudo-random direction
                seed = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
                vector = np.random.default_rng(seed).standard_normal(self.dimension)
            out[row] = vector / np.linalg.norm(vector)
        return out


def corpus_view(size: int, pool: list[str], splitter) -> tuple[Path, int]:
    """A folder of copies of as many generated articles as make about `size` chunks (copies:
    ingest skips links that lead out of the corpus folder)."""
    articles = OUT / "articles"
    articles.mkdir(parents=True, exist_ok=True)
    probe = 100
    for i in range(probe):
        if not (articles / f"{i:06d}.md").exists():
            write_article(articles, i, pool)
    per_article = np.mean([len(chunk_article(a, splitter)) for a in iter_corpus(articles) if isinstance(a, Article)
                           and int(a.article_id[:6]) < probe])
    count = max(1, round(size / per_article))
    for i in range(count):
        if not (articles / f"{i:06d}.md").exists():
            write_article(articles, i, pool)
    view = OUT / f"corpus-{size}"
    files = list(view.iterdir()) if view.exists() else []
    if len(files) != count or any(f.is_symlink() for f in files):  # links: a view made before ingest refused them
        shutil.rmtree(view, ignore_errors=True)
        view.mkdir()
        for i in range(count):
            shutil.copy(articles / f"{i:06d}.md", view / f"{i:06d}.md")
    return view, count


def real_text_ingest(model: MiniLM, articles: int) -> dict:
    """Ingest vs bare encode of the same texts, and re-ingest, on real articles."""
    source = NEWS / "corpus" if NEWS.exists() else ROOT / "corpus"
    work = Path(tempfile.mkdtemp(prefix="pd-scale-"))
    try:
        corpus = work / "corpus"
        corpus.mkdir()
        for path in sorted(p for p in source.iterdir() if p.is_file())[:articles]:
            shutil.copy(path, corpus / path.name)  # a copy: ingest follows no link out of its folder
        loaded = [a for a in iter_corpus(corpus) if isinstance(a, Article)]
        splitter = make_splitter(model.count_tokens)
        # Everything ingest embeds: each chunk with its title, each title, each distinct sentence.
        texts, _ = group_texts([(a, chunk_article(a, splitter)) for a in loaded])
        bare_s, _ = timed(lambda: model.encode(texts))
        store = open_store(work / "index", model)
        ingest_s, report = timed(lambda: sync(corpus, store, model, progress=False))
        reingest_s, again = timed(lambda: sync(corpus, store, model, progress=False))
        assert report.chunks_written and not again.changed
        return {"real_articles": len(loaded), "real_chunks": report.chunks_written, "real_texts": len(texts),
                "bare_encode_per_s": round(len(texts) / bare_s, 1), "ingest_per_s": round(len(texts) / ingest_s, 1),
                "ingest_vs_bare_encode": round(bare_s / ingest_s, 3), "real_reingest_s": round(reingest_s, 3),
                "real_reingest_speedup": round(ingest_s / reingest_s, 1), "source": str(source)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def build_index(size: int, corpus: Path, embedder: SentenceVectors, reader: SentenceVectors, rebuild: bool) -> dict:
    """The index for `size` (cached), then a timed re-ingest of the unchanged corpus (which
    also migrates an index built by an earlier version, once: reported)."""
    index, meta_path = OUT / f"index-{size}", OUT / f"index-{size}.json"
    if rebuild or "sentence_model" not in (json.loads(meta_path.read_text()) if meta_path.exists() else {}):
        shutil.rmtree(index, ignore_errors=True)
        print(f"building the {size:,}-chunk index (pipeline with cached vectors)…", flush=True)
        store, before = open_store(index, embedder), embedder.encoded + reader.encoded
        build_s, report = timed(lambda: sync(corpus, store, embedder, progress=False, sentences=reader))
        sentences = sum(len(v) for v in store.sentence_vectors([c.chunk_id for c in store.all_chunks()]).values())
        meta_path.write_text(json.dumps({"chunks": report.chunks_written, "articles": len(report.added),
                                         "sentences": sentences, "sentence_model": reader.model_id,
                                         "texts_embedded": embedder.encoded + reader.encoded - before,
                                         "build_s": round(build_s, 1)}))
    meta = json.loads(meta_path.read_text())
    reingest_s, again = timed(lambda: sync(corpus, open_store(index, embedder), embedder, progress=False,
                                           sentences=reader))
    assert not again.changed, again.summary()
    # Then an ingest that changes one article, as a desk's next ingest does: the serving probes
    # that follow are the first starts after it (and it times the lexical index's rebuild).
    touched = sorted(corpus.iterdir())[0]
    touched.write_text(touched.read_text(encoding="utf-8").rstrip("\n") + " The council met again.\n", encoding="utf-8")
    update_s, changed = timed(lambda: sync(corpus, open_store(index, embedder), embedder, progress=False,
                                           sentences=reader))
    assert changed.updated == [touched.name], changed.summary()
    return {**meta, "index": index, "reingest_s": round(reingest_s, 2), "migrated": again.migrated,
            "one_article_update_s": round(update_s, 1)}


def build_synthetic(size: int, pool: list[str], embedder: SentenceVectors, reader: SentenceVectors) -> dict:
    """A `size`-chunk index written straight to the store (no corpus reading, chunking or
    model): chunks of 6-10 pool sentences, vectors from the cached pool vectors, then the
    lexical index as ingest builds it. Cached in bench/out/scale/synthetic-<size>."""
    from assistant.indexing import lexical
    from assistant.schema import Chunk

    index, meta_path = OUT / f"synthetic-{size}", OUT / f"synthetic-{size}.json"
    if meta_path.exists():
        return {**json.loads(meta_path.read_text()), "index": index}
    shutil.rmtree(index, ignore_errors=True)
    store = open_store(index, embedder)
    rng = random.Random(size)
    per_article, started, sentences = 5, time.perf_counter(), 0
    batch: list[tuple] = []
    for a in range(size // per_article):
        title = f"{rng.choice(PLACES)}: {rng.choice(ACTORS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}"
        date = f"{rng.randint(2019, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        source, article_id = rng.choice(OUTLETS), f"synthetic/{a:07d}.md"
        parts = [[rng.choice(pool) for _ in range(rng.randint(6, 10))] for _ in range(per_article)]
        texts = [" ".join(p) for p in parts]
        text = "\n\n".join(texts)
        digest = hashlib.sha256(text.encode()).hexdigest()
        chunks, offset, spans = [], 0, []
        for i, (part, chunk_text) in enumerate(zip(parts, texts)):
            chunks.append(Chunk(f"{article_id}:{digest[:16]}:{offset}", article_id, chunk_text, offset,
                                offset + len(chunk_text), title=title, source=source, date=date,
                                url=f"https://example.org/s/{a}", content_hash=digest))
            at, rows = 0, []
            for sentence in part:
                rows.append((at, at + len(sentence), reader.vectors[sentence]))
                at += len(sentence) + 1
            spans.append(rows)
            sentences += len(rows)
            offset += len(chunk_text) + 2
        vectors = np.stack([np.mean([embedder.vectors[t] for t in part], axis=0) for part in parts])
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        article = Article(article_id=article_id, title=title, text=text, source=source, date=date,
                          url=f"https://example.org/s/{a}", content_hash=digest)
        batch.append((article, chunks, vectors, embedder.encode([title])[0], spans))
        if len(batch) * per_article >= 2000:
            store.write_articles(batch, sentence_model=reader.model_id)
            batch = []
            if a % 20000 < 400:
                print(f"  {(a + 1) * per_article:,} chunks written ({time.perf_counter() - started:.0f} s)", flush=True)
    if batch:
        store.write_articles(batch, sentence_model=reader.model_id)
    written_s = time.perf_counter() - started
    generation = "synthetic"
    lexical_s, _ = timed(lambda: lexical.prepare(store, generation))
    store.mark_changed(generation)
    meta = {"chunks": store.chunk_count(), "articles": size // per_article, "sentences": sentences,
            "sentence_model": reader.model_id, "write_s": round(written_s), "lexical_build_s": round(lexical_s)}
    meta_path.write_text(json.dumps(meta))
    return {**meta, "index": index}


def serve_probe(index: Path, queries: int) -> dict:
    """Run in a fresh process: ready time, query latency and memory of an assistant on `index`."""
    started = time.perf_counter()
    from assistant.config import Settings
    from assistant.wiring import build_assistant
    import gradio  # noqa: F401  (the app process holds it too; counted in its memory)

    imported = time.perf_counter()
    assistant = build_assistant(Settings.of(index_dir=index))  # one torch thread, as the server
    built = time.perf_counter()
    assert assistant.store.version() == assistant.retriever.version
    rng = random.Random(7)
    questions = [f"What did {rng.choice(ACTORS)} in {rng.choice(PLACES)} decide about {rng.choice(OBJECTS)}?"
                 for _ in range(queries + 1)]
    assistant.search(questions[0])
    ready = time.perf_counter()
    search_ms, embed_ms, ask_ms = [], [], []
    for q in questions[1:]:
        embed_ms.append(timed(lambda: assistant.retriever.embedder.encode([q]))[0] * 1000)
        search_ms.append(timed(lambda: assistant.search(q))[0] * 1000)
        ask_ms.append(timed(lambda: assistant.ask(q))[0] * 1000)  # reads the stored sentence vectors
    answered = sum(not assistant.ask(q).refused for q in questions[1:11])
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {"chunks": assistant.retriever.chunk_count, "import_s": round(imported - started, 2),
            "build_assistant_s": round(built - imported, 2),
            "first_query_s": round(ready - built, 2), "ready_s": round(ready - imported, 2),
            "search_p50_ms": round(percentile(search_ms, 50), 1), "search_p95_ms": round(percentile(search_ms, 95), 1),
            "query_embed_p50_ms": round(percentile(embed_ms, 50), 1),
            "ask_p50_ms": round(percentile(ask_ms, 50), 1), "ask_p95_ms": round(percentile(ask_ms, 95), 1),
            "answered_of_10": answered,
            "rss_mb": int(status["VmRSS"].split()[0]) // 1024, "peak_rss_mb": int(status["VmHWM"].split()[0]) // 1024,
            **memory(os.getpid())}


def memory(pid: int) -> dict:
    """RSS and PSS (shared pages split between the processes that map them) of `pid`, in MB."""
    rollup = {line.split(":")[0]: int(line.split()[1]) for line in
              Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]}
    return {"rss_now_mb": rollup["Rss"] // 1024, "pss_mb": rollup["Pss"] // 1024,
            "anon_mb": rollup["Anonymous"] // 1024,  # the process's own: heap, models, Chroma's vector index
            "file_mb": (rollup["Rss"] - rollup["Anonymous"]) // 1024}  # mapped files: libraries, the lexical index


def serve(index: Path, queries: int, env: dict) -> dict:
    """One serving process on `index`: its figures."""
    done = subprocess.run([sys.executable, __file__, "--probe", str(index), "--queries", str(queries)],
                          env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the serving probe failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def serve_two(index: Path, queries: int, env: dict) -> dict:
    """Two serving processes on `index` at once: each answers, then holds while both are
    measured (their RSS and PSS together)."""
    procs = [subprocess.Popen([sys.executable, __file__, "--probe", str(index), "--queries", str(queries), "--hold"],
                              env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        figures = [json.loads(p.stdout.readline()) for p in procs]
        both = [memory(p.pid) for p in procs]
    finally:
        for p in procs:
            p.stdin.close()
            p.wait(timeout=60)
    return {"two_rss_mb": sum(m["rss_now_mb"] for m in both), "two_pss_mb": sum(m["pss_mb"] for m in both),
            "two_ready_s": max(f["ready_s"] for f in figures), "two_search_p95_ms": max(f["search_p95_ms"] for f in figures)}


GOALS = {100_000: {"rss_mb": 1200, "ready_s": 5, "search_p95_ms": 60, "ask_p95_ms": 100},
         1_000_000: {"rss_mb": 2500, "ready_s": 10, "search_p95_ms": 150, "ask_p95_ms": 250}}
TWO_PROCESSES_GOAL = 1.6  # two processes' memory together, against one process's RSS


def goals(chunks: int) -> dict:
    return GOALS[100_000] if chunks < 500_000 else GOALS[1_000_000]


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["chunks"] for r in rows]
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(12, 3.5))
    left.plot(sizes, [r["search_p95_ms"] for r in rows], "o-", label="search p95")
    left.plot(sizes, [r["ask_p95_ms"] for r in rows], "s-", label="answer p95")
    left.set(xscale="log", xlabel="chunks in the index", ylabel="ms", ylim=(0, None), title="Latency (one client)")
    middle.plot(sizes, [r["ready_first_start_s"] for r in rows], "s--", label="first start after an ingest")
    middle.plot(sizes, [r["ready_s"] for r in rows], "o-", label="next start")
    middle.set(xscale="log", xlabel="chunks in the index", ylabel="seconds", ylim=(0, None), title="App ready")
    right.plot(sizes, [r["rss_mb"] for r in rows], "o-", label="one process (RSS)")
    right.plot(sizes, [r["two_pss_mb"] for r in rows], "s-", label="two processes (PSS, together)")
    right.set(xscale="log", xlabel="chunks in the index", ylabel="MB", ylim=(0, None), title="App memory")
    for axis, key in ((left, "search_p95_ms"), (middle, "ready_s"), (right, "rss_mb")):
        marks = sorted({(r["chunks"], goals(r["chunks"])[key]) for r in rows if r["chunks"] >= 50_000})
        if marks:
            axis.plot([m[0] for m in marks], [m[1] for m in marks], "k_", ms=16, mew=2, label="goal")
            axis.set_ylim(0, max(axis.get_ylim()[1], 1.1 * max(m[1] for m in marks)))
        axis.legend(fontsize=8)
    synthetic = [r["chunks"] for r in rows if r.get("synthetic")]
    if synthetic:
        fig.suptitle(f"{', '.join(f'{n:,}' for n in synthetic)} chunks: synthetic text and vectors", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def serve_row(index: Path, queries: int) -> dict:
    """Serving figures on `index`: a start right after the ingest, a second start, then two
    processes at once."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    first, served = serve(index, queries, env), serve(index, queries, env)
    two = serve_two(index, queries, env)
    return {**served, "ready_first_start_s": first["ready_s"], **two,
            "two_vs_one": round(two["two_pss_mb"] / served["rss_mb"], 2),
            "two_rss_vs_one": round(two["two_rss_mb"] / served["rss_mb"], 2)}


def report(row: dict, label: str) -> None:
    goal = goals(row["chunks"])
    print(f"{row['chunks']:>9,} chunks{label}: search p50 {row['search_p50_ms']} / p95 {row['search_p95_ms']} ms "
          f"(goal ≤ {goal['search_p95_ms']}), answer p50 {row['ask_p50_ms']} / p95 {row['ask_p95_ms']} ms "
          f"(goal ≤ {goal['ask_p95_ms']}; {row['answered_of_10']}/10 answered), answer/search p50 "
          f"{row['ask_p50_ms'] / row['search_p50_ms']:.2f}x | ready {row['ready_first_start_s']} s after the ingest, "
          f"{row['ready_s']} s next start (goal ≤ {goal['ready_s']}) | RSS {row['rss_mb']} MB (peak "
          f"{row['peak_rss_mb']}; goal ≤ {goal['rss_mb']}) | two processes: PSS {row['two_pss_mb']} MB = "
          f"{row['two_vs_one']}x one process's RSS (goal ≤ {TWO_PROCESSES_GOAL}; RSS {row['two_rss_mb']} MB, "
          f"{row['two_rss_vs_one']}x) | load average {row['load_avg_1m']} on {os.cpu_count()} cores", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1k chunks only, fewer real articles (for CI)")
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated chunk counts")
    parser.add_argument("--synthetic", type=int, default=0, help="also a synthetic probe of this many chunks")
    parser.add_argument("--real-articles", type=int, default=40, help="real articles for the ingest ratio")
    parser.add_argument("--queries", type=int, default=100, help="timed queries per size")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached indexes")
    parser.add_argument("--plot", type=Path, default=None, help=f"latency-vs-size PNG (default {PLOT} for 2+ sizes)")
    parser.add_argument("--probe", type=Path, help=argparse.SUPPRESS)  # internal: the serving process
    parser.add_argument("--hold", action="store_true", help=argparse.SUPPRESS)  # internal: wait to be measured
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(serve_probe(args.probe, args.queries)), flush=True)
        if args.hold:
            sys.stdin.read()  # until the parent has measured both processes
        return
    sizes = [1000] if args.quick else [int(s) for s in args.sizes.split(",") if s]
    OUT.mkdir(parents=True, exist_ok=True)

    from assistant.indexing.sentence_model import SentenceModel

    model = MiniLM(threads=None)  # ingest: every core
    model.encode(["warm up the model"] * 32)
    real = real_text_ingest(model, 12 if args.quick else args.real_articles) if sizes else None
    if real:
        print(f"real text ({real['real_articles']} articles, {real['real_chunks']} chunks, {real['real_texts']} texts "
              f"embedded: chunks, titles, sentences): ingest "
              f"{real['ingest_per_s']} texts/s vs bare encode {real['bare_encode_per_s']} → ratio "
              f"{real['ingest_vs_bare_encode']} (goal ≥ 0.85); re-ingest {real['real_reingest_s']} s, "
              f"{real['real_reingest_speedup']}× faster (load average {os.getloadavg()[0]:.2f} on "
              f"{os.cpu_count()} cores: other work on the machine skews every figure)", flush=True)

    pool = sentence_pool()
    embedder = SentenceVectors(model, pool)
    reader = SentenceVectors(SentenceModel(None, model, threads=None), pool)  # the shipped reader, as ingest
    splitter = make_splitter(model.count_tokens)
    rows = []
    for size in sizes:
        corpus, articles = corpus_view(size, pool, splitter)
        built = build_index(size, corpus, embedder, reader, args.rebuild)
        # A first ingest embeds every chunk, title and distinct sentence at the measured real rate;
        # the pipeline's own cost is the cached-vector build.
        first_s = built["build_s"] + built["texts_embedded"] / real["ingest_per_s"]
        row = {"size": size, "articles": built["articles"], "sentences": built["sentences"],
               "pipeline_build_s": built["build_s"], "first_ingest_est_s": round(first_s),
               "reingest_s": built["reingest_s"], "reingest_speedup": round(first_s / built["reingest_s"], 1),
               "one_article_update_s": built["one_article_update_s"],
               "migrated": built["migrated"], **serve_row(built["index"], args.queries),
               "load_avg_1m": round(os.getloadavg()[0], 2)}
        rows.append(row)
        report(row, f" ({articles:,} articles, {row['sentences']:,} sentences)")
        print(f"{'':>9} re-ingest of the unchanged corpus {row['reingest_s']} s vs first ingest "
              f"~{row['first_ingest_est_s']} s → {row['reingest_speedup']}×; an ingest that updates one article "
              f"{row['one_article_update_s']} s (the lexical index rebuilt whole)"
              + (f"; it moved {row['migrated']:,} passages' sentence vectors from an earlier index" if row["migrated"] else ""),
              flush=True)
    if args.synthetic:
        print(f"building the synthetic {args.synthetic:,}-chunk index (written straight to the store)…", flush=True)
        built = build_synthetic(args.synthetic, pool, embedder, reader)
        row = {"size": args.synthetic, "synthetic": True, "articles": built["articles"], "sentences": built["sentences"],
               "write_s": built["write_s"], "lexical_build_s": built["lexical_build_s"],
               **serve_row(built["index"], args.queries), "load_avg_1m": round(os.getloadavg()[0], 2)}
        rows.append(row)
        report(row, f" (SYNTHETIC text and vectors; {row['sentences']:,} sentences; written in {row['write_s']} s, "
                    f"lexical index built in {row['lexical_build_s']} s)")
    print(json.dumps({"real_text": real, "sizes": rows}))
    target = args.plot or (PLOT if len(rows) > 1 else None)
    if target:
        plot(rows, target)
        print(f"plot: {target}")


if __name__ == "__main__":
    main()
