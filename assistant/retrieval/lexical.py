"""BM25 over the chunks (bm25s, Snowball stemming), cached beside the index, plus the term
statistics that tell how much of a question the passages cover.

Derived from the store's chunks, never stored on its own: a cache that does not fit the
chunks is rebuilt.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import shutil
import threading
from pathlib import Path

import numpy as np

from ..schema import Chunk, Filters
from ..text import RECENT, stem, stemmed_terms, weighted_share

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
        self.summaries: dict = {}  # what callers derive from these chunks, by function (`Retriever.summary`)
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
        # Each term's weight, computed once: an answer asks for ~800 of them (answering/signals.py).
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
