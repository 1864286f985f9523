"""Where indexed articles live: the `Store` interface that ingest writes and retrieval reads.

A store holds, per article, its cleaned text (the source of truth for verbatim quotes), its
passages (`Chunk`s) with their vectors, and each passage's sentences with theirs. Writing an
article's record marks its passages complete: a crashed ingest leaves at most passages
without an article, which the next sync overwrites (ids are stable) or prunes.

The implementation is Chroma (`chroma.py`, embedded or a Chroma server); `open_index` and
`open_store` open it. Tests also use an in-memory one (`tests/fakes.py`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from ..schema import Article, Chunk, Filters

if TYPE_CHECKING:
    from ..config import StorageSettings
    from .embeddings import Embedder

# One chunk's sentences: (start, end, unit vector), offsets within the chunk text, in text order.
SentenceVectors = list[tuple[int, int, np.ndarray]]


@dataclass(frozen=True)
class StoredArticle:
    article_id: str
    content_hash: str
    title: str
    source: str
    date: str
    url: str
    chunks: int
    # The id of the model that embedded its stored sentences ("" none: articles ingested before
    # sentences were stored). Ingest embeds them again when the reader in use is another.
    sentences: str = ""


class Store(ABC):
    """Articles, their passages and the passages' sentences, with vectors."""

    # A folder where ingest keeps what readers derive from the chunks (the lexical index,
    # `lexical.py`); None: nowhere, each reader derives it anew.
    snapshot_dir: Path | None = None

    # -- reading ---------------------------------------------------------------

    @abstractmethod
    def stored_articles(self) -> dict[str, StoredArticle]:
        """Every complete article by id."""

    @abstractmethod
    def article_text(self, article_id: str) -> str | None:
        """The article's cleaned text; None when it is not stored."""

    @abstractmethod
    def chunk_count(self) -> int:
        """How many passages are stored."""

    @abstractmethod
    def all_chunks(self) -> list[Chunk]:
        """Every passage, for building the lexical index (slow at scale: readers map that index)."""

    @abstractmethod
    def query(self, vector: Sequence[float], n: int, filters: Filters = Filters()) -> list[tuple[Chunk, float]]:
        """The `n` nearest passages that `filters` admit, with their cosine similarity, best first."""

    @abstractmethod
    def vectors(self, chunk_ids: Sequence[str]) -> dict[str, Sequence[float]]:
        """The stored vectors of those passages it holds."""

    @abstractmethod
    def sentence_vectors(self, chunk_ids: Sequence[str], model: str | None = None) -> dict[str, SentenceVectors]:
        """Each passage's sentences as (start, end, unit vector), the spans
        `text.sentence_spans(chunk.text)` gives, embedded at ingest; with `model`, only those
        that model embedded (an id, `Embedder.model_id`). A passage stored without them (or
        unknown) maps to []: callers encode those."""

    @abstractmethod
    def version(self) -> tuple[str, int]:
        """What a reader checks, cheaply, to notice an ingest: the generation the last ingest
        that changed something wrote (`mark_changed`), and the passage count (which also moves
        while an ingest runs, or after one that was killed)."""

    def reopen(self) -> None:
        """See what another process wrote since this one opened the store (nothing to do by default)."""

    # -- writing ---------------------------------------------------------------

    @abstractmethod
    def write_articles(self, batch: Sequence[tuple], sentence_model: str = "") -> None:
        """Store (article, chunks, chunk vectors, title vector[, sentences]) tuples, where
        `sentences` holds, per chunk, its (start, end, vector) sentences, embedded by the model
        `sentence_model` names. An article's earlier passages (another content hash) go; its
        record is written last."""

    def write_article(self, article: Article, chunks: Sequence[Chunk], vectors, title_vector,
                      sentences=None, sentence_model: str = "") -> None:
        self.write_articles([(article, chunks, vectors, title_vector, *([sentences] if sentences is not None else []))],
                            sentence_model=sentence_model)

    @abstractmethod
    def remove_article(self, article_id: str) -> None:
        """Delete the article with its passages and their sentences."""

    @abstractmethod
    def prune_orphans(self, keep: Iterable[str]) -> int:
        """Delete passages whose article is not in `keep` or was never completed; returns how many."""

    @abstractmethod
    def mark_changed(self, generation: str | None = None) -> None:
        """Record a new generation (`generation`, else a fresh one): readers refresh what they
        derive from the chunks."""

    def migrate(self) -> int:
        """Bring an index written by an earlier version to this layout without embedding anything
        again; returns how many passages moved (nothing to do by default)."""
        return 0


def open_index(storage: StorageSettings, embedder: Embedder, create: bool = True) -> Store:
    """The store the storage settings name: a Chroma server when `chroma_host` is set, else the
    embedded index in `index_dir` (`chroma.open_index`).

    Raises:
        IndexNotReady: `create` is false and there is no index yet, or the server cannot be reached.
    """
    from . import chroma  # here, not at the top: the interface loads no chromadb

    return chroma.open_index(storage, embedder, create=create)


def open_store(index_dir: Path, embedder: Embedder, create: bool = True) -> Store:
    """Open (or create) the embedded index in `index_dir` (`chroma.open_store`)."""
    from . import chroma

    return chroma.open_store(index_dir, embedder, create=create)
