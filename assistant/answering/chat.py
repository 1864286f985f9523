"""A chat model writes the answer; every sentence's `[n]` is then checked against its passage.

The model sees the best sentences of the retrieved passages (`prompt.excerpts`) and either
answers with `[n]` after each sentence or says the passages do not cover the question. Its
reply is then taken as its call, checked:

- it declines → a refusal (cites nothing; names the closest articles);
- else each sentence is verified against the passages (`verify`): supported ones are shown with
  a verbatim quote, the others dropped; none supported → a refusal saying the articles do not
  support an answer (never quotes swapped in for the model's claims);
- the model unreachable, too slow, or its reply unreadable → the extractive answer, with a
  short notice (`Verification.fallback`).

Which model, and how it is built: `backends.py`.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import replace
from functools import cache
from importlib import resources
from typing import Iterator, Sequence

from .base import Answerer, SupportOf, closest_articles, refusal
from ..i18n import N_
from .prompt import REWRITE_SYSTEM, Excerpt, Score, build_messages, declines, excerpts
from ..retrieval.followup import contextualize
from ..schema import Answer, Hit, Verification
from ..text import content_words
from .verify import Support, assemble, sentences, verify

log = logging.getLogger(__name__)

NOT_SUPPORTED = N_("The articles I have don't support an answer to this.")
NOT_SUPPORTED_NOTICE = N_("Nothing the language model wrote was supported by the passages it was given.")


@cache
def floor() -> tuple[float, float]:
    """(min similarity, min coverage) below which the model is not asked: fitted by
    `python bench/llm.py floor --write` into `llm_floor.json`."""
    raw = json.loads(resources.files(__package__).joinpath("llm_floor.json").read_text(encoding="utf-8"))
    return float(raw["min_similarity"]), float(raw["min_coverage"])


class ChatAnswerer(Answerer):
    """Answers in prose with a chat model; keeps only sentences a passage supports.

    Args:
        model: a LangChain chat model (`BaseChatModel`).
        fallback: the answerer used when the model fails (unreachable, too slow, unreadable).
        support: the verifier's scoring (`Support`).
        name: the model's name, as shown with verified answers.
        timeout: seconds the whole reply may take.
        context_tokens: about how many tokens of passage text the prompt holds (0: whole passages).
        score: ranks passage sentences for the prompt (`prompt.relevance`; default: word share).
        floor: (min similarity, min coverage) below which it refuses without asking (`precheck`).
    """

    def __init__(self, model, fallback: Answerer, support: Support, name: str = "", timeout: float = 120.0,
                 keep_alive=None, context_tokens: int = 0, score: Score | None = None,
                 floor: tuple[float, float] = (0.0, 0.0)):
        self.model = model
        self.fallback = fallback
        self.support = support
        self.name = name
        self.timeout = timeout
        self.context_tokens = context_tokens
        self.score = score
        self.floor = floor
        self._keep_alive = keep_alive  # the local server, if any
        self._rewrites: dict[tuple, str] = {}

    def answer(self, question: str, hits: Sequence[Hit]) -> Answer:
        *_, answer = self.stream(question, hits)  # the draft pieces, then the checked answer
        return answer

    def precheck(self, question: str, hits: Sequence[Hit], support: SupportOf) -> Answer | None:
        """A refusal, without asking the model, when the passages are clearly off the question.
        The floor only stops what is clearly off the corpus (`floor()`): the model decides the rest."""
        similarity, coverage = support(question, hits)
        min_similarity, min_coverage = self.floor
        if similarity < min_similarity or coverage < min_coverage:
            return refusal(hits, closest=closest_articles(hits))
        return None

    def excerpts(self, question: str, hits: Sequence[Hit]) -> list[Excerpt]:
        """What the model is shown of `hits`."""
        return excerpts(question, hits, self.context_tokens, self.score)

    def stream(self, question: str, hits: Sequence[Hit]) -> Iterator[str | Answer]:
        """The model's draft as it is generated (str pieces), then the checked `Answer`."""
        start = time.monotonic()  # the reader waits from here: choosing the excerpts counts
        shown = self.excerpts(question, hits)
        draft, first = [], None
        try:
            deadline = start + self.timeout
            for chunk in self.model.stream(build_messages(question, shown)):
                piece = _text(chunk)
                if piece:
                    first = first if first is not None else time.monotonic() - start
                    draft.append(piece)
                    yield piece
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no complete reply within {self.timeout:g} s")
            if not "".join(draft).strip():
                raise ValueError("an empty reply")
        except Exception as exc:  # any backend's failure: the user gets the quoted answer instead
            log.warning("the language model failed (%s: %s); showing the extractive answer",
                        type(exc).__name__, str(exc)[:300])
            record = Verification(self.name, "failed", draft="".join(draft), error=type(exc).__name__,
                                  first_token=first)
            yield self._fallback(question, hits, _failure(exc), record)
            return
        text = "".join(draft)
        record = Verification(self.name, draft=text, first_token=first)
        if declines(text):
            yield self._refusal(hits, replace(record, outcome="refused"))
            return
        shown_hits = [x.hit for x in shown]
        checked = verify(text, shown_hits, self.support, question)
        answer = assemble(checked, shown_hits, self.name, retrieved=hits)
        if answer is None:
            yield self._refusal(hits, replace(record, outcome="unsupported", sentences=sentences(checked)),
                                text=NOT_SUPPORTED, notice=NOT_SUPPORTED_NOTICE)
            return
        yield replace(answer, verification=replace(answer.verification, draft=text, first_token=first))

    @staticmethod
    def _refusal(hits: Sequence[Hit], record: Verification, text: str = "", notice: str = "") -> Answer:
        """The one place a model's refusal is built: cites nothing, names the closest articles."""
        base = refusal(hits, notice=notice, closest=closest_articles(hits))
        return replace(base, text=text or base.text, verification=record)

    def _fallback(self, question: str, hits: Sequence[Hit], notice: str, record: Verification) -> Answer:
        return replace(self.fallback.answer(question, hits), notice=notice, verification=record)

    def rewrite(self, question: str, history: Sequence[str]) -> str:
        """A follow-up rewritten as a standalone question for retrieval; the rule-based
        `contextualize` when the model fails or strays from the conversation's words."""
        if not history:
            return question
        key = (question, tuple(history[-3:]))
        if key not in self._rewrites:
            self._rewrites[key] = self._rewrite(question, list(history[-3:]))
        return self._rewrites[key]

    def _rewrite(self, question: str, history: list[str]) -> str:
        rule = contextualize(question, history)
        earlier = "\n".join(f"- {q}" for q in history)
        try:
            reply = _text(self.model.invoke([("system", REWRITE_SYSTEM),
                                             ("human", f"Earlier questions:\n{earlier}\n\nLast question: {question}")]))
        except Exception as exc:
            log.warning("rewriting the follow-up failed (%s); searching by rule", type(exc).__name__)
            return rule
        lines = [line.strip() for line in reply.splitlines() if line.strip()]
        candidate = lines[0].strip("\"'“” ") if lines else ""
        candidate = re.sub(r"^(?:rewritten question|question)\s*:\s*", "", candidate, flags=re.IGNORECASE)
        said = content_words(" ".join(history + [question]))
        asked, words = content_words(question), content_words(candidate)
        # The rewrite keeps the question's own words and uses the conversation's (most of them):
        # a model that drops the question or invents a subject would send retrieval elsewhere.
        if not words or len(candidate) > 2 * len(" ".join(history + [question])) + 50 \
                or len(words & said) < 0.75 * len(words) or len(words & asked) < 0.5 * len(asked):
            return rule
        return candidate


def _text(message) -> str:
    content = message.content  # a LangChain message or message chunk
    if isinstance(content, list):  # content blocks
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return content if isinstance(content, str) else ""


def _failure(exc: Exception) -> str:
    name = type(exc).__name__.lower()
    if "timeout" in name:
        why = "took too long to answer"
    elif "connect" in name:
        why = "could not be reached"
    else:
        why = "gave a reply that could not be read"
    return f"The language model {why}, so these are quoted sentences instead."
