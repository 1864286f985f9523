"""`GET /api/health`: whether the index answers, and what it holds (never waits on answers)."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from functools import cache

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ..deps import Web
from ..schemas import Health, Problem
from ..scope import desk_scope

log = logging.getLogger(__name__)

router = APIRouter()


@cache
def _thread() -> ThreadPoolExecutor:
    """Health's own thread: it answers while every worker thread waits on an answer slot."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="health")


@router.get("/health", response_model=Health, responses={503: {"model": Problem}})
async def health(web: Web):
    assistant = web.assistant
    try:
        chunks = await asyncio.wait_for(asyncio.wrap_future(_thread().submit(assistant.store.chunk_count)), timeout=5)
    except Exception as exc:
        log.warning("health check: the index does not answer: %s", exc)
        return JSONResponse({"detail": "The index does not answer."}, status_code=503)
    # A loop over every chunk, once per index, on the health check's own thread.
    scope = await asyncio.wrap_future(_thread().submit(desk_scope, assistant))
    return Health.of(scope, chunks)
