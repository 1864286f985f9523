"""The assistant: question (+ chat history, filters) → retrieval → Answer.

Built once at the edge by `wiring.build_assistant`; the CLI, the UI and tests all talk to
this one object.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import chain
from typing import Callable, Iterator, Sequence

from .answering.base import Answerer, check_citations, refusal
from .config import Settings
from .errors import BadQuestion
from .i18n import N_
from .indexing.store import Store
from .retrieval.followup import contextualize
from .retrieval.hybrid import Retriever
from .text import folded
from .schema import Answer, Filters, Hit

HISTORY_KEPT = 3  # earlier questions a follow-up may lean on (the rule uses 1, a model's rewrite 3)


@dataclass
class Assistant:
    settings: Settings
    store: Store
    retriever: Retriever
    answerer: Answerer
    # Told how many seconds each retrieval took (the server's metrics); None: nobody is told.
    on_retrieval: Callable[[float], None] | None = None

    def check_question(self, question: str) -> str:
        question = folded(question)  # newlines and tabs folded, control characters dropped
        if not question:
            raise BadQuestion(N_("Please type a question."))
        if len(question) > self.settings.answers.max_question_chars:
            raise BadQuestion(N_("That question is {length:,} characters long; please keep it under {limit:,}."),
                              length=len(question), limit=self.settings.answers.max_question_chars)
        return question

    def earlier_questions(self, history: Sequence[str], strict: bool = False) -> list[str]:
        """The earlier questions a follow-up may lean on: the last few, folded like a question.
        One over the question cap is left out (a refused question stays in a chat's history),
        or, with `strict`, is an error."""
        cap = self.settings.answers.max_question_chars
        earlier = [" ".join(str(h).split()) for h in history]
        if strict and (long := next((h for h in earlier if len(h) > cap), None)):
            raise BadQuestion(N_("An earlier question in `history` is {length:,} characters long; "
                                 "questions are at most {limit:,}."), length=len(long), limit=cap)
        return [h for h in earlier if h and len(h) <= cap][-HISTORY_KEPT:]

    def query(self, question: str, history: Sequence[str] = ()) -> str:
        """What to search for: the checked question, carrying the subject of a follow-up (the
        answerer's rewrite with a language model, else the rule); never longer than the question cap."""
        question = self.check_question(question)
        history = self.earlier_questions(history)
        cap = self.settings.answers.max_question_chars
        rewritten = self.answerer.rewrite(question, history) if history else None
        if rewritten is not None:
            return rewritten[:cap]
        return contextualize(question, history, limit=cap)

    def search(self, question: str, history: Sequence[str] = (), filters: Filters = Filters(),
               k: int | None = None) -> list[Hit]:
        return self._retrieve(self.query(question, history), k or self.settings.answers.top_k, filters)

    def _retrieve(self, query: str, k: int, filters: Filters) -> list[Hit]:
        started = time.perf_counter()
        hits = self.retriever.search(query, k, filters)
        if self.on_retrieval is not None:
            self.on_retrieval(time.perf_counter() - started)
        return hits

    def ask(self, question: str, history: Sequence[str] = (), filters: Filters = Filters()) -> Answer:
        """Answer `question`; `history` holds the earlier questions of the same chat."""
        with self.retriever.embedder.remembering():  # the question is embedded once, not again to answer
            query = self.query(question, history)
            return self.respond(query, self._retrieve(query, self.settings.answers.top_k, filters), filters)

    def ask_stream(self, question: str, history: Sequence[str] = (),
                   filters: Filters = Filters()) -> Iterator[str | Answer]:
        """`ask`, streaming: a generating answerer's draft as str pieces, then the checked `Answer`
        (which replaces the draft). The extractive answerer yields the `Answer` alone."""
        with self.retriever.embedder.remembering():  # not across a yield: the next step may run in another thread
            query = self.query(question, history)
            hits = self._retrieve(query, self.settings.answers.top_k, filters)
            early = self._refuse(query, hits, filters)
            pieces = self.answerer.stream(query, hits) if early is None else iter([early])
            first = next(pieces)  # the refusal, the whole extractive answer, or a draft's first piece
        for piece in chain([first], pieces):  # str pieces, then the Answer (the one value that is not a str)
            yield check_citations(piece, self.store.article_text) if isinstance(piece, Answer) else piece

    def respond(self, question: str, hits: Sequence[Hit], filters: Filters = Filters()) -> Answer:
        """The answer from already retrieved passages: refuse below the floor, else cite.
        `question` is the retrieval query (a follow-up carries its subject along)."""
        early = self._refuse(question, hits, filters)
        if early is not None:
            return early
        answer = self.answerer.answer(question, hits)
        return check_citations(answer, self.store.article_text)

    def _refuse(self, question: str, hits: Sequence[Hit], filters: Filters) -> Answer | None:
        """The refusal when the passages cannot support an answer, else None: no passages, or
        the answerer's pre-check (a language model is only asked when they share enough with
        the question; the extractive answerer decides itself, from its fitted model)."""
        if not hits:
            notice = N_("No article matches these filters.") if filters else N_("The index is empty.")
            return refusal(hits, notice=notice)
        return self.answerer.precheck(question, hits, self.support)

    def support(self, question: str, hits: Sequence[Hit]) -> tuple[float, float]:
        """How well the passages support an answer: the best passage's cosine similarity,
        and the best share of the question's (IDF-weighted) terms that one passage holds."""
        if not hits:
            return 0.0, 0.0
        return (max(h.similarity for h in hits),
                max(self.retriever.coverage(question, f"{h.chunk.title}\n{h.chunk.text}") for h in hits))

    @property
    def sources(self) -> list[str]:
        return self.retriever.sources

    @property
    def article_count(self) -> int:
        return self.retriever.article_count
