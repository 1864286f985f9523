"""The server: an HTTP API, the embeddable chat page, and the Gradio chat on one FastAPI app.

    GET  /                  the Gradio chat (`ui.mount_chat`)
    GET  /embed             a compact chat for an iframe on another site (`embed.html`)
    POST /api/ask           {"question", "history"?, "filters"?} → the CLI's `ask --json` object
    POST /api/ask/stream    the same as Server-Sent Events: `delta` pieces, then `answer`
    POST /api/search        {"question", "history"?, "filters"?, "k"?} → ranked passages (`search --json`)
    GET  /api/health        whether the index answers, and what it holds (never waits on answers)
    GET  /api/openapi.json  the OpenAPI description (no docs page: Swagger UI would load from a CDN)

The embed page is our own, not Gradio's: Gradio's front end reads `localStorage`, which a
browser denies to a cross-site frame when third-party cookies are blocked, and then stays on
"Loading…" (README, "Embedding"). `EMBED_ALLOWED_ORIGINS` names the sites that may frame
`/embed` (CSP `frame-ancestors`) and call `/api/*` from a browser (CORS, on `/api/*` only).
What else guards the server (paths, body size, headers, the shared rate limit) is in
`security.py`; README, "Security".
"""

import asyncio
import base64
import hashlib
import html
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from importlib import resources
from typing import Annotated, AsyncIterator, Callable, Iterator

import anyio

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.middleware.cors import CORSMiddleware

from ..config import Settings
from ..errors import AssistantError, BadFeedback, BadQuestion
from ..feedback import FeedbackStore, answer_settings, feedback_path, over_limit
from ..retrieval.hybrid import Filters
from .scope import desk_scope
from .security import RateLimiter, guard, route_path
from ..service import Assistant
from .schemas import (AnswerOut, AskIn, FeedbackAmendIn, FeedbackIn, FeedbackOut, Health, PassageOut, Problem,
                      SearchIn)

log = logging.getLogger(__name__)

API = "/api"
# Every path the server answers outside the chat page (`ui.CHAT_PATHS`); anything else is 404.
API_PATHS = (f"{API}/*", "/embed")


# --- the embed page --------------------------------------------------------------------------

@cache
def embed_page(max_chars: int) -> tuple[str, str]:
    """The page's HTML and the CSP hashes of its inline script and style."""
    html = resources.files(__package__).joinpath("embed.html").read_text(encoding="utf-8")
    html = html.replace("{{MAX_CHARS}}", str(int(max_chars)))

    def digest(tag: str) -> str:
        body = re.search(rf"<{tag}>(.*?)</{tag}>", html, re.DOTALL).group(1)
        return "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"

    return html, f"script-src {digest('script')}; style-src {digest('style')}"


def frame_ancestors(origins: tuple[str, ...]) -> str:
    """The `frame-ancestors` directive of `/embed`: this site and the allowed origins; ""
    (any site may frame it, which is its purpose) when no origins are configured. Every other
    response says `frame-ancestors 'self'` (`security.SecurityHeaders`)."""
    if not origins:
        return ""
    return "frame-ancestors 'self'" + "".join(f" {o}" for o in origins)


class ApiCors:
    """CORS for `/api/*` only, for the allowed origins only; other paths pass through.

    Gradio's own CORS echoes any `Origin` (with credentials) when the server runs under a real
    host name. It stands down when the parent app registers Starlette's `CORSMiddleware`
    (documented in `gr.mount_gradio_app`), so `build_server` registers one that allows no
    origin, and this wrapper, outermost, answers for `/api/*`."""

    def __init__(self, app, origins: tuple[str, ...], prefix: str = API):
        self.app = app
        self.prefix = prefix
        self.cors = CORSMiddleware(app, allow_origins=list(origins), allow_methods=["GET", "POST", "PATCH"],
                                   allow_headers=["Content-Type"], expose_headers=["Retry-After"],
                                   allow_credentials=False, max_age=600)

    async def __call__(self, scope, receive, send):
        path = route_path(scope)
        if scope["type"] == "http" and (path == self.prefix or path.startswith(self.prefix + "/")):
            return await self.cors(scope, receive, send)
        await self.app(scope, receive, send)


# --- the app ---------------------------------------------------------------------------------

def build_api(assistant: Assistant, settings: Settings, limiter: RateLimiter | None = None,
              feedback: FeedbackStore | None = None, feedback_limiter: RateLimiter | None = None) -> FastAPI:
    """The API and the embed page, with CORS, the rate limit (`limiter`, shared with the chat in
    `build_server`) and the answer slots (shared with the chat too), without Gradio. `feedback`: where readers' ratings go (default:
    `feedback.feedback_path(settings)`), limited by `feedback_limiter` (shared with the chat too)."""
    # No docs pages: FastAPI's load Swagger UI and ReDoc from a CDN (a third party, and offline, broken).
    app = FastAPI(title="Policy Desk API", version="1",
                  description="Cited answers from the policy articles. Every `[n]` in an answer maps to "
                              "the citation numbered `n`, whose quote is verbatim from the stored article.",
                  docs_url=None, redoc_url=None, openapi_url=f"{API}/openapi.json")
    limiter = limiter or RateLimiter(settings.web.rate_limit, settings.web.trust_proxy, settings.web.rate_limit_storage)
    # Feedback: as many as questions, counted apart from them.
    feedback_limiter = feedback_limiter or RateLimiter(settings.web.rate_limit, settings.web.trust_proxy,
                                                       settings.web.rate_limit_storage)
    origins = settings.web.embed_allowed_origins

    def limit_by(by: RateLimiter, refusal: Callable[[int], str]):
        """A dependency counting each request against `by`: 429 with `Retry-After` when over."""
        def check(request: Request) -> None:
            wait = by.wait(request)
            if wait:
                raise HTTPException(429, headers={"Retry-After": str(wait)}, detail=refusal(wait))
        return check

    rate_limited = limit_by(limiter, limiter.refusal)
    feedback_limited = limit_by(feedback_limiter, over_limit)

    # Requests wait for a slot in threads of their own: waiting in the 40 worker threads would
    # leave none to run the answers that hold the slots (measured: 0.8 answers/s and 80 % 503s
    # with 50 clients, against 3.4 answers/s without a cap).
    waiting = anyio.CapacityLimiter(256)

    async def answer_slot() -> AsyncIterator[None]:
        """Hold one of the answer slots the API shares with the chat until the response is sent
        (a stream included); none free within ASSISTANT_ANSWER_WAIT: 503 with `Retry-After`."""
        capacity = assistant.capacity
        if not await anyio.to_thread.run_sync(capacity.acquire, limiter=waiting):
            busy = capacity.busy()
            raise HTTPException(503, detail=str(busy), headers={"Retry-After": str(busy.retry_after)})
        try:
            yield
        finally:
            capacity.release()

    def checked(body: AskIn) -> AskIn:
        f = body.filters
        try:
            assistant.check_question(body.question)
            assistant.earlier_questions(body.history, strict=True)
            Filters.parse(f.sources, f.since, f.until)  # real dates, as the chat checks them
        except BadQuestion as exc:
            raise HTTPException(422, detail=str(exc)) from None
        return body

    Ask = Annotated[AskIn, Depends(checked)]
    errors = {422: {"model": Problem, "description": "empty or over-long question or history item, "
                                                    "impossible date, or a malformed request"},
              429: {"model": Problem, "description": "over the rate limit; see `Retry-After`"},
              503: {"model": Problem, "description": "every answer slot stayed taken (see `Retry-After`), "
                                                     "or the index does not answer"}}
    limited = [Depends(rate_limited), Depends(answer_slot)]  # the slot is taken only by requests within the limit

    def checked_search(body: SearchIn) -> SearchIn:
        return checked(body)

    def filters(body: AskIn) -> Filters:
        return body.filters.filters()

    def answer(body: AskIn) -> AnswerOut:
        return AnswerOut.of(assistant.ask(body.question, body.history, filters(body)))

    @app.post(f"{API}/ask", response_model=AnswerOut, dependencies=limited, responses=errors,
              summary="A cited answer")  # no `verification` without a model; a `link` may be null
    def ask(body: Ask) -> AnswerOut:
        try:
            return answer(body)
        except AssistantError as exc:  # e.g. the index is not there
            raise HTTPException(503, detail=str(exc)) from None

    @app.post(f"{API}/ask/stream", response_class=EventSourceResponse, dependencies=limited,
              responses=errors, summary="A cited answer as Server-Sent Events",
              description="Events: `delta` `{\"text\"}` pieces of the answer text, in order; then `answer` with "
                          "the same object as `/api/ask`; or `error` `{\"detail\"}`. With a language model the "
                          "deltas are its draft as it is generated; `answer` holds the verified text, which "
                          "replaces the draft.")
    def ask_stream(body: Ask) -> Iterator[ServerSentEvent]:
        streamed = False
        try:
            for piece in assistant.ask_stream(body.question, body.history, filters(body)):
                if isinstance(piece, str):
                    streamed = True
                    yield ServerSentEvent(event="delta", data={"text": piece})
                else:
                    result = AnswerOut.of(piece)
        except AssistantError as exc:
            yield ServerSentEvent(event="error", data={"detail": str(exc)})
            return
        except Exception:
            log.exception("answering %r failed", body.question[:200])
            yield ServerSentEvent(event="error", data={"detail": "Something went wrong on our side. Please try again."})
            return
        if not streamed:
            # The extractive answer arrives whole; it is sent in pieces so the widget shows text
            # as early as a generating answerer does, with the same protocol.
            for piece in pieces(result.answer):
                yield ServerSentEvent(event="delta", data={"text": piece})
        yield ServerSentEvent(event="answer", data=result.model_dump(mode="json"))

    @app.post(f"{API}/search", response_model=list[PassageOut], dependencies=limited, responses=errors,
              summary="Ranked passages, without an answer")
    def search(body: Annotated[SearchIn, Depends(checked_search)]) -> list[PassageOut]:
        try:
            return [PassageOut.of(h) for h in assistant.search(body.question, body.history, filters(body), k=body.k or None)]
        except AssistantError as exc:
            raise HTTPException(503, detail=str(exc)) from None

    # Health has a thread of its own: it answers while every worker thread waits on an answer slot.
    health_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="health")

    @app.get(f"{API}/health", response_model=Health, responses={503: {"model": Problem}})
    async def health():
        try:
            chunks = await asyncio.wait_for(asyncio.wrap_future(health_thread.submit(assistant.store.chunk_count)),
                                            timeout=5)
        except Exception as exc:
            log.warning("health check: the index does not answer: %s", exc)
            return JSONResponse({"detail": "The index does not answer."}, status_code=503)
        # A loop over every chunk, once per index, on the health check's own thread.
        scope = await asyncio.wrap_future(health_thread.submit(desk_scope, assistant))
        return Health.of(scope, chunks)

    feedback = feedback or FeedbackStore(feedback_path(settings))

    def stored(store_call):
        try:
            return store_call()
        except BadFeedback as exc:
            raise HTTPException(422, detail=str(exc)) from None
        except AssistantError as exc:  # the store is full
            raise HTTPException(503, detail=str(exc)) from None

    @app.post(f"{API}/feedback", status_code=201, response_model=FeedbackOut, dependencies=[Depends(feedback_limited)],
              responses={**errors, 503: {"model": Problem, "description": "the feedback store is full"}},
              summary="A reader's 👍/👎 on an answer, with an optional comment",
              description="Stored with the time, the citations and the settings that produced the answer "
                          "(`python -m assistant feedback` lists it); nothing about the reader is stored.")
    def give_feedback(body: FeedbackIn) -> FeedbackOut:
        produced = answer_settings(settings, body.filters.filters(), body.history)
        entry_id, token = stored(lambda: feedback.add(
            body.question, body.answer, body.rating, body.comment,
            [c.model_dump(exclude_none=True) for c in body.citations], produced, via="api"))
        return FeedbackOut(id=entry_id, token=token)

    @app.patch(f"{API}/feedback/{{entry_id}}", status_code=204, dependencies=[Depends(feedback_limited)],
               responses={**errors, 404: {"model": Problem}}, summary="Change a rating, or add its comment")
    def amend_feedback(entry_id: int, body: FeedbackAmendIn) -> None:
        if not stored(lambda: feedback.amend(entry_id, body.token, body.rating, body.comment)):
            raise HTTPException(404, detail="No such feedback entry.")

    @app.get("/embed", include_in_schema=False)
    def embed():  # a plain def: FastAPI runs it in its thread pool, off the event loop
        page, sources = embed_page(settings.answers.max_question_chars)
        page = page.replace("{{SCOPE}}", html.escape(desk_scope(assistant).describe()))
        policy = (f"default-src 'none'; {sources}; connect-src 'self'; base-uri 'none'; form-action 'none'"
                  + (f"; {frame_ancestors(origins)}" if origins else ""))
        return HTMLResponse(page, headers={"Content-Security-Policy": policy, "Cache-Control": "no-cache"})

    # Starlette's CORSMiddleware allowing no origin: it also switches Gradio's CORS off (see ApiCors).
    app.add_middleware(CORSMiddleware, allow_origins=[])
    app.add_middleware(ApiCors, origins=origins)
    return app


def pieces(text: str, words: int = 6) -> list[str]:
    """`text` in runs of a few words; joined, they give `text` back exactly."""
    tokens = re.findall(r"\s*\S+", text) or [text]
    return ["".join(tokens[i:i + words]) for i in range(0, len(tokens), words)]


def build_server(assistant: Assistant, settings: Settings) -> FastAPI:
    """The whole server: API and embed page, with the Gradio chat at `/`, one rate limit for
    both, and the guards of `security.py` around it all. Serve it with uvicorn."""
    from .ui import CHAT_API, CHAT_PATHS, mount_chat

    if settings.web.embed_allowed_origins:
        log.info("/embed may be framed by, and /api/* called from: %s", ", ".join(settings.web.embed_allowed_origins))
    else:
        log.warning("EMBED_ALLOWED_ORIGINS is not set: any site may frame /embed; "
                    "no other site may call /api/* from a browser")
    limiter = RateLimiter(settings.web.rate_limit, settings.web.trust_proxy, settings.web.rate_limit_storage)
    # Feedback from the chat and from /api/feedback: one store, one limit (apart from questions').
    feedback = FeedbackStore(feedback_path(settings))
    feedback_limiter = RateLimiter(settings.web.rate_limit, settings.web.trust_proxy, settings.web.rate_limit_storage)
    server = mount_chat(build_api(assistant, settings, limiter, feedback, feedback_limiter), assistant,
                        settings.web.examples, settings.web.root_path, limiter=limiter, queue_size=settings.web.queue_size,
                        feedback=feedback, feedback_limiter=feedback_limiter)
    return guard(server, paths=API_PATHS + CHAT_PATHS, text_prefixes=(f"{API}/", CHAT_API),
                 max_body_bytes=settings.web.max_body_bytes, trust_proxy=settings.web.trust_proxy)
