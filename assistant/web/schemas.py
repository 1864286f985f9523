"""The JSON contract: what the HTTP API takes and gives (its OpenAPI schema), and what
`ask --json` / `search --json` print. Responses are built from the domain values with `.of`
and written with `model_dump(mode="json")`, so the API and the CLI cannot drift apart."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..feedback import MAX_ANSWER, MAX_CITATIONS, MAX_COMMENT, MAX_QUESTION, MAX_SOURCE, MAX_SOURCES
from ..schema import Answer, ArticleRef, CheckedSentence, Citation, Filters, Hit, Verification
from .scope import Scope
from .share import quote_link, safe_url


def http_url(url: str) -> str | None:
    """An article's URL as every JSON shape gives it: http(s), or None (none, or `javascript:`…)."""
    return safe_url(url) or None

_DATE = r"^(\d{4}-\d{2}-\d{2})?$"


# --- requests ----------------------------------------------------------------------------------

class FiltersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sources: list[Annotated[str, Field(max_length=MAX_SOURCE)]] = Field(default=[], max_length=MAX_SOURCES,
                                                                        description="only these outlets")
    since: str = Field(default="", pattern=_DATE, description="only articles dated on or after (YYYY-MM-DD)")
    until: str = Field(default="", pattern=_DATE, description="only articles dated on or before (YYYY-MM-DD)")

    def filters(self) -> Filters:
        return Filters(sources=tuple(self.sources), since=self.since, until=self.until)


class AskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(description="the question; folded to one line, at most ASSISTANT_MAX_QUESTION_CHARS")
    history: list[str] = Field(default=[], max_length=50, description="earlier questions of the same chat")
    filters: FiltersIn = FiltersIn()


class SearchIn(AskIn):
    k: int = Field(default=0, ge=0, le=50, description="how many passages; 0: ASSISTANT_TOP_K")


class CitationIn(BaseModel):
    """A citation as the reader saw it (the API's citation object; other fields are ignored)."""
    model_config = ConfigDict(extra="ignore")
    n: int
    article_id: str = Field(default="", max_length=1000)
    title: str = Field(default="", max_length=1000)
    url: str | None = Field(default=None, max_length=2000)
    link: str | None = Field(default=None, max_length=4000)
    quote: str = Field(default="", max_length=2000)


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=MAX_QUESTION)
    answer: str = Field(max_length=MAX_ANSWER, description="the answer text the reader rated")
    rating: Literal["up", "down"]
    comment: str = Field(default="", max_length=MAX_COMMENT, description="optional, as the reader typed it")
    citations: list[CitationIn] = Field(default=[], max_length=MAX_CITATIONS)
    history: list[Annotated[str, Field(max_length=MAX_QUESTION)]] = Field(
        default=[], max_length=50, description="earlier questions of the same chat")
    filters: FiltersIn = FiltersIn()


class FeedbackAmendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(max_length=100, description="the token `POST /api/feedback` returned")
    rating: Literal["up", "down"] | None = None
    comment: str | None = Field(default=None, max_length=MAX_COMMENT)


# --- answers and passages (the API's responses and `--json`) ----------------------------------

class PassageOut(BaseModel):
    rank: int
    article_id: str
    title: str
    source: str
    date: str
    url: str | None = Field(description="the article's http(s) URL; null when it has none")
    text: str
    score: float
    similarity: float
    chunk_id: str
    start: int
    end: int

    @classmethod
    def of(cls, hit: Hit) -> PassageOut:
        c = hit.chunk
        return cls(rank=hit.rank, article_id=c.article_id, title=c.title, source=c.source, date=c.date, url=http_url(c.url),
                   text=c.text, score=round(float(hit.score), 6), similarity=round(float(hit.similarity), 6),
                   chunk_id=c.chunk_id, start=c.start, end=c.end)


class CitationOut(BaseModel):
    n: int
    article_id: str
    title: str
    source: str
    date: str
    url: str | None = Field(description="the article's http(s) URL; null when it has none")
    quote: str = Field(description="verbatim from the stored article")
    link: str | None = Field(description="the article URL with a text fragment (`#:~:text=…`) that opens it "
                                         "scrolled to the quote, highlighted; null when the article has no "
                                         "http(s) URL")
    passage_rank: int

    @classmethod
    def of(cls, citation: Citation) -> CitationOut:
        c = citation.hit.chunk
        return cls(n=citation.n, article_id=c.article_id, title=c.title, source=c.source, date=c.date, url=http_url(c.url),
                   quote=citation.quote, link=quote_link(c.url, citation.quote), passage_rank=citation.hit.rank)


class SentenceOut(BaseModel):
    text: str
    status: str = Field(description="`verified` (its cited passage supports it), `corrected` (another passage "
                                    "does; its number was changed) or `unsupported` (dropped from the answer)")
    citations: list[int] = Field(description="its number(s) in the answer")
    model_cited: list[int] = Field(description="the number(s) the model wrote")
    support: float = Field(description="the best support score a passage gave it")

    @classmethod
    def of(cls, s: CheckedSentence) -> SentenceOut:
        return cls(text=s.text, status=s.status, citations=list(s.citations), model_cited=list(s.model_cited),
                   support=s.support)


class VerificationOut(BaseModel):
    """Which sentences a language model wrote and how each fared against its passage (`verify.verify`)."""
    model: str
    outcome: str = Field(description="`answered`, `refused` (the model said the articles do not cover the "
                                     "question), `unsupported` (nothing it wrote was supported: refused) or "
                                     "`failed` (unreachable, too slow or unreadable)")
    fallback: bool = Field(description="true when the model failed: the answer is then the extractive one")
    first_token_s: float | None = Field(default=None, description="seconds to the model's first token")
    sentences: list[SentenceOut]

    @classmethod
    def of(cls, v: Verification) -> VerificationOut:
        return cls(model=v.model, outcome=v.outcome, fallback=v.fallback,
                   first_token_s=None if v.first_token is None else round(v.first_token, 3),
                   sentences=[SentenceOut.of(s) for s in v.sentences])


class ArticleOut(BaseModel):
    article_id: str
    title: str
    source: str
    date: str
    url: str | None = Field(description="the article's http(s) URL; null when it has none")

    @classmethod
    def of(cls, a: ArticleRef) -> ArticleOut:
        return cls(article_id=a.article_id, title=a.title, source=a.source, date=a.date, url=http_url(a.url))


class AnswerOut(BaseModel):
    answer: str = Field(description="the answer; each claim is followed by its citation `[n]`")
    lead: str = Field(default="", description="the short answer (a name, number, date or place), verbatim from "
                                              "the first quote; shown in bold before the answer; may be empty")
    refused: bool = Field(description="true when the articles don't cover the question (then nothing is cited)")
    closest: list[ArticleOut] = Field(default=[], description="on a refusal: the articles closest to the question, "
                                                              "named but not cited")
    notice: str
    # Left out of the JSON, not null, without a model: the object is the same as before models came.
    verification: VerificationOut | None = Field(default=None, exclude_if=lambda v: v is None,
                                                 description="with a language model (ASSISTANT_LLM): how each "
                                                             "sentence it wrote was checked")
    citations: list[CitationOut]
    passages: list[PassageOut]

    @classmethod
    def of(cls, answer: Answer) -> AnswerOut:
        return cls(answer=answer.text, lead=answer.lead, refused=answer.refused,
                   closest=[ArticleOut.of(a) for a in answer.closest], notice=answer.notice,
                   verification=VerificationOut.of(answer.verification) if answer.verification else None,
                   citations=[CitationOut.of(c) for c in answer.citations],
                   passages=[PassageOut.of(h) for h in answer.hits])


# --- the rest of the API -----------------------------------------------------------------------

class FeedbackOut(BaseModel):
    id: int
    token: str = Field(description="amends this entry (`PATCH /api/feedback/{id}`), e.g. to add a comment")


class Problem(BaseModel):
    detail: str = Field(description="a message fit to show the person who asked")


class OutletOut(BaseModel):
    name: str
    articles: int


class DatesOut(BaseModel):
    first: str | None = Field(description="the earliest article date (YYYY-MM-DD); null when none is dated")
    last: str | None
    undated: int = Field(description="articles of unknown date")


class Health(BaseModel):
    status: str
    articles: int
    chunks: int
    outlets: list[OutletOut] = Field(description="outlets, most articles first")
    dates: DatesOut
    summary: str = Field(description="the same in one line, as the chat and /embed show it")

    @classmethod
    def of(cls, scope: Scope, chunks: int) -> Health:
        return cls(status="ok", articles=scope.articles, chunks=chunks, **scope.to_dict(), summary=scope.describe())
