"""Question → ranked passages: dense search in Chroma and BM25 over the same
chunks, fused by reciprocal rank. Filters (source, date range) apply to both.

The BM25 index is derived from Chroma's chunks (never stored separately), so it
cannot diverge from the vectors; `refresh()` rebuilds it after an ingest.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import re
import shutil
import threading
import time
from datetime import date
from pathlib import Path

import numpy as np

from ..indexing.embeddings import MiniLM
from ..indexing.store import Store, where
from ..schema import Chunk, Filters, Hit
from ..text import RECENT, stem, stemmed_terms, weighted_share

RRF_K = 60  # the constant from Cormack et al. (2009); damps the head of each ranking
CANDIDATES = 50  # per ranking, before fusion
# BM25 counts twice the dense ranking: news questions hinge on names and rare words, where the
# small embedding model is weakest (dev sets: MRR 0.72 → 0.76, recall@10 0.91 → 0.94; docs/retrieval.md).
DENSE_WEIGHT = 0.5
LEXICAL_WEIGHT = 1.0

log = logging.getLogger(__name__)


class Lexical:
    """BM25 over the chunks' title + text (bm25s, Snowball stemming), plus the
    term statistics that tell how much of a question the passages cover."""

    def __init__(self, chunks: list[Chunk], cache_dir: Path | None = None):
        import bm25s
        from bm25s.tokenization import Tokenizer

        self.chunks = chunks
        # Counted once here, so health checks and the page header cost nothing per request.
        self.article_count = len({c.article_id for c in chunks})
        self.sources = sorted({c.source for c in chunks if c.source})
        self.tokenizer = Tokenizer(stopwords="en", stemmer=stem)
        self.bm25 = bm25s.BM25()
        self.df = np.zeros(1)
        if chunks and not self._load(cache_dir):
            ids = self.tokenizer.tokenize([f"{c.title}\n{c.text}" for c in chunks],
                                          return_as="ids", show_progress=False)
            self.bm25.index(ids, show_progress=False)
            self.df = np.bincount(np.concatenate([np.unique(doc) for doc in ids if len(doc)] or [[0]]),
                                  minlength=len(self.tokenizer.get_vocab_dict()))
            self._save(cache_dir)
        self.vocab = self.tokenizer.get_vocab_dict()
        # Each term's weight, computed once: an answer asks for ~800 of them (answer.py's signals).
        n = len(chunks)
        self._idf = {term: float(np.log(1 + (n - df + 0.5) / (df + 0.5)))
                     for term, df in zip(self.vocab, self.df[list(self.vocab.values())].tolist())} if chunks else {}
        self._unseen_idf = float(np.log(1 + (n + 0.5) / 0.5))

    # Building BM25 takes ~10 s at 100k chunks, most of an app's start-up, so it is cached beside
    # the index, named by the chunk ids in order: the same ids are the same texts (chunking.py).
    # The cache is data that cannot run: bm25s's own files (JSON, numpy arrays read with
    # allow_pickle=False), the tokenizer's vocabulary as JSON and `df` as a numpy array. Whoever
    # can write the index folder can make the app rank badly, not run code; a file that does not
    # load, or does not fit these chunks, is rebuilt.
    def _cache(self, cache_dir: Path | None) -> Path | None:
        if cache_dir is None:
            return None
        key = hashlib.sha256("\n".join(c.chunk_id for c in self.chunks).encode("utf-8")).hexdigest()[:24]
        return Path(cache_dir) / f"bm25-{key}"

    def _load(self, cache_dir: Path | None) -> bool:
        import bm25s
        from bm25s.tokenization import Tokenizer

        path = self._cache(cache_dir)
        if path is None or not path.is_dir():
            return False
        try:
            bm25 = bm25s.BM25.load(path, allow_pickle=False, mmap=False, show_progress=False)
            bm25.vocab_dict = {int(k): int(v) for k, v in bm25.vocab_dict.items()}
            bm25.unique_token_ids_set = set(bm25.vocab_dict.values())
            tokenizer = Tokenizer(stopwords="en", stemmer=stem)
            tokenizer.load_vocab(path)
            df = np.load(path / "df.npy", allow_pickle=False)
            vocab = tokenizer.get_vocab_dict()
            if (bm25.scores["num_docs"] != len(self.chunks) or df.ndim != 1 or len(df) != len(vocab)
                    or len(bm25.vocab_dict) != len(vocab) or not all(isinstance(i, int) for i in vocab.values())):
                raise ValueError("the cache does not fit these chunks")
        except Exception as exc:  # damaged, foreign or from another version: rebuild
            log.info("BM25 cache %s not used (%s): rebuilding", path.name, exc)
            return False
        self.bm25, self.tokenizer, self.df = bm25, tokenizer, df
        return True

    def _save(self, cache_dir: Path | None) -> None:
        path = self._cache(cache_dir)
        if path is None:
            return
        partial = path.with_name(f"{path.name}.partial-{os.getpid()}-{threading.get_ident()}")
        try:
            saved = copy.copy(self.bm25)  # indexed from token ids, its vocabulary maps int → int; JSON keys are str
            saved.vocab_dict = {str(k): v for k, v in self.bm25.vocab_dict.items()}
            saved.save(partial, allow_pickle=False, show_progress=False)
            self.tokenizer.save_vocab(partial)
            np.save(partial / "df.npy", self.df, allow_pickle=False)
            if path.exists():  # one that did not load: out of the way first
                path.rename(path.with_name(f"{partial.name}.bad"))
            partial.rename(path)  # atomic: a reader sees a whole cache or none
            for old in path.parent.glob("bm25-*"):  # older and bad caches, and the pickles of earlier versions
                if old != path and (".partial-" not in old.name or old.name.endswith(".bad")):
                    shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
        except OSError:  # a read-only index folder: run without the cache
            shutil.rmtree(partial, ignore_errors=True)

    def search(self, query: str, n: int, filters: Filters) -> list[tuple[Chunk, float]]:
        if not self.chunks:
            return []
        ids = self.tokenizer.tokenize([query], update_vocab=False, return_as="ids", show_progress=False)
        mask = np.array([filters.admits(c) for c in self.chunks], dtype=np.float32) if filters else None
        docs, scores = self.bm25.retrieve(ids, k=min(n, len(self.chunks)), show_progress=False,
                                          weight_mask=mask)
        return [(self.chunks[d], float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]

    def idf(self, term: str) -> float:
        """Rare terms weigh more; a term the corpus never uses weighs most."""
        return self._idf.get(term, self._unseen_idf)

    def coverage(self, question: str, passage: str) -> float:
        """Share of the question's meaning-bearing terms (IDF-weighted) found in the passage;
        words that only say when ("this week", "latest") do not count."""
        asked = stemmed_terms(RECENT.sub(" ", question))
        return weighted_share(asked, asked & stemmed_terms(passage), self.idf)


class Retriever:
    def __init__(self, store: Store, embedder: MiniLM):
        self.store = store
        self.embedder = embedder
        self._refreshing = threading.Lock()
        self.version = store.version()  # read first: a change while the chunks are read shows next time
        self._seen, self._seen_at = self.version, time.monotonic()  # the last version observed, and since when
        self.lexical = Lexical(store.all_chunks(), store.snapshot_dir)

    def refresh(self) -> None:
        """Rebuild the lexical index from the store and swap it in; requests meanwhile use the
        old one (its chunks that are gone by then are skipped in `search`)."""
        with self._refreshing:
            self.store.reopen()
            version = self.store.version()
            lexical = Lexical(self.store.all_chunks(), self.store.snapshot_dir)
            self.lexical, self.version = lexical, version

    def refresh_if_changed(self, settle: float = 60.0) -> bool:
        """Refresh when an ingest has finished since the last build (a new generation), or when the
        chunk count moved without one and then stayed put for `settle` seconds (an ingest that was
        killed, or a long one still running). Returns whether it refreshed."""
        version = self.store.version()
        if version != self._seen:
            self._seen, self._seen_at = version, time.monotonic()
        if version == self.version:
            return False
        if version[0] != self.version[0] or time.monotonic() - self._seen_at >= settle:
            self.refresh()
            return True
        return False

    def watch(self, interval: float, settle: float = 60.0) -> threading.Event:
        """Check the store every `interval` seconds in a daemon thread, refreshing on a change
        (`refresh_if_changed`); set the returned event to stop. The check is two small calls
        to Chroma; the rebuild runs in this thread, never in a request."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(interval):
                try:
                    if self.refresh_if_changed(settle):
                        log.info("the index changed: lexical index rebuilt (%d chunks)", len(self.lexical.chunks))
                except Exception as exc:  # the store did not answer: keep serving, try again later
                    log.warning("checking the index for changes failed: %s", exc)

        threading.Thread(target=loop, name="index-watcher", daemon=True).start()
        return stop

    @property
    def chunk_count(self) -> int:
        return len(self.lexical.chunks)

    def search(self, query: str, k: int = 5, filters: Filters = Filters()) -> list[Hit]:
        """The `k` best passages for `query`, best first, fused from both rankings. A passage
        the lexical index knows but the store no longer holds (an ingest removed it since the
        lexical index was built) is skipped."""
        lexical_index = self.lexical
        vector = self.embedder.encode([query])[0]
        dense = self.store.query(vector, CANDIDATES, where(filters))
        lexical = lexical_index.search(query, CANDIDATES, filters)

        fused: dict[str, float] = {}
        chunks: dict[str, Chunk] = {}
        similarity = {c.chunk_id: sim for c, sim in dense}
        rankings = [(DENSE_WEIGHT, [c for c, _ in dense]), (LEXICAL_WEIGHT, [c for c, _ in lexical])]
        when = time_ranking([c for c, _ in dense + lexical], query, reference_date(filters))
        if when:
            rankings.append((TIME_WEIGHT, when))
        for weight, ranking in rankings:
            for rank, chunk in enumerate(ranking):
                fused[chunk.chunk_id] = fused.get(chunk.chunk_id, 0.0) + weight / (RRF_K + rank + 1)
                chunks[chunk.chunk_id] = chunk
        ranked = sorted(fused, key=fused.get, reverse=True)
        best: list[str] = []
        for start in range(0, len(ranked), k):
            page = ranked[start:start + k]
            missing = [cid for cid in page if cid not in similarity]
            for cid, vec in self.store.vectors(missing).items():
                similarity[cid] = float(np.dot(vector, vec))
            best += [cid for cid in page if cid in similarity][:k - len(best)]
            if len(best) == k:
                break
        return [Hit(chunk=chunks[cid], score=fused[cid], similarity=similarity[cid], rank=i + 1)
                for i, cid in enumerate(best)]


TIME_WEIGHT = 0.5  # a third ranking, by date, joins the fusion when the question is about time
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december"]
_MONTH_YEAR = re.compile(r"\b(" + "|".join(_MONTHS) + r")\s+(?:of\s+)?((?:19|20)\d\d)\b", re.IGNORECASE)


def reference_date(filters: Filters) -> date:
    """"Now" for a question: the end of its date range (a question's own date), else today."""
    try:
        return date.fromisoformat(filters.until) if filters.until else date.today()
    except ValueError:
        return date.today()


def time_ranking(candidates: list[Chunk], question: str, today: date) -> list[Chunk]:
    """Candidates ranked by date when the question is about time, else []: nearest to a month
    it names ("in July 2022"), or newest first when it asks about "this week", "latest", etc."""
    named = _MONTH_YEAR.search(question)
    if named:
        month = _MONTHS.index(named.group(1).lower()) + 1
        start = date(int(named.group(2)), month, 1)
        end = date(start.year + month // 12, month % 12 + 1, 1)

        def distance(d: date) -> int:
            return 0 if start <= d < end else min(abs((d - start).days), abs((d - end).days))
    elif RECENT.search(question):
        def distance(d: date) -> int:
            return (today - d).days
    else:
        return []
    dated = {}
    for chunk in candidates:
        try:
            d = date.fromisoformat(chunk.date)
        except ValueError:
            continue  # undated passages take no part in a ranking by date
        if d <= today or named:
            dated[chunk.chunk_id] = (distance(d), chunk)
    return [chunk for _, chunk in sorted(dated.values(), key=lambda x: x[0])]


_PRONOUN = re.compile(r"\b(he|she|it|they|him|her|his|hers|its|their|them|this|that|these|those|"
                      r"the same|there)\b", re.IGNORECASE)


def contextualize(question: str, history: list[str], limit: int | None = None) -> str:
    """The retrieval query for a follow-up: without a language model, carry the previous
    question along when this one leans on it (a pronoun or a very short question). With
    `limit`, the query has at most that many characters: the question whole (when it fits),
    and as much of the previous question as fits, cut at a word."""
    if not history or not (_PRONOUN.search(question) or len(question.split()) <= 4):
        return question if limit is None else question[:limit]
    earlier = history[-1]
    if limit is not None and len(earlier) + 1 + len(question) > limit:
        room = limit - len(question) - 1
        cut = earlier[:max(room + 1, 0)]
        earlier = cut.rsplit(" ", 1)[0] if " " in cut else cut[:room]
        if not earlier:
            return question[:limit]
    return f"{earlier} {question}"
