"""Corpus folder → index, incrementally: unchanged articles are skipped by
content hash, changed ones replaced, removed ones deleted."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .chunking import chunk_article, embedding_text, make_splitter
from .corpus import iter_corpus
from .embeddings import MiniLM
from .errors import UnreadableFile
from .index import Store
from .schema import Article, Chunk

EMBED_GROUP = 1024  # chunks embedded, then written, together: one Chroma commit per group


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    chunks_written: int = 0
    orphans_pruned: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.orphans_pruned)

    def summary(self) -> str:
        lines = [f"added {len(self.added)}, updated {len(self.updated)}, removed {len(self.removed)}, "
                 f"unchanged {len(self.unchanged)}, failed {len(self.failed)} "
                 f"({self.chunks_written} chunks written)"]
        lines += [f"  added    {a}" for a in self.added]
        lines += [f"  updated  {a}" for a in self.updated]
        lines += [f"  removed  {a}" for a in self.removed]
        lines += [f"  skipped  {f}: {why}" for f, why in self.failed]
        if not self.changed:
            lines.append("nothing changed: the index already matches the corpus")
        return "\n".join(lines)


def sync(corpus_dir: Path, store: Store, embedder: MiniLM, progress: bool = True) -> SyncReport:
    """Make the index match `corpus_dir`. A file that cannot be read is reported and
    its previously indexed version (if any) is kept."""
    report = SyncReport()
    stored = store.stored_articles()
    seen: set[str] = set()
    pending: list[Article] = []
    for item in iter_corpus(Path(corpus_dir)):
        if isinstance(item, UnreadableFile):
            report.failed.append((str(Path(item.path).relative_to(corpus_dir)), item.reason))
            seen.add(Path(item.path).relative_to(corpus_dir).as_posix())
            continue
        seen.add(item.article_id)
        old = stored.get(item.article_id)
        if old and old.content_hash == item.content_hash:
            report.unchanged.append(item.article_id)
        else:
            (report.updated if old else report.added).append(item.article_id)
            pending.append(item)

    splitter = make_splitter(embedder.count_tokens)
    work = [(article, chunk_article(article, splitter)) for article in pending]
    total = sum(len(chunks) for _, chunks in work)
    with tqdm(total=total + len(work), unit="text", desc="embedding", disable=not progress or total == 0) as bar:
        for group in _groups(work, EMBED_GROUP):
            texts = [embedding_text(c) for _, chunks in group for c in chunks]
            n_chunks = len(texts)
            vectors = _encode(embedder, texts + [article.title or article.article_id for article, _ in group], bar)
            batch, offset = [], 0
            for i, (article, chunks) in enumerate(group):
                batch.append((article, chunks, vectors[offset:offset + len(chunks)], vectors[n_chunks + i]))
                offset += len(chunks)
            store.write_articles(batch)
            report.chunks_written += n_chunks

    for article_id in sorted(set(stored) - seen):
        store.remove_article(article_id)
        report.removed.append(article_id)
    report.orphans_pruned = store.prune_orphans(seen)
    return report


def _encode(embedder: MiniLM, texts: list[str], bar: tqdm, step: int = 128) -> np.ndarray:
    """Encode in length order, `step` texts at a time: batches of similar length pad
    little (as one big call would), and the progress bar moves as it goes."""
    order = np.argsort([len(t) for t in texts], kind="stable")
    vectors = np.empty((len(texts), embedder.dimension), dtype=np.float32)
    for i in range(0, len(order), step):
        part = order[i:i + step]
        vectors[part] = embedder.encode([texts[j] for j in part])
        bar.update(len(part))
    return vectors


def _groups(work: list[tuple[Article, list[Chunk]]], size: int):
    group, count = [], 0
    for item in work:
        group.append(item)
        count += len(item[1])
        if count >= size:
            yield group
            group, count = [], 0
    if group:
        yield group
