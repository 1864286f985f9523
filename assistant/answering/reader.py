"""The learned reader: how well a sentence answers a question, read together.

The one place the reader's model is named and loaded. It is the packaged MiniLM fine-tuned on
the desk's own questions (`assistant/tuning/train.py`, measured by `bench/reader.py`, model card
in `docs/reader.md`) and ships in `assistant/answering/reader/` as fp16 safetensors. Three kinds,
named in the folder's `reader.json`:

- `bi`: a bi-encoder; the score is the cosine of the question's and the sentence's vectors;
- `query`: only the question side is tuned; the score is the cosine of its question vector and
  the sentence vectors the index already stores (the packaged MiniLM's), so no sentence is
  embedded at answer time;
- `cross`: a cross-encoder over (question, the sentence with one neighbour each side).

Nothing loads at import; the model loads on the first `score`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..indexing.sentence_model import CONFIG, PACKAGED

READER_DIR = PACKAGED  # the shipped reader's folder
KINDS = ("bi", "query", "cross")
MAX_TOKENS = 128  # question + sentence (+ neighbours): answers are one sentence, not a passage


@dataclass(frozen=True)
class Sentence:
    """A candidate sentence with the sentences before and after it in its passage ("" at an edge)."""

    text: str
    before: str = ""
    after: str = ""


def cross_input(sentence: Sentence) -> str:
    """What the cross-encoder reads beside the question: the sentence first (truncation keeps
    it), then its neighbours after a separator."""
    around = " ".join(x for x in (sentence.before, sentence.after) if x)
    return f"{sentence.text} [SEP] {around}" if around else sentence.text


class Reader:
    """Scores candidate sentences for a question; higher is more likely the answer.

    Args:
        path: a folder written by `assistant.tuning.train.save` (default: the packaged reader).
        threads: torch threads (the server answers on one).
        sentence_vectors: for a `query` reader, the stored vectors of sentences by text
            (`encode`-like: texts → normalised vectors); default: the packaged MiniLM's.
    """

    def __init__(self, path: Path = READER_DIR, threads: int | None = 1,
                 sentence_vectors: Callable[[Sequence[str]], np.ndarray] | None = None):
        self.path = Path(path)
        self.threads = threads
        self._sentence_vectors = sentence_vectors

    @classmethod
    def in_memory(cls, model, kind: str, sentence_vectors=None) -> "Reader":
        """A reader around a model just trained (what `model` would load from a saved folder)."""
        reader = cls(path=Path(), threads=None, sentence_vectors=sentence_vectors)
        reader.__dict__.update(config={"kind": kind}, model=model)  # fills the cached properties
        return reader

    @cached_property
    def config(self) -> dict:
        config = json.loads((self.path / CONFIG).read_text(encoding="utf-8"))
        if config.get("kind") not in KINDS:
            raise ValueError(f"{self.path / CONFIG}: kind must be one of {KINDS}")
        return config

    @property
    def kind(self) -> str:
        return self.config["kind"]

    @cached_property
    def model(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        if self.kind == "cross":
            from sentence_transformers import CrossEncoder

            model = CrossEncoder(str(self.path), device="cpu", local_files_only=True, max_length=MAX_TOKENS,
                                 model_kwargs={"dtype": torch.float32})
        else:
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True,
                                        model_kwargs={"dtype": torch.float32})
            model.max_seq_length = MAX_TOKENS
        return model  # stored in fp16, computed in fp32: CPU matmuls are slow in fp16

    def score(self, question: str, sentences: Sequence[Sentence],
              vectors: np.ndarray | None = None) -> np.ndarray:
        """One score per sentence (cosine for `bi`/`query`, a logit for `cross`).

        `vectors`: for a `query` reader, the sentences' stored vectors, when the caller has them."""
        if not sentences:
            return np.zeros(0, dtype=np.float32)
        if self.kind == "cross":
            pairs = [(question, cross_input(s)) for s in sentences]
            return np.asarray(self.model.predict(pairs, batch_size=64, show_progress_bar=False), dtype=np.float32)
        q = self.model.encode([question], normalize_embeddings=True, show_progress_bar=False)[0]
        if self.kind == "query":
            if vectors is None:
                vectors = self._base_vectors([s.text for s in sentences])
        else:
            vectors = self.model.encode([s.text for s in sentences], batch_size=64, normalize_embeddings=True,
                                        show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32) @ q.astype(np.float32)

    def _base_vectors(self, texts: Sequence[str]) -> np.ndarray:
        if self._sentence_vectors is None:
            from ..indexing.embeddings import MiniLM

            self._sentence_vectors = MiniLM(threads=self.threads).encode
        return np.asarray(self._sentence_vectors(list(texts)))


