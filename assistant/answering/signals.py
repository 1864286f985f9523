"""Pure signals for choosing what to quote and whether to answer at all.

Each function turns text (and already computed vectors or term weights) into a few
numbers a reader can explain: how much of the question a sentence holds, whether it
holds the kind of answer asked for (a number, a date, a person, a place), how close
its meaning is. `extractive.py` combines them with weights fitted by `bench/fit.py`
(`assistant/answering/weights.json`); nothing here is tuned to particular questions.
"""

from __future__ import annotations

import math
import re
from typing import Callable, Sequence

import numpy as np

from ..text import RECENT, stemmed_terms, weighted_share

# --- the kind of answer a question asks for ----------------------------------------------------

NUMBER, DATE, PERSON, PLACE, OTHER = "number", "date", "person", "place", "other"

# General English question forms (interrogative + what it asks for), first match wins.
_ASKS = [
    (NUMBER, r"\bhow (?:much|many|long|far|old|big|large|high|tall|often|fast)\b|"
             r"\bwhat (?:percent(?:age)?|share|number|amount|proportion|fraction|rate|price|cost|age|total|sum)\b|"
             r"\bby how\b|\bhow much\b"),
    (DATE, r"\bwhen\b|\bwhat (?:year|date|day|month|time)\b|\bwhich (?:year|date|day|month)\b|\bwhat time\b"),
    (PERSON, r"\bwho(?:m|se)?\b|\bwhich (?:person|man|woman|official|leader|politician|player|athlete|actor|"
             r"singer|artist|author|judge|lawmaker|senator|minister|president)\b"),
    (PLACE, r"\bwhere\b|\b(?:which|what) (?:country|countries|city|cities|state|states|town|place|region|"
            r"province|nation|island|continent|capital|county)\b"),
]
_ASKS = [(kind, re.compile(pattern, re.IGNORECASE)) for kind, pattern in _ASKS]


# "Who is X?" asks for a description of X, not for a name.
_DESCRIBE = re.compile(r"^\W*who(?:'s| is| was| are| were)\b", re.IGNORECASE)


def expected_type(question: str) -> str:
    """The kind of answer `question` asks for: number, date, person, place, or other."""
    if _DESCRIBE.search(question):
        return OTHER
    for kind, pattern in _ASKS:
        if pattern.search(question):
            return kind
    return OTHER


_MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|"
          r"Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)")
_WEEKDAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
SPAN_PATTERNS = {
    NUMBER: re.compile(r"(?:[$€£¥]\s?)?\d[\d,]*(?:\.\d+)?(?:\s?(?:%|per ?cent|percent|million|billion|trillion|"
                       r"thousand|hundred))?|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|"
                       r"eleven|twelve|twenty|thirty|forty|fifty|hundred|thousand|million|billion|dozens?|"
                       r"half|a third|a quarter)\b(?![-‑])(?:\s(?:million|billion|per ?cent|percent))?", re.IGNORECASE),
    DATE: re.compile(rf"\b(?:{_MONTH}\.?\s\d{{1,2}}(?:st|nd|rd|th)?(?:,\s(?:19|20)\d\d)?|\d{{1,2}}\s{_MONTH}"
                     rf"(?:\s(?:19|20)\d\d)?|{_MONTH}\s(?:of\s)?(?:19|20)\d\d|(?:19|20)\d\d|{_WEEKDAY}|"
                     rf"(?:last|next|this) (?:week|month|year)|yesterday|today|tomorrow)\b"),
    # A person: two or more capitalised words in a row ("Liu Weidong", "Joey Chestnut").
    PERSON: re.compile(r"\b[A-Z][a-z'’-]+(?:\s(?:[A-Z]\.\s)?[A-Z][a-z'’-]+)+\b"),
    # A place: a capitalised name after a place preposition ("in Kansas", "from South Korea"), "of"
    # within it ("at the Chinese Academy of Social Sciences", "in the Gulf of Mexico").
    PLACE: re.compile(r"(?:(?<=\bin )|(?<=\bat )|(?<=\bfrom )|(?<=\bto )|(?<=\bnear )|(?<=\bacross ))"
                       r"(?:the )?[A-Z][a-z'’-]+(?:\s(?:of\s(?:the\s)?)?[A-Z][a-z'’-]+)*"),
}


# Capitalised words that start a run without being part of a name ("On Friday Joey Chestnut").
_NOT_NAME = re.compile(rf"^(?:(?:{_WEEKDAY}|{_MONTH}|The|A|An|On|In|At|But|And|Or|If|As|By|For|From|To|Of|With|"
                       rf"After|Before|When|While|Since|This|That|These|Those|It|He|She|They|We|His|Her|Their|"
                       rf"Our|Its|Mr|Mrs|Ms|Dr|President|Prime|Minister|Sen|Rep|Gov)\.?\s)+")


def typed_spans(text: str, kind: str) -> list[tuple[int, int]]:
    """(start, end) of every run of `text` that could be an answer of `kind`."""
    pattern = SPAN_PATTERNS.get(kind)
    if pattern is None:
        return []
    out = []
    for m in pattern.finditer(text):
        start = m.start()
        if kind in (PERSON, PLACE):
            lead = _NOT_NAME.match(m.group(0))
            start += lead.end() if lead else 0
            if kind == PERSON and " " not in text[start:m.end()].strip():
                continue  # one word left: not a full name
        if text[start:m.end()].strip():
            out.append((start, m.end()))
    return out


def short_answer(sentence: str, question: str, kind: str) -> str:
    """The first run of `sentence` of the asked kind that the question does not already say
    ("" when there is none): a verbatim span, for the answer's bold lead. For numbers, a
    figure in digits comes before one in words."""
    asked = {w.lower() for w in re.findall(r"\w+", question)}
    spans = typed_spans(sentence, kind)
    if kind == NUMBER:  # figures written in digits before number words ("the first five months … 40.7 per cent")
        spans.sort(key=lambda se: not re.search(r"\d", sentence[se[0]:se[1]]))
    for start, end in spans:
        span = sentence[start:end].strip(" ,.;:")
        words = {w.lower() for w in re.findall(r"\w+", span)}
        if span and not words <= asked:
            return span
    return ""


# --- overlap of meaning-bearing terms -----------------------------------------------------------

def question_terms(question: str) -> set[str]:
    """The stems a question asks about; words that only say when ("this week") do not count."""
    return stemmed_terms(RECENT.sub(" ", question))


def share(asked: set[str], text: str, idf: Callable[[str], float]) -> float:
    """IDF-weighted share of `asked` stems found in `text`."""
    return weighted_share(asked, asked & stemmed_terms(text), idf)


def focus_weights(asked: set[str], candidates: Sequence[set[str]], idf: Callable[[str], float]) -> dict[str, float]:
    """Each asked term's weight among these candidate sentences: rare in the corpus (IDF) and
    held by few of the candidates, so the terms every passage repeats (the topic) count less
    than the one detail that singles out the answering sentence."""
    n = len(candidates)
    return {t: idf(t) * math.log(1 + n / (1 + sum(t in c for c in candidates))) for t in asked}


def weighted(weights: dict[str, float], found: set[str]) -> float:
    """Σ weights of the terms found / Σ all weights."""
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if t in found) / total if total else 0.0


ASKS_WHY = re.compile(r"\bwhy\b|\bwhat (?:caused|led to|made)\b|\bhow come\b|\bthe reason\b", re.IGNORECASE)
GIVES_REASON = re.compile(r"\b(?:because|due to|as a result|caused|so that|reason|amid|following|led to|in order to|"
                          r"since|after)\b", re.IGNORECASE)
# A sentence saying that a fact is not known, not disclosed or has not happened yet.
SAYS_UNKNOWN = re.compile(r"\b(?:not (?:yet )?(?:known|clear|disclosed|released|revealed|mention(?:ed)?|confirmed|"
                          r"said|say|specified|identified|determined|announced)|unclear|unknown|undisclosed|has yet to|"
                          r"have yet to|had yet to|yet to be|declined to (?:say|comment|disclose|specify|name)|"
                          r"did not (?:say|disclose|reveal|specify|mention|respond)|no (?:word|details?) (?:on|about|of))\b",
                          re.IGNORECASE)


def missing_rare(asked: set[str], text: str, idf: Callable[[str], float]) -> float:
    """The weight of the rarest asked term that `text` lacks, relative to the rarest asked term:
    near misses ask about the one detail no passage has ("in 2019", "his foot")."""
    if not asked:
        return 0.0
    weights = {t: idf(t) for t in asked}
    top = max(weights.values()) or 1.0
    found = stemmed_terms(text)
    return max((w for t, w in weights.items() if t not in found), default=0.0) / top


_QUESTION_NUMBER = re.compile(r"\b\d[\d,.]*\b")


def missing_numbers(question: str, text: str) -> float:
    """1 when the question names a number or year that `text` never mentions, else 0."""
    wanted = {n.replace(",", "") for n in _QUESTION_NUMBER.findall(question)}
    if not wanted:
        return 0.0
    have = {n.replace(",", "") for n in _QUESTION_NUMBER.findall(text)}
    return float(bool(wanted - have))


def unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


def log_words(text: str) -> float:
    return math.log1p(len(text.split()))


# --- the fitted combination -------------------------------------------------------------------

def logistic(weights: Sequence[float], bias: float, features: Sequence[float]) -> float:
    """The fitted model's probability for one row of features."""
    z = bias + float(np.dot(weights, features))
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
