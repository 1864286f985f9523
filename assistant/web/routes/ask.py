"""`POST /api/ask` and `POST /api/ask/stream`: a cited answer, whole or as Server-Sent Events."""

from __future__ import annotations

import logging
import re
from typing import Iterator

from fastapi import APIRouter, HTTPException, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from ... import i18n
from ...errors import SOMETHING_WRONG, AssistantError
from ..deps import ASKING, PROBLEMS, Ask, Web
from ..observe import channel_of
from ..schemas import AnswerOut

log = logging.getLogger(__name__)

router = APIRouter()


@router.post("/ask", response_model=AnswerOut, dependencies=ASKING, responses=PROBLEMS,
             summary="A cited answer")  # no `verification` without a model; a `link` may be null
def ask(body: Ask, web: Web, request: Request) -> AnswerOut:
    lang = i18n.of_request(request)
    try:
        with web.observer.asking(channel_of(request), body.question, request.state.asked_at) as answered:
            answer = web.assistant.ask(body.question, body.history, body.filters.filters())
            answered(answer)
        return AnswerOut.of(i18n.answer_in(lang, answer))
    except AssistantError as exc:  # e.g. the index is not there
        raise HTTPException(503, detail=i18n.say(lang, exc)) from None


@router.post("/ask/stream", response_class=EventSourceResponse, dependencies=ASKING, responses=PROBLEMS,
             summary="A cited answer as Server-Sent Events",
             description="Events: `delta` `{\"text\"}` pieces of the answer text, in order; then `answer` with "
                         "the same object as `/api/ask`; or `error` `{\"detail\"}`. With a language model the "
                         "deltas are its draft as it is generated; `answer` holds the verified text, which "
                         "replaces the draft.")
def ask_stream(body: Ask, web: Web, request: Request) -> Iterator[ServerSentEvent]:
    streamed, lang = False, i18n.of_request(request)
    try:
        with web.observer.asking(channel_of(request), body.question, request.state.asked_at) as answered:
            for piece in web.assistant.ask_stream(body.question, body.history, body.filters.filters()):
                if isinstance(piece, str):
                    streamed = True
                    yield ServerSentEvent(event="delta", data={"text": piece})
                else:
                    answered(piece)
                    result = AnswerOut.of(i18n.answer_in(lang, piece))
    except AssistantError as exc:
        yield ServerSentEvent(event="error", data={"detail": i18n.say(lang, exc)})
        return
    except Exception:
        log.exception("answering %r failed", body.question[:200])
        yield ServerSentEvent(event="error", data={"detail": i18n.say(lang, SOMETHING_WRONG)})
        return
    if not streamed:
        # The extractive answer arrives whole; it is sent in pieces so the widget shows text
        # as early as a generating answerer does, with the same protocol.
        for piece in pieces(result.answer):
            yield ServerSentEvent(event="delta", data={"text": piece})
    yield ServerSentEvent(event="answer", data=result.model_dump(mode="json"))


def pieces(text: str, words: int = 6) -> list[str]:
    """`text` in runs of a few words; joined, they give `text` back exactly."""
    tokens = re.findall(r"\s*\S+", text) or [text]
    return ["".join(tokens[i:i + words]) for i in range(0, len(tokens), words)]
