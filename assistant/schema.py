"""The values that flow between stages: Article → Chunk → Hit → Answer.

Frozen dataclasses with no third-party imports, so every stage can be tested
on its own and nothing downstream can mutate what upstream produced.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Article:
    """One cleaned article. `article_id` is its path relative to the corpus folder."""

    article_id: str
    text: str
    title: str = ""
    source: str = ""
    date: str = ""  # ISO "YYYY-MM-DD", or "" when unknown
    url: str = ""
    authors: tuple[str, ...] = ()
    content_hash: str = ""


@dataclass(frozen=True)
class Chunk:
    """A passage of an article; `article.text[start:end] == text`."""

    chunk_id: str
    article_id: str
    text: str
    start: int
    end: int
    title: str = ""
    source: str = ""
    date: str = ""
    url: str = ""
    content_hash: str = ""


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its scores. `similarity` is the dense cosine similarity."""

    chunk: Chunk
    score: float
    similarity: float
    rank: int = 0


@dataclass(frozen=True)
class Citation:
    """`[n]` in an answer: the passage it points to and the verbatim quote used."""

    n: int
    hit: Hit
    quote: str


@dataclass(frozen=True)
class Answer:
    text: str
    refused: bool
    citations: tuple[Citation, ...] = ()
    hits: tuple[Hit, ...] = ()
    notice: str = ""
    extra: dict = field(default_factory=dict, compare=False)
