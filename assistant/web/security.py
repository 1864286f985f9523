"""What guards the server's public surface: one rate limit for every way to ask, and ASGI
middlewares around the whole app (`server.build_server` puts them on with `guard`, in one order,
with Starlette's request body limit).

    RateLimiter       questions per client address, shared by `/api/ask*` and the Gradio chat
    client_address    the address a limit counts against (`X-Forwarded-For` only with TRUST_PROXY)
    SecurityHeaders   `nosniff`, `Referrer-Policy` and `frame-ancestors 'self'` on every response
    OnlyPaths         404 for any path the server does not mean to serve (Gradio serves many)
    NoForwarding      `X-Forwarded-*` dropped unless TRUST_PROXY (Gradio builds its URLs from them)
    TextOnly          bodies to the API and the chat are strict JSON text naming no file (Gradio's `FileData`)
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Iterable

from starlette.datastructures import MutableHeaders
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.responses import JSONResponse

from ..i18n import N_, Text

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000


class RateLimiter:
    """Per-key moving-window limits (`limits`), counted in `storage`: `memory://` (this process)
    or `redis://host:port` (every app process using that Redis shares the counts).

    `hit(key)` counts a question and returns 0, or the seconds to wait when over a limit;
    `wait(request)` does the same for the request's client address. `namespace` keeps two
    limiters' counts apart in one shared store (questions and feedback in the same Redis)."""

    def __init__(self, rate: str, trust_proxy: bool = False, storage: str = "memory://", namespace: str = "questions",
                 on_refused=None):
        import limits
        from limits.storage import storage_from_string
        from limits.strategies import MovingWindowRateLimiter

        self.items = limits.parse_many(rate)
        self.storage = storage
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage))
        self.trust_proxy = trust_proxy
        self.namespace = namespace
        self.on_refused = on_refused  # called for each refused request (the metrics count them)

    def hit(self, key: str) -> int:
        key = f"{self.namespace}:{key}"
        try:
            full = [item for item in self.items if not self.limiter.test(item, key)]
            if not full:
                for item in self.items:
                    self.limiter.hit(item, key)
                return 0
            reset = max(self.limiter.get_window_stats(item, key).reset_time for item in full)
        except Exception as exc:  # the shared store is down: serve rather than refuse everyone
            log.error("rate limit storage %s does not answer (%s): request not counted",
                      self.storage.split("@")[-1], exc)
            return 0
        if self.on_refused is not None:
            self.on_refused()
        return max(1, math.ceil(reset - time.time()))

    def wait(self, request) -> int:
        return self.hit(client_address(request, self.trust_proxy))

    def describe(self) -> str:
        item = self.items[0]
        return f"{item.amount} questions per {_per(item)}"

    def refusal(self, wait: int) -> Text:
        """The message for a person over the limit."""
        item = self.items[0]
        return Text(N_("You're asking faster than this assistant allows ({amount} questions per {period}). "
                       "Please try again in {wait} s."), amount=item.amount, period=_per(item), wait=wait)


# The periods a limit is counted over, as `limits` names them; shown in a refusal.
_UNITS = {"second": (N_("second"), N_("{n} seconds")), "minute": (N_("minute"), N_("{n} minutes")),
          "hour": (N_("hour"), N_("{n} hours")), "day": (N_("day"), N_("{n} days")),
          "month": (N_("month"), N_("{n} months")), "year": (N_("year"), N_("{n} years"))}


def _per(item) -> Text:
    unit = item.GRANULARITY.name
    one, many = _UNITS.get(unit, (unit, "{n} " + unit + "s"))
    return Text(one) if item.multiples == 1 else Text(many, n=item.multiples)


def client_address(request, trust_proxy: bool) -> str:
    """The address a limit counts against: the TCP peer, or, behind a trusted proxy, the
    address that proxy appended to `X-Forwarded-For` (the last entry; earlier ones are
    whatever the client sent, so they are never believed). `request`: Starlette's or Gradio's."""
    if trust_proxy:
        headers = request.headers
        values = (headers.getlist("x-forwarded-for") if hasattr(headers, "getlist")
                  else [headers.get("x-forwarded-for", "")])
        forwarded = [a.strip() for a in ",".join(values).split(",")]
        if forwarded and forwarded[-1]:
            return forwarded[-1]
    client = request.client
    return client.host if client and client.host else "unknown"


# --- middlewares -----------------------------------------------------------------------------

def route_path(scope) -> str:
    """The path the app routes on: without the prefix a reverse proxy serves it under."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root):] or "/"
    return path


async def refuse(scope, receive, send, status: int, detail: str) -> None:
    await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)


class SecurityHeaders:
    """`X-Content-Type-Options: nosniff` and `Referrer-Policy` on every response, and
    `frame_policy` on every response that sets no Content-Security-Policy of its own
    (`/embed` sets its own: other sites may frame it)."""

    def __init__(self, app, frame_policy: str = "frame-ancestors 'self'", referrer: str = "no-referrer"):
        self.app = app
        self.frame_policy = frame_policy
        self.referrer = referrer

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", self.referrer)
                if self.frame_policy and "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = self.frame_policy
            await send(message)

        await self.app(scope, receive, send_with_headers)


class OnlyPaths:
    """404 for every path not in `paths` (exact, or a prefix when it ends in `*`), whatever
    the app behind would do with it."""

    def __init__(self, app, paths: Iterable[str]):
        self.app = app
        paths = list(paths)
        self.exact = frozenset(p for p in paths if not p.endswith("*"))
        self.prefixes = tuple(p[:-1] for p in paths if p.endswith("*"))

    def allows(self, path: str) -> bool:
        return path in self.exact or path.startswith(self.prefixes)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and not self.allows(route_path(scope)):
            return await refuse(scope, receive, send, 404, "Not Found")
        await self.app(scope, receive, send)


class NoForwarding:
    """Drops `X-Forwarded-*` and `Forwarded` from every request: without a trusted proxy in
    front they are whatever the client wrote, and Gradio builds the page's URLs from
    `X-Forwarded-Host` (a client sending `evil.example` got a page whose API calls went there;
    a shared cache in front would hand that page to everyone)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            scope = dict(scope, headers=[(k, v) for k, v in scope["headers"]
                                         if not (k.startswith(b"x-forwarded-") or k == b"forwarded")])
        await self.app(scope, receive, send)


def names_a_file(data) -> bool:
    """Whether JSON `data` holds an object typed the way Gradio marks a file reference
    (`{"path": …, "meta": {"_type": "gradio.FileData"}}`): any `meta` object with a `_type`."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            meta = item.get("meta")
            if isinstance(meta, dict) and "_type" in meta:
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def strict_json(body: bytes):
    """`body` parsed as JSON, refusing (ValueError) what the layers behind choke on: NaN and
    Infinity (FastAPI's own 422 page fails to render them: a 500), a repeated key (parsers
    disagree on which one wins), a lone surrogate (Gradio's event stream and the API's reply fail
    to encode it), or nesting too deep to parse."""
    def pairs(items):
        if len({k for k, _ in items}) != len(items):
            raise ValueError("a key appears twice")
        return dict(items)

    def constant(name):
        raise ValueError(f"{name} is not a number in JSON")

    try:
        data = json.loads(body, object_pairs_hook=pairs, parse_constant=constant)
        json.dumps(data, ensure_ascii=False).encode("utf-8")  # every string encodable
    except (RecursionError, UnicodeError) as exc:
        raise ValueError(str(exc)) from None
    return data


class TextOnly:
    """Requests to the API and the chat (`prefixes`) carry strict JSON text (`strict_json`) that
    names no file; anything else is refused before the app reads it. Gradio copies any file a
    request names into its cache (reading it whole, or downloading a URL) before a handler sees
    the request; this app takes no files, so none may be named."""

    def __init__(self, app, prefixes: Iterable[str]):
        self.app = app
        self.prefixes = tuple(prefixes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS") \
                or not route_path(scope).startswith(self.prefixes):
            return await self.app(scope, receive, send)
        chunks, more = [], True
        while more:  # the body limit, outside, stops this at `max_body_bytes`
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body:
            try:
                data = strict_json(body)
            except ValueError as exc:
                return await refuse(scope, receive, send, 400, f"The request body is not JSON text: {exc}.")
            if names_a_file(data):
                return await refuse(scope, receive, send, 422, "This chat takes text only.")
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def guard(app, *, paths: Iterable[str], text_prefixes: Iterable[str], max_body_bytes: int = MAX_BODY_BYTES,
          trust_proxy: bool = False):
    """Put the middlewares on the Starlette/FastAPI `app`, outermost last: every response,
    refusals included, carries the headers. Starlette's body limit answers 413 as soon as
    Content-Length, or the bytes received so far (a chunked body has no length), pass the limit."""
    app.add_middleware(TextOnly, prefixes=text_prefixes)
    if not trust_proxy:
        app.add_middleware(NoForwarding)
    app.add_middleware(OnlyPaths, paths=paths)
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=max_body_bytes)
    app.add_middleware(SecurityHeaders)
    return app
