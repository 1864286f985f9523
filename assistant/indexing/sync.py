"""Corpus folder → index, incrementally: unchanged articles are skipped by
content hash, changed ones replaced, removed ones deleted.

One ingest at a time: `ingest` holds an exclusive `flock` on a lock file for the
whole run. The kernel drops the lock when the process ends, however it ends, so a
killed ingest never leaves a stale lock, and the next run finishes its work (see
store.py on how a half-written article is detected).
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import lexical
from .chunking import chunk_article, embedding_text, make_splitter
from ..sources.corpus import corpus_files, iter_corpus
from ..config import IndexingSettings, Settings, StorageSettings
from .embeddings import Embedder
from .sentence_model import SentenceModel
from ..errors import IngestRunning, OutsideCorpus, UnreadableFile
from .store import Store, open_index
from ..schema import Article, Chunk
from ..text import sentence_spans, shown

EMBED_GROUP = IndexingSettings.embed_group  # chunks embedded, then written, together: one Chroma commit per group


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    reembedded: list[str] = field(default_factory=list)  # same text, sentences embedded by the current reader
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    chunks_written: int = 0
    orphans_pruned: int = 0
    migrated: int = 0  # passages whose sentence vectors moved to this version's table (`Store.migrate`)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.reembedded or self.removed or self.orphans_pruned)

    def summary(self) -> str:
        lines = [f"added {len(self.added)}, updated {len(self.updated)}, removed {len(self.removed)}, "
                 f"unchanged {len(self.unchanged)}, failed {len(self.failed)} "
                 f"({self.chunks_written} chunks written)"]
        if self.migrated:
            lines.append(f"  moved the sentence vectors of {self.migrated} passages to the sentence table "
                         f"(an index from an earlier version; nothing embedded again)")
        if self.reembedded:
            lines.append(f"  {len(self.reembedded)} unchanged articles had their sentences embedded again "
                         f"by the reader in use")
        lines += [f"  added    {shown(a)}" for a in self.added]
        lines += [f"  updated  {shown(a)}" for a in self.updated]
        lines += [f"  removed  {shown(a)}" for a in self.removed]
        lines += [f"  skipped  {shown(f)}: {shown(why)}" for f, why in self.failed]
        if not self.changed:
            lines.append("nothing changed: the index already matches the corpus")
        return "\n".join(lines)


def ingest(settings: Settings, embedder: Embedder, progress: bool = True,
           sentences: Embedder | None = None) -> SyncReport:
    """Make the index the settings name match the corpus folder, holding the ingest lock.
    Sentences are embedded by `sentences`, default the reader in use for that index
    (`sentence_model.SentenceModel`).

    Raises:
        IngestRunning: another ingest holds the lock.
        IndexNotReady: the Chroma server cannot be reached.
    """
    with ingest_lock(lock_path(settings.storage)):
        store = open_index(settings.storage, embedder)
        sentences = sentences or SentenceModel(settings.storage.index_dir, embedder, threads=None)  # a batch job
        return sync(settings.storage.corpus_dir, store, embedder, progress=progress,
                    group_size=settings.indexing.embed_group, sentences=sentences)


def lock_path(storage: StorageSettings) -> Path:
    """`ingest_lock` if set; else beside the embedded index, or one file per server in the
    temp folder (which only guards ingests run from this machine: see docs/operating.md)."""
    if storage.ingest_lock:
        return storage.ingest_lock
    if storage.chroma_host:
        return Path(tempfile.gettempdir()) / f"policy-desk-ingest-{storage.chroma_host}-{storage.chroma_port}.lock"
    return storage.index_dir / "ingest.lock"


@contextmanager
def ingest_lock(path: Path):
    """Hold an exclusive lock on `path` for the block, or raise `IngestRunning` at once."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            raise IngestRunning(f"an ingest is already running (process {holder or '?'}, lock {path}); "
                                "try again when it has finished") from None
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)


def sync(corpus_dir: Path, store: Store, embedder: Embedder, progress: bool = True,
         group_size: int = EMBED_GROUP, sentences: Embedder | None = None) -> SyncReport:
    """Make the index match `corpus_dir`. A file that cannot be read, or that fails in any
    other way, is reported by name and its previously indexed version (if any) is kept; the
    rest goes on. Articles stream through embedding groups of about `group_size` chunks, so
    memory holds one group, whatever the corpus size. Callers hold the ingest lock.

    `sentences` embeds the sentences (the reader: `sentence_model.SentenceModel`; default: the
    `embedder`). An unchanged article whose sentences another model embedded is written again."""
    sentences = sentences or embedder
    sentence_model = sentences.model_id
    report = SyncReport(migrated=store.migrate())
    stored = store.stored_articles()
    seen: set[str] = set()
    splitter = make_splitter(embedder.count_tokens)
    group: list[tuple[Article, list[Chunk]]] = []
    # The bar counts articles written out of those to write: files less the unchanged or unreadable.
    with tqdm(total=len(corpus_files(corpus_dir)), unit="article", desc="ingesting", disable=not progress,
              delay=0.5) as bar:
        for item in iter_corpus(Path(corpus_dir)):
            if isinstance(item, UnreadableFile):
                name = Path(item.path).relative_to(corpus_dir).as_posix()
                report.failed.append((name, item.reason))
                if not isinstance(item, OutsideCorpus):  # an indexed link out came from elsewhere: removed
                    seen.add(name)
                bar.total -= 1
                continue
            seen.add(item.article_id)
            old = stored.get(item.article_id)
            if old and old.content_hash == item.content_hash and old.sentences == sentence_model:
                report.unchanged.append(item.article_id)
                bar.total -= 1
                continue
            try:
                chunks = chunk_article(item, splitter)
            except Exception as exc:  # one article's bad luck must not stop the others
                report.failed.append((item.article_id, f"could not be split into passages: {exc}"))
                bar.total -= 1
                continue
            if not old:
                report.added.append(item.article_id)
            elif old.content_hash != item.content_hash:
                report.updated.append(item.article_id)
            else:  # same text, sentences from another model (a new reader, or none stored yet)
                report.reembedded.append(item.article_id)
            group.append((item, chunks))
            if sum(len(cs) for _, cs in group) >= group_size:
                report.chunks_written += _embed_and_write(store, embedder, sentences, group)
                bar.update(len(group))
                group = []
        if group:
            report.chunks_written += _embed_and_write(store, embedder, sentences, group)
            bar.update(len(group))
    for article_id in sorted(set(stored) - seen):
        store.remove_article(article_id)
        report.removed.append(article_id)
    report.orphans_pruned = store.prune_orphans(seen)
    generation = uuid.uuid4().hex if report.changed else store.version()[0]
    # The lexical index of what was written, built before the new generation is published, so
    # the apps that see it find the index ready and map it (hybrid.Retriever.watch); an index
    # written before this version gets its own on the first run.
    lexical.prepare(store, generation)
    if report.changed:
        store.mark_changed(generation)
    return report


def group_texts(group: list[tuple[Article, list[Chunk]]]) -> tuple[list[str], list[list[list[tuple[int, int, int]]]]]:
    """What a group of articles embeds, in order: each chunk (with its title), each title, then each
    distinct sentence of an article (chunks overlap, so they share sentences; each is embedded once).
    Also, per article, per chunk: its sentences as (start, end, index in the texts), offsets within
    the chunk."""
    texts = [embedding_text(c) for _, chunks in group for c in chunks]
    texts += [article.title or article.article_id for article, _ in group]
    slots: dict[tuple[str, int, int], int] = {}  # (article, start, end) in the article → index in texts
    spans: list[list[list[tuple[int, int, int]]]] = []
    for article, chunks in group:
        spans.append([])
        for c in chunks:
            spans[-1].append([])
            for s, e in sentence_spans(c.text):
                key = (article.article_id, c.start + s, c.start + e)
                if key not in slots:
                    slots[key] = len(texts)
                    texts.append(c.text[s:e])
                spans[-1][-1].append((s, e, slots[key]))
    return texts, spans


def _embed_and_write(store: Store, embedder: Embedder, sentence_model: Embedder,
                     group: list[tuple[Article, list[Chunk]]]) -> int:
    """Embed a group's chunks and titles with `embedder`, its sentences with `sentence_model`
    (one length-sorted pass when they are the same model), then write it; returns the number
    of chunks."""
    texts, spans = group_texts(group)
    n_chunks = sum(len(chunks) for _, chunks in group)
    if sentence_model.model_id == embedder.model_id:
        vectors = sentence_vectors = _encode(embedder, texts)
    else:
        fixed = n_chunks + len(group)
        vectors = _encode(embedder, texts[:fixed])
        sentence_vectors = np.concatenate([np.zeros((fixed, sentence_model.dimension), dtype=np.float32),
                                           _encode(sentence_model, texts[fixed:])])
    batch, offset = [], 0
    for i, (article, chunks) in enumerate(group):
        sentences = [[(s, e, sentence_vectors[j]) for s, e, j in chunk_spans] for chunk_spans in spans[i]]
        batch.append((article, chunks, vectors[offset:offset + len(chunks)], vectors[n_chunks + i], sentences))
        offset += len(chunks)
    store.write_articles(batch, sentence_model=sentence_model.model_id)
    return n_chunks


def _encode(embedder: Embedder, texts: list[str], step: int = 128) -> np.ndarray:
    """Encode in length order, `step` texts at a time: batches of similar length pad
    little, as one big call would."""
    order = np.argsort([len(t) for t in texts], kind="stable")
    vectors = np.empty((len(texts), embedder.dimension), dtype=np.float32)
    for i in range(0, len(order), step):
        part = order[i:i + step]
        vectors[part] = embedder.encode([texts[j] for j in part])
    return vectors
