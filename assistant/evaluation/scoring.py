"""Scoring against question sets with gold evidence (format: shared/eval/README.md)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import Iterable, Iterator

from ..text import number_words_as_digits, stemmed_terms
from ..schema import Filters
from ..schema import Answer, Hit


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answer: str | None = None
    evidence: tuple[str, ...] = ()
    doc_ids: tuple[str, ...] = ()
    type: str = "single"
    question_date: str = ""
    # Unanswerable questions: sentences in which an article says the fact is not known yet.
    absence: tuple[str, ...] = ()
    source_file: str = ""

    @property
    def answerable(self) -> bool:
        return self.type != "unanswerable" and self.answer is not None

    @property
    def follows(self) -> str | None:
        return self.type.split(":", 1)[1] if self.type.startswith("followup:") else None


def read_questions(path: Path) -> list[Question]:
    out = []
    for line_no, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            out.append(Question(id=str(raw["id"]), question=raw["question"], answer=raw.get("answer"),
                                evidence=tuple(raw.get("evidence") or ()), doc_ids=tuple(raw.get("doc_ids") or ()),
                                type=raw.get("type") or "single", question_date=raw.get("question_date") or "",
                                absence=tuple(raw.get("absence") or ()), source_file=Path(path).name))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{line_no}: not a question record ({exc})") from None
    return out


def with_context(questions: list[Question]) -> Iterator[tuple[Question, list[str], Filters]]:
    """Each question with its chat history (for `followup:<id>`) and its date filter:
    an article published after the question was asked cannot be what it is about."""
    by_id = {q.id: q for q in questions}
    for q in questions:
        history, prev = [], q.follows
        while prev and prev in by_id and len(history) < 10:
            history.insert(0, by_id[prev].question)
            prev = by_id[prev].follows
        yield q, history, Filters(until=q.question_date)


def _norm(text: str) -> str:
    """Lower case, punctuation as space, number words as digits ("six" and "6" are one answer)."""
    return " ".join(number_words_as_digits(re.sub(r"[^\w\s.%]", " ", text.lower())).split())


def passage_matches(passage: str, evidence: str) -> bool:
    """The passage contains the evidence, or the longest run they share covers most of it."""
    p, e = _norm(passage), _norm(evidence)
    if not e:
        return False
    if e in p:
        return True
    match = SequenceMatcher(None, p, e, autojunk=False).find_longest_match(0, len(p), 0, len(e))
    return match.size >= 0.5 * len(e)


def first_hit_rank(hits: list[Hit], evidence: Iterable[str]) -> int | None:
    evidence = list(evidence)
    for hit in hits:
        if any(passage_matches(hit.chunk.text, e) for e in evidence):
            return hit.rank
    return None


_STAMP = re.compile(r"\s?\(as of [^)]*\)|\s?\[\d+\]")


def visible_text(answer_text: str) -> str:
    """What a reader reads as the answer: without date stamps and `[n]` markers."""
    return _STAMP.sub("", answer_text)


def _holds(text: str, phrase: str, share: float) -> bool:
    """`phrase` occurs in `text` on word boundaries (normalised), or ≥ `share` of its content
    words do (stemmed: "nugget" answers "nuggets")."""
    a, g = _norm(visible_text(text)), _norm(phrase)
    if g and re.search(rf"(?<![\w.]){re.escape(g)}(?![\w])", a):
        return True
    words = stemmed_terms(g)
    return bool(words) and len(words & stemmed_terms(a)) / len(words) >= share


def contains_gold(answer_text: str, gold: str) -> bool:
    """The short gold answer is in the answer text (≥ 75 % of its words)."""
    return _holds(answer_text, gold, 0.75)


def evidence_in_answer(answer_text: str, evidence: Iterable[str]) -> bool:
    """The answer a reader sees holds one evidence string, or ≥ 60 % of its words."""
    return any(_holds(answer_text, e, 0.6) for e in evidence)


def sentence_holds(sentence: str, evidence: Iterable[str]) -> bool:
    """A candidate sentence is (part of) the evidence: the label the sentence model learns."""
    s = _norm(sentence)
    return any(passage_matches(sentence, e) or (len(s.split()) >= 4 and s in _norm(e)) for e in evidence)


@dataclass
class Scores:
    answerable: int = 0
    unanswerable: int = 0
    ranks: list = field(default_factory=list)  # first-hit rank per answerable question (None: miss)
    refused_unanswerable: int = 0
    refused_answerable: int = 0
    gold_in_answer: int = 0
    evidence_in_answer: int = 0
    evidence_in_quotes: int = 0  # in the answer or the quotes shown with it (a model's words are not the evidence's)
    absence_quoted: int = 0  # unanswerable, answered by quoting an article saying it is not known
    quotes: int = 0
    quotes_verbatim: int = 0
    cited_refusals: int = 0
    dropped_citations: int = 0
    choices: int = 0  # answerable questions whose evidence is among the candidate sentences
    chosen_right: int = 0  # … and the sentence ranked first holds it
    chosen_gold: int = 0  # … and the sentence ranked first holds the gold short answer

    def recall(self, k: int) -> float:
        return sum(1 for r in self.ranks if r and r <= k) / max(len(self.ranks), 1)

    def table(self) -> dict:
        n = max(self.answerable, 1)
        return {
            "questions": self.answerable + self.unanswerable,
            "answerable": self.answerable,
            "unanswerable": self.unanswerable,
            "recall@1": round(self.recall(1), 3),
            "recall@5": round(self.recall(5), 3),
            "recall@10": round(self.recall(10), 3),
            "mrr": round(sum(1 / r for r in self.ranks if r) / max(len(self.ranks), 1), 3),
            "sentence_choice_when_retrieved": round(self.chosen_right / self.choices, 3) if self.choices else None,
            "chosen_sentence_has_gold": round(self.chosen_gold / self.choices, 3) if self.choices else None,
            "evidence_in_answer": round(self.evidence_in_answer / n, 3),
            "evidence_in_answer_or_quotes": round(self.evidence_in_quotes / n, 3),
            "unanswerable_handled": (round((self.refused_unanswerable + self.absence_quoted) / self.unanswerable, 3)
                                     if self.unanswerable else None),
            "refusal_accuracy": round(self.refused_unanswerable / self.unanswerable, 3) if self.unanswerable else None,
            "false_refusal_rate": round(self.refused_answerable / n, 3),
            "answer_contains_gold": round(self.gold_in_answer / n, 3),
            "quote_verbatim_rate": round(self.quotes_verbatim / self.quotes, 3) if self.quotes else None,
            "refusals_with_citations": self.cited_refusals,
            "citations_dropped_by_check": self.dropped_citations,
        }


def score_question(scores: Scores, q: Question, ranked: list[Hit], answer: Answer, article_text) -> dict:
    """Add one question's outcome to `scores`; returns the per-question record."""
    shown = f"{answer.lead} {answer.text}" if answer.lead else answer.text
    record = {"id": q.id, "question": q.question, "gold": q.answer, "answer": shown,
              "refused": answer.refused, "type": q.type,
              "best_similarity": max((h.similarity for h in ranked), default=None)}
    scores.dropped_citations += answer.extra.get("dropped_citations", 0)
    for c in answer.citations:
        scores.quotes += 1
        text = article_text(c.hit.chunk.article_id)
        scores.quotes_verbatim += bool(text and c.quote in text)
    if answer.refused and answer.citations:
        scores.cited_refusals += 1
    if q.answerable:
        scores.answerable += 1
        rank = first_hit_rank(ranked, q.evidence)
        scores.ranks.append(rank)
        scores.refused_answerable += answer.refused
        gold = (not answer.refused) and contains_gold(shown, q.answer)
        scores.gold_in_answer += gold
        evidence = (not answer.refused) and evidence_in_answer(shown, q.evidence)
        scores.evidence_in_answer += evidence
        quoted = (not answer.refused) and evidence_in_answer(" ".join([shown, *(c.quote for c in answer.citations)]),
                                                             q.evidence)
        scores.evidence_in_quotes += quoted
        record.update(rank=rank, gold_in_answer=gold, evidence_in_answer=evidence, evidence_in_quotes=quoted,
                      top_passage=ranked[0].chunk.text[:200] if ranked else None,
                      evidence=list(q.evidence), doc_ids=list(q.doc_ids))
    else:
        scores.unanswerable += 1
        scores.refused_unanswerable += answer.refused
        absence = (not answer.refused) and bool(q.absence) and evidence_in_answer(shown, q.absence)
        scores.absence_quoted += absence
        record.update(handled=answer.refused or absence)
    return record
