"""Synthetic training questions written by a language model from the corpus's own sentences.

    python -m assistant.tuning.synth --corpus DIR --before 2022-08-01 --index DIR \\
        --llm gguf:PATH --out FILE [--limit N] [--threads 1] [--parallel 2]

1. The articles dated (by file name) before `--before` are staged in `INDEX/corpus` and indexed
   by the project's own ingest into `INDEX/index`; later articles are never read.
2. A few informative sentences per article (`sentences.pick_sentences`) are put to the model
   several at a time, with the title; per sentence it names the fact and writes the question a
   reader would type; per prompt it adds near misses: questions about the same people or event
   that the article does not answer (`questions.py`).
3. Optionally (`--check`), a second prompt asks the model the other way round which sentence
   answers each question (0: none).
4. A question is kept when it passes the copy and length filters, its stated answer lies in a
   sentence of the prompt (it is then that sentence's question), the check (if asked) names that
   sentence, and the project's retrieval finds that sentence's passage in the top 5 (the round trip). A
   near miss is kept when it passes the same filters, asks for something specific the article
   never mentions (not the same thing reworded), the check (if asked) says no sentence answers
   it, and retrieval finds its article in the top 5.
5. Each prompt's records are appended to `--out` (and its sentences to the attempted log) as
   soon as it is done: a killed run continues where it stopped (`cache.py`).

Records hold questions and where their source sentence is (`article_id`, `start`, `end` in the
cleaned article text, a short sha1 of the sentence), never article text.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import random
import shutil
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from ..config import Settings, load_settings
from ..errors import AssistantError
from ..indexing.embeddings import MiniLM
from ..indexing.store import open_store
from ..indexing.sync import ingest
from ..retrieval.hybrid import Retriever
from ..schema import Article
from ..sources.corpus import iter_corpus
from ..text import content_words, stemmed_terms

from .cache import Cache, question_key
from .questions import (PROMPT_VERSION, Item, build_messages, check_messages, check_schema, parse_check,
                        parse_reply, reject_reason, reply_schema, words)
from .sentences import Source, files_before, name_date, pick_sentences
from .writer import Writer, open_writer

TOP_K = 5
MIN_ANSWER_SHARE = 0.75  # of the stated answer's words found in a sentence: the question is that sentence's
# A near miss must ask for something specific the article never mentions: a figure, or a term
# found in at most this share of the index's passages ("ticket", not "time" or "name").
RARE_SHARE = 0.02
CLOSE_TO_QUESTION = 0.5  # word-set Jaccard of a near miss with a question of its prompt


# --- the round-trip index -------------------------------------------------------------------


def stage_corpus(files: list[Path], stage: Path) -> None:
    """Make `stage` hold exactly `files` (hard links where the disk allows, else copies)."""
    stage.mkdir(parents=True, exist_ok=True)
    wanted = {f.name: f for f in files}
    for old in stage.iterdir():
        if old.name not in wanted:
            old.unlink() if old.is_file() or old.is_symlink() else shutil.rmtree(old)
    for name, src in wanted.items():
        dst = stage / name
        if dst.is_file() and dst.read_bytes() == src.read_bytes():
            continue
        dst.unlink(missing_ok=True)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)


def build_retriever(corpus_dir: Path, before: str, index_dir: Path, embedder: MiniLM,
                    progress: bool = True) -> tuple[Retriever, Path]:
    """Index the articles dated before `before` with the project's ingest (`index_dir/corpus`
    staged, `index_dir/index` the Chroma index; unchanged articles are skipped) and return the
    retriever over it and the staged folder.

    Raises:
        AssistantError: no article is dated before the cutoff, or the index holds a later one.
    """
    files = files_before(corpus_dir, before)
    if not files:
        raise AssistantError(f"no article in {corpus_dir} is dated (by its file name) before {before}")
    stage, chroma = index_dir / "corpus", index_dir / "index"
    stage_corpus(files, stage)
    ingest(Settings.of(corpus_dir=stage, index_dir=chroma), embedder, progress=progress)
    retriever = Retriever(open_store(chroma, embedder, create=False), embedder)
    late = sorted({c.article_id for c in retriever.iter_chunks() if not name_date(c.article_id) < before})
    if late:
        raise AssistantError(f"the index in {chroma} holds articles dated {before} or later: {late[:3]}")
    return retriever, stage


class RoundTrip:
    """Whether the project's retrieval finds a question's source: the passage holding its
    sentence, or (near misses) any passage of its article, in the top `k`."""

    def __init__(self, retriever: Retriever, k: int = TOP_K):
        self.retriever = retriever
        self.k = k
        self.chunks = defaultdict(list)
        for c in retriever.iter_chunks():
            self.chunks[c.article_id].append(c)
        n = retriever.chunk_count
        df = RARE_SHARE * n
        self.rare_idf = math.log(1 + (n - df + 0.5) / (df + 0.5))  # BM25's idf at that share (retrieve.Lexical)

    def specific(self, term: str) -> bool:
        """A figure, or a (stemmed) term rare in the indexed passages."""
        return any(ch.isdigit() for ch in term) or self.retriever.idf(term) >= self.rare_idf

    def source_chunks(self, source: Source) -> set[str]:
        """The passages holding most of the sentence (passages overlap; a long sentence may
        straddle two)."""
        need = (source.end - source.start) / 2
        return {c.chunk_id for c in self.chunks[source.article_id]
                if min(c.end, source.end) - max(c.start, source.start) >= need}

    def find(self, question: str, chunk_ids: set[str] | None = None, article_id: str = "") -> tuple[int, str] | None:
        """(rank, chunk id) of the first retrieved passage among `chunk_ids` (or of
        `article_id`), or None."""
        for hit in self.retriever.search(question, k=self.k):
            if (chunk_ids is not None and hit.chunk.chunk_id in chunk_ids) or hit.chunk.article_id == article_id:
                return hit.rank, hit.chunk.chunk_id
        return None


# --- the plan: prompts in a resumable, seeded order -----------------------------------------


@dataclass(frozen=True)
class Job:
    article: Article
    sources: tuple[Source, ...]

    @property
    def seed(self) -> int:
        return int(hashlib.sha1(self.sources[0].key.encode("utf-8")).hexdigest()[:8], 16)

    def texts(self) -> list[str]:
        return [self.article.text[s.start:s.end] for s in self.sources]


def plan(articles: list[Article], attempted: set[str], per_article: int, batch: int, seed: int = 0) -> list[Job]:
    """The prompts still to ask: each article's picked sentences not yet attempted, `batch` to a
    prompt, in rounds (every article's first prompt, then every second one…) so that a partial
    run covers all articles; articles in a seeded order within a round."""
    order = sorted(articles, key=lambda a: a.article_id)
    random.Random(seed).shuffle(order)
    jobs = []
    for rank, article in enumerate(order):
        todo = [s for s in pick_sentences(article, per_article, seed) if s.key not in attempted]
        for r, i in enumerate(range(0, len(todo), batch)):
            jobs.append(((r, rank), Job(article, tuple(todo[i:i + batch]))))
    return [job for _, job in sorted(jobs, key=lambda x: x[0])]


# --- one prompt's reply → records -----------------------------------------------------------


def locate_answer(answer: str, sentences: list[str], numbered: int) -> int | None:
    """The index of the sentence holding the model's stated answer (most of its words), the
    numbered one first on a tie; None when no sentence does."""
    asked = set(words(answer))
    if not asked:
        return None
    shares = [len(asked & set(words(s))) / len(asked) for s in sentences]
    best = max(range(len(sentences)), key=lambda i: (shares[i], i == numbered))
    return best if shares[best] >= MIN_ANSWER_SHARE else None


def _jaccard(a: str, b: str) -> float:
    x, y = set(words(a)), set(words(b))
    return len(x & y) / len(x | y) if x | y else 0.0


def record_id(kind: str, article_id: str, where: str, question: str) -> str:
    return hashlib.sha1(f"{kind}\0{article_id}\0{where}\0{question_key(question)}".encode("utf-8")).hexdigest()[:16]


@dataclass
class Tally:
    """What became of the questions of a run."""

    prompts: int = 0
    errors: int = 0
    sentences: int = 0
    answerable: int = 0
    near_miss: int = 0
    reasons: Counter = field(default_factory=Counter)  # "answerable:copy", "near_miss:round_trip", …
    ranks: Counter = field(default_factory=Counter)


@dataclass(frozen=True)
class Draft:
    """A prompt's reply, parsed, and the check's verdicts: {question: the sentence number that
    answers it, 0 for none} (None when no check was asked)."""

    items: list[Item]
    misses: list[str]
    verdicts: dict[str, int] | None
    seconds: float = 0.0


def ask(writer: Writer, job: Job, near: int = 2, temperature: float = 0.6, check: bool = False) -> Draft:
    """The model's questions for a job, then (with `check`) its answer to which sentence answers
    each, the questions in a seeded order (their order in the reply would hint at the answer)."""
    start = time.monotonic()
    texts = job.texts()
    reply = writer.complete(build_messages(job.article.title, texts, near), seed=job.seed,
                            temperature=temperature, max_tokens=60 + 70 * len(texts) + 40 * near,
                            schema=reply_schema(len(texts), near))
    items, misses = parse_reply(reply, len(texts))
    verdicts = None
    questions = list(dict.fromkeys([i.question for i in items] + misses))[:26]
    if check and questions:
        random.Random(job.seed).shuffle(questions)
        answer = writer.complete(check_messages(texts, questions), seed=job.seed, temperature=0.0,
                                 max_tokens=20 + 16 * len(questions), schema=check_schema(len(texts), len(questions)))
        verdicts = parse_check(answer, questions)
    return Draft(items, misses, verdicts, time.monotonic() - start)


def judge(job: Job, draft: Draft, round_trip: RoundTrip, cache: Cache, model: str, tally: Tally) -> tuple[list[dict], dict]:
    """The records a draft yields and the attempt line for the log."""
    texts = job.texts()
    items, misses = draft.items, draft.misses
    records: list[dict] = []
    outcome = {i: "missing" for i in range(len(texts))}  # per sentence: "kept" or why not
    seen = set(cache.questions)

    def reject(kind: str, reason: str, i: int | None = None) -> None:
        tally.reasons[f"{kind}:{reason}"] += 1
        if i is not None and outcome[i] != "kept":
            outcome[i] = reason

    def keep(record: dict) -> None:
        seen.add(question_key(record["question"]))
        records.append({**record, "model": model, "prompt_version": PROMPT_VERSION})

    for item in items:
        # The question belongs to the sentence holding its stated answer (usually the numbered
        # one); an answer the question already holds ("where is the volcano" → "the volcano") is none.
        i = locate_answer(item.answer, texts, item.n - 1)
        if i is not None and not set(content_words(item.answer)) - set(content_words(item.question)):
            i = None
        reason = "answer" if i is None else (reject_reason(item.question, texts)
                                             or ("duplicate" if question_key(item.question) in seen else ""))
        if not reason and draft.verdicts is not None and draft.verdicts.get(item.question) != i + 1:
            reason = "check"
        found = None if reason else round_trip.find(item.question, round_trip.source_chunks(job.sources[i]))
        if reason or found is None:
            reject("answerable", reason or "round_trip", item.n - 1 if i is None else i)
            continue
        source = job.sources[i]
        outcome[i] = "kept"
        tally.answerable += 1
        tally.ranks[found[0]] += 1
        keep({"id": record_id("answerable", source.article_id, f"{source.start}-{source.end}", item.question),
              "kind": "answerable", "question": item.question, "article_id": source.article_id,
              "start": source.start, "end": source.end, "sentence_sha1": source.sha1,
              "chunk_id": found[1], "retrieval_rank": found[0]})
    article_terms = stemmed_terms(f"{job.article.title}\n{job.article.text}")
    for miss in misses:
        # On the article's topic (retrieval finds it), asking for something specific the article
        # never mentions; one that mostly repeats a question of the prompt (the model's usual
        # slip: a synonym swapped in) must change a figure.
        reason = reject_reason(miss, texts)
        if not reason and question_key(miss) in seen:
            reason = "duplicate"
        if not reason:
            new = [t for t in stemmed_terms(miss) - article_terms if round_trip.specific(t)]
            if any(_jaccard(miss, item.question) >= CLOSE_TO_QUESTION for item in items):
                new = [t for t in new if any(ch.isdigit() for ch in t)]
            if not new:
                reason = "nothing_new"
        if not reason and draft.verdicts is not None and draft.verdicts.get(miss) != 0:
            reason = "check"
        found = None if reason else round_trip.find(miss, article_id=job.article.article_id)
        if reason or found is None:
            reject("near_miss", reason or "round_trip")
            continue
        tally.near_miss += 1
        keep({"id": record_id("near_miss", job.article.article_id, job.sources[0].key, miss),
              "kind": "near_miss", "question": miss, "article_id": job.article.article_id,
              "start": None, "end": None, "sentence_sha1": None, "chunk_id": found[1], "retrieval_rank": found[0],
              # the sentences it was written beside: none of them answers it (hard negatives)
              "context": [[s.start, s.end, s.sha1] for s in job.sources]})
    tally.reasons["answerable:missing"] += sum(r == "missing" for r in outcome.values())
    attempt = {"article_id": job.article.article_id,
               "sentences": [[s.start, s.end, s.sha1, outcome[i]] for i, s in enumerate(job.sources)],
               "near_misses_kept": sum(r["kind"] == "near_miss" for r in records),
               "model": model, "prompt_version": PROMPT_VERSION}
    return records, attempt


# --- the run --------------------------------------------------------------------------------


def run(jobs: list[Job], writer: Writer, round_trip: RoundTrip, cache: Cache, *, parallel: int = 1,
        near: int = 2, temperature: float = 0.6, check: bool = False, progress: bool = True,
        stop: Callable[[Tally], bool] | None = None) -> Tally:
    """Ask every job's prompt, `parallel` in flight, and keep each prompt's records as it is done;
    no new prompt once `stop(tally)` says so (those in flight are finished and kept)."""
    tally = Tally()
    pending: dict = {}
    queue = iter(jobs)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=parallel) as pool, \
            tqdm(total=sum(len(j.sources) for j in jobs), unit="sentence", desc="writing questions",
                 disable=not progress, smoothing=0.05) as bar:

        def submit() -> None:
            if stop is not None and stop(tally):
                return
            job = next(queue, None)
            if job is not None:
                pending[pool.submit(ask, writer, job, near, temperature, check)] = job

        for _ in range(parallel):
            submit()
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    job = pending.pop(future)
                    try:
                        draft = future.result()
                    except Exception as exc:  # a timeout or a server error costs this prompt, not the run
                        tally.errors += 1
                        tqdm.write(f"prompt for {job.article.article_id} failed ({type(exc).__name__}: {exc}); "
                                   "it is asked again on the next run")
                    else:
                        records, attempt = judge(job, draft, round_trip, cache, writer.model, tally)
                        attempt["seconds"] = round(draft.seconds, 1)
                        cache.add(records, attempt)
                        tally.prompts += 1
                        tally.sentences += len(job.sources)
                    bar.update(len(job.sources))
                    minutes = (time.monotonic() - started) / 60
                    bar.set_postfix(kept=tally.answerable, near=tally.near_miss,
                                    per_min=f"{(tally.answerable + tally.near_miss) / max(minutes, 1e-9):.1f}")
                    submit()
        finally:
            for future in pending:
                future.cancel()
    return tally


def report(tally: Tally, seconds: float) -> str:
    kept = tally.answerable + tally.near_miss
    minutes = max(seconds / 60, 1e-9)
    lines = [f"{tally.prompts} prompts, {tally.sentences} sentences in {seconds / 60:.1f} min ({tally.errors} failed): "
             f"kept {tally.answerable} answerable ({tally.answerable / max(tally.sentences, 1):.0%} of sentences) "
             f"and {tally.near_miss} near misses; {kept / minutes:.2f} questions/min, "
             f"{tally.sentences / minutes:.2f} sentences/min",
             "rejected: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.reasons.items())),
             "retrieval rank of kept answerable: " + ", ".join(f"{k}: {v}" for k, v in sorted(tally.ranks.items()))]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m assistant.tuning.synth", description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="the corpus folder")
    parser.add_argument("--before", default="2022-08-01", help="use only articles whose file name dates them before this (ISO)")
    parser.add_argument("--index", type=Path, required=True, help="folder for the round-trip index (outside the repo)")
    parser.add_argument("--llm", required=True, help="gguf:<path> or openai:<model>")
    parser.add_argument("--out", type=Path, required=True, help="the JSONL file of questions (appended to)")
    parser.add_argument("--limit", type=int, default=0, help="attempt at most about this many sentences in this run")
    parser.add_argument("--per-article", type=int, default=10, help="sentences picked per article")
    parser.add_argument("--batch", type=int, default=5, help="sentences per prompt")
    parser.add_argument("--near", type=int, default=2, help="near misses asked per prompt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads")
    parser.add_argument("--parallel", type=int, default=1, help="prompts in flight (llama.cpp slots)")
    parser.add_argument("--temperature", type=float, default=0.6)
    # Off by default: on 30 sentences it halved the questions kept (30 % of sentences, not 53 %)
    # and cost a third of the throughput, for no precision we could see by reading them.
    parser.add_argument("--check", action="store_true", help="ask a second prompt which sentence answers each question")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    progress = not args.no_progress
    try:
        embedder = MiniLM(threads=1)
        retriever, stage = build_retriever(args.corpus, args.before, args.index, embedder, progress=progress)
        articles = [a for a in iter_corpus(stage) if isinstance(a, Article)]
        cache = Cache(args.out)
        jobs = plan(articles, cache.attempted, args.per_article, args.batch, args.seed)
        if args.limit:
            kept, total = [], 0
            for job in jobs:
                if total >= args.limit:
                    break
                kept.append(job)
                total += len(job.sources)
            jobs = kept
        print(f"{len(articles)} articles before {args.before}; {len(cache.records)} questions kept so far, "
              f"{len(cache.attempted)} sentences attempted; {sum(len(j.sources) for j in jobs)} sentences "
              f"in {len(jobs)} prompts to go", flush=True)
        if not jobs:
            return 0
        writer = open_writer(args.llm, threads=args.threads, parallel=args.parallel, settings=load_settings().llm)
        started = time.monotonic()
        try:
            tally = run(jobs, writer, RoundTrip(retriever), cache, parallel=args.parallel, near=args.near,
                        check=args.check,
                        temperature=args.temperature, progress=progress)
        finally:
            writer.close()
        print(report(tally, time.monotonic() - started), flush=True)
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
