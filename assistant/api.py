"""The server: an HTTP API, the embeddable chat page, and the Gradio chat on one FastAPI app.

    GET  /                  the Gradio chat (`ui.mount_chat`)
    GET  /embed             a compact chat for an iframe on another site (`embed.html`)
    POST /api/ask           {"question", "history"?, "filters"?} → the CLI's `ask --json` object
    POST /api/ask/stream    the same as Server-Sent Events: `delta` pieces, then `answer`
    GET  /api/health        whether the index answers, and what it holds
    GET  /api/docs          OpenAPI docs (/api/openapi.json, /api/redoc)

The embed page is our own, not Gradio's: Gradio's front end reads `localStorage`, which a
browser denies to a cross-site frame when third-party cookies are blocked, and then stays on
"Loading…" (README, "Embedding"). `EMBED_ALLOWED_ORIGINS` names the sites that may frame
`/embed` (CSP `frame-ancestors`) and call `/api/*` from a browser (CORS, on `/api/*` only).
"""

import base64
import hashlib
import logging
import math
import re
import time
from functools import cache
from importlib import resources
from typing import Annotated, Iterator

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware

from .config import Settings
from .errors import AssistantError, BadQuestion
from .retrieve import Filters
from .service import Assistant, answer_to_dict

log = logging.getLogger(__name__)

API = "/api"
_DATE = r"^(\d{4}-\d{2}-\d{2})?$"


# --- request and response shapes (they are the OpenAPI schema) -------------------------------

class FiltersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sources: list[str] = Field(default=[], max_length=50, description="only these outlets")
    since: str = Field(default="", pattern=_DATE, description="only articles dated on or after (YYYY-MM-DD)")
    until: str = Field(default="", pattern=_DATE, description="only articles dated on or before (YYYY-MM-DD)")


class AskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(description="the question; folded to one line, at most ASSISTANT_MAX_QUESTION_CHARS")
    history: list[str] = Field(default=[], max_length=50, description="earlier questions of the same chat")
    filters: FiltersIn = FiltersIn()


class CitationOut(BaseModel):
    n: int
    article_id: str
    title: str
    source: str
    date: str
    url: str
    quote: str = Field(description="verbatim from the stored article")
    passage_rank: int


class PassageOut(BaseModel):
    rank: int
    article_id: str
    title: str
    source: str
    date: str
    url: str
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
    fallback: bool = Field(description="true when nothing the model wrote was supported, or it failed: "
                                       "the answer is then the extractive one")
    sentences: list[SentenceOut]


class ArticleOut(BaseModel):
    article_id: str
    title: str
    source: str
    date: str
    url: str


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


class Problem(BaseModel):
    detail: str = Field(description="a message fit to show the person who asked")


class Health(BaseModel):
    status: str
    articles: int
    chunks: int


# --- limits ----------------------------------------------------------------------------------

class RateLimiter:
    """Per-key moving-window limits (`limits`, in memory: one server process).

    `hit(key)` counts a request and returns 0, or the seconds to wait when over a limit."""

    def __init__(self, rate: str):
        import limits
        from limits.storage import MemoryStorage
        from limits.strategies import MovingWindowRateLimiter

        self.items = limits.parse_many(rate)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, key: str) -> int:
        full = [item for item in self.items if not self.limiter.test(item, key)]
        if not full:
            for item in self.items:
                self.limiter.hit(item, key)
            return 0
        reset = max(self.limiter.get_window_stats(item, key).reset_time for item in full)
        return max(1, math.ceil(reset - time.time()))

    def describe(self) -> str:
        item = self.items[0]
        return f"{item.amount} questions per {_per(item)}"


def _per(item) -> str:
    unit = item.GRANULARITY.name
    return unit if item.multiples == 1 else f"{item.multiples} {unit}s"


def client_address(request: Request, trust_proxy: bool) -> str:
    """The address a limit counts against: the TCP peer, or, behind a trusted proxy, the
    address that proxy appended to `X-Forwarded-For` (the last entry; earlier ones are
    whatever the client sent, so they are never believed)."""
    if trust_proxy:
        forwarded = [a.strip() for a in ",".join(request.headers.getlist("x-forwarded-for")).split(",")]
        if forwarded and forwarded[-1]:
            return forwarded[-1]
    return request.client.host if request.client else "unknown"


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


def frame_ancestors(origins: tuple[str, ...], embed: bool) -> str:
    """The `frame-ancestors` directive: `/embed` may be framed by the allowed origins,
    everything else by this site only; "" (any site) when no origins are configured."""
    if not origins:
        return ""
    return "frame-ancestors 'self'" + ("".join(f" {o}" for o in origins) if embed else "")


class FrameAncestors:
    """Adds `Content-Security-Policy: frame-ancestors 'self'` to every response that sets no
    policy of its own (the Gradio page, the API), once an allowlist is configured."""

    def __init__(self, app, policy: str):
        self.app = app
        self.policy = policy

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.policy:
            return await self.app(scope, receive, send)

        async def send_with_policy(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = self.policy
            await send(message)

        await self.app(scope, receive, send_with_policy)


class ApiCors:
    """CORS for `/api/*` only, for the allowed origins only; other paths pass through.

    Gradio's own CORS echoes any `Origin` (with credentials) when the server runs under a real
    host name. It stands down when the parent app registers Starlette's `CORSMiddleware`
    (documented in `gr.mount_gradio_app`), so `build_server` registers one that allows no
    origin, and this wrapper, outermost, answers for `/api/*`."""

    def __init__(self, app, origins: tuple[str, ...], prefix: str = API):
        self.app = app
        self.prefix = prefix
        self.cors = CORSMiddleware(app, allow_origins=list(origins), allow_methods=["GET", "POST"],
                                   allow_headers=["Content-Type"], expose_headers=["Retry-After"],
                                   allow_credentials=False, max_age=600)

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == self.prefix or path.startswith(self.prefix + "/")):
            return await self.cors(scope, receive, send)
        await self.app(scope, receive, send)


# --- the app ---------------------------------------------------------------------------------

def build_api(assistant: Assistant, settings: Settings) -> FastAPI:
    """The API and the embed page, with CORS, frame policy and rate limit, without Gradio."""
    app = FastAPI(title="Policy Desk API", version="1",
                  description="Cited answers from the policy articles. Every `[n]` in an answer maps to "
                              "the citation numbered `n`, whose quote is verbatim from the stored article.",
                  docs_url=f"{API}/docs", redoc_url=f"{API}/redoc", openapi_url=f"{API}/openapi.json")
    limiter = RateLimiter(settings.rate_limit)
    origins = settings.embed_allowed_origins

    def rate_limited(request: Request) -> None:
        wait = limiter.hit(client_address(request, settings.trust_proxy))
        if wait:
            raise HTTPException(429, headers={"Retry-After": str(wait)},
                                detail=f"You're asking faster than this assistant allows "
                                       f"({limiter.describe()}). Please try again in {wait} s.")

    def checked(body: AskIn) -> AskIn:
        try:
            assistant.check_question(body.question)
        except BadQuestion as exc:
            raise HTTPException(422, detail=str(exc)) from None
        return body

    Ask = Annotated[AskIn, Depends(checked)]
    errors = {422: {"model": Problem, "description": "empty or over-long question, or a malformed request"},
              429: {"model": Problem, "description": "over the rate limit; see `Retry-After`"}}

    def filters(body: AskIn) -> Filters:
        f = body.filters
        return Filters(sources=tuple(f.sources), since=f.since, until=f.until)

    def answer(body: AskIn) -> dict:
        return answer_to_dict(assistant.ask(body.question, body.history, filters(body)))

    @app.post(f"{API}/ask", response_model=AnswerOut, dependencies=[Depends(rate_limited)], responses=errors,
              summary="A cited answer", response_model_exclude_none=True)  # no `verification` without a model
    def ask(body: Ask) -> dict:
        try:
            return answer(body)
        except AssistantError as exc:  # e.g. the index is not there
            raise HTTPException(503, detail=str(exc)) from None

    @app.post(f"{API}/ask/stream", response_class=EventSourceResponse, dependencies=[Depends(rate_limited)],
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

    @app.get(f"{API}/health", response_model=Health, responses={503: {"model": Problem}})
    async def health():
        try:
            chunks = await run_in_threadpool(assistant.store.chunk_count)
        except Exception as exc:
            log.warning("health check: the index does not answer: %s", exc)
            return JSONResponse({"detail": "The index does not answer."}, status_code=503)
        return {"status": "ok", "articles": assistant.article_count, "chunks": chunks}

    @app.get("/embed", include_in_schema=False)
    def embed():
        page, sources = embed_page(settings.max_question_chars)
        policy = (f"default-src 'none'; {sources}; connect-src 'self'; base-uri 'none'; form-action 'none'"
                  + (f"; {frame_ancestors(origins, embed=True)}" if origins else ""))
        return HTMLResponse(page, headers={"Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff",
                                           "Referrer-Policy": "strict-origin-when-cross-origin",
                                           "Cache-Control": "no-cache"})

    # Starlette's CORSMiddleware allowing no origin: it also switches Gradio's CORS off (see ApiCors).
    app.add_middleware(CORSMiddleware, allow_origins=[])
    app.add_middleware(FrameAncestors, policy=frame_ancestors(origins, embed=False))
    app.add_middleware(ApiCors, origins=origins)
    return app


def pieces(text: str, words: int = 6) -> list[str]:
    """`text` in runs of a few words; joined, they give `text` back exactly."""
    tokens = re.findall(r"\s*\S+", text) or [text]
    return ["".join(tokens[i:i + words]) for i in range(0, len(tokens), words)]


def build_server(assistant: Assistant, settings: Settings) -> FastAPI:
    """The whole server: API and embed page, with the Gradio chat at `/`. Serve it with uvicorn."""
    from .ui import mount_chat

    if settings.embed_allowed_origins:
        log.info("/embed may be framed by, and /api/* called from: %s", ", ".join(settings.embed_allowed_origins))
    else:
        log.warning("EMBED_ALLOWED_ORIGINS is not set: any site may frame /embed and the chat page; "
                    "no other site may call /api/* from a browser")
    return mount_chat(build_api(assistant, settings), assistant, settings.examples, settings.root_path)
