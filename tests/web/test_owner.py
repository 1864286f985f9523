"""The owner's page (assistant/web/routes/owner.py, owner_auth.py, owner_page.py), probed as an
attacker would: absent without the setting, closed without the token, never framed, no token in
a URL or the log, sign-in forms safe from other sites and rate-limited; then in Chromium."""

from __future__ import annotations

import logging
import re
import shutil
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect

from assistant.config import Settings
from assistant.feedback import FeedbackStore
from assistant.questionlog import QuestionLog
from assistant.runs import RunLog
from assistant.web.owner_auth import SESSION_COOKIE, form_token, form_token_ok, session_is_owner
from assistant.web.owner_page import bar_chart, by_month
from assistant.web.server import build_server
from conftest import TRADE_QUESTION, axe_violations
from test_app import browser  # noqa: F401  (the module's Chromium, a fixture)
from test_api import Uvicorn

TOKEN = "s3cret-owner-token-7f2a9c41e0b8"
SECTIONS = ("Corpus", "Questions", "Coverage gaps", "Recent feedback", "Slowest answers")
ORIGIN = "http://testserver"


@pytest.fixture(scope="module")
def app(seed_assistant, seed_index, tmp_path_factory):
    db = tmp_path_factory.mktemp("owner") / "fb.sqlite3"
    settings = Settings.of(index_dir=seed_index, owner_token=TOKEN, feedback_db=db)
    return build_server(seed_assistant, settings)


def csrf(page: str) -> str:
    return re.search(r"name='csrf' value='([^']+)'", page).group(1)


def test_without_the_setting_the_owner_routes_do_not_exist(seed_assistant, seed_index, tmp_path):
    settings = Settings.of(index_dir=seed_index, feedback_db=tmp_path / "fb.sqlite3")
    with TestClient(build_server(seed_assistant, settings)) as client:
        for path in ("/owner", "/owner/login"):
            assert client.get(path).status_code == 404
        assert client.post("/owner/login", data={"token": "x"}).status_code == 404


def test_without_the_token_the_page_is_a_sign_in_form_and_shows_nothing(app):
    with TestClient(app) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                        {"Cookie": f"{SESSION_COOKIE}=9999999999.forged"}):
            page = client.get("/owner", headers=headers)
            assert page.status_code == 401 and page.headers["www-authenticate"] == "Bearer"
            assert "Owner token" in page.text and "Coverage gaps" not in page.text
        assert client.get(f"/owner?token={TOKEN}").status_code == 401  # a token in a URL is never taken
        page = client.get("/owner", headers={"Authorization": f"Bearer {TOKEN}"})
        assert page.status_code == 200 and all(f">{s}</h2>" in page.text for s in SECTIONS)
        assert TOKEN not in page.text


def test_the_page_is_never_framed_and_runs_no_script(app):
    with TestClient(app) as client:
        for page in (client.get("/owner"), client.get("/owner", headers={"Authorization": f"Bearer {TOKEN}"})):
            policy = page.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in policy and page.headers["x-frame-options"] == "DENY"
            assert "default-src 'none'" in policy and "script-src" not in policy and "<script" not in page.text
            assert page.headers["cache-control"] == "no-store"


def test_sign_in_needs_this_sites_form_and_sets_a_strict_http_only_cookie(app, caplog):
    caplog.set_level(logging.DEBUG)
    with TestClient(app, client=("127.0.0.21", 5000)) as client:
        form = csrf(client.get("/owner").text)
        cases = [({"token": TOKEN, "csrf": form}, {}),  # no Origin: a script or an old browser
                 ({"token": TOKEN, "csrf": form}, {"Origin": "https://evil.example"}),
                 ({"token": TOKEN, "csrf": form}, {"Origin": ORIGIN, "Sec-Fetch-Site": "cross-site"}),
                 ({"token": TOKEN, "csrf": "1.2.3"}, {"Origin": ORIGIN}),
                 ({"token": TOKEN}, {"Origin": ORIGIN})]
        for i, (data, headers) in enumerate(cases):  # each from its own address: attempts are rate-limited
            with TestClient(app, client=(f"127.0.1.{i + 1}", 5000)) as other:
                refused = other.post("/owner/login", data=data, headers=headers, follow_redirects=False)
            assert refused.status_code == 403 and SESSION_COOKIE not in refused.headers.get("set-cookie", "")
        wrong = client.post("/owner/login", data={"token": "guess", "csrf": form}, headers={"Origin": ORIGIN})
        assert wrong.status_code == 401 and "That is not the owner" in wrong.text

        signed = client.post("/owner/login", data={"token": TOKEN, "csrf": form}, headers={"Origin": ORIGIN},
                             follow_redirects=False)
        assert signed.status_code == 303 and signed.headers["location"] == "/owner"
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/owner" in cookie
        assert TOKEN not in cookie and TOKEN not in signed.headers["location"]
        page = client.get("/owner")
        assert page.status_code == 200 and ">Coverage gaps</h2>" in page.text

        logout = csrf(page.text)
        assert client.post("/owner/logout", data={"csrf": logout}, headers={"Origin": "https://evil.example"},
                           follow_redirects=False).status_code == 403
        assert client.post("/owner/logout", data={"csrf": form}, headers={"Origin": ORIGIN},
                           follow_redirects=False).status_code == 403  # the sign-in form's token is not this one's
        out = client.post("/owner/logout", data={"csrf": logout}, headers={"Origin": ORIGIN}, follow_redirects=False)
        assert out.status_code == 303 and f'{SESSION_COOKIE}=""' in out.headers["set-cookie"]
    assert TOKEN not in caplog.text


def test_sign_in_attempts_are_rate_limited(app):
    with TestClient(app, client=("127.0.0.22", 5000)) as client:
        form = csrf(client.get("/owner").text)
        statuses = [client.post("/owner/login", data={"token": f"guess{i}", "csrf": form},
                                headers={"Origin": ORIGIN}).status_code for i in range(7)]
        assert statuses[:5] == [401] * 5 and statuses[5:] == [429, 429]
        late = client.post("/owner/login", data={"token": TOKEN, "csrf": form}, headers={"Origin": ORIGIN},
                           follow_redirects=False)
        assert late.status_code == 429 and int(late.headers["retry-after"]) >= 1  # even the right token waits


def test_tokens_expire_and_are_bound_to_their_purpose():
    now = 1_800_000_000
    form = form_token(TOKEN, "login", now)
    assert form_token_ok(form, TOKEN, "login", now + 60)
    assert not form_token_ok(form, TOKEN, "logout", now + 60)
    assert not form_token_ok(form, TOKEN, "login", now + 7200)
    assert not form_token_ok(form, "another-token-0123456789", "login", now)
    assert not session_is_owner("", TOKEN) and not session_is_owner(f"{now}.x", TOKEN, now)


def test_the_plot_is_svg_named_for_screen_readers_and_months_count_articles_once():
    svg = bar_chart("Questions per day", [("05-01", [3, 1]), ("05-02", [0, 2])], legend=("answered", "refused"))
    assert svg.startswith('<svg role="img" aria-label="Questions per day: answered (blue), refused (orange)')
    assert svg.count("<rect") == 4 and "<script" not in svg
    rows = [("a", "X", "2024-05-02"), ("a", "X", "2024-05-02"), ("b", "Y", "2024-05-30"), ("c", "Y", "2024-07-01"),
            ("d", "Y", "")]
    assert by_month(rows) == (("2024-05", 2), ("2024-07", 1))


# --- in Chromium ----------------------------------------------------------------------------

MARS = ["When will the next Mars rover launch?", "Is there water on Mars?", "What did NASA find on Mars?",
        "How is the Mars Perseverance mission going?"]
CUP = ["Who won the football World Cup final?", "Which team won the World Cup?", "World Cup 2022 final score"]


def fill(db, now: datetime) -> None:
    """Three weeks of a small desk's questions, feedback and runs."""
    log, feedback = QuestionLog(db), FeedbackStore(db)
    for day in range(21):
        when = now - timedelta(days=20 - day, hours=3)
        for i in range(3 + day % 5):
            log.record(TRADE_QUESTION, "answered", ("chat", "embed", "api")[i % 3], 0.3 + 0.1 * i + 0.02 * day,
                       ["000_15735037f31751e9.txt"], now=when + timedelta(minutes=i))
        subject = MARS if day % 2 else CUP
        log.record(subject[day % len(subject)], "refused", "embed", 0.4, now=when + timedelta(minutes=30))
    log.record("Who is Liu Weidong?", "busy", "chat", 10.0, now=now - timedelta(hours=1))
    entry, token = feedback.add(TRADE_QUESTION, "40.7 per cent [1]", "up", "Exactly what I needed")
    feedback.add("Is there water on Mars?", "The articles don't cover this.", "down", "Please cover space news")
    feedback.add("What did the council vote?", "7 to 2 [1]", "up")

    class Report:
        added, updated, removed = ["wheat.md", "rail.md"], [], []
        failed = [("scan.pdf", "no text in the PDF (a scan?)")]

    RunLog(db).ingest(Report())


@pytest.fixture(scope="module")
def served(seed_assistant, seed_index, tmp_path_factory):
    db = tmp_path_factory.mktemp("owner-browser") / "fb.sqlite3"
    fill(db, datetime.now(timezone.utc))
    settings = Settings.of(index_dir=seed_index, owner_token=TOKEN, feedback_db=db, rate_limit="500/minute")
    server = Uvicorn(build_server(seed_assistant, settings))
    yield server.url, db
    server.close()


def test_in_chromium_by_keyboard_the_owner_signs_in_sees_every_section_and_axe_finds_nothing(served, browser, tmp_path):
    url, db = served
    context = browser.new_context(viewport={"width": 1280, "height": 1250}, bypass_csp=True)  # axe is a script
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    # A question asked in the embed is logged as the embed's.
    page.goto(url + "/embed")
    page.locator("#pd-question").fill("Is there water on Mars?")
    page.locator("#pd-question").press("Enter")
    expect(page.locator(".pd-a").last).not_to_have_attribute("aria-busy", "true", timeout=30_000)
    last = QuestionLog(db).entries()[-1]
    assert (last.question, last.outcome, last.channel) == ("Is there water on Mars?", "refused", "embed")

    page.goto(url + "/owner")
    expect(page.get_by_role("heading", name="Policy Desk: the owner's page")).to_be_visible()
    assert page.get_by_role("heading", name="Coverage gaps").count() == 0
    assert axe_violations(page) == []
    page.keyboard.press("Tab")
    expect(page.get_by_label("Owner token")).to_be_focused()
    page.keyboard.type(TOKEN)
    page.keyboard.press("Enter")
    for name in SECTIONS:
        expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    assert page.url == url + "/owner"
    expect(page.get_by_role("img", name=re.compile("^Questions per day"))).to_be_visible()
    expect(page.get_by_role("img", name=re.compile("^Articles per month"))).to_be_visible()
    gaps = page.locator("#gaps + p + ol > li")
    expect(gaps).to_have_count(2)
    assert "Mars" in gaps.nth(0).locator("h3").inner_text() and "Cup" in gaps.nth(1).locator("h3").inner_text()
    expect(page.get_by_text("Please cover space news")).to_be_visible()
    expect(page.get_by_text("scan.pdf: no text in the PDF (a scan?)")).to_be_visible()
    (cookie,) = [c for c in context.cookies() if c["name"] == SESSION_COOKIE]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and TOKEN not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # no script can read it
    assert axe_violations(page) == []
    assert not any(TOKEN in u for u in requested)
    page.screenshot(path=str(tmp_path / "owner.png"), full_page=False)  # docs/owner.png (copied by hand)
    context.close()


def test_in_chromium_another_site_cannot_frame_the_page(served, browser, tmp_path):
    url, _ = served
    context = browser.new_context(extra_http_headers={"Authorization": f"Bearer {TOKEN}"})
    page = context.new_page()
    frame_host = tmp_path / "host.html"
    frame_host.write_text(f"<iframe id='f' src='{url}/owner' width=600 height=400></iframe>")
    page.goto(frame_host.as_uri())
    page.wait_for_timeout(1500)
    frame = page.frame_locator("#f")
    assert frame.get_by_role("heading", name="Coverage gaps").count() == 0
    context.close()
    shutil.rmtree(tmp_path, ignore_errors=True)
