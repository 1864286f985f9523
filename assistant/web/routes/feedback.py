"""`POST /api/feedback` and `PATCH /api/feedback/{id}`: a reader's 👍/👎 on an answer, and its comment."""

from __future__ import annotations

from typing import Annotated, Callable, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Path

from ...errors import BadFeedback
from ...feedback import MAX_ID, answer_settings
from ..deps import PROBLEMS, Web, feedback_limited
from ..schemas import FeedbackAmendIn, FeedbackIn, FeedbackOut, Problem

router = APIRouter(dependencies=[Depends(feedback_limited)])

T = TypeVar("T")


def _stored(store_call: Callable[[], T]) -> T:
    try:
        return store_call()
    except BadFeedback as exc:
        raise HTTPException(422, detail=str(exc)) from None


@router.post("/feedback", status_code=201, response_model=FeedbackOut,
             responses={k: v for k, v in PROBLEMS.items() if k != 503},
             summary="A reader's 👍/👎 on an answer, with an optional comment",
             description="Stored with the time, the citations and the settings that produced the answer "
                         "(`python -m assistant feedback` lists it); nothing about the reader is stored. "
                         "The store keeps the newest entries within its size, the oldest removed to make room.")
def give_feedback(body: FeedbackIn, web: Web) -> FeedbackOut:
    produced = answer_settings(web.settings, body.filters.filters(), body.history)
    entry_id, token = _stored(lambda: web.feedback.add(
        body.question, body.answer, body.rating, body.comment,
        [c.model_dump(exclude_none=True) for c in body.citations], produced, via="api"))
    return FeedbackOut(id=entry_id, token=token)


@router.patch("/feedback/{entry_id}", status_code=204, responses={**PROBLEMS, 404: {"model": Problem}},
              summary="Change a rating, or add its comment")
def amend_feedback(entry_id: Annotated[int, Path(ge=1, le=MAX_ID)], body: FeedbackAmendIn, web: Web) -> None:
    if not _stored(lambda: web.feedback.amend(entry_id, body.token, body.rating, body.comment)):
        raise HTTPException(404, detail="No such feedback entry.")
