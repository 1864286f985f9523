"""Sentence vectors, read by chunk id and never searched: one record per passage holding its
sentences' offsets and float16 vectors.

An answer reads the sentences of its five passages by id; nothing ever searches them. So they
live where reading by id costs nothing up front and no process holds them whole (an HNSW-indexed
Chroma collection, as before, loaded ~2 KB a sentence into every answering process on its first
read: 1.7 GB at 831k sentences):

- embedded index: `SqliteSentences`, a SQLite file beside Chroma's (`sentences.sqlite3`, one row
  a passage, keyed by chunk id; ~0.8 KB a sentence on disk, read in ~0.1 ms a passage);
- Chroma server: `ChromaSentences`, a collection of one record a passage whose metadata carries
  the packed vectors, so every app process on every machine reads the same records; its
  one-number embedding keeps the server's vector index of it negligible. Chroma indexes metadata
  strings, so it costs ~3x the bytes on the server's disk (docs/scaling.md).

Both pack a passage as `pack` does; `Store.sentence_vectors` unpacks them.
"""

from __future__ import annotations

import base64
import sqlite3
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Sequence

import numpy as np

# One passage's sentences: (start, end, vector) with offsets within the passage text.
Spans = list[tuple[int, int, np.ndarray]]
Row = tuple[str, str, str, Spans]  # (chunk id, article id, content hash, sentences)


def pack(spans: Spans) -> tuple[bytes, bytes]:
    """Offsets as int32 pairs and vectors as float16 rows (half the bytes; cosines move by
    ~1e-3, far below the gaps between sentences that decide an answer)."""
    offsets = np.asarray([(s, e) for s, e, _ in spans], dtype=np.int32).reshape(-1, 2)
    vectors = np.asarray([v for _, _, v in spans], dtype=np.float16).reshape(len(spans), -1)
    return offsets.tobytes(), vectors.tobytes()


def unpack(offsets: bytes, vectors: bytes) -> Spans:
    pairs = np.frombuffer(offsets, dtype=np.int32).reshape(-1, 2)
    if not len(pairs):
        return []
    rows = np.frombuffer(vectors, dtype=np.float16).reshape(len(pairs), -1).astype(np.float32)
    rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)  # unit again after rounding
    return [(int(s), int(e), row) for (s, e), row in zip(pairs.tolist(), rows)]


class SentenceTable(ABC):
    """Per passage: its sentences' offsets and vectors, and the model that embedded them."""

    @abstractmethod
    def write(self, rows: Sequence[Row], model: str) -> None:
        """Store (chunk id, article id, content hash, sentences) rows, replacing earlier ones."""

    @abstractmethod
    def read(self, chunk_ids: Sequence[str], model: str | None = None) -> dict[str, Spans]:
        """The stored sentences of those passages it holds (with `model`, only that model's)."""

    @abstractmethod
    def delete_stale(self, article_id: str, content_hash: str) -> None:
        """Delete the article's passages of another content hash (its earlier text)."""

    @abstractmethod
    def delete_article(self, article_id: str) -> None:
        """Delete every passage of the article."""

    @abstractmethod
    def delete_chunks(self, chunk_ids: Sequence[str]) -> None:
        """Delete these passages."""

    @abstractmethod
    def chunk_ids(self) -> set[str]:
        """Every passage that has sentences stored."""


class SqliteSentences(SentenceTable):
    """The table in a SQLite file (WAL: readers never wait for the ingest that writes)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()  # a connection per thread: sqlite3's are not shared
        with self._db() as db:
            db.execute("CREATE TABLE IF NOT EXISTS sentences (chunk_id TEXT PRIMARY KEY, article_id TEXT NOT NULL,"
                       " content_hash TEXT NOT NULL, model TEXT NOT NULL, offsets BLOB NOT NULL,"
                       " vectors BLOB NOT NULL)")
            db.execute("CREATE INDEX IF NOT EXISTS sentences_article ON sentences (article_id)")

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=60)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL: a crash loses at most the last commits, never corrupts
            self._local.db = db
        return db

    def write(self, rows: Sequence[Row], model: str) -> None:
        with self._db() as db:
            db.executemany("INSERT OR REPLACE INTO sentences VALUES (?, ?, ?, ?, ?, ?)",
                           [(cid, aid, h, model, *pack(spans)) for cid, aid, h, spans in rows])

    def read(self, chunk_ids: Sequence[str], model: str | None = None) -> dict[str, Spans]:
        out: dict[str, Spans] = {}
        ids = list(dict.fromkeys(chunk_ids))
        for i in range(0, len(ids), 500):  # under SQLite's bound-parameter limit
            page = ids[i:i + 500]
            for cid, made_by, offsets, vectors in self._db().execute(
                    f"SELECT chunk_id, model, offsets, vectors FROM sentences WHERE chunk_id IN"
                    f" ({','.join('?' * len(page))})", page):
                if model is None or made_by == model:
                    out[cid] = unpack(offsets, vectors)
        return out

    def delete_stale(self, article_id: str, content_hash: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM sentences WHERE article_id = ? AND content_hash != ?", (article_id, content_hash))

    def delete_article(self, article_id: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM sentences WHERE article_id = ?", (article_id,))

    def delete_chunks(self, chunk_ids: Sequence[str]) -> None:
        ids = list(chunk_ids)
        with self._db() as db:
            for i in range(0, len(ids), 500):
                page = ids[i:i + 500]
                db.execute(f"DELETE FROM sentences WHERE chunk_id IN ({','.join('?' * len(page))})", page)

    def chunk_ids(self) -> set[str]:
        return {cid for (cid,) in self._db().execute("SELECT chunk_id FROM sentences")}


class ChromaSentences(SentenceTable):
    """The table as a Chroma collection (server mode): one record a passage, the packed
    sentences in its metadata, a constant one-number embedding (nothing searches it)."""

    PAGE = 1000

    def __init__(self, collection):
        self.collection = collection

    def write(self, rows: Sequence[Row], model: str) -> None:
        for i in range(0, len(rows), self.PAGE):
            page = rows[i:i + self.PAGE]
            metadatas = []
            for _, aid, h, spans in page:
                offsets, vectors = pack(spans)
                metadatas.append({"article_id": aid, "content_hash": h, "model": model,
                                  "offsets": base64.b64encode(offsets).decode("ascii"),
                                  "vectors": base64.b64encode(vectors).decode("ascii")})
            self.collection.upsert(ids=[cid for cid, *_ in page], metadatas=metadatas,
                                   embeddings=np.zeros((len(page), 1), dtype=np.float32))

    def read(self, chunk_ids: Sequence[str], model: str | None = None) -> dict[str, Spans]:
        if not chunk_ids:
            return {}
        got = self.collection.get(ids=list(dict.fromkeys(chunk_ids)), include=["metadatas"])
        return {cid: unpack(base64.b64decode(meta["offsets"]), base64.b64decode(meta["vectors"]))
                for cid, meta in zip(got["ids"], got["metadatas"])
                if meta is not None and (model is None or meta.get("model") == model)}

    def delete_stale(self, article_id: str, content_hash: str) -> None:
        self.collection.delete(where={"$and": [{"article_id": article_id}, {"content_hash": {"$ne": content_hash}}]})

    def delete_article(self, article_id: str) -> None:
        self.collection.delete(where={"article_id": article_id})

    def delete_chunks(self, chunk_ids: Sequence[str]) -> None:
        ids = list(chunk_ids)
        for i in range(0, len(ids), self.PAGE):
            self.collection.delete(ids=ids[i:i + self.PAGE])

    def chunk_ids(self) -> set[str]:
        return set(self.collection.get(include=[])["ids"])
