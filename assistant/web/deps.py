"""What the API's routes depend on: the objects the server shares between the API and the chat
(`Shared`, which `server.api_app` sets on `app.state`), and the FastAPI dependencies that count a
request against a rate limit, hold an answer slot and check a question."""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, AsyncIterator, Callable

from fastapi import Depends, HTTPException, Request

from .. import i18n
from ..config import Settings
from ..errors import BadQuestion
from ..feedback import FeedbackStore, over_limit
from ..schema import Filters
from ..service import Assistant
from .capacity import Capacity
from .metrics import Metrics
from .observe import Observer, channel_of
from .schemas import AskIn, Problem, SearchIn
from .security import RateLimiter


@dataclass(frozen=True)
class Shared:
    """One of each object the API and the chat share, made once per server (`server.build_shared`)."""

    assistant: Assistant
    settings: Settings
    limiter: RateLimiter  # questions, from the API and the chat together
    feedback_limiter: RateLimiter  # feedback, counted apart from questions
    feedback: FeedbackStore  # readers' ratings, from the API and the chat
    capacity: Capacity  # the answer slots
    observer: Observer = Observer()  # where each question's outcome goes: the question log, the metrics
    metrics: Metrics | None = None  # ASSISTANT_METRICS=1
    sign_in_limiter: RateLimiter | None = None  # the owner's sign-in attempts (with ASSISTANT_OWNER_TOKEN)


async def shared(request: Request) -> Shared:
    # async: a plain def would take a worker thread, which /api/health must never wait for.
    return request.app.state.shared


Web = Annotated[Shared, Depends(shared)]


def _limit(request: Request, wait: int, refusal: Callable[[int], str]) -> None:
    """429 with `Retry-After` when the request is over its limit."""
    if wait:
        raise HTTPException(429, headers={"Retry-After": str(wait)}, detail=i18n.say(i18n.of_request(request), refusal(wait)))


def rate_limited(request: Request, web: Web) -> None:
    _limit(request, web.limiter.wait(request), web.limiter.refusal)


def feedback_limited(request: Request, web: Web) -> None:
    _limit(request, web.feedback_limiter.wait(request), over_limit)


async def answer_slot(request: Request, web: Web) -> AsyncIterator[None]:
    """Hold one of the answer slots the API shares with the chat until the response is sent
    (a stream included); none free within ASSISTANT_ANSWER_WAIT: 503 with `Retry-After`."""
    async with _holding(request, web.capacity):
        yield


@asynccontextmanager
async def _holding(request: Request, capacity: Capacity,
                   on_busy: Callable[[], None] | None = None) -> AsyncIterator[None]:
    if not await capacity.acquire_async():
        busy = capacity.busy()
        if on_busy is not None:
            on_busy()
        raise HTTPException(503, detail=i18n.say(i18n.of_request(request), busy), headers={"Retry-After": str(busy.retry_after)})
    try:
        yield
    finally:
        capacity.release()


# The slot is taken only by requests within the limit.
ANSWERING = [Depends(rate_limited), Depends(answer_slot)]

PROBLEMS = {422: {"model": Problem, "description": "empty or over-long question or history item, "
                                                  "impossible date, or a malformed request"},
            429: {"model": Problem, "description": "over the rate limit; see `Retry-After`"},
            503: {"model": Problem, "description": "every answer slot stayed taken (see `Retry-After`), "
                                                   "or the index does not answer"}}


def _checked(request: Request, body: AskIn, assistant: Assistant) -> None:
    f = body.filters
    try:
        assistant.check_question(body.question)
        assistant.earlier_questions(body.history, strict=True)
        Filters.parse(f.sources, f.since, f.until)  # real dates, as the chat checks them
    except BadQuestion as exc:
        raise HTTPException(422, detail=i18n.say(i18n.of_request(request), exc)) from None


def checked_ask(request: Request, body: AskIn, web: Web) -> AskIn:
    _checked(request, body, web.assistant)
    return body


def checked_search(request: Request, body: SearchIn, web: Web) -> SearchIn:
    _checked(request, body, web.assistant)
    return body


Ask = Annotated[AskIn, Depends(checked_ask)]
Search = Annotated[SearchIn, Depends(checked_search)]


async def asking_slot(request: Request, body: Ask, web: Web) -> AsyncIterator[None]:
    """`answer_slot` for a question, taken once it is checked: a question turned away busy is
    logged as such (`Observer`), timed from here (`request.state.asked_at`)."""
    request.state.asked_at = started = time.perf_counter()

    def busy() -> None:
        web.observer.asked(channel_of(request), body.question, "busy", time.perf_counter() - started)

    async with _holding(request, web.capacity, busy):
        yield


ASKING = [Depends(rate_limited), Depends(asking_slot)]
