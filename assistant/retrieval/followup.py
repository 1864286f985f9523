"""Follow-up questions without a language model: carry the subject of the previous question
along when this one leans on it."""

from __future__ import annotations

import re

_PRONOUN = re.compile(r"\b(he|she|it|they|him|her|his|hers|its|their|them|this|that|these|those|"
                      r"the same|there)\b", re.IGNORECASE)


def contextualize(question: str, history: list[str], limit: int | None = None) -> str:
    """The retrieval query for a follow-up: without a language model, carry the previous
    question along when this one leans on it (a pronoun or a very short question). With
    `limit`, the query has at most that many characters: the question whole (when it fits),
    and as much of the previous question as fits, cut at a word."""
    if not history or not (_PRONOUN.search(question) or len(question.split()) <= 4):
        return question if limit is None else question[:limit]
    earlier = history[-1]
    if limit is not None and len(earlier) + 1 + len(question) > limit:
        room = limit - len(question) - 1
        cut = earlier[:max(room + 1, 0)]
        earlier = cut.rsplit(" ", 1)[0] if " " in cut else cut[:room]
        if not earlier:
            return question[:limit]
    return f"{earlier} {question}"
