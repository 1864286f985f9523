"""The server: the HTTP API, the embeddable chat page and the Gradio chat on one FastAPI app,
built here and only here.

    GET  /                  the Gradio chat (`ui.mount_chat`)
    GET  /embed             a compact chat for an iframe on another site (`routes/embed.py`)
    GET  /widget.js         the one-line embed: `<script src=…/widget.js>` puts /embed in a page (`routes/embed.py`)
    POST /api/ask           {"question", "history"?, "filters"?} → the CLI's `ask --json` object
    POST /api/ask/stream    the same as Server-Sent Events: `delta` pieces, then `answer`
    POST /api/search        {"question", "history"?, "filters"?, "k"?} → ranked passages (`search --json`)
    POST /api/feedback      a reader's 👍/👎 on an answer (`PATCH /api/feedback/{id}` amends it)
    GET  /api/health        whether the index answers, and what it holds (never waits on answers)
    GET  /api/openapi.json  the OpenAPI description (no docs page: Swagger UI would load from a CDN)
    GET  /owner             the owner's page, behind ASSISTANT_OWNER_TOKEN (`routes/owner.py`; absent without it)
    GET  /metrics           Prometheus metrics with ASSISTANT_METRICS=1 (`routes/metrics.py`)

The routes live in `routes/`, one module per feature; the JSON they take and give in
`schemas.py`. `build_shared` makes one rate limiter, one feedback store and one set of answer
slots, which the API and the chat share. `EMBED_ALLOWED_ORIGINS` names the sites that may frame
`/embed` and call `/api/*` from a browser (CORS, on `/api/*` only). What else guards the server
(paths, body size, headers, the shared rate limit) is in `security.py`; docs/security.md.
"""

from __future__ import annotations

import logging

from dataclasses import replace

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from ..config import Settings
from ..feedback import FeedbackStore, feedback_path
from ..questionlog import QuestionLog
from ..service import Assistant
from .capacity import Capacity
from .deps import Shared
from .metrics import CountRequests, DeskCollector, Metrics
from .observe import Observer
from .routes import ask, embed, feedback, health, owner, search
from .routes import metrics as scrape
from .routes.owner import OWNER_PATHS, SIGN_IN_RATE
from .scope import desk_scope
from .security import RateLimiter, guard, route_path

log = logging.getLogger(__name__)

API = "/api"
# Every path the server answers outside the chat page (`ui.CHAT_PATHS`); anything else is 404.
API_PATHS = (f"{API}/*", "/embed", "/widget.js")


def build_shared(assistant: Assistant, settings: Settings, *, limiter: RateLimiter | None = None,
                 feedback_limiter: RateLimiter | None = None, feedback: FeedbackStore | None = None,
                 capacity: Capacity | None = None, questions: QuestionLog | None = None) -> Shared:
    """One of each object the API and the chat share; the ones given are used as they are (tests).
    The question log unless ASSISTANT_QUESTION_LOG=0, the metrics with ASSISTANT_METRICS=1."""
    web, owner = settings.web, settings.owner
    db = feedback_path(settings.storage)
    metrics = None
    if owner.metrics:
        metrics = Metrics(DeskCollector(articles=lambda: desk_scope(assistant).articles,
                                        chunks=assistant.store.chunk_count, db_path=db))
        assistant = replace(assistant, on_retrieval=metrics.retrieval_seconds.observe)
    if questions is None and owner.question_log:
        questions = QuestionLog(db, days=owner.question_days)
    observer = Observer(questions, metrics)

    def rate_limiter(namespace: str) -> RateLimiter:
        return RateLimiter(web.rate_limit, web.trust_proxy, web.rate_limit_storage, namespace,
                           on_refused=metrics.refused_by(namespace) if metrics else None)

    return Shared(assistant=assistant, settings=settings, limiter=limiter or rate_limiter("questions"),
                  # Feedback: as many as questions, counted apart from them (in Redis too).
                  feedback_limiter=feedback_limiter or rate_limiter("feedback"),
                  feedback=feedback or FeedbackStore(db),
                  capacity=capacity or Capacity.of(settings.answers, observer), observer=observer, metrics=metrics,
                  sign_in_limiter=RateLimiter(SIGN_IN_RATE, web.trust_proxy, web.rate_limit_storage, "sign-in",
                                              on_refused=metrics.refused_by("sign-in") if metrics else None)
                  if owner.owner_token else None)


def api_app(shared: Shared) -> FastAPI:
    """The API and the embed page over `shared`, with CORS, without the chat."""
    # No docs pages: FastAPI's load Swagger UI and ReDoc from a CDN (a third party, and offline, broken).
    app = FastAPI(title="Policy Desk API", version="1",
                  description="Cited answers from the policy articles. Every `[n]` in an answer maps to "
                              "the citation numbered `n`, whose quote is verbatim from the stored article.",
                  docs_url=None, redoc_url=None, openapi_url=f"{API}/openapi.json")
    app.state.shared = shared  # what the routes' dependencies read (`deps.shared`)
    for route in (ask, search, health, feedback):
        app.include_router(route.router, prefix=API)
    app.include_router(embed.router)
    if shared.settings.owner.owner_token:
        app.include_router(owner.router)
    if shared.metrics is not None:
        app.include_router(scrape.router)
    # Starlette's CORSMiddleware allowing no origin: it also switches Gradio's CORS off (see ApiCors).
    app.add_middleware(CORSMiddleware, allow_origins=[])
    app.add_middleware(ApiCors, origins=shared.settings.web.embed_allowed_origins)
    return app


def build_api(assistant: Assistant, settings: Settings, **given) -> FastAPI:
    """The API and the embed page alone, each shared object made here unless `given`
    (`build_shared`'s keywords)."""
    return api_app(build_shared(assistant, settings, **given))


def build_server(assistant: Assistant, settings: Settings):
    """The whole server: API and embed page, with the Gradio chat at `/`, one rate limit,
    one feedback store and one set of answer slots for both, and the guards of `security.py`
    around it all. Serve it with uvicorn."""
    from .ui import CHAT_API, CHAT_PATHS, mount_chat

    web = settings.web
    if web.embed_allowed_origins:
        log.info("/embed may be framed by, and /api/* called from: %s", ", ".join(web.embed_allowed_origins))
    else:
        log.warning("EMBED_ALLOWED_ORIGINS is not set: any site may frame /embed; "
                    "no other site may call /api/* from a browser")
    shared = build_shared(assistant, settings)
    server = mount_chat(api_app(shared), shared.assistant, web, limiter=shared.limiter, capacity=shared.capacity,
                        feedback=shared.feedback, feedback_limiter=shared.feedback_limiter, observer=shared.observer)
    server = guard(server, paths=API_PATHS + CHAT_PATHS + owner_paths(settings), text_prefixes=(f"{API}/", CHAT_API),
                   max_body_bytes=web.max_body_bytes, trust_proxy=web.trust_proxy)
    if shared.metrics is not None:
        server.add_middleware(CountRequests, metrics=shared.metrics)  # outermost: refusals counted too
    return server


def owner_paths(settings: Settings) -> tuple[str, ...]:
    """`/owner` (with its sign-in and sign-out) only with ASSISTANT_OWNER_TOKEN, `/metrics` only
    with ASSISTANT_METRICS=1: otherwise they do not exist (404)."""
    return (OWNER_PATHS if settings.owner.owner_token else ()) + (("/metrics",) if settings.owner.metrics else ())


class ApiCors:
    """CORS for `/api/*` only, for the allowed origins only; other paths pass through.

    Gradio's own CORS echoes any `Origin` (with credentials) when the server runs under a real
    host name. It stands down when the parent app registers Starlette's `CORSMiddleware`
    (documented in `gr.mount_gradio_app`), so `api_app` registers one that allows no
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
