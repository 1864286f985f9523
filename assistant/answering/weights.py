"""The extractive answerer's two fitted models: what each sees, and the committed weights.

The sentence model scores how likely a sentence holds the answer; the answer-or-refuse model
decides from the best of them whether to answer at all. `bench/fit.py` fits both on the pooled
dev sets (`evaluation/fitting.py`) and writes `weights.json` beside this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Mapping, Sequence

import numpy as np

from . import signals

# What the sentence model sees of each candidate, in this order (bench/fit.py fits the weights).
SENTENCE_FEATURES = (
    "cos",              # cosine similarity of question and sentence
    "cos_context",      # ... and of question and the sentence with its neighbours
    "terms",            # IDF-weighted share of the question's terms in the sentence
    "terms_context",    # ... in the sentence with its neighbours
    "terms_passage",    # ... in the whole passage with its title
    "passage_rank",     # 1 / the passage's rank
    "passage_similarity",
    "type_match",       # the question asks for a number/date/person/place and the sentence has one
    "asks_type",        # the question asks for one of those kinds at all
    "has_number",
    "length",           # log(1 + words)
    "lead",             # in the article's first 400 characters
    "focus",            # share of the question's terms, each weighted by how few candidates hold it
    "overlap",          # plain share of the question's content words
    "cause",            # a why-question and a sentence giving a reason ("because", "due to"…)
    "absence",          # the sentence says something is not known or has not happened
    # The same signals relative to the best candidate of this question (0 for the best):
    "cos_gap", "cos_context_gap", "terms_gap", "terms_context_gap", "focus_gap", "overlap_gap",
)
RELATIVE = ("cos", "cos_context", "terms", "terms_context", "focus", "overlap")
# The features the sentence model may weigh (the others are held at 0). Chosen by 5-fold
# cross-validation on the dev sets (docs/reader.md): with the learned reader embedding the
# question and the sentences, its score alone picks the answering sentence more often (0.542
# pooled) than all the signals together (0.484) or any subset tried; the signals together are
# better at the second sentence quoted beside it (the evidence in the top two: 0.667 against
# 0.614 with the reader's runner-up), so the `second` model weighs them all.
SENTENCE_FITTED = ("cos",)
# What the answer-or-refuse model sees of a question and its best candidates.
QUESTION_FEATURES = (
    "best_sentence",    # the sentence model's log-odds for the best sentence
    "best_cos",
    "best_terms_context",
    "best_focus",
    "passage_terms",    # the best share of the question's terms one passage holds
    "union_terms",      # the share the top passages hold together
    "passage_similarity",  # the best passage's cosine similarity
    "type_found",       # the asked kind of answer is in the best sentences (1 when no kind is asked)
    "missing_number",   # the question names a number the best passages never mention
    "missing_rare",     # the rarest asked term the best passage lacks, relative to the rarest asked term
    "question_terms",   # log(1 + how many terms the question has)
)


@dataclass(frozen=True)
class Model:
    """A logistic model over standardised features."""

    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    threshold: float = 0.5

    def probability(self, row: Sequence[float]) -> float:
        x = (np.asarray(row, dtype=float) - self.mean) / self.scale
        return signals.logistic(self.weights, self.bias, x)

    def log_odds(self, row: Sequence[float]) -> float:
        x = (np.asarray(row, dtype=float) - self.mean) / self.scale
        return self.bias + float(np.dot(self.weights, x))

    @classmethod
    def from_dict(cls, raw: Mapping) -> "Model":
        return cls(features=tuple(raw["features"]), weights=tuple(raw["weights"]), bias=float(raw["bias"]),
                   mean=tuple(raw["mean"]), scale=tuple(raw["scale"]), threshold=float(raw.get("threshold", 0.5)))

    def to_dict(self) -> dict:
        return {"features": list(self.features), "weights": [round(w, 6) for w in self.weights],
                "bias": round(self.bias, 6), "mean": [round(m, 6) for m in self.mean],
                "scale": [round(s, 6) for s in self.scale], "threshold": round(self.threshold, 6)}


@dataclass(frozen=True)
class Weights:
    """The fitted models: `sentence` ranks the candidates (the reader's score: `SENTENCE_FITTED`)
    and its best is quoted first; `second`, over every sentence signal, picks the other sentence
    quoted beside it (None: the sentence model's runner-up); `answerable` decides whether to
    answer at all."""

    sentence: Model
    answerable: Model
    second: Model | None = None

    @classmethod
    def from_dict(cls, raw: Mapping) -> "Weights":
        weights = cls(sentence=Model.from_dict(raw["sentence"]), answerable=Model.from_dict(raw["answerable"]),
                      second=Model.from_dict(raw["second"]) if raw.get("second") else None)
        if weights.sentence.features != SENTENCE_FEATURES or weights.answerable.features != QUESTION_FEATURES or (
                weights.second and weights.second.features != SENTENCE_FEATURES):
            raise ValueError("weights.json was fitted on other features: rerun bench/fit.py")
        return weights


@cache
def fitted_weights() -> Weights:
    """The committed weights (`assistant/answering/weights.json`, written by `bench/fit.py`)."""
    raw = json.loads(resources.files(__package__).joinpath("weights.json").read_text(encoding="utf-8"))
    return Weights.from_dict(raw)
