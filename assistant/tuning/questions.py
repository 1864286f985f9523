"""The prompt that asks for readers' questions about numbered sentences, the defensive parse of
the reply, and the filters a question must pass before retrieval is asked about it.

Pure: no model, no index. The thresholds were read off the human natural dev sets
(`questions_natural_dev*.jsonl`): their longest word run shared with the evidence sentence is
≤ 3 words for 82 of 86 questions, and they are 5–22 words long.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

PROMPT_VERSION = "v5"

MAX_SHARED_RUN = 3  # a question sharing a run of 4+ words with its sentence copied it
MIN_WORDS, MAX_WORDS = 4, 25

SYSTEM = ("You write practice questions for a news search assistant. Real readers type short, casual "
          "questions in their own words. You reply with JSON only.")

# The instructions follow the sentences: a 1.5B model heeds what it read last (with them in the
# system prompt, measured on 30 sentences, its questions stopped naming what they asked about).
INSTRUCTIONS = """Article: "{title}"

Sentences:
{sentences}

For each numbered sentence: pick the fact it states ("answer": a few words copied from that sentence), then write one question ("q") that a reader would type into a chat to find that fact; the sentence must answer it.
- short (5 to 15 words), lower-case, casual, the way people type; now and then a typo or a loose name ("the fed", "biden admin")
- in your own words: never copy 3 words in a row from the sentence; use other words for the same thing
- the question must make sense on its own: name the person, place or thing it is about (no "he", "she", "the article")

Then write {near} "near miss" questions: about the same people or event, asking for a fact that neither the title nor these sentences give (another year, a number they do not mention, a reaction or an outcome not reported). Same casual style.

Reply with JSON only: {{"questions": [{{"n": 1, "answer": "...", "q": "..."}}, ...], "near_misses": ["...", ...]}}"""

# A worked example on a made-up article (never one of the corpus's).
EXAMPLE_TITLE = "City council approves airport tram line"
EXAMPLE_SENTENCES = (
    "The city council of Varn voted 7 to 2 on Monday to build a 12-kilometre tram line linking the "
    "airport with the old town.",
    "Construction is due to start in 2025 and will cost 310 million euros, most of it paid by the "
    "regional government.",
    "Mayor Ana Ruiz said the line would take 20,000 cars off the road every day.",
)
EXAMPLE_REPLY = {
    "questions": [
        {"n": 1, "answer": "7 to 2", "q": "how close was the varn council vote on the airport tram"},
        {"n": 2, "answer": "310 million euros", "q": "whats the price tag on varn's new tram"},
        {"n": 3, "answer": "20,000 cars", "q": "how much traffic does ruiz think the tramway wil take off the streets"},
    ],
    "near_misses": ["how much will a single ticket on the varn airport tram cost",
                    "how many cars drove to varn airport back in 2019"],
}


def reply_schema(n_sentences: int, near: int) -> dict:
    """JSON schema of the reply (llama.cpp enforces it as a grammar)."""
    item = {"type": "object",
            "properties": {"n": {"type": "integer"}, "answer": {"type": "string"}, "q": {"type": "string"}},
            "required": ["n", "answer", "q"]}
    return {"type": "object",
            "properties": {"questions": {"type": "array", "minItems": n_sentences, "maxItems": n_sentences,
                                         "items": item},
                           "near_misses": {"type": "array", "minItems": near, "maxItems": near,
                                           "items": {"type": "string"}}},
            "required": ["questions", "near_misses"]}


def _user(title: str, sentences: list[str], near: int) -> str:
    numbered = "\n".join(f"{i}. {' '.join(s.split())}" for i, s in enumerate(sentences, 1))
    return INSTRUCTIONS.format(title=title or "(untitled)", sentences=numbered, near=near)


def build_messages(title: str, sentences: list[str], near: int = 2) -> list[dict]:
    """Chat messages asking for the fact and a reader's question per sentence, and `near` near misses."""
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": _user(EXAMPLE_TITLE, list(EXAMPLE_SENTENCES), 2)},
        {"role": "assistant", "content": json.dumps(EXAMPLE_REPLY)},
        {"role": "user", "content": _user(title, sentences, near)},
    ]


# The check: the same model, asked the other way round, says which sentence answers each question
# (0: none). Writing, it often pairs a question with the wrong sentence or calls an answered
# question a near miss; matching is the easier task.
CHECK_SYSTEM = "You match questions to the sentence that answers them. You reply with JSON only."
CHECK = """Sentences:
{sentences}

Questions:
{questions}

For each question, give the number of the sentence that answers it, or 0 if none of the sentences answers it.
Reply with JSON only: {{"answers": [{{"question": "A", "sentence": 0}}, ...]}}"""
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def check_messages(sentences: list[str], questions: list[str]) -> list[dict]:
    """Chat messages asking which sentence (0: none) answers each question (at most 26)."""
    numbered = "\n".join(f"{i}. {' '.join(s.split())}" for i, s in enumerate(sentences, 1))
    lettered = "\n".join(f"{_LETTERS[i]}. {q}" for i, q in enumerate(questions))
    return [{"role": "system", "content": CHECK_SYSTEM},
            {"role": "user", "content": CHECK.format(sentences=numbered, questions=lettered)}]


def check_schema(n_sentences: int, n_questions: int) -> dict:
    item = {"type": "object",
            "properties": {"question": {"type": "string", "enum": list(_LETTERS[:n_questions])},
                           "sentence": {"type": "integer", "enum": list(range(n_sentences + 1))}},
            "required": ["question", "sentence"]}
    return {"type": "object",
            "properties": {"answers": {"type": "array", "minItems": n_questions, "maxItems": n_questions,
                                       "items": item}},
            "required": ["answers"]}


def parse_check(reply: str, questions: list[str]) -> dict[str, int]:
    """{question: sentence number (0: none)} from a check reply; unknown letters and repeats dropped."""
    data = _json_object(reply)
    answers = data.get("answers") if isinstance(data, dict) else None
    out: dict[str, int] = {}
    for a in answers if isinstance(answers, list) else []:
        if not isinstance(a, dict) or not isinstance(a.get("question"), str):
            continue
        letter, n = a["question"].strip().upper(), a.get("sentence")
        if len(letter) == 1 and letter in _LETTERS[:len(questions)] and isinstance(n, int) \
                and questions[_LETTERS.index(letter)] not in out:
            out[questions[_LETTERS.index(letter)]] = n
    return out


@dataclass(frozen=True)
class Item:
    """What the model wrote for sentence `n` (1-based): the fact it states, and the question."""

    n: int
    answer: str
    question: str


def parse_reply(reply: str, n_sentences: int) -> tuple[list[Item], list[str]]:
    """The items (one per sentence number at most) and the near misses of a model's reply.
    Anything malformed is dropped: text around the JSON, code fences, numbers out of range or
    repeated, values that are not strings, empty questions."""
    data = _json_object(reply)
    if not isinstance(data, dict):
        return [], []
    items = data.get("questions")
    out: dict[int, Item] = {}
    for i, item in enumerate(items if isinstance(items, list) else [], 1):
        if not isinstance(item, dict):
            continue
        n, answer, q = item.get("n", i), item.get("answer", ""), item.get("q")
        try:
            n = int(n)
        except (TypeError, ValueError):
            continue
        if isinstance(q, str) and clean(q) and isinstance(answer, str) and 1 <= n <= n_sentences and n not in out:
            out[n] = Item(n, " ".join(answer.split()), clean(q))
    misses = data.get("near_misses")
    misses = [clean(m) for m in (misses if isinstance(misses, list) else []) if isinstance(m, str) and clean(m)]
    return [out[n] for n in sorted(out)], list(dict.fromkeys(misses))


def _json_object(reply: str):
    """The first JSON object in `reply` (fenced or not), or None."""
    text = re.sub(r"```(?:json)?", " ", reply or "")
    start = text.find("{")
    while start >= 0:
        try:
            return json.JSONDecoder().raw_decode(text, start)[0]
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
    return None


def clean(question: str) -> str:
    """One line, single spaces, no wrapping quotes or list marks."""
    q = " ".join(str(question).split()).strip().strip('"“”\'').strip()
    return re.sub(r"^(?:[-*•]|\d+[.)]|q\d*:)\s*", "", q, flags=re.IGNORECASE)


_WORD = re.compile(r"\w+(?:['’.]\w+)*")


def words(text: str) -> list[str]:
    """Lower-cased words, apostrophes straightened."""
    return [w.lower().replace("’", "'") for w in _WORD.findall(text)]


def longest_shared_run(question: str, sentence: str) -> int:
    """Length, in words, of the longest run of words `question` and `sentence` share."""
    a, b = words(question), words(sentence)
    best, prev = 0, [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best


def reject_reason(question: str, sentences: list[str]) -> str:
    """Why a question is not kept ("" when it passes): `length`, `copy` (a run of more than
    MAX_SHARED_RUN words shared with any of `sentences`), `meta` (it speaks of the text) or
    `vague` (it asks what "he" or "she" did: about whom?), `compound` (two questions in one) or
    `example` (it borrows from the prompt's worked example)."""
    n = len(words(question))
    if not MIN_WORDS <= n <= MAX_WORDS:
        return "length"
    if any(longest_shared_run(question, s) > MAX_SHARED_RUN for s in sentences):
        return "copy"
    if re.search(r"\b(?:the|this|that) (?:article|sentence|text|passage|story)\b", question, re.IGNORECASE):
        return "meta"
    if _VAGUE.search(question):
        return "vague"
    if _COMPOUND.search(question):
        return "compound"
    if _EXAMPLE.search(question) or any(longest_shared_run(question, q) > MAX_SHARED_RUN for q in _EXAMPLE_QS):
        return "example"
    return ""


# A question about "he" or "she" does not say whom it asks about (a follow-up would; these are not).
_VAGUE = re.compile(r"\b(?:he|she)\b", re.IGNORECASE)
# The worked example's made-up names, and its questions: a question that borrows them is a slip.
_EXAMPLE = re.compile(r"\b(?:varn|ruiz)\b", re.IGNORECASE)
_EXAMPLE_QS = [i["q"] for i in EXAMPLE_REPLY["questions"]] + EXAMPLE_REPLY["near_misses"]
# Two questions in one ("who won, and what was the score"): one of them is usually answered.
_COMPOUND = re.compile(r"(?:\band|\bor|,)\s+(?:what|who|when|where|why|how|which)\b", re.IGNORECASE)
