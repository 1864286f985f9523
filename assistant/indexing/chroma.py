"""The `Store` in Chroma, and the one place chromadb is imported: open it (embedded, or a
Chroma server), write articles, query.

Two collections live in one Chroma database:
- `chunks`: one record per passage (document = passage text, our own vector);
- `articles`: one record per article (document = the cleaned article text, the
  source of truth for verbatim quotes; metadata = title/source/date/url/hash).
Each passage's sentence vectors (so an answer needs no sentence embedding at question time)
are read by id only, and live outside any vector index (`sentence_table.py`): a SQLite file
beside the embedded index, or a `sentence_vectors` collection of one record a passage on a
Chroma server. Indexes from before kept them in a `sentences` collection, one HNSW-indexed
record a sentence: `migrate` moves them, once, without embedding anything again.
An article's record is written *after* its chunks and their sentences, so it marks a
complete write: a crashed ingest leaves at most chunks (and sentences) without an article,
which the next sync overwrites (ids are stable) or prunes. Sentences are written after
their chunk and deleted before it, so no sentence outlives its chunk.
"""

from __future__ import annotations

import ctypes
import uuid
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

import chromadb
import httpx
from chromadb.api.client import Client
from chromadb.api.types import EmbeddingFunction
from chromadb.config import Settings as ChromaSettings
from chromadb.config import System
from chromadb.errors import ChromaError
from chromadb.utils.embedding_functions import register_embedding_function

from ..config import StorageSettings
from .embeddings import MODEL_NAME, Embedder, MiniLM
from ..errors import IndexNotReady
from ..schema import Chunk, Filters, date_number
from .sentence_table import ChromaSentences, SentenceTable, SqliteSentences
from .store import Store, StoredArticle

CHUNKS = "chunks"
ARTICLES = "articles"
SENTENCE_VECTORS = "sentence_vectors"  # server mode: one record a passage (sentence_table.py)
LEGACY_SENTENCES = "sentences"  # one HNSW-indexed record a sentence, before: migrated away
SENTENCE_FILE = "sentences.sqlite3"  # embedded index: the sentence table, beside Chroma's file
_PAGE = 2000  # records per get()/upsert() call; well under Chroma's batch limit


class ChromaMiniLM(EmbeddingFunction):
    """Our model as a Chroma embedding function, so Chroma never builds its default one."""

    def __init__(self, embedder: Embedder | None = None):
        self.embedder = embedder or MiniLM()

    def __call__(self, input):
        return list(self.embedder.encode(list(input)))

    @staticmethod
    def name() -> str:
        return "policy-desk-minilm"

    def get_config(self) -> dict:
        return {}

    @staticmethod
    def build_from_config(config) -> "ChromaMiniLM":
        return ChromaMiniLM()

    def default_space(self):
        return "cosine"


register_embedding_function(ChromaMiniLM)


def where(filters: Filters) -> dict | None:
    """`filters` as a Chroma `where` clause (Chroma compares numbers only: dates as 20220612)."""
    clauses = []
    if filters.sources:
        clauses.append({"source": {"$in": list(filters.sources)}})
    if filters.since:
        clauses.append({"date_num": {"$gte": date_number(filters.since)}})
    if filters.until:
        # Articles of unknown date (0) stay in: excluding them would hide undated papers.
        clauses.append({"$or": [{"date_num": {"$lte": date_number(filters.until)}}, {"date_num": 0}]})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


class ChromaStore(Store):
    """A Chroma database holding the chunks and articles collections, and the sentence table
    (`sentences`: a SQLite file, else a collection on the same server)."""

    def __init__(self, client, embedder: Embedder, snapshot_dir: Path | None = None,
                 reopen: Callable[[], tuple[object, Callable[[], None]]] | None = None,
                 sentences: SentenceTable | None = None):
        self._ef = ChromaMiniLM(embedder)
        self.snapshot_dir = snapshot_dir
        self._own_table = sentences  # None: a collection beside the chunks (server mode)
        self._reopen = reopen  # → (a fresh client, what closes it)
        self._close_current: Callable[[], None] | None = None  # the shared first client is never closed
        self._close_retired: Callable[[], None] | None = None
        self._open(client)

    def _open(self, client) -> None:
        cosine = {"hnsw": {"space": "cosine"}}
        self.client = client
        self.chunks = client.get_or_create_collection(CHUNKS, configuration=cosine, embedding_function=self._ef)
        self.articles = client.get_or_create_collection(ARTICLES, configuration=cosine, embedding_function=self._ef)
        self.sentences = self._own_table or ChromaSentences(client.get_or_create_collection(
            SENTENCE_VECTORS, configuration={"hnsw": {"space": "l2"}}, embedding_function=self._ef))

    def reopen(self) -> None:
        """See what another process wrote since this one opened the store. An embedded index
        keeps its vector indexes in memory, loaded once: after an ingest by another process it
        still returns deleted records (without metadata) and fails on new ones, so a reader
        opens a fresh client. Requests under way finish on the old one. A Chroma server needs
        nothing (it is the one process that reads and writes)."""
        if self._reopen is None:
            return
        client, close = self._reopen()
        self._open(client)
        if self._close_retired is not None:  # replaced one reopen ago: its requests are long done
            self._close_retired()
        self._close_retired, self._close_current = self._close_current, close
        _trim_heap()


    # -- reading ---------------------------------------------------------------

    def stored_articles(self) -> dict[str, StoredArticle]:
        out = {}
        for record_id, meta in self._iter_get(self.articles, include=["metadatas"]):
            out[record_id] = StoredArticle(
                article_id=record_id,
                content_hash=meta.get("content_hash", ""),
                title=meta.get("title", ""),
                source=meta.get("source", ""),
                date=meta.get("date", ""),
                url=meta.get("url", ""),
                chunks=int(meta.get("chunks", 0)),
                sentences=_sentence_model(meta.get("sentences", "")),
            )
        return out

    def article_text(self, article_id: str) -> str | None:
        got = self.articles.get(ids=[article_id], include=["documents"])
        return got["documents"][0] if got["ids"] else None

    def chunk_count(self) -> int:
        return self.chunks.count()

    def version(self) -> tuple[str, int]:
        """What a reader checks to notice an ingest, cheaply (two small calls, at any size): the
        generation the last ingest that changed something wrote, and the chunk count (which also
        moves while an ingest runs, or after one that was killed)."""
        collection = self.client.get_collection(CHUNKS, embedding_function=self._ef)
        return str((collection.metadata or {}).get("generation", "")), collection.count()

    def mark_changed(self, generation: str | None = None) -> None:
        """Record a new generation (`generation`, else a fresh one): readers refresh what they
        derive from the chunks."""
        self.chunks.modify(metadata={"generation": generation or uuid.uuid4().hex})

    def all_chunks(self) -> list[Chunk]:
        """Every chunk, read from Chroma (~10 s for 100k chunks: Chroma reads metadata slowly),
        for ingest to build the lexical index from (`lexical.prepare`); apps map that instead."""
        return [_chunk_from(cid, doc, meta)
                for cid, meta, doc in self._iter_get(self.chunks, include=["metadatas", "documents"])]

    def query(self, vector: Sequence[float], n: int, filters: Filters = Filters()) -> list[tuple[Chunk, float]]:
        n = min(n, self.chunks.count())
        if n <= 0:
            return []
        got = self.chunks.query(query_embeddings=np.asarray([vector], dtype=np.float32), n_results=n,
                                where=where(filters),
                                include=["metadatas", "documents", "distances"])
        # A record deleted by another process since this one loaded its vector index comes back
        # without metadata (embedded index; `reopen`): it is gone, so it is skipped.
        return [(_chunk_from(cid, doc, meta), 1.0 - dist) for cid, doc, meta, dist in
                zip(got["ids"][0], got["documents"][0], got["metadatas"][0], got["distances"][0])
                if meta is not None and doc is not None]

    def vectors(self, chunk_ids: Sequence[str]) -> dict[str, list[float]]:
        if not chunk_ids:
            return {}
        try:
            got = self.chunks.get(ids=list(chunk_ids), include=["embeddings"])
        except ChromaError:  # written by another process after this one loaded its vector index: `reopen`
            return {}
        return dict(zip(got["ids"], got["embeddings"]))

    def sentence_vectors(self, chunk_ids: Sequence[str], model: str | None = None) -> dict[str, list[tuple[int, int, np.ndarray]]]:
        """Each chunk's sentences as (start, end, unit vector), offsets within the chunk text, in
        text order: the spans `text.sentence_spans(chunk.text)` gives, embedded at ingest (with
        `model`, only those that model embedded). A chunk indexed without them (or unknown)
        maps to []: callers encode those. One read by id in the sentence table, nothing loaded
        up front (docs/design.md, "Sentence vectors")."""
        out: dict[str, list[tuple[int, int, np.ndarray]]] = {cid: [] for cid in chunk_ids}
        if out:
            out.update(self.sentences.read(list(out), model=model))
        return out

    # -- writing ---------------------------------------------------------------

    def write_articles(self, batch: Sequence[tuple], sentence_model: str = "") -> None:
        """Store (article, chunks, chunk vectors, title vector[, sentences]) tuples, where
        `sentences` holds, per chunk, its (start, end, vector) sentences. First all chunks, then
        their sentences, then drop each article's stale sentences and chunks, then the article
        records that mark them complete. Batched because each Chroma write costs a commit
        (~15 ms), whatever its size."""
        chunks = [c for _, cs, *_ in batch for c in cs]
        vectors = np.asarray([v for _, _, vs, *_ in batch for v in vs], dtype=np.float32)
        for i in range(0, len(chunks), _PAGE):
            page = chunks[i:i + _PAGE]
            self.chunks.upsert(ids=[c.chunk_id for c in page], documents=[c.text for c in page],
                               metadatas=[_chunk_meta(c) for c in page], embeddings=vectors[i:i + _PAGE])
        self.sentences.write([(chunk.chunk_id, chunk.article_id, chunk.content_hash, spans)
                              for _, cs, _, _, *sentences in batch if sentences
                              for chunk, spans in zip(cs, sentences[0], strict=True)], sentence_model)
        stored = self.stored_hashes([article.article_id for article, *_ in batch])
        for article, *_ in batch:
            if article.article_id in stored:  # an update: its old chunks go before it is marked complete
                stale = {"$and": [{"article_id": article.article_id}, {"content_hash": {"$ne": article.content_hash}}]}
                self.sentences.delete_stale(article.article_id, article.content_hash)
                self.chunks.delete(where=stale)
        self.articles.upsert(
            ids=[a.article_id for a, *_ in batch], documents=[a.text for a, *_ in batch],
            embeddings=np.asarray([t for _, _, _, t, *_ in batch], dtype=np.float32),
            metadatas=[{"content_hash": a.content_hash, "title": a.title, "source": a.source, "date": a.date,
                        "url": a.url, "authors": ", ".join(a.authors), "chunks": len(cs),
                        "sentences": sentence_model if sentences else ""} for a, cs, _, _, *sentences in batch])


    def stored_hashes(self, article_ids: Sequence[str]) -> dict[str, str]:
        got = self.articles.get(ids=list(article_ids), include=["metadatas"])
        return {i: m.get("content_hash", "") for i, m in zip(got["ids"], got["metadatas"])}

    def remove_article(self, article_id: str) -> None:
        self.articles.delete(ids=[article_id])
        self.sentences.delete_article(article_id)
        self.chunks.delete(where={"article_id": article_id})

    def prune_orphans(self, keep: Iterable[str]) -> int:
        """Delete chunks whose article is not in `keep` or was never completed; returns how many."""
        keep = set(keep)
        complete = {a.article_id: a.content_hash for a in self.stored_articles().values()}
        every, orphans = set(), []
        for cid, meta in self._iter_get(self.chunks, include=["metadatas"]):
            every.add(cid)
            if meta["article_id"] not in keep or complete.get(meta["article_id"]) != meta.get("content_hash"):
                orphans.append(cid)
        # Sentences go first, so none outlives its chunk (and any left without one go too).
        self.sentences.delete_chunks(orphans + sorted(self.sentences.chunk_ids() - every))
        for i in range(0, len(orphans), _PAGE):
            self.chunks.delete(ids=orphans[i:i + _PAGE])
        return len(orphans)

    def migrate(self) -> int:
        """Move sentence vectors from an index of before (the `sentences` collection, one record
        a sentence) into the sentence table, as stored (no embedding), then drop the collection;
        returns how many passages moved. A killed run moves them again next time (writes
        replace), until the collection is dropped."""
        try:
            legacy = self.client.get_collection(LEGACY_SENTENCES, embedding_function=self._ef)
        except (ChromaError, ValueError):  # not there: a new index, or already migrated
            return 0
        by_chunk: dict[str, tuple[str, str, str, list]] = {}
        for _, meta, vector in self._iter_get(legacy, include=["metadatas", "embeddings"]):
            if meta is None:
                continue
            row = by_chunk.setdefault(meta["chunk_id"], (meta["article_id"], meta.get("content_hash", ""),
                                                         meta.get("model", MODEL_NAME), []))
            row[3].append((int(meta["start"]), int(meta["end"]), np.asarray(vector, dtype=np.float16)))
        by_model: dict[str, list] = {}
        for cid, (aid, h, model, spans) in by_chunk.items():
            by_model.setdefault(model, []).append((cid, aid, h, sorted(spans, key=lambda span: span[0])))
        for model, rows in by_model.items():
            for i in range(0, len(rows), _PAGE):
                self.sentences.write(rows[i:i + _PAGE], model)
        self.client.delete_collection(LEGACY_SENTENCES)
        return len(by_chunk)

    @staticmethod
    def _iter_get(collection, include):
        offset = 0
        while True:
            got = collection.get(limit=_PAGE, offset=offset, include=include)
            if not got["ids"]:
                return
            columns = [got[key] for key in include]
            yield from zip(got["ids"], *columns)
            offset += len(got["ids"])


def open_index(storage: StorageSettings, embedder: Embedder, create: bool = True) -> ChromaStore:
    """The store the settings name: a Chroma server when `chroma_host` is set, else the
    embedded index in `index_dir`. Everything above this line is the same in both modes."""
    if storage.chroma_host:
        return open_server_store(storage.chroma_host, storage.chroma_port, embedder, create=create,
                                 auth_token=storage.chroma_auth_token, snapshot_dir=storage.index_dir)
    return open_store(storage.index_dir, embedder, create=create)


def open_store(index_dir: Path, embedder: Embedder, create: bool = True) -> ChromaStore:
    """Open (or create) the persistent index in `index_dir`."""
    index_dir = Path(index_dir)
    if not create and not (index_dir / "chroma.sqlite3").exists():
        raise IndexNotReady(f"no index in {index_dir}/ yet: run `python -m assistant ingest` (or `make run`)")
    index_dir.mkdir(parents=True, exist_ok=True)
    client = chromadb.PersistentClient(path=str(index_dir),
                                       settings=ChromaSettings(anonymized_telemetry=False))
    return ChromaStore(client, embedder, snapshot_dir=index_dir, reopen=lambda: _fresh_client(index_dir),
                       sentences=SqliteSentences(index_dir / SENTENCE_FILE))


def _fresh_client(index_dir: Path):
    """A client on `index_dir` with its own Chroma system, so its vector indexes are read from
    disk anew (`PersistentClient` would hand back this process's cached system), and the stop
    that closes that system."""
    settings = ChromaSettings(anonymized_telemetry=False, is_persistent=True, persist_directory=str(index_dir))
    system = System(settings)
    system.start()
    return Client.from_system(system), system.stop


def open_server_store(host: str, port: int, embedder: Embedder, create: bool = True,
                      auth_token: str = "", snapshot_dir: Path | None = None) -> ChromaStore:
    """Open (or create) the collections on a Chroma server (`chroma run`)."""
    where = f"{host}:{port}"
    auth = ({"chroma_client_auth_provider": "chromadb.auth.token_authn.TokenAuthClientProvider",
             "chroma_client_auth_credentials": auth_token} if auth_token else {})
    try:
        client = chromadb.HttpClient(host=host, port=port,
                                     settings=ChromaSettings(anonymized_telemetry=False, **auth))
        if not create and CHUNKS not in {c.name for c in client.list_collections()}:
            raise IndexNotReady(f"no index on the Chroma server at {where} yet: "
                                "run `python -m assistant ingest`")
        # The lexical index is mapped from a local folder when one can be written (shared by the
        # processes on this machine), else each process builds its own from the server's chunks.
        return ChromaStore(client, embedder, snapshot_dir=snapshot_dir)
    except (ValueError, httpx.HTTPError) as exc:  # HttpClient's "Could not connect", or a dropped link
        raise IndexNotReady(f"cannot reach the Chroma server at {where} (CHROMA_HOST, CHROMA_PORT): "
                            f"{exc}") from None


def _sentence_model(stored) -> str:
    """An article record's sentence model: indexes written before readers stored `True` for
    sentences the packaged MiniLM embedded."""
    return MODEL_NAME if stored is True else str(stored or "")


def _chunk_meta(chunk: Chunk) -> dict:
    return {"article_id": chunk.article_id, "start": chunk.start, "end": chunk.end,
            "title": chunk.title, "source": chunk.source, "date": chunk.date,
            "date_num": date_number(chunk.date), "url": chunk.url,
            "content_hash": chunk.content_hash}


def _chunk_from(chunk_id: str, text: str, meta: dict) -> Chunk:
    return Chunk(chunk_id=chunk_id, article_id=meta["article_id"], text=text,
                 start=int(meta["start"]), end=int(meta["end"]), title=meta.get("title", ""),
                 source=meta.get("source", ""), date=meta.get("date", ""), url=meta.get("url", ""),
                 content_hash=meta.get("content_hash", ""))


def _trim_heap() -> None:
    """Hand freed heap back to the system. A reopen loads the vector indexes anew, and glibc kept
    the old ones' memory: on the news index RSS grew ~20 MB a reopen; with this, ~4 MB after the
    first two."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass
