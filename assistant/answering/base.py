"""What every answerer is, and the citation contract every answer is held to.

An `Answerer` turns a question and its retrieved passages into an `Answer`. It declares what
the service may ask of it, each with a default, so no caller has to find out what it can do:

- `answer(question, hits)`: the whole answer;
- `stream(question, hits)`: draft pieces (str) as they are written, then the `Answer`
  (default: the whole answer at once);
- `precheck(question, hits, support)`: a refusal before answering when the passages clearly
  cannot support an answer, else None (default: None; the answerer decides itself);
- `rewrite(question, history)`: a follow-up as a standalone question for retrieval, or None
  (default: None; the service carries the subject along by rule).

`check_citations` then holds every answer to the contract: each `[n]` maps to a retrieved
passage, each quote occurs verbatim in its stored article, and a refusal cites nothing.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import replace
from typing import Callable, Iterator, Sequence

from ..i18n import N_
from ..schema import Answer, ArticleRef, Hit

NOT_COVERED = N_("The articles I have don't cover this.")
CLOSEST = 3  # articles a refusal names

# (question, hits) → (the best passage's cosine similarity, the best share of the question's
# IDF-weighted terms one passage holds): `service.Assistant.support`.
SupportOf = Callable[[str, Sequence[Hit]], tuple[float, float]]


class Answerer(ABC):
    """Question + retrieved passages → `Answer` (citations checked afterwards by the caller)."""

    @abstractmethod
    def answer(self, question: str, hits: Sequence[Hit]) -> Answer:
        """The answer to `question` from `hits`, citing them by `[n]`, or a refusal."""

    def stream(self, question: str, hits: Sequence[Hit]) -> Iterator[str | Answer]:
        """Draft pieces (str) as they are written, then the `Answer`, always last."""
        yield self.answer(question, hits)

    def precheck(self, question: str, hits: Sequence[Hit], support: SupportOf) -> Answer | None:
        """A refusal when `hits` cannot support an answer, decided before answering; None: answer."""
        return None

    def rewrite(self, question: str, history: Sequence[str]) -> str | None:
        """A follow-up rewritten as a standalone question for retrieval; None: the caller's rule."""
        return None


def refusal(hits: Sequence[Hit] = (), notice: str = "", closest: Sequence[ArticleRef] = ()) -> Answer:
    return Answer(text=NOT_COVERED, refused=True, citations=(), hits=tuple(hits), notice=notice,
                  closest=tuple(closest))


def closest_articles(hits: Sequence[Hit], n: int = CLOSEST) -> tuple[ArticleRef, ...]:
    """The articles of the best passages, best first, each once: where a reader might look."""
    out: dict[str, ArticleRef] = {}
    for hit in sorted(hits, key=lambda h: h.rank):
        c = hit.chunk
        out.setdefault(c.article_id, ArticleRef(article_id=c.article_id, title=c.title, source=c.source,
                                                date=c.date, url=c.url))
    return tuple(out.values())[:n]


def check_citations(answer: Answer, article_text: Callable[[str], str | None]) -> Answer:
    """Enforce the citation contract; drop any citation that breaks it.

    `article_text(article_id)` returns the stored article (None when missing)."""
    if answer.refused:
        return replace(answer, citations=())
    retrieved = {h.chunk.chunk_id for h in answer.hits}
    kept = []
    for citation in answer.citations:
        text = article_text(citation.hit.chunk.article_id)
        if citation.hit.chunk.chunk_id in retrieved and text is not None and citation.quote in text:
            kept.append(citation)
    valid = {c.n for c in kept}
    body = re.sub(r"\s?\[(\d+)\]", lambda m: m.group(0) if int(m.group(1)) in valid else "", answer.text)
    dropped = {"dropped_citations": len(answer.citations) - len(kept)}
    if not kept:
        return replace(refusal(answer.hits, closest=closest_articles(answer.hits)), extra=dropped)
    return replace(answer, text=body, citations=tuple(kept), extra={**answer.extra, **dropped})
