"""Every sentence a language model wrote, checked against the passages it may cite (pure).

`verify` splits a draft into sentences with their `[n]` and keeps a sentence only when a
retrieved passage supports it (`Support`): the cited one (verified), or another one (the
number is corrected). Unsupported sentences are dropped, numbers that point nowhere are
removed, and `assemble` quotes the supporting sentences verbatim from their passage, so
`base.check_citations` holds as for the extractive answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..schema import Answer, CheckedSentence, Citation, Hit, Verification
from ..text import number_words_as_digits, sentence_spans, stemmed_terms, weighted_share

# A sentence is supported when its support score against one window (a sentence, or two adjacent
# sentences) of a passage reaches this. Measured on crafted pairs and on the news dev set:
# `python bench/llm.py calibrate` (docs/llm.md).
SUPPORT_THRESHOLD = 0.7
VERIFIED, CORRECTED, UNSUPPORTED = "verified", "corrected", "unsupported"

_MARKER = re.compile(r"\s*\[\s*(\d+(?:\s*[,;]\s*\d+)*)\s*\]")
_LIST_LEAD = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


@dataclass(frozen=True)
class Claim:
    """One sentence of the model's draft, without its markers, and the numbers it cited."""

    text: str
    cited: tuple[int, ...] = ()


def split_claims(draft: str) -> list[Claim]:
    """The draft's sentences with their `[n]`. A marker that opens a sentence ("… grew. [1] It …")
    belongs to the sentence before it."""
    claims: list[list] = []
    for s, e in sentence_spans(draft):
        piece = draft[s:e]
        lead = re.match(r"^(?:\s*\[\s*\d+(?:\s*[,;]\s*\d+)*\s*\])+", piece)
        if lead and claims:
            claims[-1][1].extend(_numbers(lead.group(0)))
            piece = piece[lead.end():]
        text = " ".join(_LIST_LEAD.sub("", _MARKER.sub("", piece)).split())
        text = re.sub(r"\s+([.,;:!?])", r"\1", text)
        if claims and re.fullmatch(r"\([^()]*\)", text):  # "… season. (as of 2022-06-12) [1]": an aside
            claims[-1][1].extend(_numbers(piece))
        elif text:
            claims.append([text, _numbers(piece)])
    return [Claim(text, tuple(dict.fromkeys(cited))) for text, cited in claims]


def _numbers(text: str) -> list[int]:
    return [int(n) for group in _MARKER.findall(text) for n in re.split(r"\s*[,;]\s*", group)]


@dataclass(frozen=True)
class Window:
    """A span of a passage that may support a sentence: one sentence, or two adjacent ones."""

    start: int
    end: int


class Support:
    """How well a passage window supports a sentence, in [0, 1].

    The score is the share of the sentence's content words (stemmed, weighted by `weight`, e.g.
    IDF, so a wrong name counts more than a common word) found in the window, averaged with the
    cosine similarity of the two when an `encode` function is given. Every number in the
    sentence must appear in the window, or the score is 0: a changed figure is never supported.

    Given the `question`, only the words the sentence adds to it count: the question's own words
    are in the passages it retrieved, so a sentence that restates the question ("Yes, Cosby won
    his appeal") would otherwise look supported by any passage on the topic. A sentence that
    adds nothing to the question claims nothing a passage can back: its score is 0.

    Args:
        encode: texts → L2-normalised vectors (the embedding model), or None for words only.
        weight: stemmed word → weight (default 1).
        threshold: the score a sentence needs to count as supported.
    """

    def __init__(self, encode: Callable[[list[str]], np.ndarray] | None = None,
                 weight: Callable[[str], float] | None = None, threshold: float = SUPPORT_THRESHOLD):
        self.encode = encode
        self.weight = weight or (lambda term: 1.0)
        self.threshold = threshold

    def lexical(self, said: set[str], window: str) -> float:
        """The weighted share of the stemmed terms `said` that `window` holds."""
        return weighted_share(said, said & stemmed_terms(window), self.weight)

    def scores(self, claim: str, windows: Sequence[str], question: str = "") -> np.ndarray:
        """The support score of `claim` (an answer to `question`, if given) against each window."""
        said = stemmed_terms(claim) - stemmed_terms(question)
        if not windows or (question and not said):
            return np.zeros(len(windows))
        lex = np.array([self.lexical(said, w) for w in windows])
        if self.encode is not None:
            vectors = self.encode([claim] + list(windows))
            lex = (lex + np.clip(vectors[1:] @ vectors[0], 0, 1)) / 2
        numbers = _figures(claim)
        if numbers:
            lex = lex * np.array([numbers <= _figures(w) for w in windows])
        return lex

    def best(self, claim: str, passage: str, question: str = "") -> float:
        """The best score of `claim` against the windows of `passage`."""
        return float(np.max(self.scores(claim, [passage[w.start:w.end] for w in windows(passage)], question),
                            initial=0.0))


def _figures(text: str) -> set[str]:
    """The numbers in `text`, digits or words ("two-week" and "2-week" are one figure)."""
    text = number_words_as_digits(text)
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


# An article sentence that tries to instruct the model never supports anything it writes: a
# model that obeyed it would otherwise be "verified" by the very text it obeyed.
_INSTRUCTION = re.compile(r"\b(?:ignore|disregard|forget|override)\b[^.!?\n]{0,40}\b(?:instructions?|rules?|prompts?|"
                          r"directions?)\b|\b(?:system prompt|you are now|new instructions?)\b", re.IGNORECASE)


def windows(text: str) -> list[Window]:
    """Each sentence of a passage, and each pair of adjacent sentences; sentences that give
    the model instructions are left out."""
    spans = [(s, e) if not _INSTRUCTION.search(text[s:e]) else None for s, e in sentence_spans(text)]
    out = [Window(*span) for span in spans if span]
    out += [Window(a[0], b[1]) for a, b in zip(spans, spans[1:]) if a and b]
    return out


@dataclass(frozen=True)
class Checked:
    """A draft sentence after verification. `passage` is the 1-based position of the supporting
    hit (None when unsupported); `window` the supporting span of its chunk text."""

    claim: Claim
    status: str
    passage: int | None = None
    window: Window | None = None
    score: float = 0.0


def verify(draft: str, hits: Sequence[Hit], support: Support, question: str = "") -> list[Checked]:
    """Each sentence of `draft` (an answer to `question`), checked against the passages it cites,
    then against the others.

    A cited passage that supports it: verified. Else another retrieved passage that does:
    corrected (also for a sentence that cited nothing). Else unsupported. Numbers outside
    1..len(hits) point nowhere and are ignored."""
    per_hit = [windows(h.chunk.text) for h in hits]
    out = []
    for claim in split_claims(draft):
        best: dict[int, tuple[float, Window]] = {}
        for i, (hit, wins) in enumerate(zip(hits, per_hit), 1):
            scores = support.scores(claim.text, [hit.chunk.text[w.start:w.end] for w in wins], question)
            if len(scores):
                j = int(np.argmax(scores))
                best[i] = (float(scores[j]), wins[j])
        cited = [n for n in claim.cited if n in best and best[n][0] >= support.threshold]
        if cited:
            n = max(cited, key=lambda k: best[k][0])
            out.append(Checked(claim, VERIFIED, n, best[n][1], best[n][0]))
            continue
        n = max(best, key=lambda k: best[k][0], default=None)
        if n is not None and best[n][0] >= support.threshold:
            out.append(Checked(claim, CORRECTED, n, best[n][1], best[n][0]))
        else:
            out.append(Checked(claim, UNSUPPORTED, None, None, best[n][0] if n is not None else 0.0))
    return out


def assemble(checked: Sequence[Checked], hits: Sequence[Hit], model: str = "",
             retrieved: Sequence[Hit] | None = None) -> Answer | None:
    """The answer from the supported sentences, citations numbered in order of first use, each
    quoting (verbatim) the span of its passage that supports its sentences; None when no
    sentence is supported. `hits` are the passages `checked` refers to (by position);
    `retrieved` all the passages the answer comes with (default: `hits`)."""
    kept = [c for c in checked if c.passage is not None]
    if not kept:
        return None
    numbers: dict[int, int] = {}  # passage position → citation number
    for c in kept:
        numbers.setdefault(c.passage, len(numbers) + 1)
    citations = []
    for passage, n in numbers.items():
        spans = [c.window for c in kept if c.passage == passage]
        hit = hits[passage - 1]
        start, end = min(w.start for w in spans), max(w.end for w in spans)
        citations.append(Citation(n=n, hit=hit, quote=hit.chunk.text[start:end]))
    text = " ".join(f"{_ending(c.claim.text)} [{numbers[c.passage]}]" for c in kept)
    return Answer(text=text, refused=False, citations=tuple(citations),
                  hits=tuple(hits if retrieved is None else retrieved),
                  verification=Verification(model=model, sentences=sentences(checked, numbers)))


def sentences(checked: Sequence[Checked], numbers: dict[int, int] | None = None) -> tuple[CheckedSentence, ...]:
    """The typed record of each checked sentence; `numbers` maps passage positions to the
    answer's citation numbers (none: nothing was shown)."""
    numbers = numbers or {}
    return tuple(CheckedSentence(text=c.claim.text, status=c.status,
                                 citations=(numbers[c.passage],) if c.passage in numbers else (),
                                 model_cited=c.claim.cited, support=round(c.score, 3)) for c in checked)


def _ending(text: str) -> str:
    return text if text[-1:] in ".!?…\"”'’)" else text + "."


_AS_OF = re.compile(r"\s*\(as of [^)]*\)")


def answer_citation_precision(answer: Answer, support: Support, question: str = "") -> tuple[int, int]:
    """(sentences of `answer` that cite, those whose cited passage supports them) — for any
    answerer's final text (the extractive one's "(as of <date>)" is not a claim)."""
    if answer.refused:
        return 0, 0
    by_n = {c.n: c.hit for c in answer.citations}
    cited = supported = 0
    for claim in split_claims(answer.text):
        if not claim.cited:
            continue
        cited += 1
        text = _AS_OF.sub("", claim.text)
        supported += any(support.best(text, by_n[n].chunk.text, question) >= support.threshold
                         for n in claim.cited if n in by_n)
    return cited, supported


def model_citation_precision(verification: Verification | None) -> tuple[int, int]:
    """(sentences the model cited itself, those its own number was right for)."""
    cited = [s for s in (verification.sentences if verification else ()) if s.model_cited]
    return len(cited), sum(s.status == VERIFIED for s in cited)
