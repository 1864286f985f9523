"""The lexical index: BM25 over the chunks (bm25s, Snowball stemming) with the chunks
themselves, built once per index generation into files that every process memory-maps.

Built by ingest right after it writes (`prepare`), read by each app process (`open_lexical`):
nothing is held whole in a process. The BM25 matrices, the document frequencies, the chunks (one
JSON line each, found by an offsets array) and the columns filters need (outlet, date) are
mapped from disk, so processes on one machine share their pages and a start costs the same at
any corpus size. Only the vocabulary is read into memory (a dict per process).

A folder is named by the store's version, `lexical-<generation>-<chunk count>`: ingest builds
the next one *before* it publishes the new generation, so an app that sees the generation finds
the folder ready, maps it and swaps it in whole (atomically: a folder appears by `rename`).
Folders a process still maps stay readable after they are deleted (POSIX). A store without a
folder (`Store.snapshot_dir` None) or a read-only one gets a private temporary folder.

Derived from the store's chunks, never a second source of truth: a folder that does not load,
or does not fit the store's version, is rebuilt. Its files are data that cannot run (JSON and
numpy arrays read with allow_pickle=False): whoever can write the index folder can make the
app rank badly, not run code.
"""

from __future__ import annotations

import copy
import fcntl
import json
import logging
import mmap
import os
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

from ..schema import Chunk, Filters, date_number
from ..text import RECENT, stem, stemmed_terms, weighted_share

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger(__name__)

PREFIX = "lexical-"
KEEP = 2  # folders kept: the newest, and the one before it (apps may still be switching)
_FIELDS = ("chunk_id", "article_id", "start", "end", "title", "source", "date", "url", "content_hash", "text")


def folder_name(version: tuple[str, int]) -> str:
    generation, count = version
    return f"{PREFIX}{generation or 'initial'}-{count}"


def prepare(store: Store, generation: str) -> Path | None:
    """Build the lexical index of the store's chunks for the version `generation` is about to
    publish (ingest calls this before `mark_changed(generation)`), unless it is there; returns
    its folder (None: the store keeps no folder, or cannot be written)."""
    if store.snapshot_dir is None:
        return None
    try:
        return _build_from(store, generation)
    except OSError as exc:  # a read-only index folder: the apps build their own
        log.warning("lexical index not saved in %s: %s", store.snapshot_dir, exc)
        return None


def open_lexical(store: Store) -> tuple[Lexical, tuple[str, int]]:
    """The store's lexical index as of now, and the version it is: mapped from its folder, or
    built first (an index written by an older version, a killed ingest, a read-only folder)."""
    version = store.version()  # read first: a change while the chunks are read shows next time
    if store.snapshot_dir is not None:
        lexical = _mapped(Path(store.snapshot_dir) / folder_name(version), expect=version[1])
        if lexical is None:
            try:
                lexical = _mapped(_build_from(store, version[0]))
            except OSError:  # read-only: a private folder below
                pass
        if lexical is not None:
            return lexical, version
    chunks = store.all_chunks()
    scratch = Path(tempfile.mkdtemp(prefix="pd-lexical-"))
    try:
        Lexical.build(chunks, scratch / "index")
        return Lexical(scratch / "index"), version  # mapped: the files live on until unmapped
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _mapped(folder: Path, expect: int | None = None) -> Lexical | None:
    """The index in `folder`, mapped; None when it is missing, or damaged, foreign or from
    another version (then set aside, to be rebuilt)."""
    try:
        return Lexical(folder, expect=expect)
    except Exception as exc:
        if folder.exists():
            log.info("lexical index %s not used (%s): rebuilding", folder.name, exc)
            _discard(folder)
        return None


def _build_from(store: Store, generation: str) -> Path:
    """Under the machine's build lock (one builder; the others wait, then find its folder): every
    chunk read from the store and built into the folder for `generation`, unless it is there."""
    with _building(Path(store.snapshot_dir)):
        folder = Path(store.snapshot_dir) / folder_name((generation, store.chunk_count()))
        if (folder / "meta.json").exists():
            return folder
        chunks = store.all_chunks()
        folder = folder.with_name(folder_name((generation, len(chunks))))
        Lexical.build(chunks, folder)
        return folder


class Lexical:
    """BM25 over the chunks' title + text, the chunks by position, and the term statistics that
    tell how much of a question the passages cover; everything mapped from `folder`."""

    def __init__(self, folder: Path, expect: int | None = None):
        import bm25s
        from bm25s.tokenization import Tokenizer

        folder = Path(folder)
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        self.chunk_count = int(meta["chunks"])
        if expect is not None and self.chunk_count != expect:
            raise ValueError(f"built for {self.chunk_count} chunks, the store has {expect}")
        self.article_count = int(meta["article_count"])
        self.sources: list[str] = meta["sources"]  # the outlets, sorted
        self._codes: list[str] = meta["codes"]  # outlet of each code in source.npy ("" included)
        self.articles: list[tuple[str, str, str]] = [tuple(a) for a in meta["articles"]]  # (id, outlet, date)
        self.summaries: dict = {}  # what callers derive from these chunks, by function (`Retriever.summary`)
        self.tokenizer = Tokenizer(stopwords="en", stemmer=stem)
        self.bm25 = None
        if self.chunk_count:
            self.bm25 = bm25s.BM25.load(folder / "bm25", allow_pickle=False, mmap=True, show_progress=False)
            self.bm25.vocab_dict = {int(k): int(v) for k, v in self.bm25.vocab_dict.items()}
            self.bm25.unique_token_ids_set = set(self.bm25.vocab_dict.values())
            self.tokenizer.load_vocab(folder / "bm25")
            if self.bm25.scores["num_docs"] != self.chunk_count:
                raise ValueError("the BM25 matrices do not fit the chunks")
        self.vocab = self.tokenizer.get_vocab_dict()
        self.df = np.load(folder / "df.npy", mmap_mode="r", allow_pickle=False)
        self._offsets = np.load(folder / "offsets.npy", mmap_mode="r", allow_pickle=False)
        self._source = np.load(folder / "source.npy", mmap_mode="r", allow_pickle=False)
        self._date = np.load(folder / "date.npy", mmap_mode="r", allow_pickle=False)
        if not (len(self._offsets) == self.chunk_count + 1 == len(self._source) + 1 == len(self._date) + 1
                and len(self.df) == len(self.vocab)):
            raise ValueError("the columns do not fit the chunks")
        with open(folder / "chunks.jsonl", "rb") as f:
            self._text = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) if self.chunk_count else b""
        self._unseen_idf = float(np.log(1 + (self.chunk_count + 0.5) / 0.5))

    @staticmethod
    def build(chunks: Sequence[Chunk], folder: Path) -> None:
        """Write the lexical index of `chunks` to `folder`, whole or not at all (a partial folder
        renamed into place); an existing folder is kept (the same version is the same chunks)."""
        import bm25s
        from bm25s.tokenization import Tokenizer

        folder = Path(folder)
        if (folder / "meta.json").exists():
            return
        folder.parent.mkdir(parents=True, exist_ok=True)
        partial = folder.with_name(f".{folder.name}.partial-{os.getpid()}-{threading.get_ident()}")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        try:
            tokenizer = Tokenizer(stopwords="en", stemmer=stem)
            df = np.zeros(0, dtype=np.int64)
            if chunks:
                ids = tokenizer.tokenize([f"{c.title}\n{c.text}" for c in chunks], return_as="ids", show_progress=False)
                bm25 = bm25s.BM25()
                bm25.index(ids, show_progress=False)
                saved = copy.copy(bm25)  # indexed from token ids, its vocabulary maps int → int; JSON keys are str
                saved.vocab_dict = {str(k): v for k, v in bm25.vocab_dict.items()}
                saved.save(partial / "bm25", allow_pickle=False, show_progress=False)
                tokenizer.save_vocab(partial / "bm25")
                df = np.bincount(np.concatenate([np.unique(doc) for doc in ids if len(doc)] or [[0]]),
                                 minlength=len(tokenizer.get_vocab_dict()))
            np.save(partial / "df.npy", df.astype(np.int64), allow_pickle=False)
            offsets = [0]
            with open(partial / "chunks.jsonl", "wb") as f:
                for c in chunks:
                    line = json.dumps([getattr(c, key) for key in _FIELDS], ensure_ascii=False).encode("utf-8") + b"\n"
                    f.write(line)
                    offsets.append(offsets[-1] + len(line))
            np.save(partial / "offsets.npy", np.asarray(offsets, dtype=np.int64), allow_pickle=False)
            codes = sorted({c.source for c in chunks})
            code = {s: i for i, s in enumerate(codes)}
            np.save(partial / "source.npy", np.asarray([code[c.source] for c in chunks], dtype=np.int32),
                    allow_pickle=False)
            np.save(partial / "date.npy", np.asarray([date_number(c.date) for c in chunks], dtype=np.int32),
                    allow_pickle=False)
            articles = {}
            for c in chunks:
                articles.setdefault(c.article_id, (c.source, c.date))
            meta = {"chunks": len(chunks), "article_count": len(articles), "codes": codes,
                    "sources": [s for s in codes if s],
                    "articles": [[a, s, d] for a, (s, d) in articles.items()]}
            (partial / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
            try:
                partial.rename(folder)  # atomic: a reader sees a whole folder or none
            except OSError:
                if not (folder / "meta.json").exists():  # not another process's identical build
                    raise
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        _prune(folder)

    # -- reading ---------------------------------------------------------------

    def chunk(self, position: int) -> Chunk:
        """The chunk at `position` (BM25's document number)."""
        raw = json.loads(self._text[int(self._offsets[position]):int(self._offsets[position + 1])])
        fields = dict(zip(_FIELDS, raw))
        return Chunk(**fields)

    def iter_chunks(self) -> Iterator[Chunk]:
        """Every chunk, in the store's order (read from disk as it goes)."""
        for position in range(self.chunk_count):
            yield self.chunk(position)

    def search(self, query: str, n: int, filters: Filters) -> list[tuple[Chunk, float]]:
        if not self.chunk_count:
            return []
        ids = self.tokenizer.tokenize([query], update_vocab=False, return_as="ids", show_progress=False)
        mask = self.mask(filters) if filters else None
        docs, scores = self.bm25.retrieve(ids, k=min(n, self.chunk_count), show_progress=False,
                                          weight_mask=mask)
        return [(self.chunk(d), float(s)) for d, s in zip(docs[0].tolist(), scores[0].tolist()) if s > 0]

    def mask(self, filters: Filters) -> np.ndarray:
        """1.0 for each chunk `filters` admits, else 0.0 (`Filters.admits`, over the columns)."""
        admit = np.ones(self.chunk_count, dtype=bool)
        if filters.sources:
            admit &= np.isin(self._source, [i for i, s in enumerate(self._codes) if s in filters.sources])
        if filters.since:
            admit &= self._date >= date_number(filters.since)
        if filters.until:
            # Articles of unknown date (0) stay in: excluding them would hide undated papers.
            admit &= (self._date == 0) | (self._date <= date_number(filters.until))
        return admit.astype(np.float32)

    def idf(self, term: str) -> float:
        """Rare terms weigh more; a term the corpus never uses weighs most."""
        i = self.vocab.get(term)
        if i is None:
            return self._unseen_idf
        df = float(self.df[i])
        return float(np.log(1 + (self.chunk_count - df + 0.5) / (df + 0.5)))

    def coverage(self, question: str, passage: str) -> float:
        """Share of the question's meaning-bearing terms (IDF-weighted) found in the passage;
        words that only say when ("this week", "latest") do not count."""
        asked = stemmed_terms(RECENT.sub(" ", question))
        return weighted_share(asked, asked & stemmed_terms(passage), self.idf)


def _prune(newest: Path) -> None:
    """Keep the newest folders (`KEEP`); drop older ones, stale partial builds and the caches
    of earlier versions (bm25-*, chunks-*.json)."""
    parent = newest.parent
    folders = sorted((p for p in parent.glob(f"{PREFIX}*") if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    old = [p for p in folders if p != newest][KEEP - 1:]
    old += [p for p in parent.glob(f".{PREFIX}*.partial-*") if _older_than(p, 3600)]
    old += list(parent.glob("bm25-*")) + list(parent.glob("chunks-*.json"))
    for path in old:
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


@contextmanager
def _building(parent: Path):
    """Hold the machine's lexical build lock (a `flock`, dropped by the kernel however the
    process ends)."""
    parent.mkdir(parents=True, exist_ok=True)
    with open(parent / ".lexical.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _discard(folder: Path) -> None:
    """Move a folder that did not load out of the way (processes mapping it keep their view)."""
    aside = folder.with_name(f".{folder.name}.partial-bad-{os.getpid()}")
    try:
        folder.rename(aside)
    except OSError:
        return
    shutil.rmtree(aside, ignore_errors=True)


def _older_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime > seconds
    except OSError:
        return False
