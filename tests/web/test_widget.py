"""`/widget.js` in Chromium: a host page on another loopback origin (localhost hosting 127.0.0.1)
embeds the desk by one script tag, inline and as a launcher; the frame fits its answer, takes the
theme, accent and language; a site outside EMBED_ALLOWED_ORIGINS gets nothing. Also the checks
`/embed` makes of its options (`EmbedOptions`)."""

from __future__ import annotations

import html
import json
import re

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect

from assistant import i18n
from assistant.config import Settings
from assistant.web.routes.embed import EmbedOptions, colour, host_origin
from assistant.web.server import build_server
from conftest import TRADE_QUESTION, axe_violations, free_port
from test_api import ANSWER_MS, StaticSite, Uvicorn, Watched
from test_app import browser  # noqa: F401  (the module's Chromium, a fixture)

pytestmark = pytest.mark.slow


def host_page(desk: str, attributes: dict[str, str], target: bool = True, csp: bool = True) -> bytes:
    """A news site's page with the one-line embed; its CSP allows the desk's origin and nothing
    inline (no 'unsafe-inline' anywhere): the widget must work under it."""
    attrs = "".join(f' data-{k}="{html.escape(v, quote=True)}"' for k, v in attributes.items())
    policy = (f'<meta http-equiv="Content-Security-Policy" content="default-src \'self\'; script-src {desk}; '
              f'frame-src {desk}; style-src \'self\'; img-src \'self\'">' if csp else "")
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>{policy}<title>The Harbour Times</title>"
            f"</head><body><header><h1>The Harbour Times</h1></header><main><p>Today's news, and a desk to ask "
            f"about it.</p>{'<section id=desk aria-label=Desk></section>' if target else ''}</main>"
            f"<script src='{desk}/widget.js'{attrs}></script></body></html>").encode()


@pytest.fixture(scope="module")
def settings(seed_index) -> Settings:
    return Settings.of(index_dir=seed_index, embed_allowed_origins=("http://localhost:8000",), rate_limit="500/minute")


@pytest.fixture(scope="module")
def desk(seed_assistant, settings):
    """The server, allowing one localhost origin; host pages are made per test on that port or another."""
    allowed = free_port()
    server = Uvicorn(build_server(seed_assistant, settings.with_(embed_allowed_origins=(f"http://localhost:{allowed}",))))
    yield {"url": server.url, "allowed": allowed}
    server.close()


def hosted(desk, attributes, port=None, **options) -> StaticSite:
    return StaticSite(port or desk["allowed"], host_page(desk["url"], attributes, **options))


def frame_of(page, desk):
    """The desk's frame in the host page, once its question box is there."""
    expect(page.locator("iframe")).to_have_count(1)
    frame = page.frame_locator("iframe")
    expect(frame.locator("#pd-question")).to_be_editable(timeout=10_000)
    return frame


def height(page) -> int:
    return page.locator("iframe").evaluate("f => Math.round(f.getBoundingClientRect().height)")


def wait_for_answer(frame):
    answer = frame.locator(".pd-a").last
    expect(answer).not_to_have_attribute("aria-busy", "true", timeout=ANSWER_MS)
    return answer


def test_inline_dark_accent_chinese_grows_to_the_answer(desk, browser, tmp_path):
    site = hosted(desk, {"target": "#desk", "theme": "dark", "accent": "#e4572e", "lang": "zh",
                         "welcome": "Ask about the trade figures.",
                         "suggest": f"{TRADE_QUESTION} | Who said it?"})
    w = Watched(browser, viewport=(900, 900))
    try:
        w.page.goto(site.url)
        frame = frame_of(w.page, desk)
        assert w.page.locator("#desk iframe").count() == 1  # inside the target, not floating
        root = frame.locator("html")
        expect(root).to_have_attribute("lang", "zh-Hans")
        # Chinese strings from the catalogue (and not the English ones).
        zh = lambda s: i18n.say("zh_Hans", s)  # noqa: E731
        assert zh("Ask") != "Ask" and zh("Ask about the articles…") != "Ask about the articles…"
        expect(frame.locator("#pd-send")).to_have_text(zh("Ask"))
        expect(frame.locator("#pd-question")).to_have_attribute("placeholder", zh("Ask about the articles…"))
        expect(frame.locator("#pd-welcome")).to_have_text("Ask about the trade figures.")
        # Dark theme and the accent: the send button takes the accent, with text that reads on it.
        assert frame.locator("body").evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(13, 17, 23)"
        send = frame.locator("#pd-send").evaluate("b => [getComputedStyle(b).backgroundColor, getComputedStyle(b).color]")
        assert send == ["rgb(228, 87, 46)", "rgb(13, 17, 23)"]
        empty = height(w.page)
        assert 320 <= empty <= 640

        frame.locator(".pd-suggestion").first.click()  # a suggested question asks itself
        answer = wait_for_answer(frame)
        expect(answer.locator(".pd-text")).to_contain_text("40.7 per cent")  # the article's words, as written
        expect(answer.get_by_role("button", name=zh("Helpful"), exact=True)).to_be_visible()
        expect(answer.locator(".pd-ref").first).to_have_attribute("aria-label", zh("Source {n}").format(n=1))
        # The frame grew to the answer (the page told the widget its height over postMessage).
        w.page.wait_for_function("h => document.querySelector('iframe').getBoundingClientRect().height > h + 40", arg=empty)
        grown = height(w.page)
        assert grown <= 640
        # Only the desk's frame is heard: a message from the host page itself changes nothing.
        w.page.evaluate("() => window.postMessage({type: 'policy-desk:height', height: 200}, '*')")
        w.page.wait_for_timeout(300)
        assert height(w.page) == grown
        w.page.screenshot(path=str(tmp_path / "widget-inline.png"))  # docs/widget-inline.png (copied by hand)
    finally:
        w.close()
        site.close()
    assert w.dialogs == [] and w.errors == []  # no CSP violation on the host page, no script error


def test_launcher_in_russian_opens_on_click_grows_and_closes_with_escape(desk, browser, tmp_path):
    site = hosted(desk, {"lang": "ru", "position": "bottom-left", "label": "Спросить редакцию",
                         "placeholder": "Ваш вопрос о торговле"})
    w = Watched(browser, viewport=(1000, 860))
    try:
        w.page.goto(site.url)
        launcher = w.page.locator("#policy-desk-launcher")
        expect(launcher).to_have_text("Спросить редакцию")
        expect(launcher).to_have_attribute("aria-expanded", "false")
        assert w.page.locator("iframe").get_attribute("src") is None  # the chat loads when first opened
        box = launcher.bounding_box()
        assert box["x"] < 100  # bottom-left
        launcher.click()
        expect(launcher).to_have_attribute("aria-expanded", "true")
        frame = frame_of(w.page, desk)
        ru = lambda s: i18n.say("ru", s)  # noqa: E731
        assert ru("Ask") != "Ask"
        expect(frame.locator("html")).to_have_attribute("lang", "ru")
        expect(frame.locator("#pd-send")).to_have_text(ru("Ask"))
        expect(frame.locator("#pd-question")).to_have_attribute("placeholder", "Ваш вопрос о торговле")
        expect(frame.locator("#pd-question")).to_be_focused()  # the panel opened: focus in the box
        empty = height(w.page)

        frame.locator("#pd-question").fill(TRADE_QUESTION)
        frame.locator("#pd-question").press("Enter")
        answer = wait_for_answer(frame)
        expect(answer.locator(".pd-text")).to_contain_text("40.7 per cent")
        expect(answer.get_by_role("button", name=ru("Not helpful"), exact=True)).to_be_visible()
        w.page.wait_for_function("h => document.querySelector('iframe').getBoundingClientRect().height > h + 40", arg=empty)
        panel = w.page.locator("#policy-desk-panel").bounding_box()
        assert panel["y"] >= 0 and panel["y"] + panel["height"] <= 860  # never off the screen
        w.page.screenshot(path=str(tmp_path / "widget-launcher.png"))  # docs/widget-launcher.png (by hand)

        frame.locator("#pd-question").press("Escape")  # Escape in the frame closes the panel
        expect(w.page.locator("#policy-desk-panel")).to_be_hidden()
        expect(launcher).to_be_focused()
        expect(launcher).to_have_attribute("aria-expanded", "false")
    finally:
        w.close()
        site.close()
    assert w.dialogs == [] and w.errors == []


def test_right_to_left_in_arabic(desk, browser):
    site = hosted(desk, {"lang": "ar"})
    w = Watched(browser, viewport=(1000, 860))
    try:
        w.page.goto(site.url)
        launcher = w.page.locator("#policy-desk-launcher")
        assert launcher.bounding_box()["x"] < 100  # a right-to-left reader's launcher sits bottom-left
        expect(launcher).to_have_text(i18n.say("ar", "Ask a question"))
        launcher.click()
        frame = frame_of(w.page, desk)
        expect(frame.locator("html")).to_have_attribute("dir", "rtl")
        frame.locator("#pd-question").fill(TRADE_QUESTION)
        frame.locator("#pd-question").press("Enter")
        wait_for_answer(frame)
        # Mirrored: the reader's question sits on the left (on the right in English), the answer spans.
        q = frame.locator(".pd-q").bounding_box()
        a = frame.locator(".pd-a").bounding_box()
        assert abs(q["x"] - a["x"]) <= 2 and q["x"] + q["width"] < a["x"] + a["width"] - 10
    finally:
        w.close()
        site.close()
    assert w.dialogs == [] and w.errors == []


def test_a_site_outside_the_allowlist_gets_nothing_and_a_console_message(desk, browser):
    site = hosted(desk, {"target": "#desk"}, port=free_port())
    w = Watched(browser)
    said: list[str] = []
    w.page.on("console", lambda m: said.append(m.text))
    try:
        w.page.goto(site.url)
        w.page.wait_for_load_state("load")
        assert w.page.locator("iframe").count() == 0
        assert any("is not among the sites allowed to embed" in s and "EMBED_ALLOWED_ORIGINS" in s for s in said), said
        # A page that frames /embed by hand instead is refused by the browser (frame-ancestors).
        w.page.evaluate(f"() => {{ const f = document.createElement('iframe'); f.src = '{desk['url']}/embed';"
                        " document.body.append(f); }")
        w.page.wait_for_timeout(1500)
        frame = w.page.frames[-1]
        assert frame.url in ("about:blank", "chrome-error://chromewebdata/") or frame.locator("#pd-question").count() == 0
    finally:
        w.close()
        site.close()


def test_bad_options_are_ignored_with_a_warning_and_never_reach_the_page(desk, browser):
    site = hosted(desk, {"target": "#desk", "theme": "neon", "accent": "red;background:url(https://evil.example/x)",
                         "lang": "xx", "since": "2024-13-01", "height": "99999", "label": "L" * 300,
                         "title": "<img src=x onerror=alert(1)>"})
    w = Watched(browser)
    warned: list[str] = []
    w.page.on("console", lambda m: m.type == "warning" and warned.append(m.text))
    try:
        w.page.goto(site.url)
        frame = frame_of(w.page, desk)
        src = w.page.locator("iframe").get_attribute("src")
        for name in ("theme", "accent", "since"):
            assert f"{name}=" not in src, src
            assert any(f"data-{name}=" in s for s in warned), (name, warned)
        assert any("data-lang=" in s for s in warned) and any("data-height=" in s for s in warned)
        expect(frame.locator("#pd-title")).to_have_text("<img src=x onerror=alert(1)>")  # text, not markup
        expect(frame.locator("img")).to_have_count(0)
    finally:
        w.close()
        site.close()
    assert w.dialogs == [] and w.errors == []


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_axe_finds_nothing_in_either_theme_with_an_accent(desk, browser, theme):
    site = hosted(desk, {"theme": theme, "accent": "#ffd400", "lang": "en"}, csp=False)  # a pale accent
    w = Watched(browser, viewport=(1000, 860), bypass_csp=True)  # axe is injected as a script
    try:
        w.page.goto(site.url)
        w.page.locator("#policy-desk-launcher").click()
        frame_of(w.page, desk)
        assert axe_violations(w.page) == []  # the host page with the launcher
        inner = next(f for f in w.page.frames if f.url.startswith(desk["url"] + "/embed"))
        inner.fill("#pd-question", TRADE_QUESTION)
        inner.press("#pd-question", "Enter")
        wait_for_answer(w.page.frame_locator("iframe"))
        inner.locator(".pd-ref").first.click()
        assert axe_violations(inner) == []  # the chat, answered, with a footnote open: contrast included
    finally:
        w.close()
        site.close()


# --- the checks /embed makes of its options ------------------------------------------------------

def test_colours_are_colours():
    for good in ("#e4572e", "#fff", "rgb(10 20 30)", "hsl(200, 50%, 40%)", "rebeccapurple", "oklch(0.7 0.1 200)"):
        assert colour(good) == good
    for bad in ("red;background:url(x)", "url(x)", "expression(alert(1))", "#12", "", "inherit", "a" * 40,
                "var(--x)", "rgb(1,2,3);x"):
        assert colour(bad) == "", bad


def test_host_origin_only_an_allowed_http_origin():
    allowed = ("http://localhost:8000",)
    assert host_origin("http://localhost:8000", allowed) == "http://localhost:8000"
    assert host_origin("http://localhost:8000/", allowed) == "http://localhost:8000"
    for bad in ("http://evil.example", "javascript:alert(1)", "*", "null", "http://localhost:8000/path"):
        assert host_origin(bad, allowed) == "", bad
    assert host_origin("https://any.example", ()) == "https://any.example"  # no allowlist: any site


def test_embed_options_from_a_hostile_query(seed_assistant, settings):
    client = TestClient(build_server(seed_assistant, settings.with_(embed_allowed_origins=("http://localhost:8000",))))
    r = client.get("/embed", params={"lang": "ru", "theme": "dark", "title": "</script><script>alert(1)</script>",
                                     "welcome": "Hi\u0000\u202e there", "suggest": ["One?", "", "Two?", "3", "4"],
                                     "since": "2022-02-30", "until": "2023-01-01", "source": ["SCMP", "SCMP"],
                                     "accent": "url(x)", "origin": "http://evil.example"})
    assert r.status_code == 200 and r.headers["content-language"] == "ru"
    page = r.text
    assert "<script>alert(1)" not in page and "&lt;/script&gt;&lt;script&gt;alert(1)" in page
    config = json.loads(re.search(r'<script type="application/json" id="pd-config">(.*?)</script>', page, re.S).group(1))
    assert config["accent"] == "" and config["host_origin"] == ""  # not a colour; not an allowed site
    assert config["filters"] == {"sources": ["SCMP"], "until": "2023-01-01"}  # an impossible day dropped
    assert config["lang"] == "ru" and config["messages"]  # the script's strings, in Russian
    assert len(re.findall('class="pd-suggestion"', page)) == 3
    assert "\u0000" not in page
    # The language follows the browser when the page names none.
    r = client.get("/embed", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert r.headers["content-language"] == "zh-Hans" and 'lang="zh-Hans"' in r.text
    r = client.get("/embed", headers={"Accept-Language": "zh-TW, fr"})
    assert r.headers["content-language"] == "en"  # Traditional Chinese is not shipped: English


def test_widget_script_carries_the_allowlist_and_the_languages(seed_assistant, settings):
    client = TestClient(build_server(seed_assistant, settings.with_(embed_allowed_origins=("http://localhost:8000",))))
    r = client.get("/widget.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert r.headers["cross-origin-resource-policy"] == "cross-origin"
    assert '"allowed": ["http://localhost:8000"]' in r.text and "__POLICY_DESK_SETTINGS__" not in r.text
    assert len(r.content) < 12_000  # a few KB, no framework
    for banned in ("innerHTML", "eval(", "document.write", "localStorage", "cookie", '"*")'):
        assert banned not in r.text, banned
