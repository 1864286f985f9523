"""Passages → an Answer quoting them, with no language model.

The extractive answerer scores every sentence of the retrieved passages with a small fitted
model (`signals.py` features, `weights.py` models, fitted by `bench/fit.py` on the pooled dev
sets), decides from a second fitted model whether the best of them answers the question at all
(else it refuses and names the closest articles), and quotes the one or two best sentences,
each followed by `[n]`, led by the short answer in bold when the question asks for a name,
number, date or place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Callable, Mapping, Sequence

import numpy as np

from . import signals
from .base import Answerer, closest_articles, refusal
from .weights import RELATIVE, SENTENCE_FEATURES, Model, Weights, fitted_weights
from ..indexing.embeddings import Embedder
from ..schema import Answer, Citation, Hit
from ..text import RECENT, content_words, sentence_spans, stemmed_terms

MAX_SENTENCES = 2
# A sentence is quoted beside the best one when the second model gives it at least this share of
# its best candidate's probability (chosen by cross-validation: bench/fit.py).
SECOND_RATIO = 0.5
MIN_WORDS = 4  # shorter "sentences" are headings or fragments, not answers


# --- candidates ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Candidate:
    """A sentence of a retrieved passage, with its features and (once scored) its probability
    of holding the answer. Offsets are within the passage text."""

    hit: Hit
    start: int
    end: int
    features: tuple[float, ...]
    score: float = 0.0

    @property
    def text(self) -> str:
        return self.hit.chunk.text[self.start:self.end]


_BULLET = re.compile(r"^[-–•*·▪●]\s+")
SentenceVectors = Callable[[Sequence[str]], Mapping[str, Sequence[tuple[int, int, np.ndarray]]]]


class ExtractiveAnswerer(Answerer):
    """Quotes the sentences that best answer the question; no language model.

    Args:
        embedder: the model that embedded the passages.
        idf: a term's weight in the corpus (`Lexical.idf`).
        sentence_vectors: stored sentence vectors by chunk id (`Store.sentence_vectors`);
            spans without one are embedded here.
        weights: the fitted models (default: the committed `weights.json`).
    """

    def __init__(self, embedder: Embedder, idf: Callable[[str], float] | None = None,
                 sentence_vectors: SentenceVectors | None = None, weights: Weights | None = None):
        self.embedder = embedder
        self.idf = idf or (lambda term: 1.0)
        self.sentence_vectors = sentence_vectors
        self.weights = weights

    def answer(self, question: str, hits: Sequence[Hit]) -> Answer:
        return self.compose(question, hits, self.candidates(question, hits))

    # -- features (independent of the weights) --------------------------------------------------

    def candidates(self, question: str, hits: Sequence[Hit]) -> list[Candidate]:
        """Every sentence of every passage with its features, each sentence once."""
        spans, seen = [], set()
        stored = self.sentence_vectors([h.chunk.chunk_id for h in hits]) if self.sentence_vectors and hits else {}
        for hit in hits:
            known = {(s, e): v for s, e, v in stored.get(hit.chunk.chunk_id, ())}
            for s, e in sentence_spans(hit.chunk.text):
                vector = known.get((s, e))  # stored under the sentence's own span, bullet and all
                bullet = _BULLET.match(hit.chunk.text[s:e])
                spans.append((hit, s + bullet.end() if bullet else s, e, vector))
        if not spans:
            return []
        missing = [k for k, (*_, v) in enumerate(spans) if v is None]
        vectors = [v for *_, v in spans]
        if missing:
            encoded = self.embedder.encode([spans[k][0].chunk.text[spans[k][1]:spans[k][2]] for k in missing])
            for k, v in zip(missing, encoded):
                vectors[k] = v
        q = self.embedder.encode([question])[0]
        asked = signals.question_terms(question)
        kind = signals.expected_type(question)
        out = []
        by_hit: dict[str, list[int]] = {}
        for k, (hit, *_rest) in enumerate(spans):
            by_hit.setdefault(hit.chunk.chunk_id, []).append(k)
        passage_terms = {h.chunk.chunk_id: signals.share(asked, f"{h.chunk.title}\n{h.chunk.text}", self.idf)
                         for h in hits}
        words = content_words(question)
        why = bool(signals.ASKS_WHY.search(question))
        rows = []
        for cid, members in by_hit.items():
            for j, k in enumerate(members):
                hit, s, e, _ = spans[k]
                text = hit.chunk.text[s:e]
                if len(text.split()) < MIN_WORDS:
                    continue
                key = (hit.chunk.article_id, hit.chunk.start + s)
                if key in seen:  # overlapping chunks repeat sentences: keep the better-ranked passage's
                    continue
                seen.add(key)
                around = [members[x] for x in (j - 1, j, j + 1) if 0 <= x < len(members)]
                context_text = " ".join(hit.chunk.text[spans[x][1]:spans[x][2]] for x in around)
                context_vec = signals.unit(np.sum([vectors[x] for x in around], axis=0))
                rows.append((hit, s, e, text, {
                    "cos": float(np.dot(vectors[k], q)),
                    "cos_context": float(np.dot(context_vec, q)),
                    "terms": signals.share(asked, text, self.idf),
                    "terms_context": signals.share(asked, context_text, self.idf),
                    "terms_passage": passage_terms[cid],
                    "passage_rank": 1.0 / max(hit.rank, 1),
                    "passage_similarity": hit.similarity,
                    "type_match": float(kind != signals.OTHER and bool(signals.typed_spans(text, kind))),
                    "asks_type": float(kind != signals.OTHER),
                    "has_number": float(bool(re.search(r"\d", text))),
                    "length": signals.log_words(text),
                    "lead": float(hit.chunk.start + s < 400),
                    "overlap": len(words & content_words(text)) / len(words) if words else 0.0,
                    "cause": float(why and bool(signals.GIVES_REASON.search(text))),
                    "absence": float(bool(signals.SAYS_UNKNOWN.search(text))),
                }))
        focus = signals.focus_weights(asked, [stemmed_terms(r[3]) for r in rows], self.idf)
        for row in rows:
            row[4]["focus"] = signals.weighted(focus, stemmed_terms(row[3]))
        best = {name: max((r[4][name] for r in rows), default=0.0) for name in RELATIVE}
        for hit, s, e, _, f in rows:
            f.update({f"{name}_gap": f[name] - best[name] for name in RELATIVE})
            out.append(Candidate(hit, s, e, tuple(f[name] for name in SENTENCE_FEATURES)))
        return out

    def question_features(self, question: str, hits: Sequence[Hit], ranked: Sequence[Candidate],
                          sentence: Model) -> tuple[float, ...]:
        """What the answer-or-refuse model sees; `ranked` are scored candidates, best first."""
        best = ranked[0]
        top = ranked[:MAX_SENTENCES]
        kind = signals.expected_type(question)
        asked = signals.question_terms(question)
        passages = " ".join(f"{h.chunk.title}\n{h.chunk.text}" for h in hits)
        f = dict(zip(SENTENCE_FEATURES, best.features))
        return (
            sentence.log_odds(best.features),
            f["cos"],
            f["terms_context"],
            f["focus"],
            max(c.features[SENTENCE_FEATURES.index("terms_passage")] for c in ranked),
            signals.share(asked, passages, self.idf),
            max(h.similarity for h in hits),
            float(kind == signals.OTHER or any(signals.short_answer(c.text, question, kind) for c in top)),
            signals.missing_numbers(question, passages),
            signals.missing_rare(asked, f"{best.hit.chunk.title}\n{best.hit.chunk.text}", self.idf),
            signals.log_words(" ".join(sorted(asked))),
        )

    # -- the answer (given weights) -------------------------------------------------------------

    def compose(self, question: str, hits: Sequence[Hit], candidates: Sequence[Candidate],
                weights: Weights | None = None) -> Answer:
        weights = weights or self.weights or fitted_weights()
        if not candidates:
            return refusal(hits, closest=closest_articles(hits))
        ranked = rank(candidates, weights.sentence)
        answerable = self._answerable(question, hits, ranked, weights)
        if answerable < weights.answerable.threshold:  # a compound query: is either question answerable?
            for part in sub_questions(question):
                part_ranked = rank(self.candidates(part, hits), weights.sentence)
                answerable = max(answerable, self._answerable(part, hits, part_ranked, weights))
        if answerable < weights.answerable.threshold:
            return refusal(hits, closest=closest_articles(hits))
        best = ranked[0]
        # Beside it, the sentences the second model (every signal) ranks highest, when about as likely.
        chosen = [best] + second_sentences(ranked, weights.second or weights.sentence)
        differs = _different_figure(best, ranked)
        if differs and differs not in chosen:
            chosen.append(differs)
        return _assemble(question, hits, _with_context(chosen), differs)

    def _answerable(self, question: str, hits: Sequence[Hit], ranked: Sequence[Candidate], weights: Weights) -> float:
        """The answer-or-refuse model's probability; 0 without candidates."""
        if not ranked:
            return 0.0
        return weights.answerable.probability(self.question_features(question, hits, ranked,
                                                                     weights.second or weights.sentence))


def rank(candidates: Sequence[Candidate], sentence: Model) -> list[Candidate]:
    """`candidates` scored by the sentence model, best first."""
    return sorted((replace(c, score=sentence.probability(c.features)) for c in candidates), key=lambda c: -c.score)


def second_sentences(ranked: Sequence[Candidate], model: Model) -> list[Candidate]:
    """What is quoted beside the best sentence `ranked[0]`: the other sentences `model` ranks
    highest (up to `MAX_SENTENCES` in all), each only when `model` gives it at least
    `SECOND_RATIO` of its best candidate's probability."""
    scores = [model.probability(c.features) for c in ranked]
    top = max(scores)
    others = sorted(range(1, len(ranked)), key=lambda i: -scores[i])[:MAX_SENTENCES - 1]
    return [ranked[i] for i in others if scores[i] >= SECOND_RATIO * top]


_ASKED = re.compile(r"[^?]+\?*")
# Questions of a compound query decided on their own, at most: each costs about one more answer,
# so a question made of hundreds ("Liu Wei? " × 222) cost ~50 answers' time before this cap.
MAX_SUB_QUESTIONS = 4


def sub_questions(query: str) -> list[str]:
    """The questions of a compound query, when it holds more than one: "Who is Liu Weidong? Where
    does he work?" (typed so, or a follow-up carried with the question before it). Each is
    decided on its own as well: the pair's diluted signals fall below a threshold either clears.
    Each distinct question once, and the last `MAX_SUB_QUESTIONS` of them (a follow-up's own
    question comes last), so an answer costs at most that many more whatever the text."""
    parts = [m.group(0).strip() for m in _ASKED.finditer(query)]
    parts = list(dict.fromkeys(p for p in parts if len(p.split()) >= 2))
    return parts[-MAX_SUB_QUESTIONS:] if len(parts) > 1 else []


def spans_of(text: str) -> list[tuple[int, int]]:
    """A passage's sentences, a leading list bullet left out of the quote."""
    out = []
    for s, e in sentence_spans(text):
        bullet = _BULLET.match(text[s:e])
        out.append((s + bullet.end(), e) if bullet else (s, e))
    return out


def _assemble(question: str, hits: Sequence[Hit], chosen: list[Candidate], differs: Candidate | None) -> Answer:
    """The answer text and its citations: one `[n]` per quoted span."""
    kind = signals.expected_type(question)
    about_time = bool(RECENT.search(question))
    parts, citations, dated = [], [], set()
    lead = signals.short_answer(chosen[0].text, question, kind) if kind != signals.OTHER else ""
    for n, cand in enumerate(chosen, 1):
        chunk = cand.hit.chunk
        as_of = f" (as of {chunk.date})" if about_time and chunk.date and chunk.article_id not in dated else ""
        dated.add(chunk.article_id)
        intro = ("Another source gives a different figure: " if differs and chunk.chunk_id == differs.hit.chunk.chunk_id
                 and cand.end == differs.end else "")
        parts.append(f"{intro}{' '.join(cand.text.split())}{as_of} [{n}]")
        citations.append(Citation(n=n, hit=cand.hit, quote=cand.text))
    return Answer(text=" ".join(parts), refused=False, citations=tuple(citations), hits=tuple(hits), lead=lead)


_FIGURE = re.compile(r"([$€£])?\s?(\d[\d,]*(?:\.\d+)?)\s?(per ?cent|%|million|billion|trillion)", re.IGNORECASE)


def figures(text: str) -> dict[tuple[str, str], set[str]]:
    """Quantities in `text` by kind: ("$", "billion") → {"6"}, ("", "%") → {"40.7"}."""
    out: dict[tuple[str, str], set[str]] = {}
    for currency, value, unit in _FIGURE.findall(text):
        unit = "%" if unit.lower().replace(" ", "") in ("percent", "%") else unit.lower()
        out.setdefault((currency, unit), set()).add(value.replace(",", ""))
    return out


def _different_figure(best: Candidate, ranked: Sequence[Candidate], ratio: float = 0.5) -> Candidate | None:
    """A close runner-up from another outlet or date that gives another figure of the same kind."""
    mine = figures(best.text)
    if not mine:
        return None
    b = best.hit.chunk
    for cand in ranked[1:]:
        c = cand.hit.chunk
        if cand.score < ratio * best.score:
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


def _with_context(chosen: list[Candidate]) -> list[Candidate]:
    """Extend each sentence that refers back with the sentence before it in the same paragraph
    (never across a line break: the cleaner may have removed furniture there), and merge
    sentences of one passage that then touch within a paragraph."""
    out: list[Candidate] = []
    for cand in chosen:
        start, text = cand.start, cand.hit.chunk.text
        if _REFERS_BACK.match(cand.text):
            before = [s for s, e in spans_of(text) if e <= cand.start and "\n" not in text[s:cand.start]]
            if before:
                start = before[-1]
        extended = replace(cand, start=start)
        for i, other in enumerate(out):
            same = other.hit.chunk.chunk_id == cand.hit.chunk.chunk_id
            lo, hi = sorted([(other.start, other.end), (extended.start, extended.end)])
            if same and hi[0] <= lo[1] + 2 and "\n" not in text[lo[1]:hi[0]]:
                out[i] = replace(other, start=min(other.start, extended.start), end=max(other.end, extended.end))
                break
        else:
            out.append(extended)
    return out
