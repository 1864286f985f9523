"""The values that flow between stages: Article → Chunk → Hit → Answer.

Frozen dataclasses with no third-party imports, so every stage can be tested
on its own and nothing downstream can mutate what upstream produced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from .errors import BadQuestion
from .i18n import N_


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
class ArticleRef:
    """An article named without quoting it: where a refusal points the reader."""

    article_id: str
    title: str = ""
    source: str = ""
    date: str = ""
    url: str = ""


@dataclass(frozen=True)
class CheckedSentence:
    """A sentence a language model wrote, after it was checked against the passages.

    `status`: "verified" (the passage it cited supports it), "corrected" (another passage does;
    its number was changed) or "unsupported" (dropped). `citations`: its number in the answer
    shown; `model_cited`: the numbers the model wrote; `support`: the best score a passage gave it."""

    text: str
    status: str
    citations: tuple[int, ...] = ()
    model_cited: tuple[int, ...] = ()
    support: float = 0.0


@dataclass(frozen=True)
class Verification:
    """How a language model's reply became the answer shown (`Answer.verification`).

    `outcome`: "answered" (its supported sentences are shown), "refused" (it said the articles
    do not cover the question), "unsupported" (nothing it wrote was supported: a refusal) or
    "failed" (unreachable, too slow or unreadable: the extractive answer is shown, `fallback`).
    `first_token`: seconds from asking to its first streamed piece (None when none came)."""

    model: str
    outcome: str = "answered"
    sentences: tuple[CheckedSentence, ...] = ()
    draft: str = ""
    error: str = ""
    first_token: float | None = None

    @property
    def fallback(self) -> bool:
        return self.outcome == "failed"


@dataclass(frozen=True)
class Answer:
    text: str
    refused: bool
    citations: tuple[Citation, ...] = ()
    hits: tuple[Hit, ...] = ()
    notice: str = ""
    extra: dict = field(default_factory=dict, compare=False)
    # On a refusal: the articles closest to the question (named, not cited).
    closest: tuple[ArticleRef, ...] = ()
    # The short answer (a name, number, date or place) copied verbatim from the first quote,
    # shown in bold before the text; "" when the question asks for no such thing.
    lead: str = ""
    # With a language model (`ASSISTANT_LLM`): what it wrote and how it was checked.
    verification: Verification | None = None


def date_number(iso_date: str) -> int:
    """"2022-06-12" → 20220612; unknown → 0 (dates compare as numbers)."""
    digits = iso_date.replace("-", "")
    return int(digits) if len(digits) == 8 and digits.isdigit() else 0


@dataclass(frozen=True)
class Filters:
    """Which articles a question may be answered from."""

    sources: tuple[str, ...] = ()
    since: str = ""  # ISO date, inclusive
    until: str = ""  # ISO date, inclusive

    def __bool__(self) -> bool:
        return bool(self.sources or self.since or self.until)

    @classmethod
    def parse(cls, sources=(), since: str = "", until: str = "") -> "Filters":
        """Filters from user input; a date that is not a real YYYY-MM-DD day raises `BadQuestion`."""
        for name, value in (("since", since), ("until", until)):
            try:
                if value and value.strip():
                    date.fromisoformat(value.strip())
            except ValueError:
                raise BadQuestion(N_("'{value}' is not a date: use YYYY-MM-DD for {name}."), value=value, name=name) from None
        return cls(sources=tuple(s for s in sources or () if s), since=(since or "").strip(),
                   until=(until or "").strip())

    def admits(self, chunk: Chunk) -> bool:
        if self.sources and chunk.source not in self.sources:
            return False
        day = date_number(chunk.date)
        if self.since and day < date_number(self.since):
            return False
        # Articles of unknown date (0) stay in: excluding them would hide undated papers.
        if self.until and day and day > date_number(self.until):
            return False
        return True
