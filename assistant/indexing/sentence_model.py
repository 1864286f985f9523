"""Which model embeds the sentences an answer may quote: the reader.

The reader is the packaged MiniLM fine-tuned to match a question with the sentence that answers
it (model card: docs/reader.md). Ingest embeds every sentence with it; an answer embeds the
question with it once more and compares (`answering/extractive.py`). The first of these that
exists is used:

1. `<index>/reader/`: tuned on the owner's own articles by `python -m assistant tune`;
2. `assistant/indexing/reader/`: the reader shipped with the project;
3. the retrieval model itself (the sentences then share its vectors, as before readers).

Every stored sentence vector carries the id of the model that made it, and only vectors of the
current model are compared with a question: after a tune, ingest embeds the sentences again
(until then answers embed their candidates themselves: slower, never wrong).
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .embeddings import Embedder, MiniLM

PACKAGED = Path(__file__).with_name("reader")
TUNED = "reader"  # the folder under the index directory that `tune` writes
CONFIG = "reader.json"


def reader_folder(index_dir: Path | None) -> Path | None:
    """The folder of the reader in use for this index, or None (no reader: the retrieval model)."""
    for folder in ([Path(index_dir) / TUNED] if index_dir else []) + [PACKAGED]:
        if _usable(folder):
            return folder
    return None


def _usable(folder: Path) -> bool:
    try:
        config = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return config.get("kind") == "bi" and bool(config.get("id"))


class SentenceModel(Embedder):
    """The reader in use for an index (see the module doc), loaded on first use. A reader that
    `tune` writes later is picked up by the next `encode` (its `reader.json` is checked at most
    once a second), so a running app switches without a restart.

    Args:
        index_dir: the embedded index's folder (where `tune` writes), or None.
        fallback: the retrieval model, used when there is no reader.
        threads: torch threads for the reader.
    """

    CHECK_EVERY_S = 1.0

    def __init__(self, index_dir: Path | None, fallback: Embedder, threads: int | None = 1):
        self.index_dir = Path(index_dir) if index_dir else None
        self.fallback = fallback
        self.threads = threads
        self._lock = threading.Lock()
        self._folder: Path | None = None
        self._stamp: tuple | None = None
        self._model: Embedder | None = None
        self._checked = float("-inf")

    @property
    def current(self) -> Embedder:
        """The model in use now: the reader (reloaded when its folder changed) or the fallback."""
        now = time.monotonic()
        if self._model is not None and now - self._checked < self.CHECK_EVERY_S:
            return self._model
        with self._lock:
            self._checked = now
            folder = reader_folder(self.index_dir)
            stamp = _stamp(folder) if folder else None
            if self._model is None or (folder, stamp) != (self._folder, self._stamp):
                self._folder, self._stamp = folder, stamp
                self._model = MiniLM(threads=self.threads, path=folder) if folder else self.fallback
            return self._model

    @property
    def is_fallback(self) -> bool:
        return self.current is self.fallback

    @property
    def dimension(self) -> int:
        return self.current.dimension

    @property
    def model_id(self) -> str:
        return self.current.model_id

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        return self.current.encode(texts, progress=progress)

    def count_tokens(self, text: str) -> int:
        return self.current.count_tokens(text)

    @contextmanager
    def remembering(self) -> Iterator[None]:
        with self.current.remembering():
            yield


def _stamp(folder: Path) -> tuple:
    stat = (folder / CONFIG).stat()
    return stat.st_mtime_ns, stat.st_size
