"""`GET /embed`: a compact chat for an iframe on another site (`embed.html`).

The embed page is our own, not Gradio's: Gradio's front end reads `localStorage`, which a
browser denies to a cross-site frame when third-party cookies are blocked, and then stays on
"Loading…" (docs/embedding.md). `EMBED_ALLOWED_ORIGINS` names the sites that may frame it
(CSP `frame-ancestors`); without them, any site may.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from ..deps import Web
from ..scope import desk_scope

router = APIRouter()


@cache
def embed_page(max_chars: int) -> tuple[str, str]:
    """The page's HTML and the CSP hashes of its inline script and style."""
    page = resources.files("assistant.web").joinpath("embed.html").read_text(encoding="utf-8")
    page = page.replace("{{MAX_CHARS}}", str(int(max_chars)))

    def digest(tag: str) -> str:
        body = re.search(rf"<{tag}>(.*?)</{tag}>", page, re.DOTALL).group(1)
        return "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"

    return page, f"script-src {digest('script')}; style-src {digest('style')}"


def frame_ancestors(origins: tuple[str, ...]) -> str:
    """The `frame-ancestors` directive of `/embed`: this site and the allowed origins; ""
    (any site may frame it, which is its purpose) when no origins are configured. Every other
    response says `frame-ancestors 'self'` (`security.SecurityHeaders`)."""
    if not origins:
        return ""
    return "frame-ancestors 'self'" + "".join(f" {o}" for o in origins)


@router.get("/embed", include_in_schema=False)
def embed(web: Web):  # a plain def: FastAPI runs it in its thread pool, off the event loop
    page, sources = embed_page(web.settings.answers.max_question_chars)
    page = page.replace("{{SCOPE}}", html.escape(desk_scope(web.assistant).describe()))
    origins = web.settings.web.embed_allowed_origins
    policy = (f"default-src 'none'; {sources}; connect-src 'self'; base-uri 'none'; form-action 'none'"
              + (f"; {frame_ancestors(origins)}" if origins else ""))
    return HTMLResponse(page, headers={"Content-Security-Policy": policy, "Cache-Control": "no-cache"})
