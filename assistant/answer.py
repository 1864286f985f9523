"""Passages → Answer with citations.

The default answerer is extractive: it quotes the one to three sentences of the
retrieved passages that best answer the question, each followed by `[n]`. Any
answerer (a chat model later) implements `Answerer`; `check_citations` then holds
every answer to the citation contract: each `[n]` maps to a retrieved passage,
each quote occurs verbatim in its stored article, and a refusal cites nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Callable, Protocol, Sequence

from .embeddings import MiniLM
from .schema import Answer, Citation, Hit
from .text import RECENT, content_words, sentence_spans

NOT_COVERED = "The articles I have don't cover this."
MAX_SENTENCES = 3
MIN_WORDS = 4  # shorter "sentences" are headings or fragments, not answers

_QUANTITY = re.compile(r"\b(how (much|many|long|far|old|large|big)|what (percentage|share|number|amount|year|date)|"
                       r"when|which year|by how)\b", re.IGNORECASE)
_NUMBER = re.compile(r"\d")


class Answerer(Protocol):
    def answer(self, question: str, hits: Sequence[Hit]) -> Answer: ...


def refusal(hits: Sequence[Hit] = (), notice: str = "") -> Answer:
    return Answer(text=NOT_COVERED, refused=True, citations=(), hits=tuple(hits), notice=notice)


@dataclass(frozen=True)
class _Candidate:
    hit: Hit
    start: int  # offsets within the chunk text
    end: int
    score: float

    @property
    def text(self) -> str:
        return self.hit.chunk.text[self.start:self.end]


class ExtractiveAnswerer:
    """Quotes the sentences that best answer the question; no language model."""

    def __init__(self, embedder: MiniLM, margin: float = 0.08):
        self.embedder = embedder
        self.margin = margin  # extra sentences must score within this of the best

    def answer(self, question: str, hits: Sequence[Hit]) -> Answer:
        candidates = self._score(question, hits)
        if not candidates:
            return refusal(hits)
        best = max(candidates, key=lambda c: c.score)
        chosen = [c for c in sorted(candidates, key=lambda c: -c.score)
                  if c.score >= best.score - self.margin][:MAX_SENTENCES]
        differs = _different_figure(chosen[0], candidates, 2 * self.margin)
        if differs and differs not in chosen:
            chosen.append(differs)
        chosen = _with_context(chosen, first_too=bool(_ASKS_NAME.search(question)))

        numbers: dict[str, int] = {}  # chunk_id → citation number, in order of first use
        parts = []
        about_time = bool(RECENT.search(question))
        for cand in chosen:
            first_use = cand.hit.chunk.chunk_id not in numbers
            n = numbers.setdefault(cand.hit.chunk.chunk_id, len(numbers) + 1)
            as_of = f" (as of {cand.hit.chunk.date})" if about_time and first_use and cand.hit.chunk.date else ""
            lead = "Another source gives a different figure: " if differs and cand.end == differs.end \
                and cand.hit.chunk.chunk_id == differs.hit.chunk.chunk_id else ""
            parts.append(f"{lead}{' '.join(cand.text.split())}{as_of} [{n}]")
        citations = []
        for chunk_id, n in numbers.items():
            spans = [c for c in chosen if c.hit.chunk.chunk_id == chunk_id]
            hit = spans[0].hit
            start, end = min(c.start for c in spans), max(c.end for c in spans)
            citations.append(Citation(n=n, hit=hit, quote=hit.chunk.text[start:end]))
        return Answer(text=" ".join(parts), refused=False, citations=tuple(citations), hits=tuple(hits))

    def _score(self, question: str, hits: Sequence[Hit]) -> list[_Candidate]:
        """Every sentence of every passage, scored: meaning (cosine), the question's own
        words, and — for how-much/when questions — whether it holds a number."""
        spans, seen = [], set()
        for hit in hits:
            for s, e in sentence_spans(hit.chunk.text):
                # Overlapping chunks repeat sentences: keep each once, from the better-ranked passage.
                key = (hit.chunk.article_id, hit.chunk.start + s)
                if len(hit.chunk.text[s:e].split()) >= MIN_WORDS and key not in seen:
                    seen.add(key)
                    spans.append((hit, s, e))
        if not spans:
            return []
        texts = [hit.chunk.text[s:e] for hit, s, e in spans]
        vectors = self.embedder.encode([question] + texts)
        cosine = vectors[1:] @ vectors[0]
        asked = content_words(question)
        wants_number = bool(_QUANTITY.search(question))
        out = []
        for (hit, s, e), text, cos in zip(spans, texts, cosine):
            overlap = len(asked & content_words(text)) / len(asked) if asked else 0.0
            number = 0.1 if wants_number and _NUMBER.search(text) else 0.0
            out.append(_Candidate(hit, s, e, float(cos) + 0.3 * overlap + number - 0.02 * (hit.rank - 1)))
        return out


_FIGURE = re.compile(r"([$€£])?\s?(\d[\d,]*(?:\.\d+)?)\s?(per ?cent|%|million|billion|trillion)", re.IGNORECASE)


def figures(text: str) -> dict[tuple[str, str], set[str]]:
    """Quantities in `text` by kind: ("$", "billion") → {"6"}, ("", "%") → {"40.7"}."""
    out: dict[tuple[str, str], set[str]] = {}
    for currency, value, unit in _FIGURE.findall(text):
        unit = "%" if unit.lower().replace(" ", "") in ("percent", "%") else unit.lower()
        out.setdefault((currency, unit), set()).add(value.replace(",", ""))
    return out


def _different_figure(best: _Candidate, candidates: list[_Candidate], margin: float) -> _Candidate | None:
    """A close runner-up from another outlet or date that gives another figure of the same kind."""
    mine = figures(best.text)
    if not mine:
        return None
    b = best.hit.chunk
    for cand in sorted(candidates, key=lambda c: -c.score):
        c = cand.hit.chunk
        if cand.score < best.score - margin:
            return None
        if c.article_id == b.article_id or (c.source, c.date) == (b.source, b.date):
            continue
        theirs = figures(cand.text)
        if any(kind in mine and theirs[kind] != mine[kind] for kind in theirs):
            return cand
    return None


# A sentence that opens by referring back ("He said…", "The company is…", "“We are…") needs
# the sentence before it to say who or what it is about.
_REFERS_BACK = re.compile(r"^[“\"‘']?\s*(?:(?i:he|she|it|they|his|her|its|their|this|that|these|those|we|our|"
                          r"such|both)\b|[Tt]he [a-z0-9])")


# "Which show…", "Who…", "Where…": the name asked for often stands in the sentence before the
# one that matches the question best ("“Squid Game” is coming back. Netflix said the show…").
_ASKS_NAME = re.compile(r"^\s*(?:which|who|whom|whose|where)\b|\b(?:which|what) (?:\w+ )?(?:country|company|show|"
                        r"team|city|state|park|movie|film|person|brand|animal|product|nation|organi[sz]ation)\b",
                        re.IGNORECASE)


def _with_context(chosen: list[_Candidate], first_too: bool = False) -> list[_Candidate]:
    """Extend each sentence that refers back (and the best one, when `first_too`) with the
    sentence before it in its passage; merge sentences of one passage that then touch."""
    out: list[_Candidate] = []
    for i, cand in enumerate(chosen):
        start = cand.start
        if _REFERS_BACK.match(cand.text) or (first_too and i == 0):
            before = [s for s, e in sentence_spans(cand.hit.chunk.text) if e <= cand.start]
            if before:
                start = before[-1]
        extended = replace(cand, start=start)
        for i, other in enumerate(out):
            same = other.hit.chunk.chunk_id == cand.hit.chunk.chunk_id
            if same and extended.start <= other.end + 2 and other.start <= extended.end + 2:
                out[i] = replace(other, start=min(other.start, extended.start), end=max(other.end, extended.end))
                break
        else:
            out.append(extended)
    return out


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
        return replace(refusal(answer.hits), extra=dropped)
    return replace(answer, text=body, citations=tuple(kept), extra={**answer.extra, **dropped})
