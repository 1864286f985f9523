"""The assistant: question (+ chat history, filters) → retrieval → Answer.

Built once at the edge from `Settings` by `build_assistant`; the CLI, the UI and
tests all talk to this one object. `*_to_dict` give the stable JSON shapes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

from .answer import Answerer, ExtractiveAnswerer, check_citations, closest_articles, refusal
from .capacity import Capacity
from .config import Settings
from .embeddings import MiniLM
from .errors import BadQuestion, IngestRunning
from .index import Store, open_index
from .ingest import ingest_lock, lock_path, sync
from .retrieve import Retriever, contextualize
from .schema import Answer, Filters, Hit, Verification
from .share import quote_link, safe_url

HISTORY_KEPT = 3  # earlier questions a follow-up may lean on (the rule uses 1, a model's rewrite 3)


@dataclass
class Assistant:
    settings: Settings
    store: Store
    retriever: Retriever
    answerer: Answerer
    # With a language model: rewrites a follow-up into a standalone question before retrieval
    # (`ChatAnswerer.rewrite`); None: the rule-based `contextualize`.
    rewrite: Callable[[str, list[str]], str] | None = None
    # The answer slots the API and the chat share (`capacity.Capacity`); the edges hold one per answer.
    capacity: Capacity = field(default_factory=lambda: Capacity(os.cpu_count() or 1, 10.0))

    def check_question(self, question: str) -> str:
        question = " ".join((question or "").split())  # folds newlines and tabs
        question = "".join(ch for ch in question if ch.isprintable())
        if not question:
            raise BadQuestion("Please type a question.")
        if len(question) > self.settings.max_question_chars:
            raise BadQuestion(f"That question is {len(question):,} characters long; please keep it under "
                              f"{self.settings.max_question_chars:,}.")
        return question

    def earlier_questions(self, history: Sequence[str], strict: bool = False) -> list[str]:
        """The earlier questions a follow-up may lean on: the last few, folded like a question.
        One over the question cap is left out (a refused question stays in a chat's history),
        or, with `strict`, is an error."""
        cap = self.settings.max_question_chars
        earlier = [" ".join(str(h).split()) for h in history]
        if strict and (long := next((h for h in earlier if len(h) > cap), None)):
            raise BadQuestion(f"An earlier question in `history` is {len(long):,} characters long; "
                              f"questions are at most {cap:,}.")
        return [h for h in earlier if h and len(h) <= cap][-HISTORY_KEPT:]

    def query(self, question: str, history: Sequence[str] = ()) -> str:
        """What to search for: the checked question, carrying the subject of a follow-up;
        never longer than the question cap."""
        question = self.check_question(question)
        history = self.earlier_questions(history)
        cap = self.settings.max_question_chars
        if history and self.rewrite is not None:
            return self.rewrite(question, history)[:cap]
        return contextualize(question, history, limit=cap)

    def search(self, question: str, history: Sequence[str] = (), filters: Filters = Filters(),
               k: int | None = None) -> list[Hit]:
        return self.retriever.search(self.query(question, history), k or self.settings.top_k, filters)

    def ask(self, question: str, history: Sequence[str] = (), filters: Filters = Filters()) -> Answer:
        """Answer `question`; `history` holds the earlier questions of the same chat."""
        with self.retriever.embedder.remembering():  # the question is embedded once, not again to answer
            query = self.query(question, history)
            return self.respond(query, self.retriever.search(query, self.settings.top_k, filters), filters)

    def ask_stream(self, question: str, history: Sequence[str] = (),
                   filters: Filters = Filters()) -> Iterator[str | Answer]:
        """`ask`, streaming: a generating answerer's draft as str pieces, then the checked `Answer`
        (which replaces the draft). The extractive answerer yields the `Answer` alone."""
        with self.retriever.embedder.remembering():  # not across a yield: the next step may run in another thread
            query = self.query(question, history)
            hits = self.retriever.search(query, self.settings.top_k, filters)
            stream = getattr(self.answerer, "stream", None)
            early = self._refuse(query, hits, filters)
            whole = early or (self.respond(query, hits, filters) if stream is None else None)
        if whole is not None:
            yield whole
            return
        for piece in stream(query, hits):
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
        """The refusal when the passages cannot support an answer, else None."""
        if not hits:
            notice = "No article matches these filters." if filters else "The index is empty."
            return refusal(hits, notice=notice)
        if isinstance(self.answerer, ExtractiveAnswerer):
            return None  # it decides itself, from its fitted answer-or-refuse model
        # A language model is only asked when the passages share enough with the question.
        similarity, coverage = self.support(question, hits)
        # Its floor only stops what is clearly off the corpus (`generate.floor`): the model decides.
        min_similarity, min_coverage = getattr(self.answerer, "floor", (self.settings.min_similarity,
                                                                        self.settings.min_coverage))
        if similarity < min_similarity or coverage < min_coverage:
            return refusal(hits, closest=closest_articles(hits))
        return None

    def support(self, question: str, hits: Sequence[Hit]) -> tuple[float, float]:
        """How well the passages support an answer: the best passage's cosine similarity,
        and the best share of the question's (IDF-weighted) terms that one passage holds."""
        if not hits:
            return 0.0, 0.0
        lexical = self.retriever.lexical
        return (max(h.similarity for h in hits),
                max(lexical.coverage(question, f"{h.chunk.title}\n{h.chunk.text}") for h in hits))

    @property
    def sources(self) -> list[str]:
        return self.retriever.lexical.sources

    @property
    def article_count(self) -> int:
        return self.retriever.lexical.article_count


def build_assistant(settings: Settings, embedder: MiniLM | None = None,
                    ingest_if_empty: bool = False) -> Assistant:
    """Open the index (ingesting the corpus first when it is empty and asked to)."""
    embedder = embedder or MiniLM(threads=settings.torch_threads)
    store = open_index(settings, embedder, create=ingest_if_empty)
    if ingest_if_empty and store.chunk_count() == 0:
        try:
            with ingest_lock(lock_path(settings)):
                if store.chunk_count() == 0:  # an ingest that held the lock before us may have filled it
                    print(sync(settings.corpus_dir, store, embedder, group_size=settings.embed_group).summary(),
                          flush=True)
        except IngestRunning as exc:  # it fills the index; the app picks it up when it ends (Retriever.watch)
            print(f"not ingesting at start-up: {exc}", flush=True)
    retriever = Retriever(store, embedder)
    answerer = ExtractiveAnswerer(embedder, idf=lambda term: retriever.lexical.idf(term),
                                  sentence_vectors=store.sentence_vectors)
    capacity = Capacity(settings.max_answers or os.cpu_count() or 1, settings.answer_wait)
    if settings.llm == "extractive":
        return Assistant(settings=settings, store=store, retriever=retriever, answerer=answerer, capacity=capacity)
    from .generate import build_chat_answerer

    chat = build_chat_answerer(settings, fallback=answerer, encode=embedder.encode,
                               weight=lambda term: retriever.lexical.idf(term))
    return Assistant(settings=settings, store=store, retriever=retriever, answerer=chat, rewrite=chat.rewrite,
                     capacity=capacity)


def http_url(url: str) -> str | None:
    """An article's URL as every JSON shape gives it: http(s), or None (none, or `javascript:`…)."""
    return safe_url(url) or None


def hit_to_dict(hit: Hit) -> dict:
    c = hit.chunk
    return {"rank": hit.rank, "article_id": c.article_id, "title": c.title, "source": c.source,
            "date": c.date, "url": http_url(c.url), "text": c.text, "score": round(hit.score, 6),
            "similarity": round(hit.similarity, 6), "chunk_id": c.chunk_id, "start": c.start, "end": c.end}


def answer_to_dict(answer: Answer) -> dict:
    return {
        "answer": answer.text,
        "lead": answer.lead,
        "refused": answer.refused,
        "notice": answer.notice,
        "closest": [{"article_id": a.article_id, "title": a.title, "source": a.source, "date": a.date,
                     "url": http_url(a.url)} for a in answer.closest],
        **({"verification": verification_to_dict(answer.verification)} if answer.verification else {}),
        "citations": [{"n": c.n, "article_id": c.hit.chunk.article_id, "title": c.hit.chunk.title,
                       "source": c.hit.chunk.source, "date": c.hit.chunk.date, "url": http_url(c.hit.chunk.url),
                       "quote": c.quote, "link": quote_link(c.hit.chunk.url, c.quote),
                       "passage_rank": c.hit.rank} for c in answer.citations],
        "passages": [hit_to_dict(h) for h in answer.hits],
    }


def verification_to_dict(v: Verification) -> dict:
    """Which sentences a language model wrote and how each fared against its passage
    (`verify.verify`): `verified`, `corrected` (another passage supports it; its number was
    changed) or `unsupported` (dropped). `outcome`: answered, refused (the model said the articles
    do not cover it), unsupported (nothing it wrote was supported) or failed; `fallback`: the
    answer shown is the extractive one."""
    return {"model": v.model, "outcome": v.outcome, "fallback": v.fallback,
            "first_token_s": None if v.first_token is None else round(v.first_token, 3),
            "sentences": [{"text": s.text, "status": s.status, "citations": list(s.citations),
                           "model_cited": list(s.model_cited), "support": s.support} for s in v.sentences]}
