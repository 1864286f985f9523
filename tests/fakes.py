"""Deterministic stand-ins that implement the real interfaces, for tests of pure logic (as
simonw/llm's `EmbedDemo`): no model to load, no Chroma. End-to-end tests keep the real parts;
`tests/indexing/test_store.py` runs the store contract on both stores."""

from __future__ import annotations

import re
import uuid
import zlib
from typing import Iterable, Sequence

import numpy as np

from assistant.indexing.embeddings import Embedder
from assistant.indexing.store import SentenceVectors, Store, StoredArticle
from assistant.schema import Chunk, Filters


class FakeEmbedder(Embedder):
    """Each word hashed to one of `dimension` slots; a text's vector is its word counts,
    normalised. Texts that share words are close; the same text always gives the same vector."""

    dimension = 64

    def __init__(self):
        self.encoded: list[str] = []  # every text asked for, in order

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        texts = list(texts)
        self.encoded += texts
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in zip(vectors, texts):
            for word in re.findall(r"\w+", text.lower()):
                row[zlib.crc32(word.encode("utf-8")) % self.dimension] += 1.0
            norm = np.linalg.norm(row)
            if norm:
                row /= norm
            else:
                row[0] = 1.0  # no words: still a unit vector
        return vectors

    def count_tokens(self, text: str) -> int:
        return len(text.split())


class MemoryStore(Store):
    """The `Store` in dictionaries: passages with their vectors, sentences, article records."""

    def __init__(self):
        self.articles: dict[str, tuple[str, StoredArticle]] = {}  # id → (text, record)
        self.chunks: dict[str, tuple[Chunk, np.ndarray]] = {}  # in the order written
        self.sentences: dict[str, tuple[str, SentenceVectors]] = {}  # chunk id → (model id, spans)
        self.generation = ""

    def stored_articles(self) -> dict[str, StoredArticle]:
        return {article_id: record for article_id, (_, record) in self.articles.items()}

    def article_text(self, article_id: str) -> str | None:
        return self.articles[article_id][0] if article_id in self.articles else None

    def chunk_count(self) -> int:
        return len(self.chunks)

    def all_chunks(self) -> list[Chunk]:
        return [chunk for chunk, _ in self.chunks.values()]

    def query(self, vector: Sequence[float], n: int, filters: Filters = Filters()) -> list[tuple[Chunk, float]]:
        scored = [(chunk, float(np.dot(vector, v))) for chunk, v in self.chunks.values() if filters.admits(chunk)]
        return sorted(scored, key=lambda pair: -pair[1])[:max(n, 0)]

    def vectors(self, chunk_ids: Sequence[str]) -> dict[str, np.ndarray]:
        return {cid: self.chunks[cid][1] for cid in chunk_ids if cid in self.chunks}

    def sentence_vectors(self, chunk_ids: Sequence[str], model: str | None = None) -> dict[str, SentenceVectors]:
        return {cid: list(spans) if model is None or made_by == model else []
                for cid in chunk_ids for made_by, spans in [self.sentences.get(cid, ("", []))]}

    def version(self) -> tuple[str, int]:
        return self.generation, len(self.chunks)

    def write_articles(self, batch: Sequence[tuple], sentence_model: str = "") -> None:
        for article, chunks, vectors, _title_vector, *sentences in batch:
            for chunk, vector in zip(chunks, vectors, strict=True):
                self.chunks[chunk.chunk_id] = (chunk, np.asarray(vector, dtype=np.float32))
            if sentences:
                for chunk, spans in zip(chunks, sentences[0], strict=True):
                    self.sentences[chunk.chunk_id] = (sentence_model, [(s, e, np.asarray(v, dtype=np.float32))
                                                                       for s, e, v in spans])
            self._delete(cid for cid, (c, _) in self.chunks.items()
                         if c.article_id == article.article_id and c.content_hash != article.content_hash)
            record = StoredArticle(article.article_id, article.content_hash, article.title, article.source,
                                   article.date, article.url, chunks=len(chunks),
                                   sentences=sentence_model if sentences else "")
            self.articles[article.article_id] = (article.text, record)

    def remove_article(self, article_id: str) -> None:
        self.articles.pop(article_id, None)
        self._delete(cid for cid, (c, _) in self.chunks.items() if c.article_id == article_id)

    def prune_orphans(self, keep: Iterable[str]) -> int:
        keep = set(keep)
        complete = {article_id: record.content_hash for article_id, (_, record) in self.articles.items()}
        orphans = [cid for cid, (c, _) in self.chunks.items()
                   if c.article_id not in keep or complete.get(c.article_id) != c.content_hash]
        self._delete(orphans)
        return len(orphans)

    def mark_changed(self, generation: str | None = None) -> None:
        self.generation = generation or uuid.uuid4().hex

    def _delete(self, chunk_ids: Iterable[str]) -> None:
        for cid in list(chunk_ids):
            self.chunks.pop(cid, None)
            self.sentences.pop(cid, None)
