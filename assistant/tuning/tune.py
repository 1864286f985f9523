"""`python -m assistant tune`: the reader fitted to the owner's own articles.

1. **Questions.** A language model writes questions from informative sentences of the corpus's
   articles, with `synth.py`'s prompts and filters and the round trip through this index's own
   retrieval. They are kept in `<index>/tune/questions.jsonl` as each prompt is done (ids and
   offsets, never article text), so a killed run continues where it stopped.
2. **Fit.** The shipped reader is fine-tuned on them (`train.fit_bi`): a tune adds the owner's
   articles to what it learned (each tune starts from it again, on all the questions so far).
3. **Swap.** The new reader replaces `<index>/reader/` whole, then ingest embeds the sentences
   again with it. A running app switches on its next answer (`indexing.sentence_model`); until
   the sentences are embedded again it embeds an answer's candidates itself.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import Settings
from ..errors import AssistantError
from ..indexing.embeddings import MiniLM
from ..indexing.sentence_model import TUNED, reader_folder
from ..indexing.store import open_index
from ..indexing.sync import ingest
from ..retrieval.hybrid import Retriever
from ..schema import Article
from ..sources.corpus import iter_corpus
from . import synth, train
from .cache import Cache
from .writer import open_writer

QUESTIONS = 300  # answerable questions to fit on (the shipped reader's measured gain came from ~500)
PER_ARTICLE = 5
WORK = "tune"  # the folder under the index directory holding the questions made so far


@dataclass
class TuneReport:
    questions: int
    new_questions: int
    near_misses: int
    examples: int
    started_from: str
    reader: Path
    seconds: dict  # per stage: questions, fit, embed (the sentences again), total
    ingest_summary: str

    def summary(self) -> str:
        s = {k: f"{v / 60:.1f} min" for k, v in self.seconds.items()}
        return (f"{self.questions} questions ({self.new_questions} new this run, {self.near_misses} near misses "
                f"not used for fitting); fitted on {self.examples} from {self.started_from}; "
                f"reader written to {self.reader} in {s['total']} (questions {s['questions']}, "
                f"fitting {s['fit']}, sentences embedded again {s['embed']})\n{self.ingest_summary}")


def default_llm(settings: Settings) -> str:
    """`ASSISTANT_LLM` when it names a model the question writer can drive, else the packaged
    Qwen (joined into models/ by `make llm`)."""
    from ..answering.model_files import packaged_qwen

    if settings.llm.backend.startswith(("gguf:", "openai:")):
        return settings.llm.backend
    return f"gguf:{packaged_qwen()}"


def questions_file(index_dir: Path) -> Path:
    return Path(index_dir) / WORK / "questions.jsonl"


def tune(settings: Settings, llm: str, questions: int = QUESTIONS, *, threads: int = 2, parallel: int = 2,
         epochs: int = 2, per_article: int = PER_ARTICLE, progress: bool = True) -> TuneReport:
    """Make questions until `questions` answerable ones are kept (or every picked sentence was
    tried), fit the reader on them, put it in place and embed the sentences again.

    Raises:
        AssistantError: no index yet, no usable question, or the model cannot be started.
    """
    started = time.monotonic()
    index_dir = Path(settings.storage.index_dir)
    corpus_dir = Path(settings.storage.corpus_dir)
    embedder = MiniLM(threads=None)
    store = open_index(settings.storage, embedder, create=False)
    if store.chunk_count() == 0:
        raise AssistantError(f"the index in {index_dir} is empty: run `python -m assistant ingest` first")
    cache = Cache(questions_file(index_dir))
    had = _answerable(cache.records)
    if had < questions:
        retriever = Retriever(store, embedder)
        articles = [a for a in iter_corpus(corpus_dir) if isinstance(a, Article)]
        jobs = synth.plan(articles, cache.attempted, per_article, batch=5)
        if jobs:
            writer = open_writer(llm, threads=threads, parallel=parallel, settings=settings.llm)
            try:
                synth.run(jobs, writer, synth.RoundTrip(retriever), cache, parallel=parallel, progress=progress,
                          stop=lambda tally: had + tally.answerable >= questions)
            finally:
                writer.close()
    asked = time.monotonic()
    records = Cache(questions_file(index_dir)).records
    examples, tally = train.synthetic_examples(records, corpus_dir, cutoff=None)
    if not examples:
        raise AssistantError(f"no usable question was made from {corpus_dir} ({tally}); "
                             "try a larger model (--llm) or more articles")
    base = reader_folder(None)  # the shipped reader (None: the packaged MiniLM)
    model = train.fit_bi(examples, epochs=epochs, threads=threads, base=str(base) if base else None,
                         progress=progress)
    meta = {"trained_on": {"synthetic_questions": len(examples), "tally": tally, "corpus": str(corpus_dir),
                           "questions_file": str(questions_file(index_dir))},
            "started_from": _name(base), "epochs": epochs, "llm": llm}
    target = index_dir / TUNED
    fresh = index_dir / f"{TUNED}.new"
    shutil.rmtree(fresh, ignore_errors=True)
    train.save(model, "bi", fresh, meta)
    _swap(fresh, target)
    fitted = time.monotonic()
    report = ingest(settings, embedder, progress=progress)  # the sentences, by the new reader
    done = time.monotonic()
    return TuneReport(questions=_answerable(records), new_questions=_answerable(records) - had,
                      near_misses=sum(r.get("kind") == "near_miss" for r in records), examples=len(examples),
                      started_from=_name(base), reader=target, ingest_summary=report.summary(),
                      seconds={"questions": asked - started, "fit": fitted - asked, "embed": done - fitted,
                               "total": done - started})


def _answerable(records: list[dict]) -> int:
    return sum(r.get("kind") == "answerable" for r in records)


def _name(folder: Path | None) -> str:
    return f"the reader in {folder}" if folder else "the packaged all-MiniLM-L6-v2"


def _swap(fresh: Path, target: Path) -> None:
    """Put `fresh` where `target` is, replacing it whole (never a half-written reader in place)."""
    old = target.with_name(f"{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    fresh.rename(target)
    shutil.rmtree(old, ignore_errors=True)
