"""`GET /embed`: a compact chat for an iframe on another site (`templates/embed.html`, its
script `static/embed.js`); `GET /widget.js`: the one-line embed that puts it there (`static/widget.js`).

The embed page is our own, not Gradio's: Gradio's front end reads `localStorage`, which a
browser denies to a cross-site frame when third-party cookies are blocked, and then stays on
"Loading…" (docs/embedding.md). `EMBED_ALLOWED_ORIGINS` names the sites that may frame it
(CSP `frame-ancestors`) and use `widget.js`; without them, any site may.

Every option arrives in the URL, from anyone: each is checked here (`EmbedOptions.of`) — a
colour is a colour, a date a date, text is text of bounded length — and what fails is dropped,
not echoed. The page then gets them as JSON data beside its script, never as markup.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from ... import i18n
from ...text import folded
from ..deps import Web
from ..scope import desk_scope

router = APIRouter()

MAX_TITLE = 80
MAX_PLACEHOLDER = 120
MAX_WELCOME = 240
MAX_SUGGESTIONS, MAX_SUGGESTION = 3, 120
MAX_SOURCES, MAX_SOURCE = 20, 100
# A CSS colour as a site owner writes one: #rgb(a), #rrggbb(aa), a function of numbers (rgb, hsl,
# oklch, …) or a name. The browser's own parser has the last word (`CSS.supports` in the page).
COLOUR = re.compile(r"#(?:[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})"
                    r"|(?:rgba?|hsla?|hwb|lab|lch|oklab|oklch)\([0-9a-zA-Z.,%/ +-]{1,60}\)"
                    r"|[a-zA-Z]{3,30}")
ORIGIN = re.compile(r"https?://[a-z0-9.-]+(?::\d{1,5})?|https?://\[[0-9a-f:.]+\](?::\d{1,5})?")


def text(value: str | None, limit: int) -> str:
    """Untrusted text for the page: one line of printable characters (`folded`), at most `limit`."""
    return folded(value)[:limit]


def day(value: str | None) -> str:
    """A real YYYY-MM-DD day, else ""."""
    try:
        return date.fromisoformat((value or "").strip()).isoformat() if len((value or "").strip()) == 10 else ""
    except ValueError:
        return ""


def colour(value: str | None) -> str:
    value = (value or "").strip()
    return value if COLOUR.fullmatch(value) and value.lower() not in ("inherit", "initial", "unset", "revert") else ""


def host_origin(value: str | None, allowed: tuple[str, ...]) -> str:
    """The page that frames us, for `postMessage`: an http(s) origin, one of `allowed` when the
    owner named any; else ""."""
    value = (value or "").strip().lower().rstrip("/")
    if not ORIGIN.fullmatch(value):
        return ""
    return value if not allowed or value in allowed else ""


@dataclass(frozen=True)
class EmbedOptions:
    """What `/embed?…` may ask for, checked."""

    lang: str = i18n.DEFAULT
    theme: str = ""  # "light", "dark", or "" (the reader's system setting)
    accent: str = ""
    title: str = ""
    placeholder: str = ""
    welcome: str = ""
    suggestions: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    since: str = ""
    until: str = ""
    host: str = ""  # the framing page's origin (widget.js), for `postMessage`

    @classmethod
    def of(cls, request: Request, allowed: tuple[str, ...]) -> EmbedOptions:
        q = request.query_params
        since, until = day(q.get("since")), day(q.get("until"))
        if since and until and since > until:
            since = until = ""
        return cls(lang=i18n.pick(q.get("lang"), request.headers.get("accept-language")),
                   theme=q.get("theme") if q.get("theme") in ("light", "dark") else "",
                   accent=colour(q.get("accent")), title=text(q.get("title"), MAX_TITLE),
                   placeholder=text(q.get("placeholder"), MAX_PLACEHOLDER),
                   welcome=text(q.get("welcome"), MAX_WELCOME),
                   suggestions=tuple(s for s in (text(v, MAX_SUGGESTION) for v in q.getlist("suggest")) if s)
                   [:MAX_SUGGESTIONS],
                   sources=tuple(dict.fromkeys(s for s in (text(v, MAX_SOURCE) for v in q.getlist("source")) if s))
                   [:MAX_SOURCES],
                   since=since, until=until, host=host_origin(q.get("origin"), allowed))

    def filters(self) -> dict:
        """The `filters` of the page's questions (`schemas.FiltersIn`)."""
        out = {"sources": list(self.sources), "since": self.since, "until": self.until}
        return {k: v for k, v in out.items() if v}


@cache
def _static(name: str) -> str:
    return resources.files("assistant.web").joinpath("static", name).read_text(encoding="utf-8")


def _digest(body: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"


@cache
def _environment(lang: str):
    """Jinja2 with `lang`'s translations: one environment per language (installing translations
    per request would race between threads)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("assistant.web", "templates"), autoescape=select_autoescape(["html"]),
                      extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_translations(i18n.translations(lang), newstyle=False)
    return env


def embed_sources() -> str:
    """The CSP sources of the page's one script and one style block (hashes: no 'unsafe-inline')."""
    return f"script-src {_digest(_static('embed.js'))}; style-src {_digest(_static('embed.css'))}"


def embed_page(options: EmbedOptions, scope: str, max_chars: int) -> str:
    """The page for `options`, in its language; `scope`: what the desk holds, in that language too."""
    from markupsafe import Markup

    template = _environment(options.lang).get_template("embed.html")
    config = {"lang": i18n.language(options.lang).tag, "max_chars": int(max_chars), "accent": options.accent,
              "filters": options.filters(), "host_origin": options.host,
              "messages": i18n.messages_of(options.lang, "static/embed.js")}
    return template.render(language=i18n.language(options.lang), theme=options.theme, title=options.title,
                           placeholder=options.placeholder, welcome=options.welcome, suggestions=options.suggestions,
                           sources=options.sources, scope=scope, max_chars=int(max_chars), config=config,
                           style=Markup(_static("embed.css")), script=Markup(_static("embed.js")))


def frame_ancestors(origins: tuple[str, ...]) -> str:
    """The `frame-ancestors` directive of `/embed`: this site and the allowed origins; ""
    (any site may frame it, which is its purpose) when no origins are configured. Every other
    response says `frame-ancestors 'self'` (`security.SecurityHeaders`)."""
    if not origins:
        return ""
    return "frame-ancestors 'self'" + "".join(f" {o}" for o in origins)


@router.get("/embed", include_in_schema=False)
def embed(web: Web, request: Request):  # a plain def: FastAPI runs it in its thread pool, off the event loop
    origins = web.settings.web.embed_allowed_origins
    options = EmbedOptions.of(request, origins)
    scope = desk_scope(web.assistant).describe(options.lang)
    page = embed_page(options, scope, web.settings.answers.max_question_chars)
    policy = (f"default-src 'none'; {embed_sources()}; connect-src 'self'; base-uri 'none'; form-action 'none'"
              + (f"; {frame_ancestors(origins)}" if origins else ""))
    return HTMLResponse(page, headers={"Content-Security-Policy": policy, "Cache-Control": "no-cache",
                                       "Content-Language": i18n.language(options.lang).tag, "Vary": "Accept-Language"})


@cache
def widget_script(allowed: tuple[str, ...]) -> str:
    """`widget.js` with what it needs to know: the allowed sites (public: browsers read them from
    `frame-ancestors` anyway), the shipped languages and the widget's own few messages in each."""
    settings = {"allowed": list(allowed), "languages": [i18n.language(c).tag.split("-")[0] for c in i18n.LOCALES],
                "rtl": [i18n.language(c).tag for c in i18n.LOCALES if i18n.language(c).direction == "rtl"],
                "messages": {i18n.language(c).tag: i18n.messages_of(c, "static/widget.js") for c in i18n.LOCALES}}
    return _static("widget.js").replace('"__POLICY_DESK_SETTINGS__"', json.dumps(settings, ensure_ascii=True), 1)


@router.get("/widget.js", include_in_schema=False)
async def widget(web: Web) -> Response:
    """The one-line embed. Any page may load it; on a page whose origin is not allowed it only
    says so in the console, and `frame-ancestors` keeps `/embed` out of such a page regardless."""
    return Response(widget_script(web.settings.web.embed_allowed_origins), media_type="text/javascript; charset=utf-8",
                    headers={"Cache-Control": "public, max-age=300", "Cross-Origin-Resource-Policy": "cross-origin"})
