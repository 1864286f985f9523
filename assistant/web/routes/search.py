"""`POST /api/search`: ranked passages, without an answer (`search --json`)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from ...errors import AssistantError
from ..deps import ANSWERING, PROBLEMS, Search, Web
from ..schemas import PassageOut

router = APIRouter()


@router.post("/search", response_model=list[PassageOut], dependencies=ANSWERING, responses=PROBLEMS,
             summary="Ranked passages, without an answer")
def search(body: Search, web: Web) -> list[PassageOut]:
    try:
        hits = web.assistant.search(body.question, body.history, body.filters.filters(), k=body.k or None)
    except AssistantError as exc:
        raise HTTPException(503, detail=str(exc)) from None
    return [PassageOut.of(h) for h in hits]
