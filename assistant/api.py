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
from typing import Annotated, AsyncIterator, Callable, Iterator, Literal

import anyio

from fastapi import Depends, FastAPI, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, ConfigDict, Field
from starlette.middleware.cors import CORSMiddleware

from .config import Settings
from .errors import AssistantError, BadFeedback, BadQuestion
from .feedback import (MAX_ANSWER, MAX_CITATIONS, MAX_COMMENT, MAX_ID, MAX_QUESTION, MAX_SOURCE, MAX_SOURCES,
                       FeedbackStore, answer_settings, feedback_path, over_limit)
from .retrieve import Filters
from .scope import desk_scope
from .security import RateLimiter, guard, route_path
from .service import Assistant, answer_to_dict, hit_to_dict

log = logging.getLogger(__name__)

API = "/api"
# Every path the server answers outside the chat page (`ui.CHAT_PATHS`); anything else is 404.
API_PATHS = (f"{API}/*", "/embed")
_DATE = r"^(\d{4}-\d{2}-\d{2})?$"


# --- request and response shapes (they are the OpenAPI schema) -------------------------------

class FiltersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sources: list[Annotated[str, Field(max_length=MAX_SOURCE)]] = Field(default=[], max_length=MAX_SOURCES,
                                                                        description="only these outlets")
    since: str = Field(default="", pattern=_DATE, description="only articles dated on or after (YYYY-MM-DD)")
    until: str = Field(default="", pattern=_DATE, description="only articles dated on or before (YYYY-MM-DD)")


class AskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(description="the question; folded to one line, at most ASSISTANT_MAX_QUESTION_CHARS")
    history: list[str] = Field(default=[], max_length=50, description="earlier questions of the same chat")
    filters: FiltersIn = FiltersIn()


class SearchIn(AskIn):
    k: int = Field(default=0, ge=0, le=50, description="how many passages; 0: ASSISTANT_TOP_K")


class CitationOut(BaseModel):
    n: int
    article_id: str
    title: str
    source: str
    date: str
    url: str | None = Field(description="the article's http(s) URL; null when it has none")
    quote: str = Field(description="verbatim from the stored article")
    link: str | None = Field(description="the article URL with a text fragment (`#:~:text=…`) that opens it "
                                         "scrolled to the quote, highlighted; null when the article has no "
                                         "http(s) URL")
    passage_rank: int


class PassageOut(BaseModel):
    rank: int
    article_id: str
    title: str
    source: str
    date: str
    url: str | None = Field(description="the article's http(s) URL; null when it has none")
    text: str
    score: float
    similarity: float
    chunk_id: str
    start: int
    end: int


class SentenceOut(BaseModel):
    text: str
    status: str = Field(description="`verified` (its cited passage supports it), `corrected` (another passage "
                                    "does; its number was changed) or `unsupported` (dropped from the answer)")
    citations: list[int] = Field(description="its number(s) in the answer")
    model_cited: list[int] = Field(description="the number(s) the model wrote")
    support: float = Field(description="the best support score a passage gave it")


class VerificationOut(BaseModel):
    model: str
    outcome: str = Field(description="`answered`, `refused` (the model said the articles do not cover the "
                                     "question), `unsupported` (nothing it wrote was supported: refused) or "
                                     "`failed` (unreachable, too slow or unreadable)")
    fallback: bool = Field(description="true when the model failed: the answer is then the extractive one")
    first_token_s: float | None = Field(default=None, description="seconds to the model's first token")
    sentences: list[SentenceOut]


class ArticleOut(BaseModel):
    article_id: str
    title: str
    source: str
    date: str
    url: str | None = Field(description="the article's http(s) URL; null when it has none")


class AnswerOut(BaseModel):
    answer: str = Field(description="the answer; each claim is followed by its citation `[n]`")
    lead: str = Field(default="", description="the short answer (a name, number, date or place), verbatim from "
                                              "the first quote; shown in bold before the answer; may be empty")
    refused: bool = Field(description="true when the articles don't cover the question (then nothing is cited)")
    closest: list[ArticleOut] = Field(default=[], description="on a refusal: the articles closest to the question, "
                                                              "named but not cited")
    notice: str
    verification: VerificationOut | None = Field(default=None, description="with a language model "
                                                 "(ASSISTANT_LLM): how each sentence it wrote was checked")
    citations: list[CitationOut]
    passages: list[PassageOut]


class CitationIn(BaseModel):
    """A citation as the reader saw it (the API's citation object; other fields are ignored)."""
    model_config = ConfigDict(extra="ignore")
    n: int
    article_id: str = Field(default="", max_length=1000)
    title: str = Field(default="", max_length=1000)
    url: str | None = Field(default=None, max_length=2000)
    link: str | None = Field(default=None, max_length=4000)
    quote: str = Field(default="", max_length=2000)


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=MAX_QUESTION)
    answer: str = Field(max_length=MAX_ANSWER, description="the answer text the reader rated")
    rating: Literal["up", "down"]
    comment: str = Field(default="", max_length=MAX_COMMENT, description="optional, as the reader typed it")
    citations: list[CitationIn] = Field(default=[], max_length=MAX_CITATIONS)
    history: list[Annotated[str, Field(max_length=MAX_QUESTION)]] = Field(
        default=[], max_length=50, description="earlier questions of the same chat")
    filters: FiltersIn = FiltersIn()


class FeedbackAmendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(max_length=100, description="the token `POST /api/feedback` returned")
    rating: Literal["up", "down"] | None = None
    comment: str | None = Field(default=None, max_length=MAX_COMMENT)


class FeedbackOut(BaseModel):
    id: int
    token: str = Field(description="amends this entry (`PATCH /api/feedback/{id}`), e.g. to add a comment")


class Problem(BaseModel):
    detail: str = Field(description="a message fit to show the person who asked")


class OutletOut(BaseModel):
    name: str
    articles: int


class DatesOut(BaseModel):
    first: str | None = Field(description="the earliest article date (YYYY-MM-DD); null when none is dated")
    last: str | None
    undated: int = Field(description="articles of unknown date")


class Health(BaseModel):
    status: str
    articles: int
    chunks: int
    outlets: list[OutletOut] = Field(description="outlets, most articles first")
    dates: DatesOut
    summary: str = Field(description="the same in one line, as the chat and /embed show it")


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
    limiter = limiter or RateLimiter(settings.rate_limit, settings.trust_proxy, settings.rate_limit_storage)
    # Feedback: as many as questions, counted apart from them.
    feedback_limiter = feedback_limiter or RateLimiter(settings.rate_limit, settings.trust_proxy,
                                                       settings.rate_limit_storage)
    origins = settings.embed_allowed_origins

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
        f = body.filters
        return Filters(sources=tuple(f.sources), since=f.since, until=f.until)

    def answer(body: AskIn) -> dict:
        return answer_to_dict(assistant.ask(body.question, body.history, filters(body)))

    @app.post(f"{API}/ask", response_model=AnswerOut, dependencies=limited, responses=errors,
              summary="A cited answer",  # no `verification` without a model; a `link` may be null:
              response_model_exclude_unset=True)
    def ask(body: Ask) -> dict:
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
                    result = answer_to_dict(piece)
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
            for piece in pieces(result["answer"]):
                yield ServerSentEvent(event="delta", data={"text": piece})
        yield ServerSentEvent(event="answer", data=result)

    @app.post(f"{API}/search", response_model=list[PassageOut], dependencies=limited, responses=errors,
              summary="Ranked passages, without an answer")
    def search(body: Annotated[SearchIn, Depends(checked_search)]) -> list[dict]:
        try:
            return [hit_to_dict(h) for h in assistant.search(body.question, body.history, filters(body), k=body.k or None)]
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
        return {"status": "ok", "articles": scope.articles, "chunks": chunks, **scope.to_dict(),
                "summary": scope.describe()}

    feedback = feedback or FeedbackStore(feedback_path(settings))

    def stored(store_call):
        try:
            return store_call()
        except BadFeedback as exc:
            raise HTTPException(422, detail=str(exc)) from None

    @app.post(f"{API}/feedback", status_code=201, response_model=FeedbackOut, dependencies=[Depends(feedback_limited)],
              responses={k: v for k, v in errors.items() if k != 503},
              summary="A reader's 👍/👎 on an answer, with an optional comment",
              description="Stored with the time, the citations and the settings that produced the answer "
                          "(`python -m assistant feedback` lists it); nothing about the reader is stored. "
                          "The store keeps the newest entries within its size, the oldest removed to make room.")
    def give_feedback(body: FeedbackIn) -> dict:
        f = body.filters
        produced = answer_settings(settings, Filters(tuple(f.sources), f.since, f.until), body.history)
        entry_id, token = stored(lambda: feedback.add(
            body.question, body.answer, body.rating, body.comment,
            [c.model_dump(exclude_none=True) for c in body.citations], produced, via="api"))
        return {"id": entry_id, "token": token}

    @app.patch(f"{API}/feedback/{{entry_id}}", status_code=204, dependencies=[Depends(feedback_limited)],
               responses={**errors, 404: {"model": Problem}}, summary="Change a rating, or add its comment")
    def amend_feedback(entry_id: Annotated[int, Path(ge=1, le=MAX_ID)], body: FeedbackAmendIn) -> None:
        if not stored(lambda: feedback.amend(entry_id, body.token, body.rating, body.comment)):
            raise HTTPException(404, detail="No such feedback entry.")

    @app.get("/embed", include_in_schema=False)
    def embed():  # a plain def: FastAPI runs it in its thread pool, off the event loop
        page, sources = embed_page(settings.max_question_chars)
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

    if settings.embed_allowed_origins:
        log.info("/embed may be framed by, and /api/* called from: %s", ", ".join(settings.embed_allowed_origins))
    else:
        log.warning("EMBED_ALLOWED_ORIGINS is not set: any site may frame /embed; "
                    "no other site may call /api/* from a browser")
    limiter = RateLimiter(settings.rate_limit, settings.trust_proxy, settings.rate_limit_storage)
    # Feedback from the chat and from /api/feedback: one store, one limit (apart from questions').
    feedback = FeedbackStore(feedback_path(settings))
    feedback_limiter = RateLimiter(settings.rate_limit, settings.trust_proxy, settings.rate_limit_storage)
    server = mount_chat(build_api(assistant, settings, limiter, feedback, feedback_limiter), assistant,
                        settings.examples, settings.root_path, limiter=limiter, queue_size=settings.queue_size,
                        feedback=feedback, feedback_limiter=feedback_limiter)
    return guard(server, paths=API_PATHS + CHAT_PATHS, text_prefixes=(f"{API}/", CHAT_API),
                 max_body_bytes=settings.max_body_bytes, trust_proxy=settings.trust_proxy)
