"""Where each question's outcome goes: the question log (`questionlog.py`) and the metrics
(`metrics.py`), either of which may be off. The chat and the API ask through `Observer.asking`,
so a question is logged the same way from every channel."""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from ..errors import Busy
from ..questionlog import QuestionLog
from ..schema import Answer
from .metrics import Metrics

log = logging.getLogger(__name__)

CHANNEL_HEADER = "x-desk-channel"  # `/embed` sends "embed"; any other API client counts as "api"


def channel_of(request) -> str:
    return "embed" if request.headers.get(CHANNEL_HEADER, "").strip().lower() == "embed" else "api"


class Observer:
    def __init__(self, questions: QuestionLog | None = None, metrics: Metrics | None = None):
        self.questions = questions
        self.metrics = metrics

    def asked(self, channel: str, question: str, outcome: str, seconds: float, answer: Answer | None = None) -> None:
        """Record one question's outcome. A log that cannot be written loses the row, never the answer."""
        if self.metrics is not None:
            self.metrics.answers.labels(outcome=outcome, channel=channel).inc()
            if outcome in ("answered", "refused"):
                self.metrics.answer_seconds.labels(channel=channel).observe(seconds)
        if self.questions is not None:
            cited = [c.hit.chunk.article_id for c in answer.citations] if answer is not None else []
            try:
                self.questions.record(question, outcome, channel, seconds, cited)
            except Exception as exc:  # a full disk, a locked file: the reader still gets the answer
                log.error("question log %s: could not record a question: %s", self.questions.path, exc)

    @contextmanager
    def asking(self, channel: str, question: str, started: float | None = None) -> Iterator[Callable[[Answer], None]]:
        """Time the block; it calls the callback it is given with the answer. Busy in the block is
        "busy", any other exception (or no answer) "error"; the exception goes on."""
        started = time.perf_counter() if started is None else started
        got: list[Answer] = []
        try:
            yield got.append
        except Busy:
            self.asked(channel, question, "busy", time.perf_counter() - started)
            raise
        except Exception:
            self.asked(channel, question, "error", time.perf_counter() - started)
            raise
        if got:
            self.asked(channel, question, "refused" if got[-1].refused else "answered",
                       time.perf_counter() - started, got[-1])
        else:
            self.asked(channel, question, "error", time.perf_counter() - started)

    def slot_waiting(self, delta: int) -> None:
        if self.metrics is not None:
            self.metrics.waiting.inc(delta)

    def slot_running(self, delta: int) -> None:
        if self.metrics is not None:
            self.metrics.running.inc(delta)

    def busy(self) -> None:
        if self.metrics is not None:
            self.metrics.busy.inc()
