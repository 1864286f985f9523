"""`/owner`: the owner's page, with `ASSISTANT_OWNER_TOKEN` only (without it the routes are not
served: 404). `GET /owner` shows the page to the owner (a bearer token or the session cookie) and
the sign-in form to anyone else (401); `POST /owner/login` and `POST /owner/logout` take a form
from this site's own page with its CSRF token (`owner_auth.py`); sign-in attempts count against
their own rate limit per client address (`SIGN_IN_RATE`)."""

from __future__ import annotations

import html
import logging
from datetime import datetime, timedelta, timezone

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from ...gaps import closest_to, gap_questions, topics
from ..deps import Web
from ..owner_auth import (SESSION_COOKIE, SESSION_SECONDS, form_token, form_token_ok, from_this_site, is_owner,
                          new_session, token_matches)
from ..owner_page import HEADERS, OwnerView, by_month, login_html, owner_html
from ..scope import desk_scope

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

OWNER_PATHS = ("/owner", "/owner/login", "/owner/logout")
SIGN_IN_RATE = "5/minute;20/hour"
SHOWN_DAYS = 30
RECENT_FEEDBACK = 20


def _page(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=HEADERS)


def _sign_in(request: Request, web: Web, error: str = "", status: int = 401) -> HTMLResponse:
    token = web.settings.owner.owner_token
    page = _page(login_html(form_token(token, "login"), error, request.scope.get("root_path", "")), status)
    if status == 401:
        page.headers["WWW-Authenticate"] = "Bearer"
    return page


def owner_view(web: Web, base: str = "", logout_form: str = "") -> OwnerView:
    """What the page shows, read from the index, the question log, the runs and the feedback."""
    from ...runs import RunLog

    assistant, owner = web.assistant, web.settings.owner
    since = (datetime.now(timezone.utc) - timedelta(days=SHOWN_DAYS)).strftime("%Y-%m-%d")
    questions = web.observer.questions
    runs = RunLog(web.feedback.path)
    count, _, last = runs.ingests()
    found = topics(gap_questions(questions, web.feedback, since), assistant.retriever.embedder.encode,
                   closest_to(assistant.store))
    return OwnerView(scope=desk_scope(assistant), by_month=assistant.retriever.summary(by_month), ingest_runs=count,
                     last_ingest=last, feeds=tuple(runs.feed_states()),
                     per_day=tuple(questions.per_day(since)) if questions else (), topics=tuple(found),
                     feedback=tuple(web.feedback.entries(since)[:RECENT_FEEDBACK]),
                     slowest=tuple(questions.slowest(since)) if questions else (), question_log=questions is not None,
                     days=SHOWN_DAYS, logout_form=logout_form, base=base)


@router.get("/owner")
def owner_page(request: Request, web: Web):  # a plain def: FastAPI runs it off the event loop
    token = web.settings.owner.owner_token
    if not is_owner(request, token):
        return _sign_in(request, web)
    return _page(owner_html(owner_view(web, request.scope.get("root_path", ""), form_token(token, "logout"))))


@router.post("/owner/login")
async def login(request: Request, web: Web):
    token = web.settings.owner.owner_token
    wait = web.sign_in_limiter.wait(request)
    if wait:
        page = _sign_in(request, web, f"Too many sign-in attempts. Please try again in {wait} s.", 429)
        page.headers["Retry-After"] = str(wait)
        return page
    form = await request.form()
    if not from_this_site(request) or not form_token_ok(str(form.get("csrf", "")), token, "login"):
        return _sign_in(request, web, "That form is not from this page, or too old: please sign in again.", 403)
    if not token_matches(str(form.get("token", "")), token):
        log.warning("owner sign-in refused: wrong token")  # never the token tried
        return _sign_in(request, web, "That is not the owner's token.")
    response = RedirectResponse(request.scope.get("root_path", "") + "/owner", status_code=303)
    response.set_cookie(SESSION_COOKIE, new_session(token), max_age=SESSION_SECONDS, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https",
                        path=(request.scope.get("root_path", "") or "") + "/owner")
    return response


@router.post("/owner/logout")
async def logout(request: Request, web: Web):
    token = web.settings.owner.owner_token
    form = await request.form()
    if not (from_this_site(request) and is_owner(request, token)
            and form_token_ok(str(form.get("csrf", "")), token, "logout")):
        return _page(f"<p>{html.escape('Not signed out: that form is not from this page.')}</p>", 403)
    response = RedirectResponse(request.scope.get("root_path", "") + "/owner", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=(request.scope.get("root_path", "") or "") + "/owner",
                           httponly=True, samesite="strict")
    return response
